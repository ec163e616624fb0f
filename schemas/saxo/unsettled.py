"""Unsettled amounts (hist.yaml, BETA): what is owed by (negative) or to (positive) the
requesting entity, per value date. Amounts decode straight into Decimal: totals are
compared exactly."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec

NO_EXCHANGE = "NoExchange"  # amounts not related to an exchange


class CashFlow(msgspec.Struct, kw_only=True):
    Amount: Decimal
    ValueDate: date


class AmountTypeBreakdown(msgspec.Struct, kw_only=True):
    AmountType: str
    AmountTypeId: str
    Total: Decimal
    AmountTypeSource: str | None = None  # TransactionsNotBooked | Financing | CorporateAction
    CashFlows: list[CashFlow] = []


class CurrencyBreakdown(msgspec.Struct, kw_only=True):
    Currency: str
    Total: Decimal
    CashFlows: list[CashFlow] = []
    AmountTypes: list[AmountTypeBreakdown] = []


class CurrencyRoot(msgspec.Struct, kw_only=True):
    """GET /hist/v1/unsettledamounts: totals in the requester's currency."""

    Currency: str
    Total: Decimal
    CashFlows: list[CashFlow] = []
    Currencies: list[CurrencyBreakdown] = []


class ExchangeBreakdown(msgspec.Struct, kw_only=True):
    """An exchange's total in the requester's currency, broken down by owed currency."""

    ExchangeId: str
    Currency: str
    Total: Decimal
    CashFlows: list[CashFlow] = []
    Currencies: list[CurrencyBreakdown] = []


class ExchangeRoot(msgspec.Struct, kw_only=True):
    """GET /hist/v1/unsettledamounts/exchanges."""

    Currency: str
    Total: Decimal
    CashFlows: list[CashFlow] = []
    Exchanges: list[ExchangeBreakdown] = []


class InstrumentBreakdown(msgspec.Struct, kw_only=True):
    Total: Decimal
    Uic: int | None = None
    AssetType: str | None = None
    InstrumentSymbol: str | None = None
    InstrumentDescription: str | None = None
    CashFlows: list[CashFlow] = []


class InstrumentBreakdownList(msgspec.Struct, kw_only=True):
    Data: list[InstrumentBreakdown] = []
