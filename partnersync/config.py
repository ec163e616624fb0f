"""Configuration, read from the environment in this one place (12-factor)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

from schemas.sensitive import Sensitive, redact


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    web_concurrency: int = 1
    log_level: str = "INFO"

    tradevest_base_url: str = "http://127.0.0.1:8900/tradevest"
    tradevest_auth_url: str = "http://127.0.0.1:8900/tradevest/oauth2/token"
    tradevest_client_id: str = "sandbox"
    tradevest_client_secret: Annotated[str, Sensitive] = "sandbox"
    tradevest_scope: str | None = None
    tradevest_webhook_auth: str = "header"
    tradevest_webhook_header: str = "api-key"
    tradevest_webhook_secrets: Annotated[tuple[str, ...], Sensitive] = ()
    tradevest_extra_event_types: tuple[str, ...] = ()

    saxo_base_url: str = "http://127.0.0.1:8900/saxo/openapi"
    saxo_token: Annotated[str, Sensitive] | None = "sandbox"
    saxo_auth: str = "static"  # static | code | certificate (partners/saxo/auth.py)
    saxo_token_url: str = "http://127.0.0.1:8900/saxo/token"
    saxo_app_key: str | None = None
    saxo_app_secret: Annotated[str, Sensitive] | None = None
    saxo_refresh_token: Annotated[str, Sensitive] | None = None
    saxo_certificate_file: str | None = None
    saxo_private_key_file: str | None = None
    saxo_user_id: str | None = None
    saxo_app_url: str | None = None
    saxo_authorize_url: str | None = None
    saxo_redirect_url: str = "http://127.0.0.1/"
    saxo_funding_account_key: str | None = None
    saxo_client_key: str | None = None
    # Saxo's documented limits (developer.saxo rate-limiting), shared by every process
    saxo_rate_limits: str = "Session=120/60,AppDay=10000000/86400"
    options_ttl_s: int = 3600
    unsettled_interval_s: float = 3600.0
    ens_interval_s: float = 5.0

    webhook_tolerance_s: float = 300.0
    allowed_cidrs: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    header_timeout_s: float = 10.0
    max_connections: int = 4096
    durability: str = "fsync"  # fsync | none (receiver/durability.py)
    min_replicas: int = 0
    replica_timeout_ms: int = 1000

    handlers: str | None = None
    partners: tuple[str, ...] = ("partners.tradevest", "partners.saxo")
    queue: str = "partnersync"
    max_body: int = 256 * 1024
    max_entities: int = 1000
    inbox_ttl: int = 7 * 24 * 3600
    dedupe_ttl: int = 7 * 24 * 3600
    drainers: int = 4
    batch: int = 50
    lease_ms: int = 30_000
    coalesce_ms: int = 1000
    drain_budget_s: float = 10.0
    max_attempts: int = 10
    max_crashes: int = 5
    # Delay before retry n (seconds), the last repeating: ~25 h over 10 attempts, like the
    # schedules webhook senders use (Standard Webhooks, Svix). Jittered ±20%.
    retry_schedule_s: tuple[float, ...] = (5, 60, 300, 1800, 3600, 7200, 14400, 28800, 36000)
    changes_maxlen: int = 1_000_000
    history_max: int = 100
    retention_days: float = 90.0
    http_timeout_s: float = 10.0
    clock_interval_s: float = 1.0
    sweep_interval_s: float = 30.0
    dlq_retention: int = 30 * 24 * 3600

    console_host: str = "127.0.0.1"
    console_port: int = 8100
    console_secret: Annotated[str, Sensitive] | None = None
    console_users: str | None = None
    console_auth: str = "password"  # password | proxy
    console_proxy_header: str = "X-Forwarded-User"
    console_trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    console_secure_cookies: bool = True

    def __repr__(self) -> str:  # secrets are never rendered, even by accident
        return f"Settings({redact(self)!r})"


# (environment variable, Settings field, default shown in README, meaning).
# The README's configuration table is generated from this list by `partnersync config`.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        "REDIS_URL",
        "redis_url",
        "Redis to use (redis://, rediss://, unix:// or redis+sentinel://host:port,…/<master>); "
        "unset for `run` starts an embedded one",
    ),
    ("PARTNERSYNC_HOST", "host", "address the receiver binds"),
    ("PORT", "port", "port the receiver binds"),
    (
        "PARTNERSYNC_PUBLIC_URL",
        "public_url",
        "the receiver's public base URL that register-webhooks registers (default of --url)",
    ),
    ("WEB_CONCURRENCY", "web_concurrency", "receiver worker processes (uvicorn --workers)"),
    ("LOG_LEVEL", "log_level", "log level of every process: DEBUG, INFO, WARNING, ERROR"),
    ("TRADEVEST_BASE_URL", "tradevest_base_url", "Tradevest API base URL"),
    (
        "TRADEVEST_AUTH_URL",
        "tradevest_auth_url",
        "OAuth2 token URL (/oauth2/token or /connect/token)",
    ),
    ("TRADEVEST_CLIENT_ID", "tradevest_client_id", "OAuth2 client id"),
    ("TRADEVEST_CLIENT_SECRET", "tradevest_client_secret", "OAuth2 client secret"),
    ("TRADEVEST_SCOPE", "tradevest_scope", "OAuth2 scope, sent only when set"),
    (
        "TRADEVEST_WEBHOOK_AUTH",
        "tradevest_webhook_auth",
        "delivery authentication: header (Tradevest's static headers) or standard-webhooks (HMAC, via a re-signing gateway)",
    ),
    ("TRADEVEST_WEBHOOK_HEADER", "tradevest_webhook_header", "header carrying the webhook secret"),
    (
        "TRADEVEST_EXTRA_EVENT_TYPES",
        "tradevest_extra_event_types",
        "event types beyond Tradevest's documented 24 to register, comma-separated "
        "(SAVINGS_PLANS_NOTIFICATION, TOKENIZED_ASSET_ORDER_NOTIFICATION: WAWEX)",
    ),
    (
        "TRADEVEST_WEBHOOK_SECRETS",
        "tradevest_webhook_secrets",
        "accepted webhook secrets, comma-separated (rotation)",
    ),
    ("SAXO_BASE_URL", "saxo_base_url", "Saxo OpenAPI base URL (…/openapi)"),
    ("SAXO_TOKEN", "saxo_token", "Saxo bearer token (re-read from the environment on a 401)"),
    (
        "SAXO_AUTH",
        "saxo_auth",
        "static (SAXO_TOKEN, the 24-hour developer token), code (Authorization Code grant: "
        "refresh tokens) or certificate (personal JWT grant)",
    ),
    ("SAXO_TOKEN_URL", "saxo_token_url", "Saxo's token endpoint (code, certificate)"),
    ("SAXO_APP_KEY", "saxo_app_key", "the application's AppKey (client_id)"),
    ("SAXO_APP_SECRET", "saxo_app_secret", "the application's AppSecret (client_secret)"),
    (
        "SAXO_REFRESH_TOKEN",
        "saxo_refresh_token",
        "code: the refresh token of the one-time authorization; seeds Redis when it holds none",
    ),
    ("SAXO_CERTIFICATE_FILE", "saxo_certificate_file", "certificate: the PEM certificate"),
    ("SAXO_PRIVATE_KEY_FILE", "saxo_private_key_file", "certificate: its PEM private key"),
    ("SAXO_USER_ID", "saxo_user_id", "certificate: the UserId the token is for (sub)"),
    ("SAXO_APP_URL", "saxo_app_url", "certificate: the application's AppUrl (spurl)"),
    (
        "SAXO_AUTHORIZE_URL",
        "saxo_authorize_url",
        "code: Saxo's authorize endpoint for `saxo login` (default: beside SAXO_TOKEN_URL)",
    ),
    (
        "SAXO_REDIRECT_URL",
        "saxo_redirect_url",
        "code: the app's registered localhost redirect URL; `saxo login` listens on its host "
        "at a free port unless it names one",
    ),
    (
        "SAXO_FUNDING_ACCOUNT_KEY",
        "saxo_funding_account_key",
        "AccountKey of the white-label funding account (FundingCheck=Ignore only towards it)",
    ),
    ("SAXO_CLIENT_KEY", "saxo_client_key", "ClientKey of the white-label / IB owner"),
    (
        "SAXO_RATE_LIMITS",
        "saxo_rate_limits",
        "Saxo's request budgets, Dimension=requests/seconds (Session per service group), "
        "shared by every process; a higher agreement with Saxo raises them",
    ),
    ("PARTNERSYNC_OPTIONS_TTL_S", "options_ttl_s", "seconds the Saxo signup options are cached"),
    (
        "PARTNERSYNC_UNSETTLED_INTERVAL_S",
        "unsettled_interval_s",
        "seconds between unsettled-amounts reports (clock; needs SAXO_CLIENT_KEY)",
    ),
    (
        "PARTNERSYNC_ENS_INTERVAL_S",
        "ens_interval_s",
        "seconds between ENS activity polls (clock; needs SAXO_CLIENT_KEY)",
    ),
    (
        "PARTNERSYNC_WEBHOOK_TOLERANCE_S",
        "webhook_tolerance_s",
        "standard-webhooks: accepted clock difference of webhook-timestamp, seconds",
    ),
    (
        "PARTNERSYNC_ALLOWED_CIDRS",
        "allowed_cidrs",
        "source addresses allowed to deliver, comma-separated CIDRs (unset: any)",
    ),
    (
        "PARTNERSYNC_TRUSTED_PROXIES",
        "trusted_proxies",
        "addresses whose X-Forwarded-For / X-Forwarded-Proto the receiver believes, "
        "comma-separated (unset: none; the peer address is the source)",
    ),
    (
        "PARTNERSYNC_HEADER_TIMEOUT_S",
        "header_timeout_s",
        "seconds a connection may take to send a request's headers before it is closed",
    ),
    (
        "PARTNERSYNC_MAX_CONNECTIONS",
        "max_connections",
        "open connections per receiver process (more are answered 503)",
    ),
    (
        "PARTNERSYNC_DURABILITY",
        "durability",
        "fsync: a delivery is answered 2xx only once on disk (a Redis with appendonly yes "
        "and appendfsync always; checked at start); none: once in Redis's memory",
    ),
    (
        "PARTNERSYNC_MIN_REPLICAS",
        "min_replicas",
        "replicas that must hold a delivery before it is answered 2xx, and a command's "
        "journal before its partner call (WAIT); fewer in time: 503 / not sent yet",
    ),
    (
        "PARTNERSYNC_REPLICA_TIMEOUT_MS",
        "replica_timeout_ms",
        "ms the receiver (and a command's journal write) waits for PARTNERSYNC_MIN_REPLICAS replicas",
    ),
    ("PARTNERSYNC_HANDLERS", "handlers", "user handlers, `package.module:attribute`"),
    (
        "PARTNERSYNC_PARTNERS",
        "partners",
        "partner packages to run, comma-separated modules each exporting PARTNER",
    ),
    ("PARTNERSYNC_QUEUE", "queue", "RQ queue name"),
    ("PARTNERSYNC_MAX_BODY", "max_body", "largest webhook body accepted, bytes"),
    (
        "PARTNERSYNC_MAX_ENTITIES",
        "max_entities",
        "most distinct entities one delivery may name (more: 400, nothing stored)",
    ),
    ("PARTNERSYNC_INBOX_TTL", "inbox_ttl", "seconds a raw delivery is archived"),
    ("PARTNERSYNC_DEDUPE_TTL", "dedupe_ttl", "seconds a delivery's dedupe key is remembered"),
    ("PARTNERSYNC_DRAINERS", "drainers", "most reconcile jobs queued or running at once"),
    ("PARTNERSYNC_BATCH", "batch", "entities one reconcile job claims at a time"),
    (
        "PARTNERSYNC_LEASE_MS",
        "lease_ms",
        "ms an entity stays claimed by a job before another may take it",
    ),
    (
        "PARTNERSYNC_COALESCE_MS",
        "coalesce_ms",
        "after a reconcile, further events for that entity wait this long and are fetched once",
    ),
    (
        "PARTNERSYNC_DRAIN_BUDGET_S",
        "drain_budget_s",
        "seconds one reconcile job drains before handing over",
    ),
    (
        "PARTNERSYNC_MAX_ATTEMPTS",
        "max_attempts",
        "reconcile attempts before an entity's events go to the DLQ",
    ),
    (
        "PARTNERSYNC_MAX_CRASHES",
        "max_crashes",
        "attempts in a row that crash or lose their lease (worker killed, out of memory, paused) before an entity goes to the DLQ",
    ),
    (
        "PARTNERSYNC_RETRY_SCHEDULE_S",
        "retry_schedule_s",
        "delays before each retry, comma-separated seconds (the last repeats); jittered ±20%, Retry-After is the floor",
    ),
    (
        "PARTNERSYNC_CHANGES_MAXLEN",
        "changes_maxlen",
        "approximate length the change stream is trimmed to",
    ),
    (
        "PARTNERSYNC_HISTORY_MAX",
        "history_max",
        "transitions kept per entity, the oldest trimmed (the change stream has them all)",
    ),
    (
        "PARTNERSYNC_RETENTION_DAYS",
        "retention_days",
        "days an entity in a final state stays after its last change (then a tombstone is "
        "left; its externalId link and command outcome stay for good)",
    ),
    ("PARTNERSYNC_HTTP_TIMEOUT_S", "http_timeout_s", "timeout of one partner API call"),
    ("PARTNERSYNC_CLOCK_INTERVAL_S", "clock_interval_s", "seconds between clock ticks"),
    (
        "PARTNERSYNC_SWEEP_INTERVAL_S",
        "sweep_interval_s",
        "seconds between sweeps for missed webhooks, stale entities, transactions",
    ),
    ("PARTNERSYNC_DLQ_RETENTION", "dlq_retention", "seconds a dead-lettered event is kept"),
    ("PARTNERSYNC_CONSOLE_HOST", "console_host", "address the console binds"),
    ("PARTNERSYNC_CONSOLE_PORT", "console_port", "port the console binds"),
    (
        "PARTNERSYNC_CONSOLE_SECRET",
        "console_secret",
        "key that signs console sessions (required by `console`; `run` makes one)",
    ),
    (
        "PARTNERSYNC_CONSOLE_USERS",
        "console_users",
        "file of console users, one `name role argon2-hash` per line (`partnersync console-user`)",
    ),
    (
        "PARTNERSYNC_CONSOLE_AUTH",
        "console_auth",
        "password (login form) or proxy (an SSO proxy names the user in a header)",
    ),
    (
        "PARTNERSYNC_CONSOLE_PROXY_HEADER",
        "console_proxy_header",
        "proxy mode: the header naming the user (their role comes from the users file)",
    ),
    (
        "PARTNERSYNC_CONSOLE_TRUSTED_PROXIES",
        "console_trusted_proxies",
        "proxy mode: addresses (CIDRs) whose header is believed; others are refused",
    ),
    (
        "PARTNERSYNC_CONSOLE_SECURE_COOKIES",
        "console_secure_cookies",
        "session cookie only over HTTPS (Secure); `run` turns it off for http://127.0.0.1",
    ),
)

DEFAULTS = Settings()


def _convert(name: str, field: str, raw: str) -> object:
    current = getattr(DEFAULTS, field)
    annotation = Settings.__annotations__[field]
    try:
        if field in (
            "tradevest_webhook_secrets",
            "allowed_cidrs",
            "trusted_proxies",
            "tradevest_extra_event_types",
            "partners",
            "console_trusted_proxies",
        ):
            return tuple(s.strip() for s in raw.split(",") if s.strip())
        if field == "retry_schedule_s":
            schedule = tuple(float(s) for s in raw.split(",") if s.strip())
            if not schedule or min(schedule) < 0:
                raise ValueError
            return schedule
        if isinstance(current, bool):
            return raw.lower() in ("1", "true", "yes", "on")
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {annotation}") from None
    return raw or None if "None" in annotation else raw


RUN_STATE = Path("var") / "run.env"


def write_private(path: Path | str, text: str) -> None:
    """Write a file only its owner may read (it holds secrets or password hashes); an
    older file with looser bits is tightened."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def run_state(directory: Path) -> dict[str, str]:
    """What a `partnersync run` in `directory` set up (Redis URL, generated webhook secret,
    sandbox URLs and keys), as NAME=value lines in var/run.env while it runs."""
    try:
        text = (directory / RUN_STATE).read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.startswith("#"):
            found[name.strip()] = value
    return found


