"""Match Saxo's Cash Transfer bookings with the partner cash transfers partnersync sent.

Every Successful transfer must have its booking (amount, currency, account, value date).
Reported: matched; missing (a transfer without booking, older than the grace period);
unexpected (a booking no transfer of ours explains). Mismatches go to the change stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import redis

from partners.saxo import keys as saxo_keys
from partnersync import keys, store
from schemas.saxo.cash_transfers import TransferResult
from schemas.saxo.transactions import Transaction

_transfer = msgspec.json.Decoder(TransferResult)
_transaction = msgspec.json.Decoder(Transaction)


@dataclass
class Result:
    matched: list[tuple[str, str]] = field(default_factory=list)  # (TransactionId, BookingId)
    missing: list[str] = field(default_factory=list)  # TransactionIds
    unexpected: list[str] = field(default_factory=list)  # BookingIds
    invalid: list[str] = field(default_factory=list)  # transactions breaking their type's rule
    by_type: dict[str, int] = field(default_factory=dict)

    def to_builtins(self) -> dict[str, Any]:
        return {"matched": [list(m) for m in self.matched], "missing": self.missing,
                "unexpected": self.unexpected, "invalid": self.invalid, "byType": self.by_type}  # fmt: skip


def _account_id(account_key: str | None) -> str | None:
    # The sandbox's AccountIds are its AccountKeys without the "-key==" suffix [inferred
    # relation: real Saxo keys and ids are related through the account list].
    return account_key.split("-key")[0] if account_key else None


def _matches(t: TransferResult, booking: Transaction) -> bool:
    if t.Amount is None or booking.BookedAmount is None or t.Currency != booking.Currency:
        return False
    if abs(booking.BookedAmount) != abs(Decimal(t.Amount)):
        return False
    if booking.AccountId not in {_account_id(t.FromAccount), _account_id(t.ToAccount)}:
        return False
    return (
        t.ValueDate is None or booking.ValueDate is None or booking.ValueDate == t.ValueDate.date()
    )


async def reconcile(
    client: Any,
    connection: redis.Redis,
    *,
    client_key: str,
    start: date,
    end: date,
    grace: timedelta,
) -> Result:
    result = Result()
    bookings: list[Transaction] = []
    async for raw in client.pages(
        "/hist/v1/transactions",
        ClientKey=client_key,
        FromDate=start.isoformat(),
        ToDate=end.isoformat(),
    ):
        tx = msgspec.convert(raw, Transaction)
        result.by_type[tx.TransactionType] = result.by_type.get(tx.TransactionType, 0) + 1
        for problem in tx.problems():
            result.invalid.append(f"{tx.TransactionType} {tx.identifier or '(no id)'}: {problem}")
        if tx.TransactionType == "CashTransfer":
            bookings.append(tx)
    transfers = [
        _transfer.decode(r.data)
        for r in store.iterate(
            connection, partner="saxo", kind="cash-transfer", status="Successful"
        )
    ]
    transfers = [t for t in transfers if t.ValueDate is None or start <= t.ValueDate.date() <= end]
    now = datetime.now(UTC)
    unmatched = list(bookings)
    for t in transfers:
        found = next((b for b in unmatched if _matches(t, b)), None)
        if found is not None:
            unmatched.remove(found)
            result.matched.append((t.TransactionId, str(found.BookingId)))
        elif t.TransferRequestedOn is None or now - t.TransferRequestedOn > grace:
            result.missing.append(t.TransactionId)
    result.unexpected = [str(b.BookingId) for b in unmatched]
    _publish(connection, result, start, end)
    return result


def _publish(connection: redis.Redis, result: Result, start: date, end: date) -> None:
    """Mismatches on the change stream, next to the entity transitions; the whole result
    kept as the latest (the console shows it)."""
    stamp = datetime.now(UTC).isoformat()
    pipe = connection.pipeline()
    latest = {"at": stamp, "from": start.isoformat(), "to": end.isoformat(), **result.to_builtins()}
    pipe.set(saxo_keys.RECONCILIATION, msgspec.json.encode(latest))
    for transaction_id in result.missing:
        pipe.xadd(keys.CHANGES, {"key": keys.entity_key("saxo", "cash-transfer", transaction_id), "partner": "saxo",
                                 "kind": "reconciliation", "to": "BOOKING_MISSING", "at": stamp})  # fmt: skip
    for booking_id in result.unexpected:
        pipe.xadd(keys.CHANGES, {"key": f"saxo:booking:{booking_id}", "partner": "saxo", "kind": "reconciliation",
                                 "to": "BOOKING_UNEXPECTED", "at": stamp})  # fmt: skip
    pipe.execute()


def render(result: Result) -> str:
    lines = [f"{'transfer':<12} {'booking':<14} outcome"]
    lines += [f"{t:<12} {b:<14} matched" for t, b in result.matched]
    lines += [
        f"{t:<12} {'-':<14} MISSING: Successful transfer without its booking"
        for t in result.missing
    ]
    lines += [
        f"{'-':<12} {b:<14} UNEXPECTED: booking without a transfer we sent"
        for b in result.unexpected
    ]
    lines += [f"INVALID {p}" for p in result.invalid]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.by_type.items()))
    lines.append(
        f"{len(result.matched)} matched, {len(result.missing)} missing, {len(result.unexpected)} unexpected ({counts})"
    )
    return "\n".join(lines)
