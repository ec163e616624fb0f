"""Saxo's settings (SAXO_*), read by partnersync/config.py like every setting."""

from __future__ import annotations

import re
from typing import Annotated

from partnersync.config import ConfigError, Env, PartnerSettings
from schemas.sensitive import Sensitive

# what each SAXO_AUTH needs besides its defaults
NEEDS = {
    "static": (),
    "code": ("app_key", "app_secret"),
    "certificate": (
        "app_key", "app_secret", "certificate_file", "private_key_file", "user_id", "app_url",
    ),
}  # fmt: skip
_BUDGET = r"\w+=[1-9]\d*/[1-9]\d*(\.\d+)?"


class SaxoSettings(PartnerSettings, frozen=True, kw_only=True):
    base_url: Annotated[
        str, Env("SAXO_BASE_URL", "Saxo OpenAPI base URL (…/openapi)", url=True)
    ] = "http://127.0.0.1:8900/saxo/openapi"
    token: Annotated[
        str | None,
        Sensitive,
        Env("SAXO_TOKEN", "Saxo bearer token (re-read from the environment on a 401)"),
    ] = "sandbox"
    auth: Annotated[
        str,
        Env(
            "SAXO_AUTH",
            "static (SAXO_TOKEN, the 24-hour developer token), code (Authorization Code grant: refresh tokens) or certificate (personal JWT grant)",
            choices=("static", "code", "certificate"),
        ),
    ] = "static"
    token_url: Annotated[
        str, Env("SAXO_TOKEN_URL", "Saxo's token endpoint (code, certificate)", url=True)
    ] = "http://127.0.0.1:8900/saxo/token"
    app_key: Annotated[str | None, Env("SAXO_APP_KEY", "the application's AppKey (client_id)")] = (
        None
    )
    app_secret: Annotated[
        str | None, Sensitive, Env("SAXO_APP_SECRET", "the application's AppSecret (client_secret)")
    ] = None
    refresh_token: Annotated[
        str | None,
        Sensitive,
        Env(
            "SAXO_REFRESH_TOKEN",
            "code: the refresh token of the one-time authorization; seeds Redis when it holds none",
        ),
    ] = None
    certificate_file: Annotated[
        str | None, Env("SAXO_CERTIFICATE_FILE", "certificate: the PEM certificate")
    ] = None
    private_key_file: Annotated[
        str | None, Env("SAXO_PRIVATE_KEY_FILE", "certificate: its PEM private key")
    ] = None
    user_id: Annotated[
        str | None, Env("SAXO_USER_ID", "certificate: the UserId the token is for (sub)")
    ] = None
    app_url: Annotated[
        str | None, Env("SAXO_APP_URL", "certificate: the application's AppUrl (spurl)")
    ] = None
    authorize_url: Annotated[
        str | None,
        Env(
            "SAXO_AUTHORIZE_URL",
            "code: Saxo's authorize endpoint for `saxo login` (default: beside SAXO_TOKEN_URL)",
        ),
    ] = None
    redirect_url: Annotated[
        str,
        Env(
            "SAXO_REDIRECT_URL",
            "code: the app's registered localhost redirect URL; `saxo login` listens on its host at a free port unless it names one",
            url=True,
        ),
    ] = "http://127.0.0.1/"
    funding_account_key: Annotated[
        str | None,
        Env(
            "SAXO_FUNDING_ACCOUNT_KEY",
            "AccountKey of the white-label funding account (FundingCheck=Ignore only towards it)",
        ),
    ] = None
    client_key: Annotated[
        str | None, Env("SAXO_CLIENT_KEY", "ClientKey of the white-label / IB owner")
    ] = None
    rate_limits: Annotated[
        str,
        Env(
            "SAXO_RATE_LIMITS",
            "Saxo's request budgets, Dimension=requests/seconds (Session per service group), shared by every process; a higher agreement with Saxo raises them",
        ),
    ] = "Session=120/60,AppDay=10000000/86400"
    options_ttl_s: Annotated[
        int,
        Env("PARTNERSYNC_OPTIONS_TTL_S", "seconds the Saxo signup options are cached", minimum=1),
    ] = 3600
    unsettled_interval_s: Annotated[
        float,
        Env(
            "PARTNERSYNC_UNSETTLED_INTERVAL_S",
            "seconds between unsettled-amounts reports (clock; needs SAXO_CLIENT_KEY)",
            minimum=1,
        ),
    ] = 3600.0
    ens_interval_s: Annotated[
        float,
        Env(
            "PARTNERSYNC_ENS_INTERVAL_S",
            "seconds between ENS activity polls (clock; needs SAXO_CLIENT_KEY)",
            minimum=0.1,
        ),
    ] = 5.0

    def check(self) -> None:
        missing = [f"SAXO_{f.upper()}" for f in NEEDS[self.auth] if not getattr(self, f)]
        if missing:
            raise ConfigError(f"SAXO_AUTH={self.auth} needs {', '.join(missing)}")
        if not re.fullmatch(f"{_BUDGET}(,{_BUDGET})*", self.rate_limits):
            raise ConfigError(
                f"SAXO_RATE_LIMITS={self.rate_limits!r}: use Dimension=requests/seconds,… "
                "(e.g. Session=120/60,AppDay=10000000/86400)"
            )
