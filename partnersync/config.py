"""Configuration, read from the environment in this one place (12-factor).

Every setting is declared once, on its Struct field, with the environment variable it
comes from, what it means and the check its value must pass (`Env`), as Starlette's
`Config` reads a variable once with its cast and default. The engine's settings are
`Settings`; each partner declares its own Struct (`PartnerSettings`, exported by its
package as `Partner.settings`), read the same way for the partners PARTNERSYNC_PARTNERS
names, and reached with `SaxoSettings.of(settings)`. `partnersync config` renders the
README's table from these declarations.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import msgspec

from partnersync.errors import ConfigError
from schemas.sensitive import Sensitive, redact

__all__ = ["ConfigError", "Env", "PartnerSettings", "Settings", "load", "read"]


@dataclass(frozen=True)
class Env:
    """Where a setting comes from and what it must be: its environment variable, its
    meaning (the README's table), and the checks its value passes at start."""

    name: str
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    url: bool = False  # an http(s):// URL
    cidrs: bool = False  # IP addresses or CIDRs


DEFAULT_PARTNERS = ("partners.tradevest", "partners.saxo")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: Annotated[
        str | None,
        Env(
            "REDIS_URL",
            "Redis to use (redis://, rediss://, unix:// or redis+sentinel://host:port,…/<master>); unset for `run` starts an embedded one",
        ),
    ] = None
    host: Annotated[str, Env("PARTNERSYNC_HOST", "address the receiver binds")] = "127.0.0.1"
    port: Annotated[int, Env("PORT", "port the receiver binds", minimum=1, maximum=65535)] = 8000
    public_url: Annotated[
        str | None,
        Env(
            "PARTNERSYNC_PUBLIC_URL",
            "the receiver's public base URL that register-webhooks registers (default of --url)",
            url=True,
        ),
    ] = None
    web_concurrency: Annotated[
        int, Env("WEB_CONCURRENCY", "receiver worker processes (uvicorn --workers)", minimum=1)
    ] = 1
    log_level: Annotated[
        str,
        Env(
            "LOG_LEVEL",
            "log level of every process: DEBUG, INFO, WARNING, ERROR",
            choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        ),
    ] = "INFO"

    # Saxo's documented limits (developer.saxo rate-limiting), shared by every process

    webhook_tolerance_s: Annotated[
        float,
        Env(
            "PARTNERSYNC_WEBHOOK_TOLERANCE_S",
            "standard-webhooks: accepted clock difference of webhook-timestamp, seconds",
            minimum=1,
        ),
    ] = 300.0
    allowed_cidrs: Annotated[
        tuple[str, ...],
        Env(
            "PARTNERSYNC_ALLOWED_CIDRS",
            "source addresses allowed to deliver, comma-separated CIDRs (unset: any)",
            cidrs=True,
        ),
    ] = ()
    trusted_proxies: Annotated[
        tuple[str, ...],
        Env(
            "PARTNERSYNC_TRUSTED_PROXIES",
            "addresses whose X-Forwarded-For / X-Forwarded-Proto the receiver believes, comma-separated (unset: none; the peer address is the source)",
            cidrs=True,
        ),
    ] = ()
    header_timeout_s: Annotated[
        float,
        Env(
            "PARTNERSYNC_HEADER_TIMEOUT_S",
            "seconds a connection may take to send a request's headers before it is closed",
            minimum=0.1,
        ),
    ] = 10.0
    max_connections: Annotated[
        int,
        Env(
            "PARTNERSYNC_MAX_CONNECTIONS",
            "open connections per receiver process (more are answered 503)",
            minimum=1,
        ),
    ] = 4096
    durability: Annotated[
        str,
        Env(
            "PARTNERSYNC_DURABILITY",
            "fsync: a delivery is answered 2xx only once on disk (a Redis with appendonly yes and appendfsync always; checked at start); none: once in Redis's memory",
            choices=("fsync", "none"),
        ),
    ] = "fsync"
    min_replicas: Annotated[
        int,
        Env(
            "PARTNERSYNC_MIN_REPLICAS",
            "replicas that must hold a delivery before it is answered 2xx, and a command's journal before its partner call (WAIT); fewer in time: 503 / not sent yet",
            minimum=0,
        ),
    ] = 0
    replica_timeout_ms: Annotated[
        int,
        Env(
            "PARTNERSYNC_REPLICA_TIMEOUT_MS",
            "ms the receiver (and a command's journal write) waits for PARTNERSYNC_MIN_REPLICAS replicas",
            minimum=1,
            maximum=1999,
        ),
    ] = 1000

    handlers: Annotated[
        str | None, Env("PARTNERSYNC_HANDLERS", "user handlers, `package.module:attribute`")
    ] = None
    partners: Annotated[
        tuple[str, ...],
        Env(
            "PARTNERSYNC_PARTNERS",
            "partner packages to run, comma-separated modules each exporting PARTNER",
        ),
    ] = DEFAULT_PARTNERS
    queue: Annotated[str, Env("PARTNERSYNC_QUEUE", "RQ queue name")] = "partnersync"
    max_body: Annotated[
        int, Env("PARTNERSYNC_MAX_BODY", "largest webhook body accepted, bytes", minimum=1)
    ] = 256 * 1024
    max_entities: Annotated[
        int,
        Env(
            "PARTNERSYNC_MAX_ENTITIES",
            "most distinct entities one delivery may name (more: 400, nothing stored)",
            minimum=1,
        ),
    ] = 1000
    inbox_ttl: Annotated[
        int, Env("PARTNERSYNC_INBOX_TTL", "seconds a raw delivery is archived", minimum=1)
    ] = 7 * 24 * 3600
    dedupe_ttl: Annotated[
        int,
        Env("PARTNERSYNC_DEDUPE_TTL", "seconds a delivery's dedupe key is remembered", minimum=1),
    ] = 7 * 24 * 3600
    drainers: Annotated[
        int, Env("PARTNERSYNC_DRAINERS", "most reconcile jobs queued or running at once", minimum=1)
    ] = 4
    batch: Annotated[
        int, Env("PARTNERSYNC_BATCH", "entities one reconcile job claims at a time", minimum=1)
    ] = 50
    lease_ms: Annotated[
        int,
        Env(
            "PARTNERSYNC_LEASE_MS", "ms an entity stays claimed by a job before another may take it"
        ),
    ] = 30_000
    coalesce_ms: Annotated[
        int,
        Env(
            "PARTNERSYNC_COALESCE_MS",
            "after a reconcile, further events for that entity wait this long and are fetched once",
            minimum=0,
        ),
    ] = 1000
    drain_budget_s: Annotated[
        float,
        Env(
            "PARTNERSYNC_DRAIN_BUDGET_S",
            "seconds one reconcile job drains before handing over",
            minimum=0.1,
        ),
    ] = 10.0
    max_attempts: Annotated[
        int,
        Env(
            "PARTNERSYNC_MAX_ATTEMPTS",
            "reconcile attempts before an entity's events go to the DLQ",
            minimum=1,
        ),
    ] = 10
    max_crashes: Annotated[
        int,
        Env(
            "PARTNERSYNC_MAX_CRASHES",
            "attempts in a row that crash or lose their lease (worker killed, out of memory, paused) before an entity goes to the DLQ",
            minimum=1,
        ),
    ] = 5
    # Delay before retry n (seconds), the last repeating: ~25 h over 10 attempts, like the
    # schedules webhook senders use (Standard Webhooks, Svix). Jittered ±20%.
    retry_schedule_s: Annotated[
        tuple[float, ...],
        Env(
            "PARTNERSYNC_RETRY_SCHEDULE_S",
            "delays before each retry, comma-separated seconds (the last repeats); jittered ±20%, Retry-After is the floor",
        ),
    ] = (5, 60, 300, 1800, 3600, 7200, 14400, 28800, 36000)
    endpoint_attempts: Annotated[
        int,
        Env(
            "PARTNERSYNC_ENDPOINT_ATTEMPTS",
            "attempts to deliver a change to an endpoint (on PARTNERSYNC_RETRY_SCHEDULE_S) before it becomes that endpoint's dead letter",
            minimum=1,
        ),
    ] = 10
    endpoint_disable_after_s: Annotated[
        float,
        Env(
            "PARTNERSYNC_ENDPOINT_DISABLE_AFTER_S",
            "seconds an endpoint may fail without one success before it is disabled (its changes still queue)",
            minimum=0.1,
        ),
    ] = 5 * 24 * 3600.0
    senders: Annotated[
        int,
        Env(
            "PARTNERSYNC_SENDERS",
            "sender jobs delivering changes to endpoints at once (each takes a worker while it runs; a second starts when one is saturated)",
            minimum=1,
        ),
    ] = 2
    endpoint_concurrency: Annotated[
        int,
        Env(
            "PARTNERSYNC_ENDPOINT_CONCURRENCY",
            "deliveries in flight to one endpoint per sender job (each to a different entity)",
            minimum=1,
        ),
    ] = 8
    changes_maxlen: Annotated[
        int,
        Env(
            "PARTNERSYNC_CHANGES_MAXLEN",
            "approximate length the change stream is trimmed to (its backlog for a consumer that lags: ~230 bytes an entry)",
            minimum=1,
        ),
    ] = 100_000
    history_max: Annotated[
        int,
        Env(
            "PARTNERSYNC_HISTORY_MAX",
            "transitions kept per entity, the oldest trimmed (the change stream has them all)",
            minimum=1,
        ),
    ] = 100
    retention_days: Annotated[
        float,
        Env(
            "PARTNERSYNC_RETENTION_DAYS",
            "days an entity in a final state stays after its last change (then a tombstone is left, with its externalId link, for PARTNERSYNC_TOMBSTONE_DAYS)",
            minimum=1e-06,
        ),
    ] = 90.0
    resting_days: Annotated[
        float,
        Env(
            "PARTNERSYNC_RESTING_DAYS",
            "days an entity in a resting status (a BOOKED transaction: more could follow, rarely does) stays after its last change, then leaves like a final one",
            minimum=1e-06,
        ),
    ] = 90.0
    tombstone_days: Annotated[
        float,
        Env(
            "PARTNERSYNC_TOMBSTONE_DAYS",
            "days an evicted entity's tombstone and externalId link stay (a late event is judged against them); after that the id is unknown",
            minimum=1e-06,
        ),
    ] = 365.0
    command_retention_days: Annotated[
        float,
        Env(
            "PARTNERSYNC_COMMAND_RETENTION_DAYS",
            "days a finished command's journal record stays after it was submitted (at least PARTNERSYNC_RETENTION_DAYS)",
            minimum=1e-06,
        ),
    ] = 455.0
    http_timeout_s: Annotated[
        float, Env("PARTNERSYNC_HTTP_TIMEOUT_S", "timeout of one partner API call", minimum=0.1)
    ] = 10.0
    clock_interval_s: Annotated[
        float, Env("PARTNERSYNC_CLOCK_INTERVAL_S", "seconds between clock ticks", minimum=0.01)
    ] = 1.0
    sweep_interval_s: Annotated[
        float,
        Env(
            "PARTNERSYNC_SWEEP_INTERVAL_S",
            "seconds between sweeps for missed webhooks, stale entities, transactions",
            minimum=0.1,
        ),
    ] = 30.0
    watch_days: Annotated[
        float,
        Env(
            "PARTNERSYNC_WATCH_DAYS",
            "days an unchanged non-terminal entity is still re-fetched (ever less often: after half its time unchanged, from its kind's threshold on); after that only its webhooks and sweeps update it",
            minimum=1e-06,
        ),
    ] = 30.0
    recheck_budget_per_min: Annotated[
        int,
        Env(
            "PARTNERSYNC_RECHECK_BUDGET_PER_MIN",
            "re-fetches of unchanged entities per partner per minute at most (the rest wait for the next sweep); Tradevest's transaction sweep lists at most as many customers a minute",
            minimum=1,
        ),
    ] = 60
    dlq_retention: Annotated[
        int, Env("PARTNERSYNC_DLQ_RETENTION", "seconds a dead-lettered event is kept", minimum=1)
    ] = 30 * 24 * 3600

    console_host: Annotated[str, Env("PARTNERSYNC_CONSOLE_HOST", "address the console binds")] = (
        "127.0.0.1"
    )
    console_port: Annotated[
        int, Env("PARTNERSYNC_CONSOLE_PORT", "port the console binds", minimum=1, maximum=65535)
    ] = 8100
    console_secret: Annotated[
        str | None,
        Sensitive,
        Env(
            "PARTNERSYNC_CONSOLE_SECRET",
            "key that signs console sessions (required by `console`; `run` makes one)",
        ),
    ] = None
    console_users: Annotated[
        str | None,
        Env(
            "PARTNERSYNC_CONSOLE_USERS",
            "file of console users, one `name role argon2-hash` per line (`partnersync console-user`)",
        ),
    ] = None
    console_auth: Annotated[
        str,
        Env(
            "PARTNERSYNC_CONSOLE_AUTH",
            "password (login form) or proxy (an SSO proxy names the user in a header)",
            choices=("password", "proxy"),
        ),
    ] = "password"
    console_proxy_header: Annotated[
        str,
        Env(
            "PARTNERSYNC_CONSOLE_PROXY_HEADER",
            "proxy mode: the header naming the user (their role comes from the users file)",
        ),
    ] = "X-Forwarded-User"
    console_trusted_proxies: Annotated[
        tuple[str, ...],
        Env(
            "PARTNERSYNC_CONSOLE_TRUSTED_PROXIES",
            "proxy mode: addresses (CIDRs) whose header is believed; others are refused",
            cidrs=True,
        ),
    ] = ("127.0.0.1",)
    console_secure_cookies: Annotated[
        bool,
        Env(
            "PARTNERSYNC_CONSOLE_SECURE_COOKIES",
            "session cookie only over HTTPS (Secure); `run` turns it off for http://127.0.0.1",
        ),
    ] = True

    # each configured partner's own settings, by its module (`PartnerSettings.of`)
    partner_settings: dict[str, Any] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:  # secrets are never rendered, even by accident
        return f"Settings({redact(self)!r})"


P = TypeVar("P", bound="PartnerSettings")


class PartnerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A partner's settings: a Struct of `Annotated[type, Env(...)]` fields."""

    def check(self) -> None:
        """Rules between fields (raise ConfigError naming the variables)."""

    @classmethod
    def of(cls: type[P], settings: Settings) -> P:
        for found in settings.partner_settings.values():
            if isinstance(found, cls):
                return found
        raise ConfigError(f"{cls.__name__}: its partner is not in PARTNERSYNC_PARTNERS")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self)!r})"


