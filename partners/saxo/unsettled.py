"""The unsettled-amounts funding report: what the white-label client owes (negative) or
is owed (positive) per currency and value date — the amounts to acquire in good time.

Totals are checked against their cash flows (and the root against its exchanges); a
response whose figures do not add up is reported, never silently shown as fine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import msgspec

from schemas.saxo.unsettled import (
    NO_EXCHANGE,
    CashFlow,
    CurrencyRoot,
    ExchangeBreakdown,
    ExchangeRoot,
    InstrumentBreakdownList,
)

BY = ("currency", "exchange", "amount-type", "instrument")
_root = msgspec.json.Decoder(CurrencyRoot)
_exchanges = msgspec.json.Decoder(ExchangeRoot)
_exchange = msgspec.json.Decoder(ExchangeBreakdown)
_instruments = msgspec.json.Decoder(InstrumentBreakdownList)


@dataclass
class Row:
    level: str  # what the row breaks down: currency, exchange, amount-type, instrument
    ids: dict[str, Any]  # Saxo's identifiers, by Saxo's names (ExchangeId, AmountTypeId, Uic…)
    currency: str
    value_date: date | None
    amount: Decimal


def label(level: str, ids: dict[str, Any]) -> str:
    """The words for a table row (JSON keeps the identifiers)."""
    exchange = exchange_label(str(ids.get("ExchangeId", "")))
    if level == "currency" and "ExchangeId" not in ids:
        return str(ids["Currency"])
    if level == "exchange":
        return f"{exchange} (in {ids['Currency']})"
    if level == "currency":
        return f"{exchange}: {ids['Currency']}"
    if "AmountType" not in ids:
        return f"{exchange}: {ids['Currency']}: no amount types given"
    amount_type = f"{exchange}: {ids['AmountType']}"
    if level == "amount-type":
        return f"{amount_type} ({ids.get('AmountTypeSource') or '-'})"
    if "Uic" not in ids and "InstrumentSymbol" not in ids:
        return f"{amount_type}: no instrument"
    name = ids.get("InstrumentSymbol") or ids.get("Uic")
    return f"{amount_type}: {name} ({ids.get('AssetType') or '-'})"


@dataclass
class Report:
    client_key: str
    by: str
    currency: str  # the requester's currency
    total: Decimal
    cash_flows: list[CashFlow]
    rows: list[Row] = field(default_factory=list)
    inconsistencies: list[str] = field(default_factory=list)

    def to_builtins(self) -> dict[str, Any]:
        return {
            "clientKey": self.client_key,
            "by": self.by,
            "currency": self.currency,
            "total": str(self.total),
            "cashFlows": [
                {"valueDate": c.ValueDate.isoformat(), "amount": str(c.Amount)}
                for c in self.cash_flows
            ],
            "rows": [
                {
                    "level": r.level,
                    **r.ids,
                    "currency": r.currency,
                    "valueDate": r.value_date.isoformat() if r.value_date else None,
                    "amount": str(r.amount),
                }
                for r in self.rows
            ],  # fmt: skip
            "inconsistencies": self.inconsistencies,
        }


def exchange_label(exchange_id: str) -> str:
    return "not exchange related" if exchange_id == NO_EXCHANGE else exchange_id


def _flows(level: str, ids: dict[str, Any], currency: str, flows: Iterable[CashFlow]) -> list[Row]:
    return [Row(level, ids, currency, f.ValueDate, f.Amount) for f in flows]


def _check(where: str, total: Decimal, flows: list[CashFlow], problems: list[str]) -> None:
    summed = sum((f.Amount for f in flows), Decimal(0))
    if flows and summed != total:
        problems.append(f"{where}: Total {total} but its cash flows add up to {summed}")


async def build(client: Any, client_key: str, by: str) -> Report:
    """Calls the endpoints `by` needs (root, exchanges, exchanges/{id}, instruments)."""
    if by not in BY:
        raise ValueError(f"--by {by!r}: one of {', '.join(BY)}")
    problems: list[str] = []
    if by == "currency":
        root = _root.decode(
            await client.get("/hist/v1/unsettledamounts", ClientKey=client_key, Scope="Currencies")
        )
        report = Report(client_key, by, root.Currency, root.Total, root.CashFlows)
        _check(f"total ({root.Currency})", root.Total, root.CashFlows, problems)
        for c in root.Currencies:
            _check(c.Currency, c.Total, c.CashFlows, problems)
            report.rows += _flows("currency", {"Currency": c.Currency}, c.Currency, c.CashFlows)
        report.inconsistencies = problems
        return report

    exchanges = _exchanges.decode(
        await client.get("/hist/v1/unsettledamounts/exchanges", ClientKey=client_key)
    )
    report = Report(client_key, by, exchanges.Currency, exchanges.Total, exchanges.CashFlows)
    _check(f"total ({exchanges.Currency})", exchanges.Total, exchanges.CashFlows, problems)
    summed = sum((e.Total for e in exchanges.Exchanges), Decimal(0))
    if exchanges.Exchanges and summed != exchanges.Total:
        problems.append(f"total: {exchanges.Total} but the exchanges add up to {summed}")
    for e in exchanges.Exchanges:
        label = exchange_label(e.ExchangeId)
        _check(f"{label} ({e.Currency})", e.Total, e.CashFlows, problems)
        exchange = {"ExchangeId": e.ExchangeId}
        if by == "exchange":
            report.rows += _flows(
                "exchange", {**exchange, "Currency": e.Currency}, e.Currency, e.CashFlows
            )
            for c in e.Currencies:
                _check(f"{label} {c.Currency}", c.Total, c.CashFlows, problems)
                report.rows += _flows(
                    "currency", {**exchange, "Currency": c.Currency}, c.Currency, c.CashFlows
                )
            continue
        detail = _exchange.decode(
            await client.get(
                f"/hist/v1/unsettledamounts/exchanges/{e.ExchangeId}", ClientKey=client_key
            )
        )
        for c in detail.Currencies:
            _check(f"{label} {c.Currency}", c.Total, c.CashFlows, problems)
            typed = sum((a.Total for a in c.AmountTypes), Decimal(0))
            if c.AmountTypes and typed != c.Total:
                problems.append(
                    f"{label} {c.Currency}: Total {c.Total} but its amount types add up to {typed}"
                )
            if not c.AmountTypes:  # hist.yaml's own example has none: the flows still show
                report.rows += _flows(by, {**exchange, "Currency": c.Currency}, c.Currency,
                                      c.CashFlows)  # fmt: skip
            for a in c.AmountTypes:
                _check(f"{label} {c.Currency} {a.AmountType}", a.Total, a.CashFlows, problems)
                typed_ids = {**exchange, "Currency": c.Currency, "AmountTypeId": a.AmountTypeId,
                             "AmountType": a.AmountType, "AmountTypeSource": a.AmountTypeSource}  # fmt: skip
                if by == "amount-type":
                    report.rows += _flows("amount-type", typed_ids, c.Currency, a.CashFlows)
                    continue
                listed = _instruments.decode(
                    await client.get("/hist/v1/unsettledamounts/instruments", ClientKey=client_key,
                                     AmountTypeId=a.AmountTypeId, Currency=c.Currency)
                )  # fmt: skip
                if not listed.Data:
                    report.rows += _flows("instrument", typed_ids, c.Currency, a.CashFlows)
                for i in listed.Data:
                    _check(f"{i.InstrumentSymbol or i.Uic}", i.Total, i.CashFlows, problems)
                    instrument = {"Uic": i.Uic, "AssetType": i.AssetType,
                                  "InstrumentSymbol": i.InstrumentSymbol}  # fmt: skip
                    report.rows += _flows(
                        "instrument", {**typed_ids, **instrument}, c.Currency, i.CashFlows
                    )
    report.inconsistencies = problems
    return report


def render(report: Report) -> str:
    lines = [
        f"Unsettled amounts for {report.client_key} (negative: owed by you; positive: owed to you)",
        f"{'total (' + report.currency + ')':<60} {report.total:>16}",
    ]
    for flow in report.cash_flows:
        lines.append(f"  {'value date ' + flow.ValueDate.isoformat():<58} {flow.Amount:>16}")
    lines.append("")
    words = [label(row.level, row.ids) for row in report.rows]
    wide = max([46, *map(len, words)])  # a label is never cut: the column takes the longest
    lines.append(f"{'by ' + report.by:<{wide}} {'currency':<8} {'value date':<10} {'amount':>16}")
    for row, text in zip(report.rows, words, strict=True):
        when = row.value_date.isoformat() if row.value_date else "-"
        lines.append(f"{text:<{wide}} {row.currency:<8} {when:<10} {row.amount:>16}")
    if report.inconsistencies:
        lines.append("")
        lines.append("INCONSISTENT RESPONSE (totals do not equal their parts):")
        lines += [f"  {p}" for p in report.inconsistencies]
    return "\n".join(lines)


async def refresh(ctx: Any) -> int:
    """The scheduled job: the latest report by currency (for /metrics and the console) and by
    exchange (the console), kept in Redis."""
    from partners.saxo import keys as saxo_keys
    from partners.saxo.settings import SaxoSettings

    client_key = SaxoSettings.of(ctx.settings).client_key
    if not client_key:
        return 0
    report = await build(ctx.clients["saxo"], client_key, "currency")
    by_exchange = await build(ctx.clients["saxo"], client_key, "exchange")
    pipe = ctx.connection.pipeline()
    pipe.set(saxo_keys.UNSETTLED, msgspec.json.encode(report.to_builtins()))
    pipe.set(saxo_keys.UNSETTLED_BY_EXCHANGE, msgspec.json.encode(by_exchange.to_builtins()))
    pipe.execute()
    return len(report.rows)
