"""Every Redis key the engine writes, named in this one module (RQ's own names are
in rqbridge.py; a partner's own keys are in its package's keys.py). The Lua scripts take these as KEYS; where a script decides which entity
or id a key is for, it is passed the key's prefix (a function here called with "").

Keys of one entity embed its entity key `{partner}:{kind}:{id}`.
"""

import zlib

PREFIX = "ps:"

WATCH = PREFIX + "watch"  # zset non-terminal entity key -> ms of its last reconcile
DIRTY = PREFIX + "dirty"  # zset entity key -> ms when it is due for reconciliation
DRAINERS = PREFIX + "drainers"  # zset drain job id -> ms deadline (live reconcile jobs)
INDEX = PREFIX + "ix:"  # + partner:kind:status: zset entity id -> ms of its last update
CHANGES = PREFIX + "changes"  # stream of stored transitions (partnersync's output)
SEQ = PREFIX + "seq"  # counter for ids made inside Redis
INBOX_BLOCKS = PREFIX + "inbox-blocks"  # counter: the last inbox block made (inbox.py)
LAST_DELIVERY = PREFIX + "last-delivery"  # hash event type -> ms of last accepted delivery
ATTENTION = PREFIX + "attention"  # zset entity key -> ms: final states that need a human
COMMANDS = PREFIX + "commands"  # zset externalId -> ms of older stores; command_index replaces it
COMMAND_ATTENTION = PREFIX + "commands:attention"  # zset externalId -> ms: double bookings
DLQ = PREFIX + "dlq"  # zset dead-letter id -> ms when it was dead-lettered
RECHECKS = PREFIX + "metrics:rechecks"  # hash partner -> re-fetches of unchanged entities
COUNTERS = PREFIX + "counters"  # hash of plain counters (deliveries, duplicates, ...)
JOB_OUTCOMES = PREFIX + "metrics:reconciles"  # hash outcome -> n
RECONCILE_LATENCY = PREFIX + "metrics:event-to-store"  # hash bucket -> n, "sum"
PARTNER_CALLS = PREFIX + "metrics:partner-calls"  # hash "partner:status" -> n
COMMAND_STATES = PREFIX + "metrics:command-states"  # hash state -> n
RATE_LIMITS = (
    PREFIX + "metrics:rate-limits"
)  # hash "partner:waited" / "partner:spent:dimension" -> n
ENTITY_COUNTS = PREFIX + "metrics:entities"  # hash "partner:kind:status" -> n
AUDIT = PREFIX + "audit"  # stream of console operator actions (who, what, when)
ENDPOINTS = PREFIX + "endpoints"  # hash endpoint id -> JSON (endpoints.py): outbound webhooks
# the outbox (outbound.py): the changes on their way to the endpoints
OUT_CURSOR = PREFIX + "out:cursor"  # the last change stream id routed to the endpoints
OUT_SENDERS = PREFIX + "out:senders"  # zset sender job id (or kicked:<id>) -> ms its hold ends
OUT_ROUTER = PREFIX + "out:router"  # the sender job routing the change stream
OUT_HEALTH = PREFIX + "out:failing"  # hash endpoint id -> ms of its first failure since a success
OUT_COUNTS = PREFIX + "out:counts"  # hash "endpoint:outcome" -> attempts
OUT_LAG = PREFIX + "out:lag"  # hash "endpoint:bucket" -> deliveries, change to delivery


def out_queue(endpoint: str, entity_key: str) -> str:
    """One endpoint's messages for one entity, in change order (only the first in flight)."""
    return f"{PREFIX}out:q:{endpoint}:{entity_key}"


def out_due(endpoint: str) -> str:
    """zset entity key -> ms its first message is due (a claim moves it to its lease's end)."""
    return f"{PREFIX}out:due:{endpoint}"


def out_pending(endpoint: str) -> str:
    """zset entity key -> ms of its first queued change (the endpoint's lag: the oldest)."""
    return f"{PREFIX}out:pending:{endpoint}"


def out_tries(endpoint: str) -> str:
    """hash entity key -> failed attempts of its first message."""
    return f"{PREFIX}out:tries:{endpoint}"


def out_held(endpoint: str) -> str:
    """set of entity keys whose first message is a dead letter (the rest waits)."""
    return f"{PREFIX}out:held:{endpoint}"


def out_dlq(endpoint: str) -> str:
    """hash entity key -> the endpoint's dead letter for it (outbound.Letter, JSON)."""
    return f"{PREFIX}out:dlq:{endpoint}"


CLOCK = PREFIX + "clock"  # hash task -> ms of its last successful run (sweepers, pollers)
REPLICATION_MARK = (
    PREFIX + "replication-mark"
)  # string, 60 s TTL: the write WAIT counts (replication.py)


def dedupe(digest: str) -> str:
    return f"{PREFIX}dedupe:{digest}"


def inbox(delivery_id: str) -> str:
    """One delivery's record on its own: a DLQ replay's rewrite of it."""
    return f"{PREFIX}inbox:{delivery_id}"


def resends(delivery_id: str) -> str:
    """A partner's resends of a delivery, answered as duplicates (partnersync/inbox.py)."""
    return f"{PREFIX}resends:{delivery_id}"


def inbox_block(block: int | str) -> str:
    """The records of the deliveries of one inbox block (partnersync/inbox.py)."""
    return f"{PREFIX}inbox-block:{block}"


def events(entity_key: str) -> str:
    return f"{PREFIX}events:{entity_key}"


def rate(partner: str, dimension: str, scope: str) -> str:
    """A partner's request bucket (partnersync/ratelimit.py): its next slot, ms."""
    return f"{PREFIX}rate:{partner}:{dimension}:{scope}"