@cache
def declared(struct: type[msgspec.Struct]) -> tuple[tuple[str, Any, Env], ...]:
    """(field, its type without the annotations, its Env) of every declared field."""
    found = []
    for field, hint in typing.get_type_hints(struct, include_extras=True).items():
        if typing.get_origin(hint) is not Annotated:
            continue
        base, *extras = typing.get_args(hint)
        env = next((e for e in extras if isinstance(e, Env)), None)
        if env is not None:
            found.append((field, base, env))
    return tuple(found)


def variables(settings: Settings) -> Iterator[tuple[Env, object]]:
    """Every variable of the engine and of the configured partners, with its default."""
    structs: list[type[msgspec.Struct]] = [Settings]
    structs += [s for s in map(_partner_settings, settings.partners) if s is not None]
    for struct in structs:
        defaults = struct()
        for field, _, env in declared(struct):
            yield env, getattr(defaults, field)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _parse(env: Env, kind: Any, raw: str) -> object:
    """`raw` as `kind`: str, int, float, bool, an optional one, or a comma-separated tuple."""
    optional = typing.get_origin(kind) in (typing.Union, types.UnionType) and type(
        None
    ) in typing.get_args(kind)
    if optional:
        if not raw.strip():
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    try:
        if typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            values = tuple(item(s.strip()) for s in raw.split(",") if s.strip())
            if item is float and not values:
                raise ValueError
            return values
        if kind is bool:
            if raw.strip().lower() not in _TRUE + _FALSE:
                raise ValueError
            return raw.strip().lower() in _TRUE
        if kind in (int, float):
            return kind(raw)
    except ValueError:
        what = {bool: "true or false", int: "a whole number", float: "a number"}.get(
            kind, str(kind)
        )
        raise ConfigError(f"{env.name}={raw!r} is not {what}") from None
    return raw


