"""How a failure is classified: retried with backoff, or dead-lettered at once."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


class Retryable(Exception):
    """Timeouts, connection errors, 5xx, 429: worth another try later."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(Retryable):
    """Nothing was sent: the partner's request budget has no slot before `retry_after`.
    Waiting for it spends no attempt."""


class Permanent(Exception):
    """4xx validation, undecodable payloads: another try gives the same answer."""


class Crashed(Permanent):
    """Attempts on this entity ended without completing (the worker was killed, ran out of
    memory, or was paused past its lease) until the attempt budget was spent."""


class NotFound(Exception):
    """The partner answered 404 for the entity."""


class PartnerError(Permanent):
    """A 4xx with the partner's error body, surfaced as is."""

    def __init__(self, status: int, message: str, body: object = None):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.body = body
