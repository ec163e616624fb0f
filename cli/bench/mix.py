"""A realistic mix of stored entities for `bench --scale`: what a fintech's mirror holds after
it has run a while, per client of both partners.

Each client brings, per Tradevest: a natural person, a customer, a customer product and a
document, three transfers, three traditional orders and eight transactions; per Saxo: a
signup, two cash transfers and three activities (24 entities, 11 of them transactions or
activities). Bodies are shaped as the partners answer a GET: Saxo's from its specs'
examples (cm.yaml SignUpStatusResponse, atr.yaml TransferResult, the sandbox's ENS
activity), Tradevest's as the sandbox answers (reference/tradevest-api.md fields), with
fresh ids, amounts and times. Most entities reached a final state; persons, customers,
products stay ACTIVE, documents APPROVED and transactions BOOKED.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from partnersync import keys
from schemas.commands import Attempt, CommandRecord, CommandState
from schemas.store import EntityRecord, Transition

_ADDRESS = {"street": "Hauptstr.", "streetNumber": "5", "city": "Berlin", "zip": "10115",
            "country": "DE", "additionalInfo": "Hinterhaus"}  # fmt: skip


@dataclass
class Sample:
    """One entity: its path through statuses, its body at each, and what was commanded."""

    partner: str
    kind: str
    id: str
    statuses: list[str]
    bodies: list[bytes]  # the partner's JSON at each status
    at: list[datetime]
    external_id: str | None
    command: dict[str, Any] | None  # the create's body, when partnersync submitted it


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _key(rng: random.Random) -> str:  # Saxo's keys: 16 bytes, base64
    return base64.b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode()


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Niklaus")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Wirth")


def client(n: int, start: datetime, rng: random.Random) -> Iterator[Sample]:
    """Client n's entities, its first change at `start`, the rest over the next days."""

    def steps(*statuses: str, hours: float = 0.0) -> list[datetime]:
        first = start + timedelta(hours=hours)
        return [first + timedelta(seconds=2 * i) for i in range(len(statuses))]

    def make(partner: str, kind: str, id: str, statuses: tuple[str, ...], fields: dict[str, Any],
             id_field: str, status_field: str, hours: float = 0.0,
             external_id: str | None = None, command: dict[str, Any] | None = None,
             stamps: bool = True) -> Sample:  # fmt: skip
        at = steps(*statuses, hours=hours)
        bodies = []
        for status, when in zip(statuses, at, strict=True):
            body = {id_field: id, status_field: status, **fields}
            if stamps:
                body |= {"createdOn": _iso(at[0]), "modifiedOn": _iso(when)}
            bodies.append(msgspec.json.encode(body))
        return Sample(partner, kind, id, list(statuses), bodies, at, external_id, command)

    first, last = _FIRST[n % 8], _LAST[(n // 8) % 8] + str(n)
    person_body = {
        "gender": "FEMALE", "firstName": first, "lastName": last, "birthDay": "1990-01-01",
        "birthPlace": "London", "birthCountry": "GB", "isUsNationality": False,
        "maritalStatus": "SINGLE", "language": "en",
        "nationalities": [{"countryCode": "GB", "nationalIdentifier": f"AB{n}",
                           "nationalIdentifierType": "PASSPORT"}],
        "taxDetails": [{"taxId": f"{rng.randrange(10**10, 10**11)}", "taxResidency": "DE"}],
        "profession": "ENGINEER", "professionGroup": "EMPLOYEE", "mainAddress": _ADDRESS,
        "annualIncomeNet": 85000, "sourceOfIncome": ["SALARY"],
        "contact": {"phone": "+4930123456", "email": f"{first.lower()}{n}@example.com"},
    }  # fmt: skip
    person, customer, product = _uuid(rng), _uuid(rng), _uuid(rng)
    xid = f"np-{_uuid(rng)}"
    yield make("tradevest", "natural-person", person, ("RECEIVED", "CREATED", "ACTIVE"),
               {**person_body, "externalId": xid}, "naturalPersonId", "naturalPersonStatus",
               external_id=xid, command=person_body)  # fmt: skip
    xid = f"cu-{_uuid(rng)}"
    cbody = {"naturalPersonId": person, "customerType": "PRIVATE", "externalId": xid}
    yield make("tradevest", "customer", customer, ("RECEIVED", "CREATED", "ACTIVE"), cbody,
               "customerId", "customerStatus", hours=1, external_id=xid, command=cbody)  # fmt: skip
    xid = f"cp-{_uuid(rng)}"
    pbody = {"customerId": customer, "productType": "SECURITIES_ACCOUNT", "currency": "EUR",
             "iban": f"DE{rng.randrange(10**19, 10**20)}", "externalId": xid}  # fmt: skip
    yield make("tradevest", "customer-product", product, ("RECEIVED", "PENDING", "ACTIVE"),
               pbody, "customerProductId", "status", hours=2, external_id=xid,
               command=pbody)  # fmt: skip
    yield make("tradevest", "document", _uuid(rng), ("RECEIVED", "CREATED", "APPROVED"),
               {"documentType": "PROOF_OF_IDENTITY", "naturalPersonId": person,
                "fileName": f"passport-{n}.pdf", "mimeType": "application/pdf"},
               "documentId", "status", hours=1)  # fmt: skip
    for t in range(3):
        xid = f"tx-{_uuid(rng)}"
        final = "REJECTED" if rng.random() < 0.1 else "PROCESSED"
        body = {"customerId": customer, "customerProductId": product,
                "amount": round(rng.uniform(10, 5000), 2), "currency": "EUR",
                "reference": f"Invoice {n}-{t}", "externalId": xid}  # fmt: skip
        extra = {"rejectReason": "INSUFFICIENT_BALANCE"} if final == "REJECTED" else {}
        yield make("tradevest", "transfer", _uuid(rng), ("PENDING", final), body | extra,
                   "transferId", "transferStatus", hours=24 * (t + 1), external_id=xid,
                   command=body)  # fmt: skip
    for t in range(3):
        xid = f"or-{_uuid(rng)}"
        body = {"customerProductId": product, "isin": f"DE000{rng.randrange(10**6, 10**7)}",
                "side": "BUY" if t % 2 == 0 else "SELL", "orderType": "MARKET",
                "quantity": rng.randrange(1, 50), "externalId": xid}  # fmt: skip
        yield make("tradevest", "traditional-order", _uuid(rng),
                   ("RECEIVED", "PENDING", "FILLED", "SETTLED"), body, "orderId", "status",
                   hours=24 * (t + 2), external_id=xid, command=body)  # fmt: skip
    for t in range(8):  # reference §4.11: one sub-object per transaction
        day = (start + timedelta(days=t)).date().isoformat()
        amount = round(rng.uniform(10, 900), 2)
        if t % 2 == 0:
            kind, detail = "TRANSFER", {"cashTransaction": {
                "transferId": _uuid(rng), "referenceMessage": f"Invoice {n}-{t}",
                "counterpartyName": f"{first} {last}", "customerProductId": product,
                "iban": pbody["iban"], "bic": "TRDVDEB1XXX", "amount": amount, "currency": "EUR"}}  # fmt: skip
        else:
            kind, detail = "TRADE", {"traditionalTradingTransaction": {
                "orderId": _uuid(rng), "depositoryCustomerProductId": product,
                "cashCustomerProductId": product, "isin": f"DE000{rng.randrange(10**6, 10**7)}",
                "exchangeCode": "XETR", "assetType": "SHARE", "tradeSide": "BUY",
                "quantityType": "UNIT", "quantity": rng.randrange(1, 50), "currency": "EUR",
                "orderType": "MARKET", "orderStatus": "FILLED",
                "executionData": {"quantity": 3, "executionPrice": amount / 3,
                                  "executionAmount": amount, "remainingQuantity": 0,
                                  "feeAmount": 1.0}}}  # fmt: skip
        yield make("tradevest", "transaction", _uuid(rng), ("BOOKED",),
                   {"customerId": customer, "transactionType": kind, "bookingDate": day,
                    "valueDate": day, **detail}, "transactionId", "transactionStatus",
                   hours=24 * t + 3)  # fmt: skip
    client_key = _key(rng)
    signup = {"ClientId": str(rng.randrange(10**6, 10**7)), "ClientKey": client_key,
              "Message": "Onboarding request complete. Account and client keys have been created"}  # fmt: skip
    yield make("saxo", "signup", client_key, ("Pending", "ClientOnboarded"), signup,
               "ClientKey", "OnboardingState", stamps=False,
               command={"ExternalReference": f"su-{n}"})  # fmt: skip
    account = _key(rng)
    for t in range(2):
        reference = str(rng.randrange(10**8, 10**9))
        amount = rng.randrange(100, 20000)
        body = {"Amount": amount, "Comment": f"Transferring from funding account 33000/F{n}",
                "Currency": "EUR", "ExternalReference": reference, "FromAccount": account,
                "FromAccountPositionId": str(rng.randrange(10**4)), "FundingCheck": "Enforce",
                "ToAccount": _key(rng), "ToAccountPositionId": str(rng.randrange(10**4)),
                "TransferRequestedOn": _iso(start + timedelta(days=t + 1)),
                "ValueDate": "0001-01-01T00:00:00Z"}  # fmt: skip
        transaction = str(rng.randrange(10**9, 10**10))
        yield make("saxo", "cash-transfer", transaction, ("Pending", "Successful"), body,
                   "TransactionId", "TransferStatus", hours=24 * (t + 1), stamps=False,
                   external_id=reference, command={"Amount": amount,
                                                   "ExternalReference": reference})  # fmt: skip
    for t in range(3):
        sequence = str(n * 3 + t + 1)
        yield make("saxo", "activity", sequence, (("Orders", "Positions", "AccountFundings")[t],),
                   {"ActivityTime": _iso(start + timedelta(days=t)), "ClientKey": client_key,
                    "AccountKey": account, "AccountId": str(rng.randrange(10**10, 10**11))},
                   "SequenceId", "ActivityType", hours=24 * t, stamps=False)  # fmt: skip


PER_CLIENT = 24
# kinds whose entities stay while their client does (the client base): all the others leave
LIVE = frozenset({"natural-person", "customer", "customer-product", "document"})


def samples(n: int, start: datetime, span: timedelta, seed: int = 7) -> Iterator[Sample]:
    """`n` entities (whole clients, the last cut short), clients' first changes spread evenly
    over `span` from `start`."""
    rng = random.Random(seed)
    clients = max(1, -(-n // PER_CLIENT))
    made = 0
    for c in range(clients):
        for sample in client(c, start + span * (c / clients), rng):
            if made == n:
                return
            made += 1
            yield sample


def now() -> datetime:
    return datetime.now(UTC)


def writes(sample: Sample) -> list[tuple[EntityRecord, Transition]]:
    """What reconcile stores for the sample, change by change: (record, transition)."""
    key = keys.entity_key(sample.partner, sample.kind, sample.id)
    out = []
    previous = None
    for status, body, at in zip(sample.statuses, sample.bodies, sample.at, strict=True):
        ms = int(at.timestamp() * 1000)
        record = EntityRecord(key=key, partner=sample.partner, kind=sample.kind, id=sample.id,
                              status=status, modifiedOn=at, updatedAt=at, createdAt=sample.at[0],
                              externalId=sample.external_id, data=msgspec.Raw(body))  # fmt: skip
        source = [f"{ms}-{ms % 7}"]  # the delivery's stream id
        out.append((record, Transition(key=key, from_=previous, to=status, modifiedOn=at, at=at,
                                       source=source)))  # fmt: skip
        previous = status
    return out


def command_record(sample: Sample) -> CommandRecord | None:
    """The journal entry partnersync keeps of the create it sent, as accepted."""
    if sample.command is None:
        return None
    at = sample.at[0] - timedelta(seconds=1)
    external_id = sample.external_id or str(sample.command.get("ExternalReference"))
    result = {"SignUpId": str(uuid.UUID(int=random.Random(sample.id).getrandbits(128)))} \
        if sample.kind == "signup" else None  # fmt: skip
    return CommandRecord(
        externalId=external_id, partner=sample.partner, kind=sample.kind,
        body=msgspec.Raw(msgspec.json.encode(sample.command)), state=CommandState.ACCEPTED,
        attempts=1, entityId=sample.id, result=result, createdAt=at, updatedAt=sample.at[0],
        sentAt=at, sendDeadlineMs=int(at.timestamp() * 1000) + 30_000,
        history=[Attempt(at=at, action="send", outcome="sending"),
                 Attempt(at=sample.at[0], action="send", outcome="accepted")],
    )  # fmt: skip