def lease(entity_key: str) -> str:
    return f"{PREFIX}lease:{entity_key}"


def cool(entity_key: str) -> str:
    """An entity's cooldown after a reconcile: further events wait it out (coalescing)."""
    return f"{PREFIX}cool:{entity_key}"


def claims(entity_key: str) -> str:
    """Claims of an entity since its last completion (more than one: crashed attempts)."""
    return f"{PREFIX}claims:{entity_key}"


def attempts(entity_key: str) -> str:
    return f"{PREFIX}attempts:{entity_key}"


GONE_INDEX = PREFIX + "gone-ix"  # zset entity key -> ms it was evicted (its tombstone's age)


def entity(entity_key: str) -> str:
    """An entity's value as a key of its own: what stores written before the value buckets
    hold, read as a fallback and moved to its bucket on the entity's next write."""
    return f"{PREFIX}entity:{entity_key}"


def entities(partner: str, kind: str, bucket: int) -> str:
    """A bucket of entity values of one kind: id -> the stored value (store.py)."""
    return f"{PREFIX}entities:{partner}:{kind}:{bucket}"


def index(partner: str, kind: str, status: str) -> str:
    return f"{INDEX}{partner}:{kind}:{status}"


def gone(bucket: int) -> str:
    """A bucket of tombstones: entity key -> what is left of it after retention."""
    return f"{PREFIX}gone:{bucket}"


def links(bucket: int) -> str:
    """A bucket of externalId links: "partner:externalId" -> entity key, kept for good."""
    return f"{PREFIX}links:{bucket}"


def alias(partner: str, ident: str) -> tuple[str, str]:
    """Another id of an entity (e.g. Saxo's SignUpId): the hash holding it (one of 8,192)
    and its field there, whose value is "name=entity key"; it goes with the command that
    gave it (commands.forget)."""
    name = f"{partner}:{ident}"
    return f"{PREFIX}aliases:{zlib.crc32(name.encode()) % 8192}", name


def older_alias(partner: str, ident: str) -> str:
    """An alias as a key of its own, in a store written before the buckets (still read)."""
    return f"{PREFIX}alias:{partner}:{ident}"


def rq_template(queue: str) -> str:
    """The drain job's RQ hash fields, read by the Lua scripts (see workqueue.py)."""
    return f"{PREFIX}rq-template:{queue}"


def command(external_id: str) -> str:
    """A journal entry as a key of its own: what stores written before the buckets hold,
    read as a fallback and moved on the command's next write."""
    return f"{PREFIX}cmd:{external_id}"


def journal(external_id: str) -> tuple[str, str]:
    """The hash holding a command's journal entry (one of 8,192), and its field there."""
    return f"{PREFIX}cmds:{zlib.crc32(external_id.encode()) % 8192}", external_id


def command_index(kind: str, state: str) -> str:
    """Zset externalId -> ms it was submitted, of the commands of `kind` now in `state`."""
    return f"{PREFIX}cmd-ix:{kind}:{state}"


def command_scope(partner: str, kind: str, scope: str) -> str:
    """The externalId of the one create without an externalId running in this scope."""
    return f"{PREFIX}cmd-scope:{partner}:{kind}:{scope}"


def command_link(entity_key: str) -> tuple[str, str]:
    """The hash holding the entity's link to its command (one of 2,048 per kind: a few
    hundred links each at 10M entities) and its field there (the id); the value is the
    command's externalId (at most one, for good)."""
    partner, kind, id = entity_key.split(":", 2)
    return f"{PREFIX}cmd-links:{partner}:{kind}:{zlib.crc32(id.encode()) % 2048}", id


def older_command_link(entity_key: str) -> str:
    """The link as a key of its own, in a store written before the buckets (still read)."""
    return f"{PREFIX}cmd-link:{entity_key}"


def dead_letter(dlq_id: str) -> str:
    return f"{PREFIX}dlq:{dlq_id}"


def console_session(sid: str) -> str:
    """A signed-in console session: it is live while this key is (logout deletes it)."""
    return f"{PREFIX}console:session:{sid}"


def console_login_failures(who: str) -> str:
    """Failed console sign-ins of a user name or a source address, in the current window."""
    return f"{PREFIX}console:login-failures:{who}"


def replay_job(job_id: str) -> str:
    """A console replay's progress: hash user, phase, done, of, outcome (expires in a day)."""
    return f"{PREFIX}replay-job:{job_id}"


def dead_letters_of(entity_key: str) -> str:
    """An entity's dead letters: zset dead-letter id -> ms (expires with the letters)."""
    return f"{PREFIX}dlq-of:{entity_key}"


def replays_of(entity_key: str) -> str:
    """An entity's replayed dead letters, newest first: a list of JSON (dlq.Replayed),
    the latest 50, expiring PARTNERSYNC_DLQ_RETENTION after the last replay."""
    return f"{PREFIX}replays-of:{entity_key}"


def backfill(partner: str) -> str:
    """Hash listing name -> resume token of a backfill under way (backfill.py)."""
    return f"{PREFIX}backfill:{partner}"


def backfill_found(partner: str, kind: str) -> str:
    """Set of the ids a backfill under way listed, for the listings nested under them."""
    return f"{PREFIX}backfill:{partner}:found:{kind}"


def entity_key(partner: str, kind: str, id: str) -> str:
    return f"{partner}:{kind}:{id}"


def split_entity_key(key: str) -> tuple[str, str, str]:
    partner, kind, id = key.split(":", 2)
    return partner, kind, id
