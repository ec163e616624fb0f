"""The Redis keys only the Saxo package writes (the engine's are in partnersync/keys.py)."""

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
    """A Saxo cash position id → the partner cash transfer that made it."""
    return f"{PREFIX}saxo:position:{position_id}"
