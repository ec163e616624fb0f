"""Saxo's page in the console (the unsettled-amounts reports and the bookings
reconciliation, as the clock's tasks stored them) and its line beside a signup that needs
attention."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from partners.saxo import keys as saxo_keys
from partners.saxo import unsettled
from partnersync.partner import ConsolePage
from schemas.store import EntityRecord


def reports(connection: redis.Redis) -> dict[str, Any]:
    names = (saxo_keys.UNSETTLED, saxo_keys.UNSETTLED_BY_EXCHANGE, saxo_keys.RECONCILIATION)
    by_currency, by_exchange, reconciliation = (
        json.loads(raw) if raw else None for raw in connection.mget(names)
    )
    for report in (by_currency, by_exchange):  # the stored rows keep Saxo's ids
        for row in (report or {}).get("rows", []):
            row["label"] = unsettled.label(row.get("level", "currency"), row)
    flows = [(f["valueDate"], float(f["amount"])) for f in (by_currency or {}).get("cashFlows", [])]
    return {
        "by_currency": by_currency,
        "by_exchange": by_exchange,
        "reconciliation": reconciliation,
        "flows": flows,
    }


PAGES = (
    ConsolePage(
        "reports", "Saxo reports", Path(__file__).parent / "templates/reports.html", reports
    ),
)


def pending_reasons(record: EntityRecord) -> str:
    """A signup's PendingReasons (field names and reason codes: no personal data)."""
    if bytes(record.data)[:1] != b"{":
        return ""
    reasons = json.loads(bytes(record.data)).get("PendingReasons") or []
    return "; ".join(f"{r.get('PendingField')}: {', '.join(r.get('Reasons', []))}" for r in reasons)
