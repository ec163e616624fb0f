"""What a partner that pushes webhooks gives the receiver (`Partner.webhooks`).

The receiver serves `POST /webhooks/{partner}/{event}` for every partner in the catalog
that has webhooks, and knows no partner: the segment names the partner, its `events`
table names the event type behind the route, its authenticator checks the delivery, its
`prepare` reads the body into entity keys and a dedupe digest (or refuses it), and the
partner's documented acknowledgement answers it. `register` subscribes the receiver's
routes at the partner (`partnersync register-webhooks`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from partnersync.config import Settings


class Authenticator(Protocol):
    """partnersync/webhookauth.py has the schemes in use (static header, Standard Webhooks)."""

    @property
    def needs_body(self) -> bool: ...  # False: checked before the body is read

    @property
    def credentials(self) -> tuple[str, ...]: ...  # headers holding a secret: never stored

    def check(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """None when authentic, else the reason (the 401's detail)."""
        ...

    def delivery_key(self, headers: Mapping[str, str]) -> str | None:
        """The sender's id of this delivery, the same across its retries (dedupe), if any."""
        ...


class WebhookEvent(Protocol):
    @property
    def name(self) -> str: ...  # the event type (stored with the delivery, a metric label)


class Prepared(NamedTuple):
    entities: list[str]  # entity keys the delivery names (none: archived only, "parked")
    dedupe: str | None  # the dedupe digest; None: not deduplicated


# (the route's event or None for one the partner does not document, the event type,
# body, most entities): raises schemas.intake.Unusable for a body it cannot take in
Prepare = Callable[[WebhookEvent | None, str, bytes, int], Prepared]


class Drift(NamedTuple):
    event_type: str
    # registering: "missing", "url", "headers", or "ok"; removing: "registered" or "absent"
    problem: str
    url: str


class Registration(NamedTuple):
    """What `register-webhooks` asks of a partner."""

    url: str  # the receiver's public base URL
    check: bool = False  # report, change nothing
    types: tuple[str, ...] = ()  # the partner's event types to act on (empty: every one)
    remove: bool = False  # delete their registrations instead


class RegistrationError(ValueError):
    """Registration cannot start (no secret, a plain-http URL…): the message says why."""


@dataclass(frozen=True)
class Webhooks:
    events: Mapping[str, WebhookEvent]  # the route's last segment → its event type
    authenticator: Callable[[Settings], Authenticator]
    prepare: Prepare
    # what an accepted delivery is answered, as the partner documents it
    status: int = 204
    body: bytes = b""
    # the JSON body of a refusal (status, error code, detail), as the partner documents
    # one; None: the receiver's own {error, detail}
    problem: Callable[[int, str, str], bytes] | None = None
    # `register-webhooks`: (settings, what is asked) → the drift found (and mended unless
    # checking); raises RegistrationError for what cannot be asked (an unknown type…)
    register: Callable[[Settings, Registration], Coroutine[Any, Any, list[Drift]]] | None = None
    # the variable holding the accepted secrets: `run` makes a fresh one when it is unset
    secrets_variable: str | None = None

    @staticmethod
    def event_type(route: str, event: WebhookEvent | None) -> str:
        """The stored event type of a route: its documented name, else the route itself."""
        return event.name if event else route.upper().replace("-", "_")