def _check(env: Env, value: object) -> None:
    for item in value if isinstance(value, tuple) else (value,):
        if item is None:
            continue
        if isinstance(item, int | float) and not isinstance(item, bool):
            if env.minimum is not None and item < env.minimum:
                raise ConfigError(f"{env.name}={value!r}: must be at least {env.minimum:g}")
            if env.maximum is not None and item > env.maximum:
                raise ConfigError(f"{env.name}={value!r}: must be at most {env.maximum:g}")
        if env.choices and item not in env.choices:
            raise ConfigError(f"{env.name}={item!r}: use {', '.join(env.choices)}")
        if env.url and (
            urlsplit(str(item)).scheme not in ("http", "https") or not urlsplit(str(item)).hostname
        ):
            raise ConfigError(f"{env.name}={item!r}: not an http(s):// URL")
        if env.cidrs and item != "*":
            try:
                ipaddress.ip_network(str(item), strict=False)
            except ValueError:
                raise ConfigError(f"{env.name}: {item!r} is not an IP address or CIDR") from None


S = TypeVar("S", bound=msgspec.Struct)


def read(struct: type[S], environ: Mapping[str, str], **overrides: object) -> S:
    """`struct` from the variables `environ` sets (the others keep their defaults), every
    value checked."""
    values: dict[str, object] = {}
    for field, kind, env in declared(struct):
        if env.name in environ:
            values[field] = _parse(env, kind, environ[env.name])
    values.update(overrides)
    settings = struct(**values)
    for field, _, env in declared(struct):
        _check(env, getattr(settings, field))
    return settings


