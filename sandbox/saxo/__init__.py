"""Saxo OpenAPI under /saxo/openapi (bearer token `sandbox`): client signups and partner
cash transfers.

Signups (scripted by the client's LastName, for tests): "…Pending…" stops in Pending with
reasons until a ProofOfIdentity attachment arrives; "…Manual…" shows OnboardingSubState
ManualHandling; "…Reject…" ends Rejected; otherwise Waiting → InProgress → Approved →
ClientOnboarded. FirstName "Known" with LastName "Client" / "Lead" is a ClientMatch /
PreClientMatch. Processing starts at completeapplication, or after a while without it;
"…CompleteFails…" makes completeapplication answer ApplicationStatus Failed.

Cash transfers are accepted Pending and settle asynchronously to Successful, or to Failed
when the Comment contains "FAIL" (a test trigger). The platform does not dedupe on
ExternalReference (the docs: it "may, but is not required to, be unique"); the ledger
counts create requests per ExternalReference so tests can prove partnersync does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.faults import Faults
from sandbox.saxo.auth import STATIC_TOKEN, SaxoAuth
from sandbox.saxo.contract import Contract

MOUNT = "/saxo/openapi"

TOKEN = STATIC_TOKEN  # the developer token (SAXO_AUTH=static)
OWNER_CLIENT_KEY = "WLC-owner-key=="  # the white-label owner (SAXO_CLIENT_KEY)
FUNDING_ACCOUNT = "FUND-EUR-key=="  # the WLC's funding account (SAXO_FUNDING_ACCOUNT_KEY)
CLIENT_ACCOUNT = "CLIENT1-EUR-key=="
CLIENT_KEY = "CLIENT1-key=="
USD_ACCOUNT = "CLIENT1-USD-key=="
# An account is named by its AccountKey in the trading services and by its numeric AccountId
# in the history ones (saxo-transactions: "AccountId": "12121515615"); nothing documented
# maps one onto the other
ACCOUNT_IDS = {
    FUNDING_ACCOUNT: "12121515600",
    CLIENT_ACCOUNT: "12121515615",
    USD_ACCOUNT: "12121515616",
}
NO_DATE = "0001-01-01T00:00:00Z"  # .NET's empty date: atr.yaml's TransferResult example


def saxo_error(
    status: int, code: str, message: str, model_state: dict[str, list[str]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"ErrorCode": code, "Message": message}
    if model_state:
        body["ModelState"] = model_state
    return JSONResponse(body, status_code=status, headers={"X-Correlation": uuid.uuid4().hex})


# The seed's example (saxo-unsettled-amounts.txt): DKK requester; NYSE -0.28 DKK of CFD
# finance on 2022-05-31; not exchange related -0.39 EUR of interest (= -2.90174235 DKK).
UNSETTLED_EXCHANGES: dict[str, Any] = {
    "Total": -3.18174235,
    "Currency": "DKK",
    "CashFlows": [
        {"Amount": -0.28, "ValueDate": "2022-05-31"},
        {"Amount": -2.90174235, "ValueDate": "2022-06-01"},
    ],
    "Exchanges": [
        {
            "Currency": "DKK",
            "ExchangeId": "NoExchange",
            "Total": -2.90174235,
            "CashFlows": [{"Amount": -2.90174235, "ValueDate": "2022-06-01"}],
            "Currencies": [
                {
                    "CashFlows": [{"Amount": -0.39, "ValueDate": "2022-06-01"}],
                    "Currency": "EUR",
                    "Total": -0.39,
                }
            ],
        },
        {
            "Currency": "DKK",
            "ExchangeId": "NYSE",
            "Total": -0.28,
            "CashFlows": [{"Amount": -0.28, "ValueDate": "2022-05-31"}],
            "Currencies": [
                {
                    "CashFlows": [{"Amount": -0.28, "ValueDate": "2022-05-31"}],
                    "Currency": "DKK",
                    "Total": -0.28,
                }
            ],
        },
    ],
}
UNSETTLED_NYSE: dict[str, Any] = {
    "Currency": "DKK",
    "ExchangeId": "NYSE",
    "Total": -0.28,
    "CashFlows": [{"Amount": -0.28, "ValueDate": "2022-05-31"}],
    "Currencies": [
        {
            "Currency": "DKK",
            "Total": -0.28,
            "AmountTypes": [
                {
                    "AmountType": "Unrealized CFD Finance",
                    "AmountTypeId": "65",
                    "AmountTypeSource": "Financing",
                    "CashFlows": [{"Amount": -0.28, "ValueDate": "2022-05-31"}],
                    "Total": -0.28,
                }
            ],
            "CashFlows": [{"Amount": -0.28, "ValueDate": "2022-05-31"}],
        }
    ],
}
UNSETTLED_NO_EXCHANGE: dict[str, Any] = {
    "Currency": "DKK",
    "ExchangeId": "NoExchange",
    "Total": -2.90174235,
    "CashFlows": [{"Amount": -2.90174235, "ValueDate": "2022-06-01"}],
    "Currencies": [
        {
            "Currency": "EUR",
            "Total": -0.39,
            "AmountTypes": [
                {
                    "AmountType": "Unr. Interest",
                    "AmountTypeId": "42",
                    "AmountTypeSource": "Financing",
                    "CashFlows": [{"Amount": -0.39, "ValueDate": "2022-06-01"}],
                    "Total": -0.39,
                }
            ],
            "CashFlows": [{"Amount": -0.39, "ValueDate": "2022-06-01"}],
        }
    ],
}
UNSETTLED_INSTRUMENTS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("65", "DKK"): [
        {
            "Uic": 4913,
            "AssetType": "CfdOnIndex",
            "InstrumentSymbol": "US500.I",
            "InstrumentDescription": "US 500",
            "Total": -0.28,
            "CashFlows": [{"Amount": -0.28, "ValueDate": "2022-05-31"}],
        }
    ],
}


def _cash_row(
    booking_id: str, account: str, currency: str, amount: float, value_date: str
) -> dict[str, Any]:
    """A Cash Transfer transaction: identified by BookingId, exactly one booking, no trades;
    its account by AccountId only, as the seed shows."""
    return {
        "TransactionType": "CashTransfer", "BookingId": booking_id, "AccountId": ACCOUNT_IDS.get(account, account),
        "Currency": currency, "BookedAmount": amount, "Date": value_date,
        "ValueDate": value_date, "Event": "Deposit" if amount > 0 else "Withdrawal",
        "Bookings": [{"BookingId": booking_id, "AmountType": "Cash Transfer", "AmountTypeId": "7",
                      "BookedAmount": amount, "Date": value_date, "ValueDate": value_date}],
    }  # fmt: skip


# One of each other type, shaped as the seed describes (saxo-transactions.txt).
STATIC_TRANSACTIONS: list[dict[str, Any]] = [
    {"TransactionType": "Trade", "TradeId": "564455434", "AccountId": "12121515615", "Currency": "EUR",
     "Date": "2022-02-14", "ValueDate": "2022-02-16", "Event": "Buy", "BookedAmount": -20.78,
     "Trades": [{"TradeId": "564455434", "TradedQuantity": 10.0, "Price": 2.078, "TradeType": "Bought", "OpenClose": "To Open"}],
     "Bookings": [{"BookingId": "3432656727", "AmountType": "Share Amount", "AmountTypeId": "1", "BookedAmount": -20.78},
                  {"BookingId": "3432656728", "AmountType": "Commission", "AmountTypeId": "2", "BookedAmount": -0.34}]},
    {"TransactionType": "CorporateAction", "CorporateActionId": "CA-889", "AccountId": "12121515615", "Currency": "EUR",
     "Date": "2022-03-01", "ValueDate": "2022-03-01", "Event": "Cash Dividend", "BookedAmount": 4.10,
     "Trades": [],
     "Bookings": [{"BookingId": "5001", "AmountType": "Cash Dividend", "AmountTypeId": "21", "BookedAmount": 5.0},
                  {"BookingId": "5002", "AmountType": "Withholding Tax", "AmountTypeId": "22", "BookedAmount": -0.90},
                  {"BookingId": "5003", "AmountType": "Withholding Tax", "AmountTypeId": "22", "BookedAmount": 0.0,
                   "CorrectionReason": "Tax rate corrected"}]},
    {"TransactionType": "CashAmount", "BookingId": "7001", "AccountId": "12121515615", "Currency": "EUR",
     "Date": "2022-03-31", "ValueDate": "2022-03-31", "Event": "Account Interest", "BookedAmount": -0.39,
     "Bookings": [{"BookingId": "7001", "AmountType": "Account Interest", "AmountTypeId": "42", "BookedAmount": -0.39}]},
    {"TransactionType": "Trade", "IsIntradayData": True, "AccountId": "12121515615", "Currency": "EUR",
     "Date": "2022-04-01", "Event": "Buy", "Trades": [{"TradedQuantity": 5.0, "TradeType": "Bought"}]},
]  # fmt: skip

_COUNTRIES = [
    ("DK", "Denmark"),
    ("CH", "Switzerland"),
    ("DE", "Germany"),
    ("GB", "United Kingdom"),
    ("US", "United States"),
]
SIGNUP_OPTIONS: list[dict[str, Any]] = [
    {"PropertyName": name, "ValuePairs": [{"Key": k, "Value": v} for k, v in pairs]}
    for name, pairs in (
        ("CountryOfResidenceCode", _COUNTRIES),
        ("CountryOfBirth", _COUNTRIES),
        ("NationalityCode", _COUNTRIES),
        ("Gender", [("1", "Male"), ("2", "Female")]),  # [inferred] keys as the spec's example
        ("ServiceLanguageCode", [("EN", "English"), ("DA", "Danish"), ("DE", "German")]),
        (
            "SecondarySourcesOfIncome",
            [("Salary", "Salary"), ("Inheritance", "Inheritance"), ("Investments", "Investments")],
        ),
        (
            "CurrencyCode",
            [
                ("EUR", "Euro"),
                ("USD", "US Dollar"),
                ("DKK", "Danish Krone"),
                ("CHF", "Swiss Franc"),
            ],
        ),
    )
]
_OPTION_KEYS = {o["PropertyName"]: {p["Key"] for p in o["ValuePairs"]} for o in SIGNUP_OPTIONS}
# Where in SignUpRequest each option applies [inferred]: cm.yaml names the options but not
# their fields; these are the SignUpRequest fields of that name whose meaning is the
# option's (an income amount's CurrencyCode is any currency, the account's is an option).
_OPTION_FIELDS = {
    "PersonalInformation.ResidentialAddress.CountryOfResidenceCode": "CountryOfResidenceCode",
    "PersonalInformation.CorrespondenceAddress.CountryOfResidenceCode": "CountryOfResidenceCode",
    "PersonalInformation.CountryOfBirth": "CountryOfBirth",
    "PersonalInformation.NationalityCode": "NationalityCode",
    "PersonalInformation.Gender": "Gender",
    "PersonalInformation.ServiceLanguageCode": "ServiceLanguageCode",
    "ProfileInformation.AnnualIncomeInformation.SecondarySourcesOfIncome": "SecondarySourcesOfIncome",
    "AccountInformation.CurrencyCode": "CurrencyCode",
}
OPTIONS_PAGE = 4  # the options list comes in pages (SignUpOptionListResult has __next)
MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (dotted path, value) of a JSON document; list items share their list's name."""
    out: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _walk(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for v in value:
            out += _walk(v, path)
    else:
        out.append((path, value))
    return out


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _cash_transfer_model(body: dict[str, Any]) -> tuple[dict[str, list[str]], Decimal]:
    """Saxo's ModelState for a partner cash transfer's fields (empty: valid), and its amount."""
    model: dict[str, list[str]] = {}
    allowed = {
        "FromAccountKey",
        "ToAccountKey",
        "Amount",
        "Currency",
        "FundingCheck",
        "ExternalReference",
        "Comment",
        "ValueDate",
    }
    for extra in set(body) - allowed:
        model[extra] = ["Unknown property (additionalProperties: false)"]
    for name in ("FromAccountKey", "ToAccountKey", "Currency"):
        if not isinstance(body.get(name), str) or not body.get(name):
            model[name] = ["Required"]
    try:
        amount = Decimal(str(body.get("Amount")))
        if not amount.is_finite() or amount <= 0:
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        model["Amount"] = ["Must be a positive number"]
    reference = body.get("ExternalReference")
    if reference is not None and (not isinstance(reference, str) or len(reference) > 50):
        model["ExternalReference"] = ["At most 50 characters"]
    if body.get("FundingCheck", "Enforce") not in ("Enforce", "Ignore"):
        model["FundingCheck"] = ["Enforce or Ignore"]
    value_date = body.get("ValueDate")
    if value_date is not None:
        try:
            when = datetime.fromisoformat(str(value_date))
            if abs(when - datetime.now(UTC)) > timedelta(days=90):
                model["ValueDate"] = ["Must be within [-90;90] days of the current date"]
        except ValueError:
            model["ValueDate"] = ["Not a date-time"]
    return model, amount if "Amount" not in model else Decimal(0)


class Saxo:
    def __init__(
        self,
        faults: Faults,
        *,
        step_s: float = 0.2,
        contract: Contract | None = None,
        session_limit: tuple[int, float] = (120, 60.0),
    ):
        self.faults = faults
        # Saxo's Session limit (developer.saxo rate-limiting): requests per seconds, per
        # session (token) and service group; beyond it, 429 with the dimension's headers
        self.session_limit = session_limit
        self.sessions: dict[tuple[str, str], float] = {}  # (token, group) -> next slot (GCRA)
        self.session_refused = 0
        self.contract = contract or Contract()
        self.auth = SaxoAuth()
        self.step_s = step_s
        self.accounts: dict[str, dict[str, Any]] = {
            FUNDING_ACCOUNT: {"Currency": "EUR", "Balance": Decimal("10000000"), "Funding": True, "ClientKey": OWNER_CLIENT_KEY},
            CLIENT_ACCOUNT: {"Currency": "EUR", "Balance": Decimal("1000"), "Funding": False, "ClientKey": CLIENT_KEY},
            USD_ACCOUNT: {"Currency": "USD", "Balance": Decimal("0"), "Funding": False, "ClientKey": CLIENT_KEY},
        }  # fmt: skip
        self.transfers: dict[str, dict[str, Any]] = {}
        self.create_requests: dict[str, int] = {}  # ExternalReference -> POSTs received
        self.next_id = 1268
        self.tasks: set[asyncio.Task[None]] = set()
        self.rate_limited = 0
        self.signups: dict[str, dict[str, Any]] = {}  # ClientKey -> signup
        self.applicants: dict[tuple[str, str, str], str] = {}  # name, birth date -> ClientKey
        self.activities: list[dict[str, Any]] = []  # ENS, ascending SequenceId
        self.ens_horizon = 0  # SequenceIds up to this one have left the ENS cache
        self.booked_from = 0  # transfers before this index are not listed (test reset)
        self.unbooked: set[str] = set()  # planted: Successful transfers without their booking
        self.extra_bookings: list[dict[str, Any]] = []  # planted: bookings without a transfer
        self.signup_requests = 0

    def _over_budget(self, request: Request) -> Response | None:
        """A 429 once the session's service group has spent its budget (GCRA), else None."""
        requests, per_s = self.session_limit
        interval = per_s / requests
        group = request.url.path.removeprefix(MOUNT).lstrip("/").split("/", 1)[0]
        key = (request.headers.get("authorization", ""), group)
        now = time.monotonic()
        tat = max(self.sessions.get(key, now), now)
        allowed_at = tat + interval - per_s
        if allowed_at > now:
            self.session_refused += 1
            response = saxo_error(429, "TooManyRequests", "Request rate limit exceeded")
            response.headers.update(
                {
                    "X-RateLimit-AppDay-Limit": "10000000",
                    "X-RateLimit-AppDay-Remaining": "9999000",
                    "X-RateLimit-AppDay-Reset": str(86_400 - int(time.time()) % 86_400),
                    "X-RateLimit-Session-Limit": str(requests),
                    "X-RateLimit-Session-Remaining": "0",
                    "X-RateLimit-Session-Reset": str(max(1, math.ceil(allowed_at - now))),
                }  # fmt: skip
            )
            return response
        self.sessions[key] = tat + interval
        return None

    # -- ENS activities ----------------------------------------------------------------------

    def activity(
        self, activity_type: str, client_key: str, account_key: str | None, **fields: Any
    ) -> None:
        sequence = len(self.activities) + 1
        self.activities.append({
            "SequenceId": str(sequence), "ActivityType": activity_type, "ActivityTime": now_iso(),
            "ClientKey": client_key, "AccountKey": account_key, "AccountId": account_key and ACCOUNT_IDS.get(account_key, account_key),
            **fields,
        })  # fmt: skip

    async def activities_list(self, request: Request) -> Response:
        q = request.query_params
        wanted = {a for v in q.getlist("Activities") for a in v.split(",") if a}
        if not wanted:
            return saxo_error(
                400, "InvalidModelState", "Activities is required", {"Activities": ["Required"]}
            )
        items = [
            a
            for a in self.activities
            if a["ActivityType"] in wanted and int(a["SequenceId"]) > self.ens_horizon
        ]
        client_key = q.get("ClientKey")
        if client_key and not (
            client_key == OWNER_CLIENT_KEY and q.get("IncludeSubAccounts", "").lower() == "true"
        ):
            items = [a for a in items if a["ClientKey"] == client_key]
        if "SequenceId" in q:
            try:
                start = int(q["SequenceId"])
            except ValueError:
                return saxo_error(400, "InvalidArguments", "SequenceId is not valid")
            if start <= self.ens_horizon:  # the GET's ErrorCode list has no dedicated code,
                # so InvalidArguments [inferred], worded as ens.yaml's SequenceIdUnavailable
                return saxo_error(400, "InvalidArguments", "SequenceId Unavailable")
            items = [a for a in items if int(a["SequenceId"]) >= start]  # from the SequenceId on
        elif "FromDateTime" in q:
            items = [a for a in items if a["ActivityTime"] >= q["FromDateTime"]]
        try:
            top = int(q.get("$top", "1000"))
            skip = int(q.get("$skiptoken") or 0)
        except ValueError:  # a $skiptoken is opaque: only ours are valid
            return saxo_error(400, "InvalidArguments", "$skiptoken is not valid")
        body: dict[str, Any] = {"Data": items[skip : skip + top], "__count": len(items)}
        if skip + top < len(items):
            params = [(k, v) for k, v in q.multi_items() if k != "$skiptoken"]
            body["__next"] = "/openapi/ens/v1/activities?" + urlencode(
                [*params, ("$skiptoken", str(skip + top))]
            )
        return JSONResponse(body)

    # -- transactions ----------------------------------------------------------------------

    def _cash_transfer_rows(self) -> list[dict[str, Any]]:
        rows = []
        for index, t in enumerate(self.transfers.values()):
            if (
                index < self.booked_from
                or t["TransferStatus"] != "Successful"
                or t["TransactionId"] in self.unbooked
            ):
                continue
            client_side = (
                t["ToAccount"] if not self.accounts[t["ToAccount"]]["Funding"] else t["FromAccount"]
            )
            sign = 1 if client_side == t["ToAccount"] else -1
            rows.append(
                _cash_row(
                    f"B{t['TransactionId']}",
                    client_side,
                    t["Currency"],
                    sign * t["Amount"],
                    (t["ValueDate"] if t["ValueDate"] != NO_DATE else t["TransferRequestedOn"])[
                        :10
                    ],
                )
            )
        return rows + self.extra_bookings

    async def transactions_list(self, request: Request) -> Response:
        q = request.query_params
        wanted = q.get("TransactionType", "All")
        rows = self._cash_transfer_rows() + STATIC_TRANSACTIONS
        keys = [
            k for v in q.getlist("AccountKeys") + q.getlist("AccountKeys[]") for k in v.split(",")
        ]
        if keys:  # the documented AccountKeys filter
            ids = {ACCOUNT_IDS.get(k) for k in keys}
            rows = [r for r in rows if r["AccountId"] in ids]
        if wanted != "All":
            rows = [r for r in rows if r["TransactionType"] == wanted]
        if "FromDate" in q:
            rows = [r for r in rows if r["Date"] >= q["FromDate"]]
        if "ToDate" in q:
            rows = [r for r in rows if r["Date"] <= q["ToDate"]]
        try:
            top, skip = int(q.get("$top", "100")), int(q.get("$skip", "0"))
        except ValueError:
            return saxo_error(400, "InvalidModelState", "$top and $skip must be integers")
        body: dict[str, Any] = {"Data": rows[skip : skip + top], "__count": len(rows)}
        if skip + top < len(rows):
            params = {k: v for k, v in q.items() if k != "$skip"}
            body["__next"] = (
                "/openapi/hist/v1/transactions?"
                + "&".join(f"{k}={v}" for k, v in params.items())
                + f"&$skip={skip + top}"
            )
        return JSONResponse(body)

    # -- unsettled amounts: the seed's example scenario for the owner's ClientKey --------------

    def _owner(self, request: Request) -> bool | Response:
        key = request.query_params.get("ClientKey")
        if not key:
            return saxo_error(
                400, "InvalidModelState", "ClientKey is required", {"ClientKey": ["Required"]}
            )
        return key == OWNER_CLIENT_KEY

    async def unsettled(self, request: Request) -> Response:
        owner = self._owner(request)
        if isinstance(owner, Response):
            return owner
        if not owner:
            return JSONResponse({"Currency": "DKK", "Total": 0, "CashFlows": [], "Currencies": []})
        currencies = [UNSETTLED_NYSE["Currencies"][0], UNSETTLED_NO_EXCHANGE["Currencies"][0]]
        if request.query_params.get("Scope", "Currencies") != "AmountTypes":
            currencies = [{k: v for k, v in c.items() if k != "AmountTypes"} for c in currencies]
        root = {k: UNSETTLED_EXCHANGES[k] for k in ("Currency", "Total", "CashFlows")}
        return JSONResponse({**root, "Currencies": currencies})

    async def unsettled_exchanges(self, request: Request) -> Response:
        owner = self._owner(request)
        if isinstance(owner, Response):
            return owner
        return JSONResponse(
            UNSETTLED_EXCHANGES
            if owner
            else {"Currency": "DKK", "Total": 0, "CashFlows": [], "Exchanges": []}
        )

    async def unsettled_exchange(self, request: Request) -> Response:
        owner = self._owner(request)
        if isinstance(owner, Response):
            return owner
        found = {"NYSE": UNSETTLED_NYSE, "NoExchange": UNSETTLED_NO_EXCHANGE}.get(
            request.path_params["ExchangeId"]
        )
        if found is None or not owner:
            return saxo_error(404, "NotFound", "No unsettled amounts for this exchange")
        return JSONResponse(found)

    async def unsettled_instruments(self, request: Request) -> Response:
        owner = self._owner(request)
        if isinstance(owner, Response):
            return owner
        q = request.query_params
        if not q.get("AmountTypeId") or not q.get("Currency"):
            return saxo_error(400, "InvalidModelState", "AmountTypeId and Currency are required")
        data = UNSETTLED_INSTRUMENTS.get((q["AmountTypeId"], q["Currency"]), []) if owner else []
        return JSONResponse({"Data": data})

    # -- signups ---------------------------------------------------------------------------

    async def signup_options(self, request: Request) -> Response:
        given = request.query_params.get("$skip", "0")
        if not given.isdigit():
            return saxo_error(400, "InvalidModelState", "$skip must be a number")
        skip = int(given)
        body: dict[str, Any] = {
            "Data": SIGNUP_OPTIONS[skip : skip + OPTIONS_PAGE],
            "__count": len(SIGNUP_OPTIONS),
            "MaxRows": 1000,
        }
        if skip + OPTIONS_PAGE < len(SIGNUP_OPTIONS):
            body["__next"] = f"/openapi/cm/v2/signups/options?$skip={skip + OPTIONS_PAGE}"
        return JSONResponse(body)

    async def create_signup(self, request: Request, body: Any) -> Response:
        if not isinstance(body, dict):
            return saxo_error(400, "InvalidModelState", "Body must be an object")
        self.signup_requests += 1
        model: dict[str, list[str]] = {}
        personal = body.get("PersonalInformation")
        if not isinstance(personal, dict):
            model["PersonalInformation"] = ["Required"]
            personal = {}
        if not isinstance(body.get("RegulatoryInformation"), dict):
            model["RegulatoryInformation"] = ["Required"]
        for field in ("FirstName", "LastName", "DateOfBirth"):
            if not isinstance(personal.get(field), str) or not personal.get(field):
                model[f"PersonalInformation.{field}"] = ["Required"]
        for path, value in _walk(body):
            allowed = _OPTION_KEYS.get(_OPTION_FIELDS.get(path, ""))
            if allowed is not None and isinstance(value, str) and value not in allowed:
                model[path] = [f"'{value}' is not a valid option"]
        if model:
            return saxo_error(400, "InvalidModelState", "Invalid model", model)
        if personal.get("FirstName") == "Known":
            if personal.get("LastName") == "Client":
                return saxo_error(400, "ClientMatch", "User is already a client!")
            if personal.get("LastName") == "Lead":
                return saxo_error(400, "PreClientMatch", "User is already a pre-client!")
        # "we check if the lead or client already exists in our system, in which case we will
        # return a ClientMatch or a PreClientMatch error" (saxo-client-signups): a second
        # signup of one applicant, a resend included, creates nothing
        applicant = (personal["FirstName"], personal["LastName"], personal["DateOfBirth"])
        known = self.signups.get(self.applicants.get(applicant, ""))
        if known is not None:
            if known["OnboardingState"] == "ClientOnboarded":
                return saxo_error(400, "ClientMatch", "User is already a client!")
            return saxo_error(400, "PreClientMatch", "User is already a pre-client!")
        client_id = str(2147279000 + len(self.signups))
        # Saxo's keys are base64 with "|" and "-" for "/" and "+" (e.g. 7m4I|vtYLUnEGg77o9uQhw==)
        client_key = base64.b64encode(uuid.uuid4().bytes).decode()[:22] + "=="
        client_key = client_key.replace("/", "|").replace("+", "-")
        signup = {
            "ClientId": client_id, "ClientKey": client_key, "SignUpId": str(uuid.uuid4()),
            "OnboardingState": "Waiting", "LastName": personal["LastName"], "attachments": [],
            "completed": asyncio.Event(), "attached": asyncio.Event(),
            "received": body,  # as Saxo got it: tests check nothing was lost on the way
        }  # fmt: skip
        self.signups[client_key] = signup
        self.applicants[applicant] = client_key
        self.spawn(self._progress_signup(signup))
        return JSONResponse(
            {k: signup[k] for k in ("ClientId", "ClientKey", "SignUpId")}, status_code=201
        )

    def _by_signup_id(self, signup_id: str) -> dict[str, Any] | None:
        return next((s for s in self.signups.values() if s["SignUpId"] == signup_id), None)

    async def attach(self, request: Request, body: Any) -> Response:
        signup = self._by_signup_id(request.path_params["SignUpId"])
        if signup is None:  # v2 attachments list only NotFound
            return saxo_error(404, "NotFound", "Signup not found")
        documents = body.get("Documents") if isinstance(body, dict) else None
        if not isinstance(documents, list) or not documents:
            return saxo_error(
                400, "InvalidModelState", "Documents required", {"Documents": ["Required"]}
            )
        for i, doc in enumerate(documents):
            if not isinstance(doc, dict) or not doc.get("Data") or not doc.get("FileName"):
                return saxo_error(
                    400,
                    "InvalidModelState",
                    "Invalid document",
                    {f"Documents[{i}]": ["Data and FileName required"]},
                )
            try:
                base64.b64decode(doc["Data"], validate=True)
            except (ValueError, TypeError):
                return saxo_error(
                    400,
                    "InvalidModelState",
                    "Invalid document",
                    {f"Documents[{i}].Data": ["Not base64"]},
                )
            signup["attachments"].append(doc.get("DocumentType"))
        if "ProofOfIdentity" in signup["attachments"]:
            signup["attached"].set()
        return Response(status_code=201)

    async def complete(self, request: Request, body: Any) -> Response:
        """204 as documented; a body (200, contract.RESPONSE_ERRATA) when there is something
        to say: Failed for a LastName with "CompleteFails", the accounts when awaited."""
        signup = self._by_signup_id(request.path_params["SignUpId"])
        if signup is None:
            return saxo_error(404, "SignupNotFound", "Signup not found")
        if "CompleteFails" in signup["LastName"]:
            failed = {
                "ApplicationStatus": "Failed",
                "ErrorMessage": "Client data could not be verified",
            }
            return JSONResponse(failed)
        signup["completed"].set()
        if request.query_params.get("AwaitAccountCreation") == "true":
            account = {
                "AccountType": "Normal",
                "CurrencyIsoCode": "EUR",
                "Iban": "DK43754335838392",
            }
            return JSONResponse({"AccountDetails": [account], "ApplicationStatus": "Ok"})
        return Response(status_code=204)

    async def verify(self, request: Request, body: Any) -> Response:
        signup = self.signups.get(request.path_params["ClientKey"])
        if signup is None:
            return saxo_error(404, "NotFound", "Client not found")
        if not isinstance(body, dict) or not isinstance(body.get("RedirectUrl"), str):
            return saxo_error(
                400, "InvalidModelState", "RedirectUrl required", {"RedirectUrl": ["Required"]}
            )
        return JSONResponse(
            {"IdentificationUrl": f"https://verify.example/{signup['SignUpId']}"}, status_code=201
        )

    async def signup_status(self, request: Request) -> Response:
        signup = self.signups.get(request.path_params["ClientKey"])
        if signup is None:
            return saxo_error(404, "SignupNotFound", "Signup not found")
        body = {k: signup[k] for k in ("ClientId", "ClientKey", "OnboardingState")}
        for k in ("OnboardingSubState", "PendingReasons", "Message"):
            if signup.get(k):
                body[k] = signup[k]
        return JSONResponse(body)

    async def onboarding_pdf(self, request: Request) -> Response:
        signup = self.signups.get(request.path_params["ClientKey"])
        if signup is None:
            return saxo_error(404, "NotFound", "Client not found")
        if request.query_params.get("DocumentType") not in ("Switzerland501", "Switzerland901"):
            return saxo_error(
                400, "ValidationFailed", "DocumentType must be Switzerland501 or Switzerland901"
            )
        return Response(MINIMAL_PDF, media_type="application/pdf")

    async def _progress_signup(self, signup: dict[str, Any]) -> None:
        name = signup["LastName"]
        # Saxo waits ~15 minutes for documents unless the application is completed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signup["completed"].wait(), timeout=self.step_s * 10)
        signup["OnboardingState"] = "InProgress"
        if "Manual" in name:
            signup["OnboardingSubState"] = "ManualHandling"
            await asyncio.sleep(self.step_s * 60)  # manual work takes a while
        await asyncio.sleep(self.step_s)
        if "Reject" in name:
            signup.pop("OnboardingSubState", None)
            signup["OnboardingState"] = "Rejected"
            return
        if "Pending" in name and "ProofOfIdentity" not in signup["attachments"]:
            signup["OnboardingState"] = "Pending"
            signup["PendingReasons"] = [
                {
                    "PendingField": "Proof of identity",
                    "Reasons": ["Expired", "Missing Date of Birth"],
                }
            ]
            await signup["attached"].wait()
            signup.pop("PendingReasons", None)
            signup["OnboardingState"] = "InProgress"
            await asyncio.sleep(self.step_s)
        signup.pop("OnboardingSubState", None)
        signup["OnboardingState"] = "Approved"
        await asyncio.sleep(self.step_s)
        signup["OnboardingState"] = "ClientOnboarded"
        signup["Message"] = "Onboarding request complete. Account and client keys have been created"

    # -- test controls (mounted under /_sandbox/saxo by sandbox/app.py) -------------------

    async def ens_control(self, request: Request) -> Response:
        """Test control: {"generate": n, "type": "Positions"} adds activities;
        {"expire_through": "17"} drops SequenceIds up to 17 from the ENS cache."""
        body = json.loads(await request.body() or b"{}")
        for _ in range(int(body.get("generate", 0))):
            self.activity(
                body.get("type", "Positions"),
                CLIENT_KEY,
                CLIENT_ACCOUNT,
                PositionEvent="Updated",
            )
        if "expire_through" in body:
            self.ens_horizon = int(body["expire_through"])
        by_type: dict[str, int] = {}
        for a in self.activities:
            by_type[a["ActivityType"]] = by_type.get(a["ActivityType"], 0) + 1
        return JSONResponse(
            {"activities": len(self.activities), "horizon": self.ens_horizon, "byType": by_type}
        )

    async def transactions_control(self, request: Request) -> Response:
        """Test control: {"reset": true} lists only transfers made from now on;
        {"missing": TransactionId} drops a transfer's booking; {"unexpected": {"account",
        "currency", "amount", "value_date"}} adds a booking no transfer made."""
        body = json.loads(await request.body() or b"{}")
        if body.get("reset"):
            self.booked_from, self.unbooked, self.extra_bookings = len(self.transfers), set(), []
        if body.get("missing"):
            self.unbooked.add(str(body["missing"]))
        if body.get("unexpected"):
            u = body["unexpected"]
            self.extra_bookings.append(
                _cash_row(
                    f"X{len(self.extra_bookings) + 1}",
                    u["account"],
                    u["currency"],
                    u["amount"],
                    u["value_date"],
                )
            )
        return JSONResponse(
            {
                "bookedFrom": self.booked_from,
                "unbooked": sorted(self.unbooked),
                "extra": len(self.extra_bookings),
            }
        )

    def routes(self) -> list[Route]:
        return [
            Route("/cm/v2/signups/options", self.api(None, self.signup_options), methods=["GET"]),
            Route("/cm/v1/signups", self.api(self.create_signup, None), methods=["POST"]),
            Route("/cm/v2/signups/attachments/{SignUpId}", self.api(self.attach, None), methods=["POST"]),
            Route("/cm/v1/signups/completeapplication/{SignUpId}", self.api(self.complete, None), methods=["PUT"]),
            Route("/cm/v1/signups/verification/initiate/{ClientKey:path}", self.api(self.verify, None), methods=["POST"]),
            Route("/cm/v1/signups/status/{ClientKey:path}", self.api(None, self.signup_status), methods=["GET"]),
            Route("/cm/v1/signups/onboardingpdf/{ClientKey:path}", self.api(None, self.onboarding_pdf), methods=["GET"]),
            Route("/ens/v1/activities", self.api(None, self.activities_list), methods=["GET"]),
            Route("/hist/v1/transactions", self.api(None, self.transactions_list), methods=["GET"]),
            Route("/hist/v1/unsettledamounts", self.api(None, self.unsettled), methods=["GET"]),
            Route("/hist/v1/unsettledamounts/exchanges", self.api(None, self.unsettled_exchanges), methods=["GET"]),
            Route("/hist/v1/unsettledamounts/exchanges/{ExchangeId}", self.api(None, self.unsettled_exchange), methods=["GET"]),
            Route("/hist/v1/unsettledamounts/instruments", self.api(None, self.unsettled_instruments), methods=["GET"]),
            Route("/atr/v1/partner/cashtransfers", self.api(self.create_cash_transfer, self.list_cash_transfers), methods=["GET", "POST"]),
            Route("/atr/v1/partner/cashtransfers/{TransactionId}", self.api(None, self.get_cash_transfer), methods=["GET"]),
            Route("/{path:path}", self.not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]  # fmt: skip

    def api(
        self,
        write: Callable[[Request, Any], Awaitable[Response]] | None,
        read: Callable[[Request], Awaitable[Response]] | None,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not self.auth.valid(request.headers.get("authorization")):
                return Response(status_code=401)  # Saxo: 401 with an empty body
            await self.faults.delay()
            over = self._over_budget(request)
            if over is not None:
                return over
            if self.faults.roll("rate_limit", request.method, request.url.path):
                self.rate_limited += 1
                response: Response = saxo_error(
                    429, "TooManyRequests", "Request rate limit exceeded"
                )
                # every dimension's headers, as Saxo sends them (developer.saxo
                # rate-limiting): the Session bucket spent, AppDay with budget left whose
                # reset (the day's end) is hours away
                response.headers.update(
                    {
                        "X-RateLimit-AppDay-Limit": "10000000",
                        "X-RateLimit-AppDay-Remaining": "9999000",
                        "X-RateLimit-AppDay-Reset": str(86_400 - int(time.time()) % 86_400),
                        "X-RateLimit-Session-Limit": "120",
                        "X-RateLimit-Session-Remaining": "0",
                        "X-RateLimit-Session-Reset": "1",
                    }  # fmt: skip
                )
                return response
            if self.faults.roll("http_5xx", request.method, request.url.path):
                return saxo_error(503, "ServiceUnavailable", "Service unavailable")
            raw = await request.body()
            # the path as sent (percent-encoded): a key's "/" must stay inside its segment
            path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
            path = path.split("?", 1)[0].removeprefix(MOUNT)
            query = request.query_params.multi_items()
            headers = dict(request.headers)
            refused = self.contract.check_request(request.method, path, query, headers, raw)
            if refused is not None:
                code, model_state = refused
                if code == "NotFound":
                    return saxo_error(404, code, "Not found", model_state)
                return saxo_error(
                    400, code, "One or more properties of the request are invalid!", model_state
                )
            if request.method == "GET":
                assert read is not None
                response = await read(request)
            else:
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:  # the contract check has refused non-JSON already
                    return saxo_error(400, "InvalidModelState", "Body is not JSON")
                assert write is not None
                response = await write(request, body)
            self.contract.check_response(
                request.method, path, query, headers, raw,
                response.status_code, dict(response.headers), bytes(response.body),
            )  # fmt: skip
            if request.method != "GET" and self.faults.roll(
                "timeout", request.method, request.url.path
            ):
                await asyncio.sleep(self.faults.timeout_ms / 1000)  # acted; the answer is lost
            return response

        return endpoint

    async def not_found(self, request: Request) -> Response:
        """Saxo answers an unknown path with JSON, never Starlette's plain-text 404."""
        return saxo_error(404, "NotFound", f"{request.method} {request.url.path} not found")

    async def create_cash_transfer(self, request: Request, body: Any) -> Response:
        if not isinstance(body, dict):
            return saxo_error(400, "InputDataInvalid", "Body must be an object")
        model, amount = _cash_transfer_model(body)
        reference, value_date = body.get("ExternalReference"), body.get("ValueDate")
        if model:
            return saxo_error(400, "InputDataInvalid", "Invalid input", model)
        if isinstance(reference, str):
            self.create_requests[reference] = self.create_requests.get(reference, 0) + 1
        source, target = (
            self.accounts.get(body["FromAccountKey"]),
            self.accounts.get(body["ToAccountKey"]),
        )
        if source is None or target is None:
            return saxo_error(404, "AccountsNotFoundForTransferDoneByWlp", "Accounts not found")
        if source["Funding"] == target["Funding"]:
            return saxo_error(
                400,
                "OneAccountShouldBeFundingAccount",
                "Exactly one account must be the funding account",
            )
        if not (source["Currency"] == target["Currency"] == body["Currency"]):
            return saxo_error(
                400, "CurrencyMustBeSameAsAtLeastOneOfTheAccounts", "Currency mismatch"
            )
        if body.get("FundingCheck") == "Ignore" and source["Funding"]:
            return saxo_error(
                400,
                "IgnoreFundingCheckNotApplicableWhileFunding",
                "FundingCheck Ignore is not allowed on a funding",
            )
        if body.get("FundingCheck", "Enforce") == "Enforce" and source["Balance"] < amount:
            return saxo_error(400, "InsufficientCash", "Insufficient cash on the source account")
        transaction_id = str(self.next_id + 1)
        self.next_id += 3
        transfer = {
            "TransactionId": transaction_id, "Amount": float(amount), "Currency": body["Currency"],
            "Comment": body.get("Comment"), "ExternalReference": reference,
            "FromAccount": body["FromAccountKey"], "ToAccount": body["ToAccountKey"],
            "FromAccountPositionId": str(int(transaction_id) - 2), "ToAccountPositionId": str(int(transaction_id) - 1),
            "FundingCheck": body.get("FundingCheck", "Enforce"), "TransferRequestedOn": now_iso(),
            "TransferStatus": "Pending", "ValueDate": value_date or NO_DATE,
        }  # fmt: skip
        self.transfers[transaction_id] = transfer
        self.spawn(self._settle(transfer, amount))
        return JSONResponse(
            {
                k: transfer[k]
                for k in ("TransactionId", "FromAccountPositionId", "ToAccountPositionId")
            },
            status_code=201,
        )

    async def _settle(self, transfer: dict[str, Any], amount: Decimal) -> None:
        await asyncio.sleep(self.step_s)
        if "FAIL" in (transfer.get("Comment") or ""):
            transfer["TransferStatus"] = "Failed"
            return
        self.accounts[transfer["FromAccount"]]["Balance"] -= amount
        self.accounts[transfer["ToAccount"]]["Balance"] += amount
        transfer["TransferStatus"] = "Successful"
        for account, sign, position, funding_type in (
            (transfer["FromAccount"], -1, transfer["FromAccountPositionId"], "Withdrawal"),
            (transfer["ToAccount"], 1, transfer["ToAccountPositionId"], "Deposit"),
        ):
            self.activity(
                "AccountFundings", self.accounts[account]["ClientKey"], account,
                Amount=float(amount) * sign, CurrencyCode=transfer["Currency"], FundingEvent="New",
                FundingType=funding_type, FundingSubType="InterClientTransfer", PositionId=position,
                ExternalExecutionReference=transfer.get("ExternalReference"),
            )  # fmt: skip

    async def get_cash_transfer(self, request: Request) -> Response:
        transfer = self.transfers.get(request.path_params["TransactionId"])
        if transfer is None:
            return saxo_error(404, "TransactionNotFound", "Transaction not found")
        return JSONResponse({k: v for k, v in transfer.items() if v is not None})

    async def list_cash_transfers(self, request: Request) -> Response:
        q = request.query_params
        items = list(self.transfers.values())
        if "ExternalReference" in q:
            items = [t for t in items if t.get("ExternalReference") == q["ExternalReference"]]
        if "AccountKey" in q:
            items = [t for t in items if q["AccountKey"] in (t["FromAccount"], t["ToAccount"])]
        if "ClientKey" in q:
            keys = {k for k, a in self.accounts.items() if a["ClientKey"] == q["ClientKey"]}
            items = [t for t in items if t["FromAccount"] in keys or t["ToAccount"] in keys]
        if "FromDateTime" in q:
            items = [t for t in items if t["TransferRequestedOn"] >= q["FromDateTime"]]
        if "ToDateTime" in q:
            items = [t for t in items if t["TransferRequestedOn"] <= q["ToDateTime"]]
        try:
            top = max(1, min(int(q.get("Top", "50")), 1000))
            skip = int(q.get("SkipToken") or 0)
        except ValueError:
            return saxo_error(400, "InvalidRequest", "Top/SkipToken must be integers")
        page = items[skip : skip + top]
        body: dict[str, Any] = {
            "Data": [{k: v for k, v in t.items() if v is not None} for t in page],
            "__count": len(items),
        }
        if skip + top < len(items):
            params = dict(q, SkipToken=str(skip + top), Top=str(top))
            body["__next"] = "/openapi/atr/v1/partner/cashtransfers?" + "&".join(
                f"{k}={v}" for k, v in params.items()
            )
        return JSONResponse(body)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def ledger(self) -> list[dict[str, Any]]:
        signups = [
            {"partner": "saxo", "kind": "signup", "id": s["ClientKey"], "externalId": None,
             "status": s["OnboardingState"], "modifiedOn": None}
            for s in self.signups.values()
        ]  # fmt: skip
        return signups + [
            {"partner": "saxo", "kind": "cash-transfer", "id": t["TransactionId"],
             "externalId": t.get("ExternalReference"), "status": t["TransferStatus"],
             "modifiedOn": None}
            for t in self.transfers.values()
        ]  # fmt: skip