def load(
    environ: Mapping[str, str] | None = None, *, state_fallback: bool = True, **overrides: object
) -> Settings:
    """Settings from `environ` (default: os.environ), then explicit overrides.

    Variables the environment does not set come from what a `partnersync run` in this
    directory set up (var/run.env), so a second terminal finds the same Redis, secrets and
    sandbox without flags.
    """
    environ = os.environ if environ is None else environ
    if state_fallback:
        environ = {**run_state(Path.cwd()), **environ}
    values: dict[str, object] = {}
    for name, field, _ in VARIABLES:
        if name in environ:
            values[field] = _convert(name, field, environ[name])
    if "TRADEVEST_BASE_URL" in environ and "TRADEVEST_AUTH_URL" not in environ:
        values["tradevest_auth_url"] = environ["TRADEVEST_BASE_URL"].rstrip("/") + "/oauth2/token"
    values.update(overrides)
    settings = msgspec.structs.replace(DEFAULTS, **values)
    if settings.tradevest_webhook_auth not in ("header", "standard-webhooks"):
        raise ConfigError(
            f"TRADEVEST_WEBHOOK_AUTH={settings.tradevest_webhook_auth!r}: "
            "supported modes are: header, standard-webhooks"
        )
    needs = {
        "static": (),
        "code": ("saxo_app_key", "saxo_app_secret"),
        "certificate": (
            "saxo_app_key", "saxo_app_secret", "saxo_certificate_file",
            "saxo_private_key_file", "saxo_user_id", "saxo_app_url",
        ),
    }  # fmt: skip
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(
            f"LOG_LEVEL={settings.log_level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    if settings.saxo_auth not in needs:
        raise ConfigError(
            f"SAXO_AUTH={settings.saxo_auth!r}: supported are static, code, certificate"
        )
    missing = [f.upper() for f in needs[settings.saxo_auth] if not getattr(settings, f)]
    if missing:
        raise ConfigError(f"SAXO_AUTH={settings.saxo_auth} needs {', '.join(missing)}")
    if settings.lease_ms < 2000 * settings.http_timeout_s:
        # A lease must outlive a request and its follow-up, or a second worker takes the
        # entity over while the first is still talking to the partner.
        raise ConfigError(
            f"PARTNERSYNC_LEASE_MS={settings.lease_ms} must be at least twice "
            f"PARTNERSYNC_HTTP_TIMEOUT_S ({settings.http_timeout_s} s)"
        )
    if settings.durability not in ("fsync", "none"):
        raise ConfigError(f"PARTNERSYNC_DURABILITY={settings.durability!r}: use fsync or none")
    if settings.min_replicas < 0 or not 0 < settings.replica_timeout_ms < 2000:
        # the receiver's Redis calls time out after 2 s: WAIT must answer before that
        raise ConfigError(
            "PARTNERSYNC_MIN_REPLICAS must be 0 or more and PARTNERSYNC_REPLICA_TIMEOUT_MS "
            "between 1 and 1999"
        )
    if settings.redis_url:
        from partnersync import redisurl  # it imports this module

        scheme = settings.redis_url.partition("://")[0]
        if scheme not in ("redis", "rediss", "unix", "redis+sentinel"):
            raise ConfigError(
                f"REDIS_URL: scheme {scheme!r} is not one of redis, rediss, unix, redis+sentinel"
            )
        redisurl.sentinels(settings.redis_url)  # raises ConfigError naming what is wrong
    _check_values(settings)
    if settings.drainers < 1 or settings.batch < 1:
        raise ConfigError("PARTNERSYNC_DRAINERS and PARTNERSYNC_BATCH must be at least 1")
    return settings


# (field, smallest allowed value): counts, sizes and durations that must be positive
_MINIMUMS: tuple[tuple[str, float], ...] = (
    ("port", 1), ("web_concurrency", 1), ("header_timeout_s", 0.1), ("max_connections", 1),
    ("max_body", 1), ("max_entities", 1), ("inbox_ttl", 1), ("dedupe_ttl", 1),
    ("max_attempts", 1), ("max_crashes", 1), ("changes_maxlen", 1), ("history_max", 1), ("retention_days", 1e-6), ("http_timeout_s", 0.1),
    ("clock_interval_s", 0.01), ("sweep_interval_s", 0.1), ("dlq_retention", 1),
    ("options_ttl_s", 1), ("unsettled_interval_s", 1), ("ens_interval_s", 0.1),
    ("coalesce_ms", 0), ("console_port", 1), ("drain_budget_s", 0.1), ("webhook_tolerance_s", 1),
)  # fmt: skip
_URLS = (
    "tradevest_base_url",
    "tradevest_auth_url",
    "saxo_base_url",
    "saxo_token_url",
    "saxo_redirect_url",
    "public_url",
)


def _variable(field: str) -> str:
    return next(name for name, f, _ in VARIABLES if f == field)


def _check_values(settings: Settings) -> None:
    """Every value in its range, every URL a URL, every address an address: a clear
    message naming the variable at start, not a failure somewhere later."""
    import ipaddress
    from urllib.parse import urlsplit

    for field, least in _MINIMUMS:
        value = getattr(settings, field)
        if value < least:
            raise ConfigError(f"{_variable(field)}={value!r}: must be at least {least}")
    if settings.port > 65535:
        raise ConfigError(f"PORT={settings.port}: not a TCP port (1-65535)")
    for field in _URLS:
        url = getattr(settings, field)
        if url is not None and (
            urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname
        ):
            raise ConfigError(f"{_variable(field)}={url!r}: not an http(s):// URL")
    budget = r"\w+=[1-9]\d*/[1-9]\d*(\.\d+)?"
    if not re.fullmatch(f"{budget}(,{budget})*", settings.saxo_rate_limits):
        raise ConfigError(
            f"SAXO_RATE_LIMITS={settings.saxo_rate_limits!r}: use Dimension=requests/seconds,… "
            "(e.g. Session=120/60,AppDay=10000000/86400)"
        )
    if settings.console_auth not in ("password", "proxy"):
        raise ConfigError(
            f"PARTNERSYNC_CONSOLE_AUTH={settings.console_auth!r}: use password or proxy"
        )
    for field in ("allowed_cidrs", "trusted_proxies", "console_trusted_proxies"):
        for cidr in getattr(settings, field):
            if field == "trusted_proxies" and cidr == "*":
                continue  # uvicorn's "trust every peer" (behind a proxy with changing addresses)
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ConfigError(
                    f"{_variable(field)}: {cidr!r} is not an IP address or CIDR"
                ) from None
    if not settings.tradevest_webhook_header.strip():
        raise ConfigError("TRADEVEST_WEBHOOK_HEADER is empty")


def redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        raise ConfigError("REDIS_URL is not set (only `partnersync run` starts its own Redis)")
    return settings.redis_url