RUN_STATE = Path("var") / "run.env"


def write_private(path: Path | str, text: str) -> None:
    """Write a file only its owner may read (it holds secrets or password hashes); an
    older file with looser bits is tightened."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def run_state(directory: Path) -> dict[str, str]:
    """What a `partnersync run` in `directory` set up (Redis URL, generated webhook secret,
    sandbox URLs and keys), as NAME=value lines in var/run.env while it runs."""
    try:
        text = (directory / RUN_STATE).read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.startswith("#"):
            found[name.strip()] = value
    return found


def _from_run(state: dict[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The run's variables less those of every partner the environment sets one of."""
    if not state:
        return state
    names = environ.get("PARTNERSYNC_PARTNERS") or state.get("PARTNERSYNC_PARTNERS")
    modules = tuple(m.strip() for m in names.split(",") if m.strip()) if names else DEFAULT_PARTNERS
    for module in modules:
        try:
            struct = _partner_settings(module)
        except ConfigError:
            continue  # reported when the settings are read
        own = {env.name for _, _, env in declared(struct)} if struct is not None else set()
        if own & set(environ):
            state = {k: v for k, v in state.items() if k not in own}
    return state


def load(
    environ: Mapping[str, str] | None = None, *, state_fallback: bool = True, **overrides: object
) -> Settings:
    """Settings from `environ` (default: os.environ), then explicit overrides; each partner
    named in PARTNERSYNC_PARTNERS reads its own from the same variables.

    Variables the environment does not set come from what a `partnersync run` in this
    directory set up (var/run.env), so a second terminal finds the same Redis, secrets and
    sandbox without flags — unless the environment names its own system: with REDIS_URL
    set nothing is taken from the run, and a partner any of whose variables is set takes
    none of its variables from the run (never half one partner, half another).
    """
    from partnersync import handlers, redisurl  # checked here at start

    environ = os.environ if environ is None else environ
    if state_fallback and "REDIS_URL" not in environ:
        environ = {**_from_run(run_state(Path.cwd()), environ), **environ}
    settings = read(Settings, environ, **overrides)
    if settings.lease_ms < 2000 * settings.http_timeout_s:
        # A lease must outlive a request and its follow-up, or a second worker takes the
        # entity over while the first is still talking to the partner.
        raise ConfigError(
            f"PARTNERSYNC_LEASE_MS={settings.lease_ms} must be at least twice "
            f"PARTNERSYNC_HTTP_TIMEOUT_S ({settings.http_timeout_s} s)"
        )
    handlers.check(settings.handlers)  # its form and module; the pool imports it once
    if settings.command_retention_days < settings.retention_days:
        # the journal would forget a command whose entity is still stored: a re-submit of
        # its intent would find nothing and send it again
        raise ConfigError(
            f"PARTNERSYNC_COMMAND_RETENTION_DAYS={settings.command_retention_days:g} must be at "
            f"least PARTNERSYNC_RETENTION_DAYS ({settings.retention_days:g})"
        )
    if settings.redis_url:
        scheme = settings.redis_url.partition("://")[0]
        if scheme not in ("redis", "rediss", "unix", "redis+sentinel"):
            raise ConfigError(
                f"REDIS_URL: scheme {scheme!r} is not one of redis, rediss, unix, redis+sentinel"
            )
        redisurl.sentinels(settings.redis_url)  # raises ConfigError naming what is wrong
    own = {}
    for module in settings.partners:
        struct = _partner_settings(module)
        if struct is not None:
            own[module] = read(struct, environ)
            own[module].check()
    return msgspec.structs.replace(settings, partner_settings=own)


def partner_module(name: str) -> Any:
    """The PARTNER a partner package exports (partnersync/partner.py reads the rest)."""
    try:
        return importlib.import_module(name).PARTNER
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"PARTNERSYNC_PARTNERS: {name!r} is not a partner package ({exc})"
        ) from None


def _partner_settings(name: str) -> type[PartnerSettings] | None:
    found = partner_module(name).settings
    return found if isinstance(found, type) and issubclass(found, PartnerSettings) else None


def redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        raise ConfigError("REDIS_URL is not set (only `partnersync run` starts its own Redis)")
    return settings.redis_url
