"""Saxo transactions (/hist/v1/transactions), modelled as the seed describes them.

| type            | identifier        | rule                                                    |
|-----------------|-------------------|---------------------------------------------------------|
| Trade           | TradeId           | ≥ 1 trade; bookings optional                            |
| CorporateAction | CorporateActionId | ≥ 1 trade or booking; corrections inside the same one   |
| CashAmount      | BookingId         | exactly one booking, no trades                          |
| CashTransfer    | BookingId         | exactly one booking, no trades                          |

Intraday rows may lack their identifiers until booked: they are kept, not judged.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec


class Booking(msgspec.Struct, kw_only=True, omit_defaults=True):
    BookingId: str | None = None
    AmountType: str | None = None
    AmountTypeId: str | None = None
    BookedAmount: Decimal | None = None
    Date: date | None = None
    ValueDate: date | None = None
    CostClass: str | None = None
    CostSubClass: str | None = None
    CorrectionReason: str | None = None


class Trade(msgspec.Struct, kw_only=True, omit_defaults=True):
    TradeId: str | None = None
    TradedQuantity: Decimal | None = None
    Price: Decimal | None = None
    TradeType: str | None = None  # Bought | Sold
    OpenClose: str | None = None


class Transaction(msgspec.Struct, kw_only=True, omit_defaults=True):
    TransactionType: str  # Trade | CorporateAction | CashAmount | CashTransfer (kept open)
    AccountId: str | None = None
    Currency: str | None = None
    Date: date | None = None
    ValueDate: date | None = None
    Event: str | None = None
    BookedAmount: Decimal | None = None
    TradeId: str | None = None
    CorporateActionId: str | None = None
    BookingId: str | None = None
    IsIntradayData: bool = False  # the field's name in Saxo's typings
    IsIntraDay: bool = False  # its name in the seed's sample (saxo-transactions): either counts
    Bookings: list[Booking] = []
    Trades: list[Trade] = []

    @property
    def identifier(self) -> str | None:
        return {"Trade": self.TradeId, "CorporateAction": self.CorporateActionId}.get(
            self.TransactionType, self.BookingId
        )

    def problems(self) -> list[str]:
        """Where the transaction breaks its type's rule ([] when it keeps it)."""
        if (self.IsIntradayData or self.IsIntraDay) and self.identifier is None:
            return []  # intraday: identifiers arrive once booked
        kind, trades, bookings = self.TransactionType, len(self.Trades), len(self.Bookings)
        out = []
        if self.identifier is None and kind in (
            "Trade",
            "CorporateAction",
            "CashAmount",
            "CashTransfer",
        ):
            out.append(f"{kind} without its identifier")
        if kind == "Trade" and trades < 1:
            out.append("Trade without a trade")
        if kind == "CorporateAction" and trades + bookings < 1:
            out.append("CorporateAction with neither trade nor booking")
        if kind in ("CashAmount", "CashTransfer") and (bookings != 1 or trades):
            out.append(
                f"{kind} with {bookings} bookings and {trades} trades (needs exactly one booking)"
            )
        return out


class TransactionPage(msgspec.Struct, kw_only=True):
    Data: list[Transaction] = []
