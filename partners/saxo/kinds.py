"""Saxo's entity kinds: polled (Saxo sends no webhooks for them), with their backoff."""

from __future__ import annotations

from typing import Any

from partnersync.kinds import Kind
from schemas.saxo.activities import ACTIVITY_LIFECYCLE
from schemas.saxo.cash_transfers import CASH_TRANSFER_LIFECYCLE, TransferResult
from schemas.saxo.signups import SIGNUP_LIFECYCLE, SignUpStatusResponse


def _fast_then_slower(age_s: float, entity: Any) -> float:
    """Cash transfers usually settle within a second: start at 0.5 s, back off to 60 s."""
    return min(60.0, max(0.5, age_s / 2))


def _signup_poll(age_s: float, entity: Any) -> float:
    """Onboarding takes minutes to days: back off to 5 minutes; manual handling is slow,
    so look every 15 minutes then."""
    if getattr(entity, "OnboardingSubState", None) == "ManualHandling":
        return 900.0
    return min(300.0, max(1.0, age_s / 4))


KINDS: tuple[Kind, ...] = (
    Kind("saxo", "signup", SIGNUP_LIFECYCLE, SignUpStatusResponse, "/cm/v1/signups/status/{id}",
         status_field="OnboardingState", poll=_signup_poll,
         attention=frozenset({"Pending", "Rejected"}), failed=frozenset({"Rejected"}),
         id_name="ClientKey"),
    Kind("saxo", "cash-transfer", CASH_TRANSFER_LIFECYCLE, TransferResult,
         "/atr/v1/partner/cashtransfers/{id}", status_field="TransferStatus",
         poll=_fast_then_slower, attention=frozenset({"Failed"}),
         failed=frozenset({"Failed"}), id_name="TransactionId"),
    # ENS activities (schemas/saxo/activities.py): mirrored from the activity itself (Saxo
    # serves no GET for one); a margin call needs a human
    Kind("saxo", "activity", ACTIVITY_LIFECYCLE,
         attention=frozenset({"MarginCalls"}), id_name="SequenceId"),
)  # fmt: skip
