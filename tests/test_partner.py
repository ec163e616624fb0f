"""A partner is a package exporting PARTNER: the engine loads the ones PARTNERSYNC_PARTNERS
names and knows nothing else of them."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from partnersync import config, partner
from partnersync.config import ConfigError

THIRD = textwrap.dedent(
    """
    from partnersync.kinds import Kind
    from partnersync.partner import Partner
    from schemas.lifecycle import Lifecycle

    PARTNER = Partner(
        name="acme",
        base_url=lambda settings: "http://acme.invalid/api",
        client=lambda settings, http, connection: None,
        kinds=(Kind("acme", "payment", Lifecycle("NEW", {"NEW": ("PAID",)})),),
    )
    """
)


def test_a_third_partner_is_one_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "acme_partner.py").write_text(THIRD)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        settings = config.load({"PARTNERSYNC_PARTNERS": "partners.tradevest,acme_partner"})
        catalog = partner.load(settings.partners)
        assert sorted(catalog.partners) == ["acme", "tradevest"]
        assert ("acme", "payment") in catalog.kinds and ("tradevest", "transfer") in catalog.kinds
        assert ("saxo", "cash-transfer") not in catalog.kinds  # only what was named runs
        assert "transfer" in catalog.commands and "cash-transfer" not in catalog.commands
        assert catalog.partner_of("http://acme.invalid/api/payments/1", settings) == "acme"
    finally:
        sys.modules.pop("acme_partner", None)


def test_a_module_that_is_not_a_partner_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="PARTNERSYNC_PARTNERS: 'no.such.partner'"):
        partner.load(("partners.tradevest", "no.such.partner"))
    with pytest.raises(ConfigError, match="'partnersync.keys' is not a partner package"):
        partner.load(("partnersync.keys",))  # a module without PARTNER
