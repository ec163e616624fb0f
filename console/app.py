"""The console's Starlette app: login, search by any id, entity pages with their timeline
(live over server-sent events), dead letters (replay, purge), the audit stream.

Every page needs a signed-in user (a session cookie signed with PARTNERSYNC_CONSOLE_SECRET,
or in proxy mode a header from a trusted address). Every POST carries the session's CSRF
token. Revealing personal data, replaying and purging are operator actions, each written
to the audit stream. Pages read the engine's indexes: none scans the entity store.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import json
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import redis
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from console import audit, charts, timeline, users
from partnersync import (
    commands,
    config,
    dlq,
    endpoints,
    find,
    health,
    inbox,
    keys,
    outbound,
    paging,
    partner,
    redisurl,
    replay,
    replies,
    store,
    workqueue,
)
from partnersync.config import ConfigError, Settings
from partnersync.masking import masked_data, raw_data
from schemas.commands import CommandState
from schemas.store import EntityRecord

HERE = Path(__file__).parent
SESSION_HOURS = 8
LOGIN_FAILURES = 5  # wrong passwords per name, and per source address, in a window…
LOGIN_WINDOW_S = 300  # …after which sign-ins are refused (429) until the window ends


class Console:
    def __init__(self, settings: Settings, connection: redis.Redis, streams: aioredis.Redis):
        if not settings.console_secret:
            raise ConfigError("PARTNERSYNC_CONSOLE_SECRET is not set (it signs the sessions)")
        if not settings.console_users:
            raise ConfigError(
                "PARTNERSYNC_CONSOLE_USERS is not set: nobody could sign in "
                "(`partnersync console-user NAME --role operator --file F` makes one)"
            )
        self.settings = settings
        self.connection = connection
        self.streams = streams  # asyncio client: the live pages' blocking XREADs
        self.catalog = partner.load(settings.partners)
        self.outbox = outbound.Outbox(connection, lease_ms=settings.lease_ms,
                                      attempts=settings.endpoint_attempts,
            senders=settings.senders)  # fmt: skip
        self.users = users.read(settings.console_users)
        self.users_read = _mtime(settings.console_users)
        self.proxies = [
            ipaddress.ip_network(c, strict=False) for c in settings.console_trusted_proxies
        ]
        self.templates = _templates(self.catalog)
        # the system page's recent snapshots (this process's memory): rates and sparklines
        self.samples: collections.deque[dict[str, Any]] = collections.deque(maxlen=120)

    # -- who is asking ---------------------------------------------------------------------

    def user(self, request: Request) -> users.User | None:
        if self.settings.console_auth == "proxy":
            host = request.client.host if request.client else ""
            try:
                trusted = any(ipaddress.ip_address(host) in net for net in self.proxies)
            except ValueError:
                trusted = False
            proxied = request.headers.get(self.settings.console_proxy_header, "")
            known = self.known_users()
            if not trusted or proxied not in known:
                return None
            return users.User(proxied, known[proxied][0])
        name, role = request.session.get("user"), request.session.get("role")
        sid = request.session.get("sid")
        if not name or not sid:
            return None
        known = self.known_users()
        if name not in known or known[name][0] != role:
            return None  # removed or demoted since signing in: signed out
        if not self.connection.exists(keys.console_session(str(sid))):
            return None  # signed out (a copy of the cookie no longer opens anything)
        return users.User(str(name), str(role))

    def known_users(self) -> dict[str, tuple[str, str]]:
        """The users file as it is now: `console-user` changes take effect without a
        restart (read again when the file changed)."""
        changed = _mtime(self.settings.console_users)
        if changed != self.users_read:
            self.users, self.users_read = users.read(self.settings.console_users), changed
        return self.users

    def need(self, request: Request, *, operator: bool = False) -> users.User:
        user = self.user(request)
        if user is None:
            raise HTTPException(401)
        if operator and not user.operator:
            raise HTTPException(403, "an operator action: your role is viewer")
        return user

    def csrf(self, request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(24)
        return str(token)

    async def form(self, request: Request) -> dict[str, str]:
        """The POSTed form, after its CSRF token matched the session's."""
        form = await request.form()
        sent = str(form.get("csrf", ""))
        expected = request.session.get("csrf", "")
        if not expected or not secrets.compare_digest(sent, str(expected)):
            raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page")
        fields = {k: str(v) for k, v in form.items()}
        picked = [str(v) for v in form.getlist("pick")]  # the letters ticked on the page
        if picked:
            fields["pick"] = " ".join(picked)
        return fields

    def page(self, request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        context.update(request=request, me=self.user(request), csrf=self.csrf(request))
        response = self.templates.TemplateResponse(request, name, context, status_code=status_code)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
        return response

    # -- sign in and out -------------------------------------------------------------------

    def login_form(self, request: Request) -> Response:
        return self.page(request, "login.html", next=request.query_params.get("next", "/"))

    async def login(self, request: Request) -> Response:
        form = await self.form(request)
        name = form.get("name", "")
        target = form.get("next", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"  # never off this site
        source = request.client.host if request.client else "unknown"
        counters = [keys.console_login_failures(f"name:{name}"),
                    keys.console_login_failures(f"addr:{source}")]  # fmt: skip
        failures = [int(n or 0) for n in self.connection.mget(counters)]
        if max(failures) >= LOGIN_FAILURES:
            wait = max(1, max(int(self.connection.ttl(k)) for k in counters))
            response = self.page(request, "login.html", 429, next=target,
                                 error=f"too many failed sign-ins: try again in {wait} s")  # fmt: skip
            response.headers["Retry-After"] = str(wait)
            return response
        known = await run_in_threadpool(self.known_users)
        user = await run_in_threadpool(users.verify, known, name, form.get("password", ""))
        if user is None:
            pipe = self.connection.pipeline()
            for key in counters:
                pipe.incr(key)
                pipe.expire(key, LOGIN_WINDOW_S, nx=True)
            pipe.execute()
            await run_in_threadpool(audit.record, self.connection, name[:64], "login-failed",
                                    "console", f"from {source}")  # fmt: skip
            return self.page(request, "login.html", 401, next=target,
                             error="wrong name or password")  # fmt: skip
        self.connection.delete(counters[0])
        sid = secrets.token_urlsafe(18)
        self.connection.set(keys.console_session(sid), user.name, ex=SESSION_HOURS * 3600)
        request.session.clear()
        request.session.update(user=user.name, role=user.role, sid=sid,
                               csrf=secrets.token_urlsafe(24))  # fmt: skip
        await run_in_threadpool(audit.record, self.connection, user.name, "login", "console")
        return RedirectResponse(target, 303)

    async def logout(self, request: Request) -> Response:
        await self.form(request)
        sid = request.session.get("sid")
        if sid:  # revoked: a copy of the cookie opens nothing from now on
            self.connection.delete(keys.console_session(str(sid)))
        request.session.clear()
        return RedirectResponse("/login", 303)

    # -- pages -----------------------------------------------------------------------------

    def _attention_note(self, record: EntityRecord) -> str:
        found = self.catalog.partners.get(record.partner)
        return found.attention_note(record) if found else ""

    def home(self, request: Request) -> Response:
        self.need(request)
        c = self.connection
        pipe = c.pipeline(transaction=False)
        pipe.zcard(keys.DLQ)
        pipe.zcard(keys.DIRTY)
        pipe.zrevrange(keys.ATTENTION, 0, 19, withscores=True)
        pipe.zrevrange(keys.COMMAND_ATTENTION, 0, 19)
        pipe.hgetall(keys.CLOCK)
        pipe.time()
        dead, due, attention, doubles, clock, (sec, usec) = pipe.execute()
        now_ms = int(sec) * 1000 + int(usec) // 1000
        attention_records = [
            (r, self._attention_note(r))
            for r in store.load(c, [replies.text(k) for k, _ in attention])
            if r is not None
        ]
        counts = sorted((k, n) for k, n in store.counts(c).items() if n > 0)
        tasks = sorted(
            (replies.text(name), (now_ms - int(ms)) / 1000) for name, ms in clock.items()
        )
        return self.page(
            request, "home.html", dead=dead, due=due, counts=counts, tasks=tasks,
            attention=attention_records,
            doubles=replies.texts(doubles),
        )  # fmt: skip

    def search(self, request: Request) -> Response:
        self.need(request)
        ident = request.query_params.get("q", "").strip()
        if not ident:
            return RedirectResponse("/", 303)
        found = find.find(self.connection, self.catalog, ident)
        entities = {f.entity for f in found if f.entity}
        if len(entities) == 1:
            return RedirectResponse(f"/entity/{quote(entities.pop(), safe=':')}", 303)
        return self.page(request, "search.html", ident=ident, found=found)

    def entities(self, request: Request) -> Response:
        self.need(request)
        q = request.query_params
        filters = {k: q.get(k) or None for k in ("partner", "kind", "status")}
        try:
            cursor = store.Cursor.parse(q["cursor"]) if q.get("cursor") else None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        got = store.page(self.connection, limit=50, cursor=cursor, **filters)  # type: ignore[arg-type]
        return self.page(request, "entities.html", page=got, filters=filters)

    def entity(self, request: Request) -> Response:
        self.need(request)
        key = request.path_params["key"]
        story = timeline.story(self.connection, key)
        gone = store.tombstone(self.connection, key) if story.stored is None else None
        known = key.count(":") >= 2 and tuple(key.split(":", 2)[:2]) in self.catalog.kinds
        if story.stored is None and gone is None and not story.entries and not known:
            return self.page(request, "missing.html", 404, key=key)
        record = story.stored.record if story.stored else None
        last = self.connection.xrevrange(keys.CHANGES, count=1)
        return self.page(
            request, "entity.html", key=key, record=record, gone=gone, story=story,
            data=json.dumps(masked_data(record, self.catalog), indent=2, default=str)
            if record else None,
            after=replies.text(last[0][0]) if last else "0",
            refetchable=record is not None and self.catalog.kinds[
                (record.partner, record.kind)].fetched,
            refetched=request.query_params.get("refetched") == "1",
        )  # fmt: skip

    def delivery(self, request: Request) -> Response:
        """One delivery as a row of its own: its event type, when it came, the entities it
        named and what came of it for each; its body's field names (values hidden: an
        operator reveals them, audited)."""
        self.need(request)
        delivery_id = request.path_params["id"]
        found = inbox.read(self.connection, [delivery_id])[0]
        if found is inbox.MISSING:
            raise HTTPException(404, "no such delivery (its inbox copy expires after "
                                     "PARTNERSYNC_INBOX_TTL)")  # fmt: skip
        return self._delivery_page(request, delivery_id, found, None)

    def _delivery_page(
        self, request: Request, delivery_id: str, found: inbox.Record, body: str | None
    ) -> Response:
        resends = inbox.resends(self.connection, delivery_id)
        return self.page(request, "delivery.html", id=delivery_id, delivery=found,
                         at=_at(found.received_ms), fields=_fields(found.body),
                         attempts=[(_at(found.received_ms), "accepted", found.headers)] + [
                             (_at(a.received_ms), "duplicate: answered as accepted, not applied "
                              "again", a.headers) for a in resends],
                         size=len(found.body or b""),
                         outcomes=[(e, *self._outcome(e, delivery_id)) for e in found.entities],
                         body=body)  # fmt: skip

    async def reveal_delivery(self, request: Request) -> Response:
        user = self.need(request, operator=True)
        await self.form(request)
        delivery_id = request.path_params["id"]
        found = (await run_in_threadpool(inbox.read, self.connection, [delivery_id]))[0]
        if found is inbox.MISSING:
            raise HTTPException(404, "no such delivery")
        await run_in_threadpool(audit.record, self.connection, user.name, "reveal-delivery",
                                delivery_id)  # fmt: skip
        body = (found.body or b"").decode("utf-8", "replace")
        with contextlib.suppress(ValueError):  # else shown as it came
            body = json.dumps(json.loads(body), indent=2)
        return await run_in_threadpool(self._delivery_page, request, delivery_id, found, body)

    def _outcome(self, entity: str, delivery_id: str) -> tuple[str, str | None]:
        """What the delivery did to one entity it named, from the entity's own record, and
        the dead letter holding it there (replayable from the page), if one does."""
        letters = [x for x in dlq.of_entity(self.connection, entity)
                   if any(e.deliveryId == delivery_id for e in x.events)]  # fmt: skip
        if letters:
            return f"dead-lettered: {letters[-1].error}", letters[-1].id
        stored = store.read(self.connection, [entity])[0]
        if stored is None:
            return "not stored (yet)", None
        moved = [t for t in stored.history if delivery_id in t.source]
        if moved:
            return "; ".join(f"{t.from_ or '∅'} → {t.to} ({t.decision})" for t in moved), None
        return f"no transition of its own (the entity is {stored.record.status})", None

    async def state(self, request: Request) -> Response:
        """What the entity page shows of the record now (personal data masked): its live
        updates read it after each transition, so data and modifiedOn follow the status."""
        self.need(request)
        key = request.path_params["key"]
        record = (await run_in_threadpool(store.load, self.connection, [key]))[0]
        if record is None:
            raise HTTPException(404, "no such entity")
        return JSONResponse({
            "status": record.status,
            "modifiedOn": str(record.modifiedOn) if record.modifiedOn else "—",
            "updatedAt": record.updatedAt.isoformat(timespec="seconds"),
            "data": json.dumps(masked_data(record, self.catalog), indent=2, default=str),
        }, headers={"Cache-Control": "no-store"})  # fmt: skip

    async def refetch(self, request: Request) -> Response:
        """Re-fetch the entity from its partner now (an operator's question: is what we
        hold still true?): marked due, so a worker GETs and reconciles it; audited."""
        user, key, record = await self._operated(request)
        kind = self.catalog.kinds.get((record.partner, record.kind))
        if kind is None or not kind.fetched:
            raise HTTPException(400, f"{record.partner} serves no GET for a {record.kind}")
        wq = workqueue.WorkQueue.from_settings(self.connection, self.settings)
        await run_in_threadpool(wq.touch, [key])
        await run_in_threadpool(audit.record, self.connection, user.name, "refetch", key)
        return RedirectResponse(f"/entity/{quote(key)}?refetched=1", 303)

    async def _operated(self, request: Request) -> tuple[Any, str, Any]:
        """An operator's POST about a stored entity: (user, entity key, its record)."""
        user = self.need(request, operator=True)
        await self.form(request)
        key = request.path_params["key"]
        record = (await run_in_threadpool(store.load, self.connection, [key]))[0]
        if record is None:
            raise HTTPException(404, "no such entity")
        return user, key, record

    async def reveal(self, request: Request) -> Response:
        user, key, record = await self._operated(request)
        await run_in_threadpool(audit.record, self.connection, user.name, "reveal", key)
        return self.page(request, "reveal.html", key=key,
                         data=json.dumps(raw_data(record), indent=2))  # fmt: skip

    async def live(self, request: Request) -> Response:
        """Server-sent events: the entity's transitions as they are stored. On the asyncio
        client: a page left open waits in the event loop, not in a worker thread."""
        self.need(request)
        key = request.path_params["key"]
        after = request.query_params.get("after", "$")

        async def events() -> AsyncIterator[str]:
            last = after
            until = time.monotonic() + 300  # the browser reconnects (EventSource)
            yield "retry: 1000\n\n"
            while time.monotonic() < until:
                got: Any = await self.streams.xread({keys.CHANGES: last}, count=200, block=2000)
                for _, entries in got or []:
                    for entry_id, fields in entries:
                        last = replies.text(entry_id)
                        if replies.text(fields.get(b"key", b"")) != key:
                            continue
                        shown = {replies.text(k): replies.text(v) for k, v in fields.items()}
                        yield f"id: {last}\ndata: {json.dumps(shown)}\n\n"
                yield ": alive\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})  # fmt: skip

    def dead_letters(self, request: Request) -> Response:
        """Newest first, 50 a page (dlq.page: a filter that matches few reads at most 1,000
        letters a page and links on from there)."""
        self.need(request)
        chosen, problem = self._filter(request.query_params)
        after = request.query_params.get("after")
        try:
            cursor = paging.Cursor.parse(after) if after else None
        except ValueError as exc:
            problem = str(exc)
        got = None if problem else dlq.page(self.connection, chosen, limit=50, cursor=cursor)
        filters = {k: v for k, v in request.query_params.items() if k != "after"}
        return self.page(request, "dlq.html", 400 if problem else 200,
                         letters=got.letters if got else [], total=got.total if got else 0,
                         next=got.next.encode() if got and got.next else None,
                         filters=filters, problem=problem, result=None)  # fmt: skip

    def dead_letter(self, request: Request) -> Response:
        self.need(request)
        letter = dlq.get(self.connection, request.path_params["id"])
        if letter is None:
            raise HTTPException(404, "no such dead letter (replayed, purged or expired)")
        return self.page(request, "letter.html", letter=letter)

    async def replay(self, request: Request) -> Response:
        """Replay one letter (its id in the path) or every letter the filter matches, in a
        thread of this process; the browser follows its progress page."""
        user = self.need(request, operator=True)
        form = await self.form(request)
        ids = await run_in_threadpool(self._chosen, request, form)
        job = secrets.token_hex(8)
        await run_in_threadpool(self._start_replay, job, ids, user.name)
        return RedirectResponse(f"/dlq/replays/{job}", 303)

    def _start_replay(self, job: str, ids: list[str], user: str) -> None:
        key = keys.replay_job(job)
        pipe = self.connection.pipeline()
        pipe.hset(key, mapping={"user": user, "phase": "starting", "done": 0, "of": len(ids)})
        pipe.expire(key, 86_400)
        pipe.execute()
        audit.record(self.connection, user, "replay", " ".join(ids), f"job {job}")
        threading.Thread(target=self._replay, args=(job, ids, user), daemon=True).start()

    def _replay(self, job: str, ids: list[str], user: str) -> None:
        """Interrupted (the console stopped), a replay loses nothing: each letter is still in
        the DLQ or its entity is due (partnersync/replay.py)."""
        key = keys.replay_job(job)

        def report(phase: str, done: int, of: int) -> None:
            self.connection.hset(key, mapping={"phase": phase, "done": done, "of": of})

        try:
            outcome = replay.replay(
                self.connection, self.settings, ids, wait_s=120.0, report=report, by=user
            ).as_dict()
        except Exception as exc:  # shown on its page and audited, never lost silently
            outcome = {"error": f"{type(exc).__name__}: {exc}"}
        self.connection.hset(key, mapping={"phase": "done", "outcome": json.dumps(outcome)})
        audit.record(self.connection, user, "replayed", f"job {job}", json.dumps(outcome))

    def replay_progress(self, request: Request) -> Response:
        self.need(request)
        got = self.connection.hgetall(keys.replay_job(request.path_params["job"]))
        state = {replies.text(k): replies.text(v) for k, v in got.items()}
        if not state:
            raise HTTPException(404, "no such replay (they are kept for a day)")
        if state["phase"] != "done":
            return self.page(request, "replaying.html", state=state)
        return self.page(request, "replayed.html", outcome=json.loads(state["outcome"]),
                         of=int(state["of"]))  # fmt: skip

    async def purge(self, request: Request) -> Response:
        user = self.need(request, operator=True)
        form = await self.form(request)
        ids = await run_in_threadpool(self._chosen, request, form)
        await run_in_threadpool(dlq.remove, self.connection, *ids)
        await run_in_threadpool(audit.record, self.connection, user.name, "purge", " ".join(ids))
        return self.page(request, "replayed.html", of=len(ids), outcome={"purged": len(ids)})

    def _chosen(self, request: Request, form: dict[str, str]) -> list[str]:
        if "id" in request.path_params:
            return [request.path_params["id"]]
        chosen, problem = self._filter(form)
        if problem:
            raise HTTPException(400, problem)
        if form.get("confirm") != "yes":
            raise HTTPException(400, "confirm the action (confirm=yes)")
        if "pick" in form:  # the letters ticked, not a filter's matches
            return form["pick"].split()
        return [x.id for x in dlq.all_letters(self.connection) if chosen.matches(x)]

    def _filter(self, values: Any) -> tuple[dlq.Filter, str | None]:
        text = ",".join(f"{k}={values[k]}" for k in ("kind", "error", "reason", "since")
                        if values.get(k))  # fmt: skip
        try:
            chosen = dlq.parse_filter(text, datetime.now(UTC))
            known = dlq.known_kinds(self.catalog.partners, self.catalog.kinds)
            return chosen.checked(known), None
        except ValueError as exc:
            return dlq.Filter(), str(exc)

    def system(self, request: Request) -> Response:
        self.need(request)
        snap = health.snapshot(self.connection, self.settings)
        self.samples.append(snap)
        calls: dict[str, list[int]] = {}
        for name, n in snap["partnerCalls"].items():
            who, _, status = name.partition(":")
            totals = calls.setdefault(who, [0, 0])
            totals[0] += n
            totals[1] += 0 if status.startswith("2") else n
        return self.page(request, "system.html", snap=snap, calls=calls, charts=self._charts())

    def _charts(self) -> dict[str, Any]:
        """Rates between consecutive snapshots (a refresh every 5 s draws them)."""
        samples = list(self.samples)
        intake, errors, due = [], [], []
        for a, b in zip(samples, samples[1:], strict=False):
            seconds = max((b["at"] - a["at"]) / 1000, 1e-3)
            accepted = [
                sum(n for k, n in x["deliveries"].items() if "accepted:" in k) for x in (a, b)
            ]
            intake.append((accepted[1] - accepted[0]) / seconds)
            delta = {k: n - a["partnerCalls"].get(k, 0) for k, n in b["partnerCalls"].items()}
            bad = sum(n for k, n in delta.items() if not k.partition(":")[2].startswith("2"))
            total = sum(delta.values())
            errors.append(100 * bad / total if total else 0.0)
            due.append(float(b["due"]))
        return {
            "accepted deliveries per second": charts.sparkline(intake, label="deliveries/s"),
            "partner calls failing, %": charts.sparkline(errors, label="% failing"),
            "entities due for reconcile": charts.sparkline(due, label="due"),
        }

    def partner_page(self, request: Request) -> Response:
        """A page a partner adds (partnersync/partner.py, `ConsolePage`)."""
        self.need(request)
        name, slug = request.path_params["partner"], request.path_params["slug"]
        found = self.catalog.partners.get(name)
        page = next((p for p in found.console_pages if p.slug == slug), None) if found else None
        if page is None:
            raise HTTPException(404, "no such page")
        context = page.context(self.connection)
        return self.page(request, f"{name}/{page.template.name}", **context)

    def commands_page(self, request: Request) -> Response:
        """Newest first, 50 a page, from the per-kind-and-state indexes (any state filter
        costs a page, whatever the journal holds)."""
        self.need(request)
        state = request.query_params.get("state") or None
        if state is not None and state not in {str(s) for s in CommandState}:
            raise HTTPException(400, f"unknown state {state!r}")
        after = request.query_params.get("after")
        try:
            cursor = paging.Cursor.parse(after) if after else None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        got = commands.page(self.connection, self.catalog, state=state, limit=50, cursor=cursor)
        counts = {
            replies.text(k): int(v) for k, v in self.connection.hgetall(keys.COMMAND_STATES).items()
        }
        return self.page(request, "commands.html", shown=got.records, state=state, counts=counts,
                         next=got.next.encode() if got.next else None)  # fmt: skip

    def endpoints_page(self, request: Request) -> Response:
        """The team's outbound webhook endpoints with their state and lag (#40)."""
        self.need(request)
        found = endpoints.listed(self.connection)
        state = self.outbox.state([e.id for e in found])
        return self.page(request, "endpoints.html", shown=[(e, state[e.id]) for e in found])

    def endpoint(self, request: Request) -> Response:
        """One endpoint: its state, and its dead letters with Replay and Purge."""
        self.need(request)
        try:
            found = endpoints.get(self.connection, request.path_params["id"])
        except endpoints.EndpointError as exc:
            raise HTTPException(404, str(exc)) from None
        return self.page(request, "endpoint.html", e=found,
                         state=self.outbox.state([found.id])[found.id],
                         letters=self.outbox.letters(found.id),
                         done=request.query_params.get("done"))  # fmt: skip

    async def endpoint_action(self, request: Request) -> Response:
        """An operator's replay or purge of an endpoint's dead letter, or its enabling;
        audited."""
        user = self.need(request, operator=True)
        form = await self.form(request)
        endpoint_id, action = request.path_params["id"], request.path_params["action"]
        try:
            await run_in_threadpool(endpoints.get, self.connection, endpoint_id)
        except endpoints.EndpointError as exc:
            raise HTTPException(404, str(exc)) from None
        detail = ""
        if action == "enable":
            await run_in_threadpool(endpoints.enable, self.connection, endpoint_id)
            done = "enabled"
        elif action in ("replay", "purge"):
            entity = form.get("entity", "")
            ok = await run_in_threadpool(
                self.outbox.release, endpoint_id, entity, purge=action == "purge"
            )
            if not ok:
                raise HTTPException(404, f"no dead letter of {endpoint_id} for {entity!r}")
            detail = entity
            done = f"{'replayed' if action == 'replay' else 'purged'} {entity}"
        else:
            raise HTTPException(404, "no such action")
        await run_in_threadpool(self.outbox.kick, self.settings.queue)
        await run_in_threadpool(audit.record, self.connection, user.name, f"endpoint-{action}",
                                endpoint_id, detail)  # fmt: skip
        return RedirectResponse(f"/endpoints/{quote(endpoint_id)}?done={quote(done)}", 303)

    def command(self, request: Request) -> Response:
        self.need(request)
        record = commands.load(self.connection, request.path_params["xid"])
        if record is None:
            raise HTTPException(404, "no such command")
        kind = self.catalog.commands.get(record.kind)
        entity = (
            keys.entity_key(kind.partner, kind.entity_kind, record.entityId)
            if kind is not None and record.entityId
            else None
        )
        return self.page(request, "command.html", record=record, entity=entity)

    def audit_page(self, request: Request) -> Response:
        """Newest first, 100 a page, filtered by who, what and since; each target that names
        an entity, a dead letter or a replay links to it."""
        self.need(request)
        q = request.query_params
        try:
            since = q.get("since")
            since_ms = (int(dlq.parse_since(since, datetime.now(UTC)).timestamp() * 1000)
                        if since else None)  # fmt: skip
        except ValueError:
            raise HTTPException(
                400, f"since: not 30m, 2h, 7d or an ISO date-time: {since!r}"
            ) from None
        entries, older = audit.page(self.connection, who=q.get("who") or None,
                                    what=q.get("what") or None, since_ms=since_ms,
                                    before=q.get("before") or None)  # fmt: skip
        links = [_link_of(e.get("action", ""), e.get("target", "")) for e in entries]
        filters = {k: q[k] for k in ("who", "what", "since") if q.get(k)}
        return self.page(request, "audit.html", entries=zip(entries, links, strict=True),
                         older=older, filters=filters)  # fmt: skip

    # -- errors ----------------------------------------------------------------------------

    async def error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 401:
            if request.method == "GET" and "text/event-stream" not in request.headers.get(
                "accept", ""
            ):
                return RedirectResponse(f"/login?next={quote(request.url.path)}", 303)
            return self.page(request, "error.html", 401, message="sign in first")
        return self.page(request, "error.html", exc.status_code, message=exc.detail)


# what each audited action's target is, so the audit page links to where it is shown
_TARGET_PAGES = {
    "reveal": "/entity/", "refetch": "/entity/", "reveal-delivery": "/delivery/",
    "replay": "/dlq/", "replayed": "/dlq/replays/", "endpoint-enable": "/endpoints/",
    "endpoint-replay": "/endpoints/", "endpoint-purge": "/endpoints/",
}  # fmt: skip


def _link_of(action: str, target: str) -> str | None:
    """The page of an audited action's target (a replay of several letters links none)."""
    page = _TARGET_PAGES.get(action)
    if page is None or not target or " " in target.removeprefix("job "):
        return None
    return page + quote(target.removeprefix("job "), safe=":")


def _at(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds") if ms else "—"


def _fields(body: bytes | None) -> list[str]:
    """A JSON body's field names, at any depth (dotted), without their values."""
    try:
        value = json.loads(body or b"")
    except ValueError:
        return []
    out: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, list):
            for item in node[:1]:
                walk(item, f"{path}[]")
        elif path:
            out.append(path)

    walk(value, "")
    return out


def _mtime(path: str | None) -> float | None:
    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None


def _templates(catalog: partner.Catalog) -> Jinja2Templates:
    """The console's templates, and each partner's pages' under its name (`saxo/…`)."""
    dirs = {
        name: {str(page.template.parent) for page in p.console_pages}
        for name, p in catalog.partners.items()
    }
    loader = jinja2.ChoiceLoader([
        jinja2.FileSystemLoader(HERE / "templates"),
        jinja2.PrefixLoader({name: jinja2.FileSystemLoader(sorted(d)) for name, d in dirs.items()}),
    ])  # fmt: skip
    env = jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape())
    env.filters["q"] = lambda key: quote(key, safe=":")
    env.globals["bars"] = charts.bars
    env.globals["partner_pages"] = [
        (f"/partner/{name}/{page.slug}", page.title)
        for name, p in catalog.partners.items()
        for page in p.console_pages
    ]
    return Jinja2Templates(env=env)


def create_app(settings: Settings, connection: redis.Redis) -> Starlette:
    streams = redisurl.connect_async(
        config.redis_url(settings), socket_connect_timeout=2.0, socket_timeout=10.0
    )
    console = Console(settings, connection, streams)
    routes = [
        Route("/login", console.login_form, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", console.logout, methods=["POST"]),
        Route("/", console.home),
        Route("/search", console.search),
        Route("/entities", console.entities),
        Route("/entity/{key:path}/live", console.live),
        Route("/entity/{key:path}/reveal", console.reveal, methods=["POST"]),
        Route("/entity/{key:path}/refetch", console.refetch, methods=["POST"]),
        Route("/entity/{key:path}/state", console.state),
        Route("/entity/{key:path}", console.entity),
        Route("/delivery/{id}/reveal", console.reveal_delivery, methods=["POST"]),
        Route("/delivery/{id}", console.delivery),
        Route("/dlq", console.dead_letters),
        Route("/dlq/replay", console.replay, methods=["POST"]),
        Route("/dlq/purge", console.purge, methods=["POST"]),
        Route("/dlq/{id}/replay", console.replay, methods=["POST"]),
        Route("/dlq/replays/{job}", console.replay_progress),
        Route("/dlq/{id}", console.dead_letter),
        Route("/audit", console.audit_page),
        Route("/system", console.system),
        Route("/partner/{partner}/{slug}", console.partner_page),
        Route("/commands", console.commands_page),
        Route("/command/{xid:path}", console.command),
        Route("/endpoints", console.endpoints_page),
        Route("/endpoints/{id}/{action}", console.endpoint_action, methods=["POST"]),
        Route("/endpoints/{id}", console.endpoint),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=settings.console_secret or "",
            session_cookie="partnersync_console",
            max_age=SESSION_HOURS * 3600,
            same_site="strict",
            https_only=settings.console_secure_cookies,
        )
    ]
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={HTTPException: console.error})  # fmt: skip
