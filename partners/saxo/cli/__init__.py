"""Saxo's own `partnersync` commands: `saxo …` (signups, cash transfers, the deployment's
token) and the history-service reports (`report unsettled`, `reconcile transactions`).
Registered when Saxo is among PARTNERSYNC_PARTNERS (`Partner.cli`)."""

from __future__ import annotations

from typing import Any

from partners.saxo.cli import reports, signups


def add(sub: Any) -> None:
    signups.add(sub)
    reports.add(sub)
