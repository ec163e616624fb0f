"""The `partnersync` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from partnersync import config, replies
from partnersync.config import ConfigError, Settings

if TYPE_CHECKING:
    from partners.saxo.auth import SharedToken, StaticToken


def _json(obj: Any) -> str:
    return msgspec.json.encode(obj).decode()


def _redis(settings: Settings):
    from partnersync import context

    return context.connect(settings)


# -- processes ------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import log
    from partnersync.supervisor import Supervisor

    log.setup(settings.log_level)
    settings = config.load(state_fallback=False)
    return Supervisor(settings, sandbox=not args.no_sandbox, workers=args.workers).run()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    config.redis_url(settings)
    uvicorn.run(
        "receiver.app:app_from_env",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=settings.web_concurrency,
        log_level="warning",
        access_log=False,
    )
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from jobs import worker
    from partnersync import log

    log.setup(settings.log_level)
    config.redis_url(settings)
    if args.single or args.burst:
        worker.run_worker(settings, burst=args.burst)
        return 0
    return worker.run_pool(settings, args.n)


def cmd_clock(args: argparse.Namespace, settings: Settings) -> int:
    from jobs import clock
    from partnersync import log

    log.setup(settings.log_level)
    config.redis_url(settings)
    return clock.run_clock(settings)


def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    uvicorn.run(
        "sandbox.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )
    return 0


def cmd_register(args: argparse.Namespace, settings: Settings) -> int:
    from partners.tradevest.registration import RegistrationError, register
    from partnersync.errors import PartnerError, Retryable

    try:
        report = asyncio.run(register(settings, args.url, check=args.check))
    except RegistrationError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    except (PartnerError, Retryable) as exc:
        print(f"partnersync: Tradevest at {settings.tradevest_base_url}: {exc}", file=sys.stderr)
        return 1
    drift = [d for d in report if d.problem != "ok"]
    for d in report:
        verb = (
            "ok"
            if d.problem == "ok"
            else (f"drift: {d.problem}" if args.check else f"registered ({d.problem})")
        )
        print(f"{d.event_type:<45} {verb:<22} {d.url}")
    if args.check and drift:
        return 1
    return 0


# -- entities -------------------------------------------------------------------------


def _entity_row(record: Any) -> dict[str, Any]:
    return {
        "key": record.key,
        "partner": record.partner,
        "kind": record.kind,
        "id": record.id,
        "externalId": record.externalId,
        "status": record.status,
        "modifiedOn": record.modifiedOn,
        "updatedAt": record.updatedAt,
        "knownStatus": record.knownStatus,
        "purged": record.purged,
    }


def cmd_entities_list(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import store

    records = store.scan(_redis(settings), partner=args.partner, kind=args.kind, status=args.status)
    if args.json:
        for r in records:
            print(_json(_entity_row(r)))
        return 0
    print(f"{'KEY':<60} {'STATUS':<12} {'MODIFIED ON':<26} EXTERNAL ID")
    for r in records:
        modified = r.modifiedOn.isoformat() if r.modifiedOn else "-"
        flag = "" if r.knownStatus else " (unknown status)"
        print(f"{r.key:<60} {r.status:<12} {modified:<26} {r.externalId or '-'}{flag}")
    print(f"{len(records)} entities")
    return 0


def _rendered_data(record: Any, settings: Settings, *, raw: bool) -> Any:
    """The partner's data as the kind's schema reads it, personal data masked; `raw`
    shows the stored JSON as the partner sent it."""
    from partnersync import partner
    from schemas.sensitive import redact

    if raw or bytes(record.data) == b"null":
        return msgspec.json.decode(record.data)
    kind = partner.load(settings.partners).kinds.get((record.partner, record.kind))
    if kind is None or kind.decoder is None:
        return {"(fields)": "not rendered: no schema for this kind; use --raw"}
    try:
        return redact(kind.decoder.decode(record.data))
    except msgspec.DecodeError:
        return {"(fields)": "not rendered: does not match the schema; use --raw"}


def cmd_entities_show(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import store

    connection = _redis(settings)
    record = store.load(connection, [args.key])[0]
    if record is None:
        print(f"partnersync: no entity {args.key!r}", file=sys.stderr)
        return 1
    history = store.history(connection, args.key)
    data = _rendered_data(record, settings, raw=args.raw)
    if args.json:
        print(
            _json(
                {
                    "entity": msgspec.structs.replace(
                        record, data=msgspec.Raw(_json(data).encode())
                    ),
                    "history": history,
                }
            )
        )
        return 0
    row = _entity_row(record)
    for name, value in row.items():
        print(f"{name:<12} {value}")
    print(f"{'data':<12} {_json(data)}")
    if record.validationError:
        print(
            f"{'validation':<12} {record.validationError.errorType}: {record.validationError.description}"
        )
    for rejection in record.rejections:
        ve = rejection.validationError
        print(
            f"{'rejected':<12} {rejection.at.isoformat()} {ve.errorType if ve else '?'}: {ve.description if ve else ''}"
        )
    print("history:")
    for t in history:
        print(
            f"  {t.at.isoformat()}  {t.from_ or '∅'} → {t.to}  (modifiedOn {t.modifiedOn}, {t.decision}, events {len(t.source)})"
        )
    return 0


# -- dead-letter queue --------------------------------------------------------------------


def _dlq_filter(args: argparse.Namespace):
    from datetime import UTC, datetime

    from partnersync import dlq

    now = datetime.now(UTC)
    selected = dlq.parse_filter(args.filter or "", now)
    return msgspec.structs.replace(
        selected,
        kind=args.kind or selected.kind,
        error=args.error or selected.error,
        since=dlq.parse_since(args.since, now) if args.since else selected.since,
        reason=args.reason or selected.reason,
    )


def cmd_dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import dlq

    try:
        selected = _dlq_filter(args)
    except ValueError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    letters = [letter for letter in dlq.all_letters(_redis(settings)) if selected.matches(letter)]
    if args.json:
        for letter in letters:
            print(_json({
                "id": letter.id, "at": letter.at, "reason": letter.reason, "entity": letter.entity,
                "error": letter.error, "attempts": letter.attempts, "events": len(letter.events),
            }))  # fmt: skip
        return 0
    for letter in letters:
        print(
            f"{letter.id}  {letter.at.isoformat()}  {letter.reason:<9} {letter.entity:<55} {letter.error[:80]}"
        )
    print(f"{len(letters)} dead letters")
    return 0


def cmd_dlq_show(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import dlq

    letter = dlq.get(_redis(settings), args.id)
    if letter is None:
        print(f"partnersync: no dead letter {args.id!r}", file=sys.stderr)
        return 1
    print(_json(letter) if args.json else msgspec.json.format(_json(letter), indent=2))
    return 0


def cmd_dlq_replay(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import dlq, replay

    connection = _redis(settings)
    try:
        selected = _dlq_filter(args)
    except ValueError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    filtering = selected != dlq.Filter()
    if not args.ids and not args.all and not filtering:
        print(
            "partnersync: dlq replay needs IDs, --all, or a filter (--kind/--error/--since/--reason/--filter)",
            file=sys.stderr,
        )
        return 2
    ids = args.ids or [
        letter.id for letter in dlq.all_letters(connection) if selected.matches(letter)
    ]
    summary = replay.replay(connection, settings, ids, progress=sys.stderr)
    shown = summary.as_dict()
    print(_json(shown) if args.json else ", ".join(f"{k}: {v}" for k, v in shown.items()))
    if summary.interrupted:
        print(
            "partnersync: replay interrupted; letters not reached are still in the DLQ, "
            "the requeued ones' entities are due and will be reconciled",
            file=sys.stderr,
        )
        return 130
    return 0 if summary.ok else 1


def cmd_dlq_purge(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import dlq

    connection = _redis(settings)
    ids = dlq.ids(connection)
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                f"partnersync: refusing to purge {len(ids)} dead letters without --yes",
                file=sys.stderr,
            )
            return 2
        if input(f"Purge {len(ids)} dead letters? [y/N] ").strip().lower() != "y":
            return 1
    for dlq_id in ids:
        dlq.remove(connection, dlq_id)
    print(f"purged {len(ids)} dead letters")
    return 0


# -- commands --------------------------------------------------------------------------


def cmd_command_submit(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import commands, partner, workqueue
    from partnersync.context import connect
    from schemas import strict

    known = partner.load(settings.partners).commands
    kind = known.get(args.kind)
    if kind is None:
        print(
            f"partnersync: unknown command {args.kind!r}; known: {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        return 2
    raw = args.data
    if raw.startswith("@"):
        try:
            with open(raw[1:], "rb") as f:
                raw = f.read()
        except OSError as exc:  # missing file, a directory, no permission
            print(f"partnersync: --data {args.data}: {exc.strerror}", file=sys.stderr)
            return 2
    try:
        data = strict.decode(raw, kind.data)
    except strict.InputError as exc:
        print(f"partnersync: {args.kind}: {exc}", file=sys.stderr)
        return 2
    connection = connect(settings)
    wq = workqueue.WorkQueue.from_settings(connection, settings)
    try:
        record, created = commands.submit(
            connection,
            wq,
            args.kind,
            data,
            intent_key=args.key,
            requestor_id=args.requestor,
            settings=settings,
        )
    except commands.CommandError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    if args.wait:
        record = commands.wait(connection, record.externalId, args.wait) or record
    if args.json:
        print(
            _json(
                {
                    "externalId": record.externalId,
                    "created": created,
                    "state": record.state,
                    "entityId": record.entityId,
                }
            )
        )
    else:
        verb = "submitted" if created else "already submitted (nothing sent again)"
        print(
            f"{record.externalId}  {verb}  state {record.state}"
            + (f"  entity {record.entityId}" if record.entityId else "")
        )
    return 0 if record.state != "REJECTED" else 1


def cmd_command_show(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import commands, keys, partner, store
    from partnersync.context import connect

    connection = connect(settings)
    record = commands.load(connection, args.external_id)
    if record is None:
        print(f"partnersync: no command with externalId {args.external_id!r}", file=sys.stderr)
        return 1
    kind = partner.load(settings.partners).commands[record.kind]
    entity_key = (
        keys.entity_key(kind.partner, kind.entity_kind, record.entityId)
        if record.entityId
        else store.by_external_id(connection, kind.partner, record.externalId)
    )
    entity = store.load(connection, [entity_key])[0] if entity_key else None
    # The body may hold personal data (names, IBANs): it is never printed.
    story = {
        "externalId": record.externalId, "partner": record.partner, "kind": record.kind,
        "intentKey": record.intentKey, "state": record.state, "attempts": record.attempts,
        "createdAt": record.createdAt, "sentAt": record.sentAt, "updatedAt": record.updatedAt,
        "entityKey": entity_key, "entityStatus": entity.status if entity else None,
        "validationError": entity.validationError if entity else None,
        "rejectedUpdates": entity.rejections if entity else [],
        "rejection": record.rejection, "history": record.history,
    }  # fmt: skip
    if args.json:
        print(_json(story))
        return 0
    for name in (
        "externalId",
        "kind",
        "intentKey",
        "state",
        "attempts",
        "createdAt",
        "sentAt",
        "entityKey",
        "entityStatus",
    ):
        print(f"{name:<15} {story[name] if story[name] is not None else '-'}")
    if record.rejection:
        r = record.rejection
        print(f"{'rejected':<15} {r.status} {r.errorCode or ''} {r.message}")
        for detail in r.details:
            print(f"{'':<15} {detail}")
    if entity and entity.validationError:
        print(
            f"{'invalid':<15} {entity.validationError.errorType}: {entity.validationError.description}"
        )
    print("history:")
    for attempt in record.history:
        print(f"  {attempt.at.isoformat()}  {attempt.action:<7} {attempt.outcome}")
    return 0


def cmd_command_list(args: argparse.Namespace, settings: Settings) -> int:
    from partnersync import commands, keys
    from partnersync.context import connect

    connection = connect(settings)
    ids = replies.texts(connection.zrange(keys.COMMANDS, 0, -1))
    records = [commands.load(connection, i) for i in ids]
    rows = [r for r in records if r is not None and (not args.state or r.state == args.state)]
    for r in rows:
        if args.json:
            print(_json({"externalId": r.externalId, "kind": r.kind, "state": r.state, "attempts": r.attempts,
                         "entityId": r.entityId, "createdAt": r.createdAt}))  # fmt: skip
        else:
            print(
                f"{r.externalId}  {r.kind:<18} {r.state:<12} attempts {r.attempts}  {r.entityId or '-'}"
            )
    if not args.json:
        print(f"{len(rows)} commands")
    return 0


# -- saxo -----------------------------------------------------------------------------


def _signup(connection: Any, ref: str) -> tuple[str, str]:
    """(ClientKey, SignUpId) of a signup command, by its externalId or its ClientKey."""
    from partnersync import commands, keys

    record = commands.load(connection, ref)
    if record is None:
        for xid in connection.zrange(keys.COMMANDS, 0, -1):
            candidate = commands.load(connection, xid.decode())
            if candidate and candidate.kind == "signup" and candidate.entityId == ref:
                record = candidate
                break
    if record is None or record.kind != "signup" or record.result is None:
        raise ValueError(
            f"no accepted signup command for {ref!r} (give its externalId or ClientKey)"
        )
    return record.result["ClientKey"], record.result["SignUpId"]


def cmd_saxo(args: argparse.Namespace, settings: Settings) -> int:
    import base64
    from pathlib import Path

    from partners.saxo import signups
    from schemas.saxo.signups import SIGNUP_DOCUMENT_TYPES, Attachment, AttachmentsRequest

    connection = _redis(settings)
    try:
        if args.sub == "options":
            allowed = signups.options(connection, settings, refresh=args.refresh)
            if args.json:
                print(_json(allowed))
            else:
                for name, values in sorted(allowed.items()):
                    print(f"{name:<28} {', '.join(values)}")
            return 0
        if args.sub == "cash-transfers":
            return _cash_transfers(args, settings)
        client_key, signup_id = _signup(connection, args.signup)
        if args.sub == "attach":
            if args.type not in SIGNUP_DOCUMENT_TYPES:
                print(
                    f"partnersync: --type {args.type!r}; allowed: {', '.join(sorted(SIGNUP_DOCUMENT_TYPES))}",
                    file=sys.stderr,
                )
                return 2
            documents = [
                Attachment(Data=base64.b64encode(Path(f).read_bytes()).decode(), FileName=Path(f).name,
                           DocumentType=args.type, Title=args.title)
                for f in args.files
            ]  # fmt: skip
            signups.attach(connection, settings, signup_id, AttachmentsRequest(Documents=documents))
            print(f"attached {len(documents)} document(s) to signup {signup_id}")
        elif args.sub == "complete":
            signups.complete(connection, settings, signup_id)
            print(f"signup {signup_id}: application complete")
        elif args.sub == "verify":
            print(signups.verify(connection, settings, client_key, args.redirect_url))
        elif args.sub == "pdf":
            Path(args.output).write_bytes(
                signups.onboarding_pdf(connection, settings, client_key, args.type)
            )
            print(f"wrote {args.output}")
        return 0
    except (ValueError, OSError) as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2


def _cash_transfers(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from partners.saxo.client import SaxoClient

    params = {
        name: value
        for name, value in (
            ("ExternalReference", args.external_reference), ("AccountKey", args.account_key),
            ("ClientKey", args.client_key), ("FromDateTime", args.from_), ("ToDateTime", args.to),
        )
        if value
    }  # fmt: skip

    async def collect() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=settings.http_timeout_s) as http:
            client = SaxoClient(settings, http, _saxo_tokens(settings))
            return [item async for item in client.pages("/atr/v1/partner/cashtransfers", **params)]

    rows = asyncio.run(collect())
    for row in rows:
        if args.json:
            print(_json(row))
        else:
            print(f"{row.get('TransactionId'):<10} {row.get('TransferStatus'):<11} {row.get('Amount')!s:>12} "
                  f"{row.get('Currency')}  {row.get('FromAccount')} → {row.get('ToAccount')}  {row.get('ExternalReference') or '-'}")  # fmt: skip
    if not args.json:
        print(f"{len(rows)} cash transfers")
    return 0


def _saxo_tokens(settings: Settings) -> StaticToken | SharedToken:
    from partners.saxo import auth as saxo_auth

    static = settings.saxo_auth == "static"
    return saxo_auth.provider(settings, None if static else _redis(settings))


def cmd_saxo_auth(args: argparse.Namespace, settings: Settings) -> int:
    """Show the deployment's Saxo token (expiries only, never the token), or set the refresh
    token of a new one-time authorization (SAXO_AUTH=code)."""
    import time

    from partners.saxo import auth as saxo_auth

    if settings.saxo_auth == "static":
        print("SAXO_AUTH=static: the token is SAXO_TOKEN; nothing is kept in Redis")
        return 0
    store = saxo_auth.SaxoToken(_redis(settings), settings)
    if args.refresh_token:
        store.store(
            saxo_auth.Token(access_token="", expires_at=0, refresh_token=args.refresh_token)
        )
        print("refresh token stored; the next call obtains an access token with it")
    token = store.load()
    now = time.time()
    if token is None:
        print(f"SAXO_AUTH={settings.saxo_auth}: no token yet (the first call obtains one)")
        return 0
    refresh = f"{token.refresh_expires_at - now:.0f} s" if token.refresh_expires_at else "unknown"
    print(
        f"SAXO_AUTH={settings.saxo_auth}: access token expires in {token.expires_at - now:.0f} s; "
        f"refresh token: {'present' if token.refresh_token else 'none'}, expires in {refresh}"
    )
    return 0


# -- reports ---------------------------------------------------------------------------


def cmd_report_unsettled(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from partners.saxo import unsettled
    from partners.saxo.client import SaxoClient

    client_key = args.client_key or settings.saxo_client_key
    if not client_key:
        print("partnersync: --client-key is required (or set SAXO_CLIENT_KEY)", file=sys.stderr)
        return 2

    async def run():
        async with httpx.AsyncClient(timeout=settings.http_timeout_s) as http:
            return await unsettled.build(
                SaxoClient(settings, http, _saxo_tokens(settings)), client_key, args.by
            )

    report = asyncio.run(run())  # a partner error is answered by main()
    print(_json(report.to_builtins()) if args.json else unsettled.render(report))
    return 3 if report.inconsistencies else 0


def cmd_reconcile_transactions(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import date, timedelta

    import httpx

    from partners.saxo import transactions
    from partners.saxo.client import SaxoClient

    client_key = args.client_key or settings.saxo_client_key
    if not client_key:
        print("partnersync: --client-key is required (or set SAXO_CLIENT_KEY)", file=sys.stderr)
        return 2
    try:
        start, end = date.fromisoformat(args.from_), date.fromisoformat(args.to)
    except ValueError as exc:
        print(f"partnersync: --from/--to: {exc}", file=sys.stderr)
        return 2
    connection = _redis(settings)

    async def run():
        async with httpx.AsyncClient(timeout=settings.http_timeout_s) as http:
            return await transactions.reconcile(
                SaxoClient(settings, http, _saxo_tokens(settings)), connection, client_key=client_key, start=start, end=end,
                grace=timedelta(seconds=args.grace_s),
            )  # fmt: skip

    result = asyncio.run(run())  # a partner error is answered by main()
    print(_json(result.to_builtins()) if args.json else transactions.render(result))
    return 0 if not (result.missing or result.unexpected or result.invalid) else 3


# -- status --------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from rq import Queue, Worker

    from partnersync import keys, workqueue

    connection = _redis(settings)
    queue = Queue(settings.queue, connection=connection)
    now = workqueue.now_ms()
    # per-status counts kept by the store on every transition (no scan of the entities)
    by_kind: Counter[tuple[str, str, str]] = Counter()
    for name, count in connection.hgetall(keys.ENTITY_COUNTS).items():
        if int(count) > 0:
            by_kind[tuple(name.decode().split(":", 2))] = int(count)
    last = {k.decode(): int(v) for k, v in connection.hgetall(keys.LAST_DELIVERY).items()}
    counters = {k.decode(): int(v) for k, v in connection.hgetall(keys.COUNTERS).items()}
    report = {
        "redis": config.redis_url(settings),
        "queue": {"name": settings.queue, "queued": queue.count,
                  "started": queue.started_job_registry.count, "failed": queue.failed_job_registry.count},
        "workers": len(Worker.all(connection=connection)),
        "drainers": connection.zcount(keys.DRAINERS, now, "+inf"),
        "due": connection.zcount(keys.DIRTY, "-inf", now),
        "dirty": connection.zcard(keys.DIRTY),
        "dlq": connection.zcard(keys.DLQ),
        "attention": [k.decode() for k in connection.zrange(keys.ATTENTION, 0, -1)],
        "clock": {k.decode(): (now - int(v)) / 1000 for k, v in connection.hgetall(keys.CLOCK).items()
                  if k.decode() != "undelivered-webhooks"},
        "lastDelivery": {k: (now - v) / 1000 for k, v in last.items()},
        "deliveries": counters,
        "entities": [{"partner": p, "kind": k, "status": s, "count": c}
                     for (p, k, s), c in sorted(by_kind.items())],
    }  # fmt: skip
    if args.json:
        print(_json(report))
        return 0
    q = report["queue"]
    print(f"redis     {report['redis']}")
    print(
        f"queue     {q['name']}: {q['queued']} queued, {q['started']} started, {q['failed']} failed"
    )
    print(f"workers   {report['workers']} (drain jobs live: {report['drainers']})")
    print(f"backlog   {report['due']} entities due, {report['dirty']} pending in all")
    print(f"dlq       {report['dlq']} dead letters")
    for key in report["attention"]:
        print(f"attention {key} (final state needs a human)")
    for task, age in sorted(report["clock"].items()):
        print(f"clock     {task:<40} last ran {age:.0f}s ago")
    for event, age in sorted(report["lastDelivery"].items()):
        print(f"delivery  {event:<40} last {age:.0f}s ago")
    for row in report["entities"]:
        print(f"entities  {row['partner']}:{row['kind']:<28} {row['status']:<12} {row['count']}")
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.chaos:
        import subprocess

        env = dict(__import__("os").environ, CHAOS_SECONDS=str(args.seconds))
        return subprocess.call(
            [sys.executable, "-m", "pytest", "-m", "chaos", "-s", "-q", "tests/test_chaos.py"],
            env=env,
        )
    from partnersync.bench import run

    try:
        return run.main(quick=args.quick, as_json=args.json)
    except run.BenchError as exc:
        print(f"partnersync: bench: {exc}", file=sys.stderr)
        return 2


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    print("| variable | default | meaning |\n|---|---|---|")
    for name, field, meaning in config.VARIABLES:
        default = getattr(config.DEFAULTS, field)
        if isinstance(default, tuple):
            default = ",".join(
                str(int(d) if isinstance(d, float) and d.is_integer() else d) for d in default
            )
        shown = f"`{default}`" if default not in (None, "") else "(unset)"
        print(f"| `{name}` | {shown} | {meaning} |")
    return 0


# -- parser ---------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    p = argparse.ArgumentParser(prog="partnersync", description=__doc__)
    try:
        p.add_argument(
            "--version", action="version", version=f"partnersync {version('partnersync')}"
        )
    except PackageNotFoundError:  # run from a checkout without installing
        p.add_argument("--version", action="version", version="partnersync (not installed)")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="everything for local use (embedded Redis, sandbox)")
    run.add_argument("--no-sandbox", action="store_true", help="do not start the sandbox partners")
    run.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="the receiver (honours PORT and WEB_CONCURRENCY)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="a pool of RQ worker processes")
    worker.add_argument("-n", type=int, default=2, help="worker processes (default 2)")
    worker.add_argument("--single", action="store_true", help="one worker, no supervisor")
    worker.add_argument(
        "--burst", action="store_true", help="one worker; exit when the queue is empty"
    )
    worker.set_defaults(func=cmd_worker)

    clock = sub.add_parser("clock", help="pollers and sweepers")
    clock.set_defaults(func=cmd_clock)

    sandbox = sub.add_parser("sandbox", help="the fake partners")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8900)
    sandbox.set_defaults(func=cmd_sandbox)

    reg = sub.add_parser("register-webhooks", help="register every event type at Tradevest")
    reg.add_argument("--url", required=True, help="the receiver's public base URL (https://…)")
    reg.add_argument("--check", action="store_true", help="report drift, change nothing")
    reg.set_defaults(func=cmd_register)

    entities = sub.add_parser("entities", help="the entity store").add_subparsers(
        dest="sub", required=True
    )
    el = entities.add_parser("list", help="stored entities")
    el.add_argument("--partner")
    el.add_argument("--kind")
    el.add_argument("--status")
    el.add_argument("--json", action="store_true", help="one JSON object per line")
    el.set_defaults(func=cmd_entities_list)
    es = entities.add_parser("show", help="one entity and its history")
    es.add_argument("key", help="{partner}:{kind}:{id}")
    es.add_argument("--json", action="store_true")
    es.add_argument(
        "--raw", action="store_true", help="the partner's data as stored, personal data included"
    )
    es.set_defaults(func=cmd_entities_show)

    dlq = sub.add_parser("dlq", help="the dead-letter queue").add_subparsers(
        dest="sub", required=True
    )

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--kind", help="entity kind, e.g. transfer or saxo:cash-transfer")
        p.add_argument("--error", help="substring of the error")
        p.add_argument("--since", help="30m, 2h, 7d or an ISO date-time")
        p.add_argument("--reason", choices=["reconcile", "handler", "command"])
        p.add_argument("--filter", help="the same as one string: kind=…,error=…,since=…,reason=…")

    dl = dlq.add_parser("list")
    filters(dl)
    dl.add_argument("--json", action="store_true")
    dl.set_defaults(func=cmd_dlq_list)
    ds = dlq.add_parser("show")
    ds.add_argument("id")
    ds.add_argument("--json", action="store_true")
    ds.set_defaults(func=cmd_dlq_show)
    dr = dlq.add_parser("replay")
    dr.add_argument("ids", nargs="*")
    dr.add_argument("--all", action="store_true")
    filters(dr)
    dr.add_argument("--json", action="store_true")
    dr.set_defaults(func=cmd_dlq_replay)
    dp = dlq.add_parser("purge")
    dp.add_argument("--yes", action="store_true", help="do not ask")
    dp.set_defaults(func=cmd_dlq_purge)

    command = sub.add_parser("command", help="outbound creates, never booked twice").add_subparsers(
        dest="sub", required=True
    )
    cs = command.add_parser("submit", help="journal and send a create")
    cs.add_argument(
        "kind",
        help="natural-person, legal-entity, customer, customer-product, onboarding, offboarding, document, transfer, traditional-order, digital-order",
    )
    cs.add_argument(
        "--data",
        required=True,
        help="the create body as JSON, or @file.json (no externalId: it is derived)",
    )
    cs.add_argument("--key", help="your idempotency key for this intent (recommended)")
    cs.add_argument("--requestor", help="Requestor-ID (the acting natural person) where required")
    cs.add_argument(
        "--wait", type=float, default=0, metavar="SECONDS", help="wait for ACCEPTED/REJECTED"
    )
    cs.add_argument("--json", action="store_true")
    cs.set_defaults(func=cmd_command_submit)
    csh = command.add_parser("show", help="the whole story of one command")
    csh.add_argument("external_id")
    csh.add_argument("--json", action="store_true")
    csh.set_defaults(func=cmd_command_show)
    cl = command.add_parser("list", help="journaled commands")
    cl.add_argument("--state", choices=["PENDING_SEND", "SENT", "UNKNOWN", "ACCEPTED", "REJECTED"])
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=cmd_command_list)

    saxo = sub.add_parser("saxo", help="Saxo signups and cash transfers").add_subparsers(
        dest="sub", required=True
    )
    so = saxo.add_parser("options", help="signup options (cached)")
    so.add_argument("--refresh", action="store_true")
    so.add_argument("--json", action="store_true")
    sa = saxo.add_parser("attach", help="upload documents to a signup")
    sa.add_argument("signup", help="the signup command's externalId, or its ClientKey")
    sa.add_argument("files", nargs="+")
    sa.add_argument("--type", required=True, help="DocumentType, e.g. ProofOfIdentity")
    sa.add_argument("--title")
    sc = saxo.add_parser("complete", help="all documents are in: process the application now")
    sc.add_argument("signup")
    sv = saxo.add_parser(
        "verify", help="start external identity verification; prints the IdentificationUrl"
    )
    sv.add_argument("signup")
    sv.add_argument("--redirect-url", required=True)
    sp = saxo.add_parser("pdf", help="save the onboarding PDF")
    sp.add_argument("signup")
    sp.add_argument("--type", required=True, choices=["Switzerland501", "Switzerland901"])
    sp.add_argument("-o", "--output", required=True)
    sl = saxo.add_parser("cash-transfers", help="list partner cash transfers (all pages)")
    sl.add_argument("--external-reference")
    sl.add_argument("--account-key")
    sl.add_argument("--client-key")
    sl.add_argument("--from", dest="from_", help="FromDateTime (ISO)")
    sl.add_argument("--to", help="ToDateTime (ISO)")
    sl.add_argument("--json", action="store_true")
    for saxo_command in (so, sa, sc, sv, sp, sl):
        saxo_command.set_defaults(func=cmd_saxo)
    st = saxo.add_parser(
        "auth", help="the deployment's Saxo token: expiries, or a new refresh token"
    )
    st.add_argument("--refresh-token", help="the refresh token of a new one-time authorization")
    st.set_defaults(func=cmd_saxo_auth)

    report = sub.add_parser(
        "report", help="reports from the partners' history services"
    ).add_subparsers(dest="sub", required=True)
    ru = report.add_parser(
        "unsettled", help="Saxo unsettled amounts: what is owed per currency and value date"
    )
    ru.add_argument("--client-key", help="default: SAXO_CLIENT_KEY (the white-label / IB owner)")
    ru.add_argument(
        "--by", default="currency", choices=["currency", "exchange", "amount-type", "instrument"]
    )
    ru.add_argument("--json", action="store_true")
    ru.set_defaults(func=cmd_report_unsettled)

    recon = sub.add_parser(
        "reconcile", help="compare partner records with what partnersync did"
    ).add_subparsers(dest="sub", required=True)
    rt = recon.add_parser(
        "transactions", help="Saxo Cash Transfer bookings vs the cash transfers we sent"
    )
    rt.add_argument("--from", dest="from_", required=True, help="YYYY-MM-DD")
    rt.add_argument("--to", required=True, help="YYYY-MM-DD")
    rt.add_argument("--client-key", help="default: SAXO_CLIENT_KEY")
    rt.add_argument(
        "--grace-s",
        type=float,
        default=600,
        help="a transfer younger than this may lack its booking",
    )
    rt.add_argument("--json", action="store_true")
    rt.set_defaults(func=cmd_reconcile_transactions)

    status = sub.add_parser("status", help="is it healthy? one screen")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    bench = sub.add_parser("bench", help="measure against baselines run on this machine now")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--quick", action="store_true", help="a short run (figures are rougher)")
    bench.add_argument(
        "--chaos", action="store_true", help="run the chaos suite instead (from a checkout)"
    )
    bench.add_argument("--seconds", type=int, default=180, help="chaos duration")
    bench.set_defaults(func=cmd_bench)

    cfg = sub.add_parser("config", help="print the configuration table (markdown)")
    cfg.set_defaults(func=cmd_config)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = config.load()
        return int(args.func(args, settings) or 0)
    except ConfigError as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`partnersync entities list | head`): not an error; stdout is
        # pointed at devnull so the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        import httpx
        from redis.exceptions import ConnectionError as RedisConnectionError

        from partnersync.errors import NotFound, PartnerError, Retryable

        if isinstance(exc, PartnerError | Retryable | NotFound | httpx.HTTPError):
            # a partner's refusal or an unreachable partner is an answer, not a crash
            print(f"partnersync: {args.command}: partner error: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, RedisConnectionError):
            print(
                f"partnersync: cannot reach Redis at {settings.redis_url}: {exc}", file=sys.stderr
            )
            return 3
        raise
