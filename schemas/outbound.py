"""What partnersync sends to the team's endpoints (outbound webhooks): one change of the
mirror, in Standard Webhooks' envelope (`type`, `timestamp`, `data`)."""

from __future__ import annotations

import msgspec


class Change(msgspec.Struct, kw_only=True, omit_defaults=False):
    """One stored transition, as the change stream holds it: ids and statuses only."""

    key: str  # the entity key, `{partner}:{kind}:{id}`
    partner: str
    kind: str
    id: str
    externalId: str | None
    from_: str | None = msgspec.field(name="from")  # None: the entity's first state
    to: str
    modifiedOn: str | None  # the partner's, as ISO 8601
    decision: str  # how the store took it (decide.py): `applied`, …
    changeId: str  # the stream entry's id, also the delivery's webhook-id


class ChangeEvent(msgspec.Struct, kw_only=True):
    type: str  # `{partner}.{kind}.{to}`, e.g. `tradevest.transfer.PROCESSED`
    timestamp: str  # when the change was stored, ISO 8601
    data: Change
