"""Saxo client signups: the options every option-valued field is checked against, and the
calls that follow a submit (attachments, complete, verification, onboarding PDF).

The submit itself is a command (partnersync/commands.py, kind `signup`); its status is polled as
the entity `saxo:signup:{ClientKey}`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import redis

from partners.saxo import auth as saxo_auth
from partners.saxo import keys as saxo_keys
from partners.saxo.client import raise_for
from partners.saxo.settings import SaxoSettings
from partnersync.config import Settings
from schemas.saxo.signups import (
    AttachmentsRequest,
    CompleteApplicationResponse,
    SignUpOption,
    SignUpOptionList,
)

OPTIONS_KEY = saxo_keys.SIGNUP_OPTIONS
_options = msgspec.json.Decoder(SignUpOptionList)
_completed = msgspec.json.Decoder(CompleteApplicationResponse)


class SignupError(ValueError):
    pass


def _client(settings: Settings, connection: redis.Redis) -> httpx.Client:
    tokens = saxo_auth.provider(settings, connection)
    return httpx.Client(
        base_url=SaxoSettings.of(settings).base_url.rstrip("/"),
        headers={"Authorization": f"Bearer {tokens.token_sync()}"},
        timeout=settings.http_timeout_s,
    )


# Where in SignUpRequest each option applies [inferred]: cm.yaml's options name a property
# (PropertyName) but not its place; several SignUpRequest fields share a name with different
# meanings (the account's CurrencyCode is an option, an income amount's is any currency; a
# phone's CountryCode is a dialling country). A field path, list items as `[]`.
OPTION_FIELDS: dict[str, str] = {
    "PersonalInformation.ResidentialAddress.CountryOfResidenceCode": "CountryOfResidenceCode",
    "PersonalInformation.CorrespondenceAddress.CountryOfResidenceCode": "CountryOfResidenceCode",
    "PersonalInformation.CountryOfBirth": "CountryOfBirth",
    "PersonalInformation.NationalityCode": "NationalityCode",
    "PersonalInformation.Gender": "Gender",
    "PersonalInformation.ServiceLanguageCode": "ServiceLanguageCode",
    "ProfileInformation.AnnualIncomeInformation.SecondarySourcesOfIncome[]": (
        "SecondarySourcesOfIncome"
    ),
    "AccountInformation.CurrencyCode": "CurrencyCode",
}


def options(
    connection: redis.Redis, settings: Settings, *, refresh: bool = False
) -> dict[str, list[str]]:
    """PropertyName → allowed keys, from GET /cm/v2/signups/options (every page, following
    `__next` as SignUpOptionListResult documents), cached in Redis."""
    cached = None if refresh else connection.get(OPTIONS_KEY)
    if cached is None:
        found: list[SignUpOption] = []
        path: str | None = "/cm/v2/signups/options"
        with _client(settings, connection) as http:
            while path:
                response = http.get(path)
                if response.status_code >= 400:
                    raise SignupError(f"GET {path} answered {response.status_code}")
                page = _options.decode(response.content)
                found += page.Data
                # an absolute or /openapi-rooted link: the path after /openapi
                path = page.next_.split("/openapi", 1)[-1] if page.next_ else None
        cached = msgspec.json.encode(SignUpOptionList(Data=found))
        connection.set(OPTIONS_KEY, cached, ex=SaxoSettings.of(settings).options_ttl_s)
    return {o.PropertyName: [p.Key for p in o.ValuePairs] for o in _options.decode(cached).Data}


def _walk(value: Any, path: str = "", shape: str = "") -> list[tuple[str, str, Any]]:
    """(path, its shape with list items as `[]`, value) of every leaf."""
    out: list[tuple[str, str, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _walk(v, f"{path}.{k}" if path else k, f"{shape}.{k}" if shape else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _walk(v, f"{path}[{i}]", f"{shape}[]")
    else:
        out.append((path, shape, value))
    return out


def option_errors(signup: dict[str, Any], allowed: dict[str, list[str]]) -> list[str]:
    """One message per option-valued field whose value is not an allowed option."""
    errors = []
    for path, shape, value in _walk(signup):
        name = OPTION_FIELDS.get(shape)
        if name in allowed and value is not None and str(value) not in allowed[name]:
            errors.append(
                f"{path}: {value!r} is not an option; allowed: {', '.join(allowed[name])}"
            )
    return errors


def attach(
    connection: redis.Redis, settings: Settings, signup_id: str, documents: AttachmentsRequest
) -> None:
    with _client(settings, connection) as http:
        response = http.post(
            f"/cm/v2/signups/attachments/{quote(signup_id, safe='')}",
            content=msgspec.json.encode(documents),
            headers={"Content-Type": "application/json"},
        )
    raise_for(response)


class ApplicationFailed(SignupError):
    """Saxo answered the complete-application with ApplicationStatus Failed."""


def complete(
    connection: redis.Redis, settings: Settings, signup_id: str, *, await_accounts: bool = False
) -> CompleteApplicationResponse:
    """Complete the application now; with `await_accounts`, Saxo waits for the account
    creation and returns the accounts (AwaitAccountCreation, cm.yaml). An answer without a
    body (the documented 204) says nothing of the outcome: ApplicationStatus stays None."""
    params = {"AwaitAccountCreation": "true"} if await_accounts else None
    with _client(settings, connection) as http:
        response = http.put(
            f"/cm/v1/signups/completeapplication/{quote(signup_id, safe='')}", params=params
        )
    raise_for(response)
    return completion(response.content, signup_id)


def completion(content: bytes, signup_id: str = "") -> CompleteApplicationResponse:
    """cm.yaml's CompleteApplicationResponse: Failed (with its ErrorMessage) raises; no body
    says nothing of the outcome (ApplicationStatus None)."""
    result = _completed.decode(content) if content else CompleteApplicationResponse()
    if result.ApplicationStatus == "Failed":
        raise ApplicationFailed(
            f"Saxo could not complete signup {signup_id}: {result.ErrorMessage or 'no reason given'}"
            " (cm.yaml: reach out to Saxo Bank for further details)"
        )
    return result


def verify(connection: redis.Redis, settings: Settings, client_key: str, redirect_url: str) -> str:
    with _client(settings, connection) as http:
        response = http.post(
            f"/cm/v1/signups/verification/initiate/{quote(client_key, safe='')}",
            json={"RedirectUrl": redirect_url},
        )
    raise_for(response)
    return identification_url(response.content)


class _Verification(msgspec.Struct):  # cm.yaml InitiateVerificationResponse
    IdentificationUrl: str


def identification_url(content: bytes) -> str:
    return msgspec.json.decode(content, type=_Verification).IdentificationUrl


def onboarding_pdf(
    connection: redis.Redis, settings: Settings, client_key: str, document_type: str
) -> bytes:
    if document_type not in ("Switzerland501", "Switzerland901"):
        raise SignupError("DocumentType must be Switzerland501 or Switzerland901")
    with _client(settings, connection) as http:
        response = http.get(
            f"/cm/v1/signups/onboardingpdf/{quote(client_key, safe='')}",
            params={"DocumentType": document_type},
        )
    raise_for(response)
    return response.content
