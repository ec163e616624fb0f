"""Saxo ENS activities (ens.yaml `ActivityResponse`) as partnersync mirrors them.

ens.yaml documents only the fields every activity has (AccountId, AccountKey, ActivityTime,
ActivityType, ClientId, ClientKey, SequenceId); the rest of an activity (an order's
OrderId and Status, a margin call's figures) is kept as Saxo sent it. Each activity that is
not the confirmation of a partnersync cash transfer is an entity of its own,
`saxo:activity:{SequenceId}`, whose status is its ActivityType: stored, in the change
stream, handed to handlers (`handlers.on("saxo", "activity", "MarginCalls")`).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from schemas.lifecycle import Lifecycle
from schemas.store import Refusal

# ens.yaml's ActivityType enum, and the two the reference pages add
ACTIVITY_TYPES = (
    "AccountDepreciation", "AccountFundings", "CorporateActions", "MarginCalls", "Orders",
    "PositionDepreciation", "Positions", "AdvisoryModelRebalance", "SecurityTransfers",
)  # fmt: skip
# one activity is one entity: each type is a final status, none follows another
ACTIVITY_LIFECYCLE = Lifecycle("Orders", {t: () for t in ACTIVITY_TYPES})


class Activity(msgspec.Struct, kw_only=True):  # ens.yaml ActivityResponse
    ActivityType: str
    SequenceId: str
    ActivityTime: datetime | None = None
    AccountId: str | None = None
    AccountKey: str | None = None
    ClientId: str | None = None
    ClientKey: str | None = None

    # the engine's Note (partnersync/partner.py)
    @property
    def status(self) -> str:
        return self.ActivityType

    @property
    def modifiedOn(self) -> datetime | None:
        return self.ActivityTime

    @property
    def change(self) -> str:
        return self.ActivityType

    @property
    def refused(self) -> bool:
        return False

    @property
    def refusal(self) -> Refusal | None:
        return None


_activity = msgspec.json.Decoder(Activity)


def read(event_type: str | None, body: bytes | None) -> Activity | None:
    """An archived ENS activity (event type ENS_<ActivityType>); None for anything else."""
    if not event_type or not event_type.startswith("ENS_") or body is None:
        return None
    try:
        return _activity.decode(body)
    except msgspec.DecodeError:
        return None
