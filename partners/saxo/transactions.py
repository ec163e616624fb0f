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


def _matches(t: TransferResult, booking: Transaction) -> bool:
    """Amount, currency and (when the transfer has one) value date; the account is the one
    the booking was listed under (`_bookings_by_account`)."""
    if t.Amount is None or booking.BookedAmount is None or t.Currency != booking.Currency:
        return False
    if abs(booking.BookedAmount) != abs(Decimal(t.Amount)):
        return False
    value_date = t.value_date
    return value_date is None or booking.ValueDate is None or booking.ValueDate == value_date


def _day(t: TransferResult) -> date | None:
    """The day a transfer belongs to a window by: its value date, else when it was asked."""
    if t.value_date is not None:
        return t.value_date
    return t.TransferRequestedOn.date() if t.TransferRequestedOn is not None else None


async def _bookings_by_account(
    client: Any, client_key: str, account_keys: set[str], start: date, end: date
) -> dict[str, list[Transaction]]:
    """The Cash Transfer bookings of each account, listed with the documented AccountKeys
    filter of /hist/v1/transactions: a booking names its account by AccountId (numeric), a
    transfer by AccountKey, and nothing documented maps one onto the other."""
    found: dict[str, list[Transaction]] = {}
    for key in sorted(account_keys):
        found[key] = [
            msgspec.convert(raw, Transaction)
            async for raw in client.pages(
                "/hist/v1/transactions", ClientKey=client_key, AccountKeys=key,
                TransactionType="CashTransfer", FromDate=start.isoformat(), ToDate=end.isoformat(),
            )
        ]  # fmt: skip
    return found


async def reconcile(
    client: Any,
    connection: redis.Redis,
    *,
    client_key: str,
    start: date,
    end: date,
    grace: timedelta,
    changes_maxlen: int,
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
    transfers = [t for t in transfers if (day := _day(t)) is None or start <= day <= end]
    accounts = {k for t in transfers for k in (t.FromAccount, t.ToAccount) if k}
    by_account = await _bookings_by_account(client, client_key, accounts, start, end)
    now = datetime.now(UTC)
    used: set[str] = set()
    for t in transfers:
        candidates = [
            b for k in (t.FromAccount, t.ToAccount) if k for b in by_account.get(k, [])
            if str(b.BookingId) not in used
        ]  # fmt: skip
        found = next((b for b in candidates if _matches(t, b)), None)
        if found is not None:
            used.add(str(found.BookingId))
            result.matched.append((t.TransactionId, str(found.BookingId)))
        elif t.TransferRequestedOn is None or now - t.TransferRequestedOn > grace:
            result.missing.append(t.TransactionId)
    result.unexpected = [str(b.BookingId) for b in bookings if str(b.BookingId) not in used]
    _publish(connection, result, start, end, changes_maxlen)
    return result


def _publish(connection: redis.Redis, result: Result, start: date, end: date, maxlen: int) -> None:
    """Mismatches on the change stream, next to the entity transitions (held to its
    length, PARTNERSYNC_CHANGES_MAXLEN, as they are); the whole result kept as the latest
    (the console shows it)."""
    stamp = datetime.now(UTC).isoformat()
    pipe = connection.pipeline()
    latest = {"at": stamp, "from": start.isoformat(), "to": end.isoformat(), **result.to_builtins()}
    pipe.set(saxo_keys.RECONCILIATION, msgspec.json.encode(latest))
    for transaction_id in result.missing:
        pipe.xadd(keys.CHANGES, {"key": keys.entity_key("saxo", "cash-transfer", transaction_id), "partner": "saxo",
                                 "kind": "reconciliation", "to": "BOOKING_MISSING", "at": stamp},
                  maxlen=maxlen, approximate=True)  # fmt: skip
    for booking_id in result.unexpected:
        pipe.xadd(keys.CHANGES, {"key": f"saxo:booking:{booking_id}", "partner": "saxo", "kind": "reconciliation",
                                 "to": "BOOKING_UNEXPECTED", "at": stamp},
                  maxlen=maxlen, approximate=True)  # fmt: skip
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
