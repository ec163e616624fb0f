"""The Redis keys only the Saxo package writes (the engine's are in partnersync/keys.py)."""

import zlib

from partnersync.keys import PREFIX

ENS_CHECKPOINT = PREFIX + "saxo:ens:sequence"  # the last ENS SequenceId taken in
ENS_LAST_TIME = PREFIX + "saxo:ens:time"  # its ActivityTime (fallback window, lag)
UNSETTLED = PREFIX + "saxo:unsettled"  # the latest unsettled-amounts report (JSON)
UNSETTLED_BY_EXCHANGE = PREFIX + "saxo:unsettled:exchange"  # the same, by exchange (JSON)
RECONCILIATION = PREFIX + "saxo:reconciliation"  # the latest transactions reconciliation (JSON)
TOKEN = PREFIX + "saxo:token"  # the deployment's OAuth token (one per deployment)
TOKEN_LOCK = PREFIX + "saxo:token:lock"  # held by the one process refreshing it
SIGNUP_OPTIONS = PREFIX + "saxo:signup-options"  # the cached signup options (JSON)


def position(position_id: str) -> str:
    """A position's cash transfer as a key of its own, in a store written before the day
    hashes (still read until it expires)."""
    return f"{PREFIX}saxo:position:{position_id}"


def positions(day: int, position_id: str) -> str:
    """The cash positions of a UTC day (days since 1970), one of 8 hashes: position id →
    the TransactionId of the partner cash transfer that made it. A hash expires
    PARTNERSYNC_DLQ_RETENTION after its day: a field of a small hash costs ~25 bytes where a
    key with a TTL cost ~190."""
    return f"{PREFIX}saxo:positions:{day}:{zlib.crc32(position_id.encode()) % 8}"
