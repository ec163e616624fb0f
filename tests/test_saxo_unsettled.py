"""The unsettled-amounts funding report reproduces the seed's example scenario."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal

import msgspec
import pytest

from partners.saxo import unsettled
from tests.conftest import ROOT

OWNER = "WLC-owner-key=="


def report(system_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partnersync", "report", "unsettled", *args],
        env=system_env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.e2e
@pytest.mark.parametrize("by", ["currency", "exchange", "amount-type", "instrument"])
def test_report_reproduces_the_seed(system_env, by) -> None:
    out = report(system_env, "--by", by, "--json")  # --client-key defaults to SAXO_CLIENT_KEY
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["currency"] == "DKK" and data["total"] == "-3.18174235"
    assert data["inconsistencies"] == []
    # JSON keeps Saxo's identifiers (ExchangeId NoExchange, AmountTypeId, Uic), not the words
    assert "not exchange related" not in out.stdout and all("group" not in r for r in data["rows"])

    def amount(**ids: str | int) -> str:
        found = [r for r in data["rows"] if all(r.get(k) == v for k, v in ids.items())]
        assert len(found) == 1, (ids, data["rows"])
        return found[0]["amount"]

    if by == "currency":
        assert len(data["rows"]) == 2
        assert amount(Currency="DKK", valueDate="2022-05-31") == "-0.28"
        assert amount(Currency="EUR", valueDate="2022-06-01") == "-0.39"
    if by == "exchange":
        assert amount(level="exchange", ExchangeId="NYSE", valueDate="2022-05-31") == "-0.28"
        assert (
            amount(level="exchange", ExchangeId="NoExchange", valueDate="2022-06-01")
            == "-2.90174235"
        )
        assert amount(level="currency", ExchangeId="NoExchange", Currency="EUR") == "-0.39"
    if by == "amount-type":
        nyse = amount(ExchangeId="NYSE", AmountType="Unrealized CFD Finance", Currency="DKK")
        assert nyse == "-0.28"
        interest = amount(ExchangeId="NoExchange", AmountType="Unr. Interest", Currency="EUR")
        assert interest == "-0.39"
        assert all(r["AmountTypeId"] and r["AmountTypeSource"] for r in data["rows"])
    if by == "instrument":
        us500 = [r for r in data["rows"] if r.get("InstrumentSymbol") == "US500.I"]
        assert [(r["ExchangeId"], r["AssetType"], r["amount"]) for r in us500] == [
            ("NYSE", "CfdOnIndex", "-0.28")
        ] and isinstance(us500[0]["Uic"], int)


@pytest.mark.e2e
def test_table_output_names_no_exchange(system_env) -> None:
    out = report(system_env, "--by", "exchange")
    assert (
        "not exchange related" in out.stdout
        and "-3.18174235" in out.stdout
        and "NoExchange" not in out.stdout
    )


class Partner:
    """A stand-in partner answering from fixed bodies (the report logic is what is tested)."""

    def __init__(self, bodies: dict[str, object]):
        self.bodies = bodies

    async def get(self, path: str, **params: str) -> bytes:
        return msgspec.json.encode(self.bodies[path])


def test_totals_that_do_not_add_up_are_reported() -> None:
    broken = {
        "Currency": "DKK", "Total": -1.00, "CashFlows": [{"Amount": -0.50, "ValueDate": "2022-06-01"}],
        "Currencies": [{"Currency": "DKK", "Total": -1.00, "CashFlows": [{"Amount": -1.00, "ValueDate": "2022-06-01"}]}],
    }  # fmt: skip
    built = asyncio.run(
        unsettled.build(Partner({"/hist/v1/unsettledamounts": broken}), OWNER, "currency")
    )
    assert built.inconsistencies == ["total (DKK): Total -1.0 but its cash flows add up to -0.5"]
    assert "INCONSISTENT RESPONSE" in unsettled.render(built)


@pytest.mark.e2e
def test_scheduled_report_is_stored_and_exposed(system) -> None:
    from partners.saxo import keys as saxo_keys
    from tests.conftest import wait_for

    stored = wait_for(lambda: system.r.get(saxo_keys.UNSETTLED), what="the clock's report")
    assert json.loads(stored)["total"] == "-3.18174235"
    text = system.http.get(system.receiver + "/metrics").text
    assert 'partnersync_unsettled_amount{currency="DKK"} -3.18174235' in text


def test_long_labels_are_shown_whole() -> None:
    """`--by instrument` cut its labels at 46 characters, piped or not (#39 item 6)."""
    long = {"ExchangeId": "XETR", "Currency": "EUR", "AmountType": "SettlementAmountOfTrade",
            "AmountTypeSource": "Booking", "InstrumentSymbol": "SOMEVERYLONGSYMBOL:xetr"}  # fmt: skip
    text = unsettled.label("instrument", long)
    assert len(text) > 46
    row = unsettled.Row(level="instrument", ids=long, currency="EUR", value_date=None,
                        amount=Decimal("-1.00"))  # fmt: skip
    report = unsettled.Report(client_key=OWNER, by="instrument", currency="EUR",
                              total=Decimal("-1.00"), cash_flows=[], rows=[row])  # fmt: skip
    assert text in unsettled.render(report)
