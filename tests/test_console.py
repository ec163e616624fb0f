"""The operator console (#18) in a real browser: Playwright driving Debian's chromium against
`partnersync console`, on the suite's Redis, sandbox, receiver and workers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.redisserver import free_port
from console import users
from partnersync import dlq, endpoints, inbox, keys, outbound, store
from tests.conftest import ROOT, WEBHOOK_SECRET, System, wait_for, wait_http

pytestmark = pytest.mark.e2e

OPERATOR, VIEWER = ("olga", "operator-pass-1"), ("vic", "viewer-pass-1")


@pytest.fixture(scope="module")
def console_url(
    system_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    path = tmp_path_factory.mktemp("console") / "users"
    users.add(path, OPERATOR[0], "operator", OPERATOR[1])
    users.add(path, VIEWER[0], "viewer", VIEWER[1])
    port = free_port()
    env = dict(system_env, PARTNERSYNC_CONSOLE_SECRET="test-" + uuid.uuid4().hex,
               PARTNERSYNC_CONSOLE_USERS=str(path), PARTNERSYNC_CONSOLE_SECURE_COOKIES="false")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "partnersync", "console", "--port", str(port)], env=env, cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/login")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is missing (make installs it: apt-get install chromium)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


def signed_in(browser: Any, console_url: str, who: tuple[str, str]) -> Any:
    page = browser.new_context(base_url=console_url).new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations
    page.goto("/")
    assert "/login" in page.url  # nothing without login
    page.fill("input[name=name]", who[0])
    page.fill("input[name=password]", who[1])
    page.click("button[type=submit]")
    page.wait_for_selector("text=Overview")
    return page


def test_nothing_without_login(console_url: str) -> None:
    with httpx.Client(base_url=console_url) as http:
        for path in ("/", "/dlq", "/entities", "/audit", "/entity/tradevest:transfer:x"):
            answer = http.get(path, follow_redirects=True)
            assert answer.url.path == "/login" and 'name="password"' in answer.text, path
        refused = http.post("/dlq/purge", data={"confirm": "yes"})
        assert refused.status_code in (401, 403) and "Done" not in refused.text
        wrong = http.post("/login", data={"name": OPERATOR[0], "password": "nope"})
        assert wrong.status_code == 403  # no CSRF token from a login page: refused first
        page = http.get("/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        wrong = http.post("/login", data={"csrf": token, "name": OPERATOR[0], "password": "nope"})
        assert wrong.status_code == 401 and "wrong name or password" in wrong.text


def test_find_a_transfer_by_external_id_and_follow_it_live(
    system: System, console_url: str, browser: Any
) -> None:
    page = signed_in(browser, console_url, OPERATOR)
    external_id = f"console-{uuid.uuid4()}"
    transfer = system.create_transfer(customerProductId=system.fixtures()["balanceAccountId"],
                                      amount=2, reference="console", externalId=external_id)  # fmt: skip
    key = keys.entity_key("tradevest", "transfer", transfer)
    system.wait_status(key, "PROCESSED")
    page.fill("#q", external_id)
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"/entity/"))
    assert page.inner_text("h1") == key
    assert page.inner_text("#status").startswith("PROCESSED")
    timeline = page.inner_text("#timeline")
    assert "→ PROCESSED" in timeline and "TRANSFER_NOTIFICATION" in timeline

    # live: a proxy (mirrored from its notifications) changes while its page is open
    proxy = str(uuid.uuid4())
    proxy_key = keys.entity_key("tradevest", "proxy", proxy)

    def notify(status: str, minute: int) -> None:
        body = {"proxyId": proxy, "status": status, "notificationType": "UPDATED",
                "modifiedOn": f"2026-05-01T10:{minute:02d}:00Z"}  # fmt: skip
        assert system.deliver("proxy-notification", json.dumps(body).encode()).status_code == 200

    notify("PENDING", 0)
    system.wait_status(proxy_key, "PENDING")
    page.goto(f"/entity/{proxy_key}")
    assert page.inner_text("#status") == "PENDING"
    from playwright.sync_api import expect

    expect(page.locator("#live")).to_have_class("live")  # no stream error (it would be "live off")
    notify("ACTIVE", 5)
    expect(page.locator("#status")).to_have_text("ACTIVE", timeout=20_000)
    assert "(live)" in page.inner_text("#timeline")
    page.context.close()


def test_dead_letter_replayed_from_the_console(
    system: System, console_url: str, browser: Any
) -> None:
    transfer = system.create_transfer(customerProductId=system.fixtures()["balanceAccountId"],
                                      amount=1, reference="dlq", externalId=f"d-{uuid.uuid4()}")  # fmt: skip
    key = keys.entity_key("tradevest", "transfer", transfer)
    system.wait_status(key, "PROCESSED")
    wait_for(lambda: not system.r.exists(keys.lease(key)), what="its reconcile done")
    system.http.post(system.sandbox + "/_sandbox/faults", json={"http_5xx": 1.0})
    try:
        body = {"transferId": transfer, "status": "PROCESSED", "notificationType": "UPDATED",
                "modifiedOn": "2026-01-02T00:00:00Z"}  # fmt: skip
        delivered = system.deliver("transfer-notification", json.dumps(body).encode())
        assert delivered.status_code == 200
        delivery_id = delivered.headers["partnersync-delivery-id"]
        (letter,) = wait_for(
            lambda: [x for x in dlq.all_letters(system.r) if x.entity == key],
            timeout=30, what="dead letter",
        )  # fmt: skip
    finally:
        system.http.post(system.sandbox + "/_sandbox/faults", json={})

    viewer = signed_in(browser, console_url, VIEWER)
    viewer.goto(f"/dlq/{letter.id}")
    assert key in viewer.inner_text("main") and viewer.query_selector("text=Replay") is None
    token = viewer.get_attribute("input[name=csrf]", "value")
    refused = viewer.request.post(f"/dlq/{letter.id}/replay", form={"csrf": token or ""})
    assert refused.status == 403 and dlq.get(system.r, letter.id) is not None
    viewer.context.close()

    page = signed_in(browser, console_url, OPERATOR)
    page.goto(f"/entity/{key}")
    assert "dead-letter" in page.inner_text("#timeline")
    page.goto("/dlq?kind=transfer&error=503")
    assert page.locator("tr", has_text=key).locator("button", has_text="Replay").count() == 1
    # replayed where the question is asked: the delivery that failed
    page.goto(f"/delivery/{delivery_id}")
    row = page.locator("#outcomes tr", has_text=key)
    assert "dead-lettered" in row.inner_text()
    assert row.locator(f"a[href='/dlq/{letter.id}']").count() == 1
    row.locator("button", has_text="Replay").click()
    page.wait_for_selector("#outcome", timeout=60_000)  # its progress page, refreshed until done
    assert "/dlq/replays/" in page.url
    outcome = page.inner_text("#outcome")
    assert "1 applied, 0 dead-lettered again, 0 still pending" in outcome, outcome
    assert page.locator("ul.applied a", has_text=key).count() == 1  # named, linked
    assert dlq.get(system.r, letter.id) is None
    page.goto(f"/entity/{key}")  # the letter left the queue, not the entity's timeline
    replayed = page.locator("#timeline tr.replayed")
    assert replayed.count() == 1, page.inner_text("#timeline")
    assert f"replayed by {OPERATOR[0]}" in replayed.inner_text()
    assert "applied" in replayed.inner_text() and letter.id in replayed.inner_text()
    page.goto("/audit")
    assert re.search(rf"{OPERATOR[0]}\s+replay\s+{letter.id}", page.inner_text("main"))
    page.context.close()


def test_a_post_without_the_csrf_token_is_refused(
    system: System, console_url: str, browser: Any
) -> None:
    page = signed_in(browser, console_url, OPERATOR)
    before = system.r.xlen(keys.AUDIT)
    answer = page.request.post("/dlq/purge", form={"confirm": "yes"})
    assert answer.status == 403 and "CSRF" in answer.text()
    answer = page.request.post("/dlq/purge", form={"confirm": "yes", "csrf": "forged"})
    assert answer.status == 403
    assert system.r.xlen(keys.AUDIT) == before  # nothing was done, nothing recorded
    cookies = page.context.cookies()
    session = next(c for c in cookies if c["name"] == "partnersync_console")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    page.context.close()


def test_commands_system_and_saxo_pages(system: System, console_url: str, browser: Any) -> None:
    from partners.saxo import keys as saxo_keys

    external_id = system.submit_transfer(4, "pages")
    page = signed_in(browser, console_url, VIEWER)
    page.goto("/commands?state=ACCEPTED")
    page.click(f"text={external_id}")
    assert "ACCEPTED" in page.inner_text("dl")
    assert re.search(r"send\s+20\d", page.inner_text("table"))
    page.click("a[href^='/entity/tradevest:transfer:']")
    assert "→ PROCESSED" in page.inner_text("#timeline") or "PENDING" in page.inner_text("#status")

    for _ in range(3):  # three snapshots: two points of each rate, a first line
        page.goto("/system")
    assert page.locator("#charts svg.spark").count() == 3
    assert re.search(r"\d+\s+workers", page.inner_text("main"))

    wait_for(lambda: system.r.get(saxo_keys.UNSETTLED_BY_EXCHANGE), timeout=30,
             what="the clock's unsettled report")  # fmt: skip
    page.click("text=Saxo reports")
    text = page.inner_text("main")
    assert "By exchange" in text and "By currency" in text and "Not run yet" in text
    assert "not exchange related (in DKK)" in text  # the table's words for NoExchange
    assert page.locator("svg.bars rect").count() >= 1
    page.context.close()


def test_screenshots_for_the_readme(system: System, console_url: str, browser: Any) -> None:
    """Renders the main pages to docs/console/ (the README shows them) — only when asked:
    CONSOLE_SCREENSHOTS=1."""
    import os

    if not os.environ.get("CONSOLE_SCREENSHOTS"):
        pytest.skip("set CONSOLE_SCREENSHOTS=1 to render the README's screenshots")
    account = system.fixtures()["balanceAccountId"]
    made = [system.create_transfer(customerProductId=account, amount=amount, reference="demo",
                                   externalId=f"demo-{uuid.uuid4().hex[:8]}")
            for amount in (12.5, 99_999_999, 3)]  # fmt: skip
    for transfer in made:
        wait_for(lambda t=transfer: store.load(system.r, [keys.entity_key("tradevest", "transfer", t)])[0],
                 what="stored")  # fmt: skip
    key = keys.entity_key("tradevest", "transfer", made[0])
    system.wait_status(key, "PROCESSED")
    system.http.post(system.sandbox + "/_sandbox/faults", json={"http_5xx": 1.0})
    try:
        body = {"transferId": made[2], "status": "PROCESSED", "notificationType": "UPDATED",
                "modifiedOn": "2026-01-02T00:00:00Z"}  # fmt: skip
        system.deliver("transfer-notification", json.dumps(body).encode())
        wait_for(lambda: dlq.all_letters(system.r), timeout=30, what="a dead letter")
    finally:
        system.http.post(system.sandbox + "/_sandbox/faults", json={})
    out = ROOT / "docs" / "console"
    out.mkdir(parents=True, exist_ok=True)
    page = signed_in(browser, console_url, OPERATOR)
    page.set_viewport_size({"width": 1200, "height": 800})
    shots = {"overview": "/", "entity": f"/entity/{key}", "dlq": "/dlq", "system": "/system",
             "saxo": "/partner/saxo/reports"}  # fmt: skip
    for _ in range(3):
        page.goto("/system")
    for name, path in shots.items():
        page.goto(path)
        page.screenshot(path=str(Path(out) / f"{name}.png"), full_page=True)


def test_proxy_mode_believes_only_trusted_addresses(
    r: Any, redis_server: Any, tmp_path: Path
) -> None:
    """Behind an SSO proxy: the user header from a trusted address signs in (with the role
    of the users file); from anywhere else, or naming no known user, it does not."""
    import warnings

    from console.app import create_app
    from partnersync.config import load

    path = tmp_path / "users"
    users.add(path, "pat", "viewer", "irrelevant-here")
    settings = load({"REDIS_URL": redis_server.url, "PARTNERSYNC_CONSOLE_AUTH": "proxy",
                     "PARTNERSYNC_CONSOLE_SECRET": "s",
                     "PARTNERSYNC_CONSOLE_USERS": str(path),
                     "PARTNERSYNC_CONSOLE_TRUSTED_PROXIES": "10.0.0.0/8"}, state_fallback=False)  # fmt: skip
    app = create_app(settings, r)
    with warnings.catch_warnings():
        # Starlette (1.10) warns, on importing its test client, that it wants httpx2
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        trusted = TestClient(app, client=("10.1.2.3", 40000), follow_redirects=False)
        stranger = TestClient(app, client=("192.0.2.7", 40000), follow_redirects=False)
    seen = trusted.get("/", headers={"X-Forwarded-User": "pat"})
    assert seen.status_code == 200 and "pat (viewer)" in seen.text
    assert trusted.get("/").headers["location"].startswith("/login")
    assert trusted.get("/", headers={"X-Forwarded-User": "mallory"}).status_code == 303
    assert stranger.get("/", headers={"X-Forwarded-User": "pat"}).status_code == 303
    refused = trusted.post(
        "/dlq/purge", headers={"X-Forwarded-User": "pat"}, data={"confirm": "yes"}
    )
    assert refused.status_code == 403  # a viewer, and no CSRF token either


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "PARTNERSYNC_CONSOLE_SECRET is not set"),
        ({"PARTNERSYNC_CONSOLE_SECRET": "s"}, "PARTNERSYNC_CONSOLE_USERS is not set"),
        ({"PARTNERSYNC_CONSOLE_SECRET": "s", "PARTNERSYNC_CONSOLE_USERS": "/nonexistent"},
         "cannot read /nonexistent"),
    ],
)  # fmt: skip
def test_console_refuses_to_start_without_what_it_needs(
    redis_server: Any, extra: dict[str, str], message: str
) -> None:
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": redis_server.url, **extra}
    done = subprocess.run([sys.executable, "-m", "partnersync", "console"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_the_dead_letter_page_is_paged(system: System, console_url: str, browser: Any) -> None:
    """The page listed every letter of the queue (#38): now 50, newest first, and a link on
    that keeps the filter."""
    from datetime import UTC, datetime, timedelta

    marker = f"paged-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    pipe = system.r.pipeline()
    for n in range(60):
        dlq.add(pipe, dlq.DeadLetter(id=f"{marker}-{n:02d}", at=now + timedelta(seconds=n),
                                     reason="reconcile", entity=f"tradevest:customer:{marker}{n}",
                                     error=marker, traceback="", attempts=1), retention=600)  # fmt: skip
    pipe.execute()
    page = signed_in(browser, console_url, VIEWER)
    page.goto(f"/dlq?error={marker}")
    rows = page.locator("tr", has_text=marker)
    assert rows.count() == 50
    assert f"{marker}59" in rows.first.inner_text()  # newest first
    page.click("a[rel=next]")
    assert page.locator("tr", has_text=marker).count() == 10
    assert f"error={marker}" in page.url and page.locator("a[rel=next]").count() == 0
    page.context.close()


def test_the_search_box_is_usable_at_phone_width(
    system: System, console_url: str, browser: Any
) -> None:
    """#39: at 390 px the header's links squeezed the search box to nothing."""
    page = signed_in(browser, console_url, VIEWER)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    box = page.locator("#q").bounding_box()
    assert box is not None and box["width"] >= 300, box
    page.fill("#q", "no-such-id")
    page.press("#q", "Enter")
    page.wait_for_url("**/search?q=no-such-id")
    page.context.close()


def test_an_operator_re_fetches_an_entity_from_its_partner(
    system: System, console_url: str, browser: Any
) -> None:
    """#39: 'is what we hold still true?' asked where it is read: an operator re-fetches
    the entity now (a worker GETs it from the partner), and the audit says who did."""
    fx = system.fixtures()
    transfer = system.create_transfer(customerProductId=fx["balanceAccountId"], amount=2,
                                      reference="refetch", externalId=f"rf-{uuid.uuid4()}")  # fmt: skip
    key = keys.entity_key("tradevest", "transfer", transfer)
    system.wait_status(key, "PROCESSED")
    viewer = signed_in(browser, console_url, VIEWER)
    viewer.goto(f"/entity/{key}")
    assert viewer.locator("button", has_text="Re-fetch").count() == 0
    token = viewer.locator("input[name=csrf]").first.get_attribute("value")
    refused = viewer.request.post(f"/entity/{key}/refetch", form={"csrf": token or ""})
    assert refused.status == 403
    viewer.context.close()

    def gets() -> int:  # the sandbox's count of GETs of this transfer
        ledger = system.http.get(system.sandbox + "/_sandbox/ledger").json()
        return int(ledger["reads"].get(transfer, 0))

    page = signed_in(browser, console_url, OPERATOR)
    page.goto(f"/entity/{key}")
    before = gets()
    page.click("button:has-text('Re-fetch from tradevest now')")
    page.wait_for_selector("#refetched")
    wait_for(lambda: gets() > before, what="the partner asked again")
    page.goto("/audit")
    assert re.search(rf"{OPERATOR[0]}\s+refetch\s+{key}", page.inner_text("main"))
    page.context.close()


def test_the_audit_page_filters_and_links_what_was_touched(
    system: System, console_url: str, browser: Any
) -> None:
    """#39: who, what and since filter the audit; a target that is an entity or a dead
    letter links to it; more than a page links on."""
    from console import audit

    key = keys.entity_key("tradevest", "transfer", str(uuid.uuid4()))
    for _ in range(120):
        audit.record(system.r, "pat", "refetch", key)
    audit.record(system.r, "sam", "reveal", key)
    audit.record(system.r, "pat", "replay", "dlq-123")
    page = signed_in(browser, console_url, VIEWER)
    page.goto("/audit?who=sam")
    rows = page.locator("table tr")
    assert rows.count() == 2 and "reveal" in rows.nth(1).inner_text()
    assert page.locator(f"a[href='/entity/{key}']").count() == 1
    page.goto("/audit?who=pat&what=replay")
    assert page.locator("a[href='/dlq/dlq-123']").count() == 1
    audit.record(system.r, "sam", "reveal-delivery", "1796000000000-7")
    audit.record(system.r, "sam", "login", "console")
    page.goto("/audit?who=sam")
    assert page.locator("a[href='/delivery/1796000000000-7']").count() == 1
    assert page.locator("a[href='/dlq/console']").count() == 0  # a sign-in links nowhere
    page.goto("/audit?who=pat&what=refetch&since=1h")
    assert page.locator("table tr").count() == 101  # a page of 100, and
    page.click("a[rel=next]")
    assert page.locator("table tr").count() == 21 and "who=pat" in page.url
    assert page.request.get(console_url + "/audit?since=soon").status == 400
    page.context.close()


def test_the_entity_page_follows_the_record_live(
    system: System, console_url: str, browser: Any
) -> None:
    """#39: a RETURNED row sat beside the data's old status. The page of a transfer whose
    mirror lags (stored PENDING, PROCESSED at the partner) follows a re-fetch live: status,
    modifiedOn and the data all turn PROCESSED without a reload."""
    from datetime import UTC, datetime, timedelta

    import msgspec

    from schemas.store import EntityRecord

    fx = system.fixtures()
    transfer = system.create_transfer(customerProductId=fx["balanceAccountId"], amount=3,
                                      reference="live", externalId=f"lv-{uuid.uuid4()}")  # fmt: skip
    key = keys.entity_key("tradevest", "transfer", transfer)
    done = system.wait_status(key, "PROCESSED")
    old = (done.modifiedOn or datetime.now(UTC)) - timedelta(minutes=5)
    lagging = EntityRecord(key=key, partner="tradevest", kind="transfer", id=transfer,
                           status="PENDING", modifiedOn=old, updatedAt=old, createdAt=old,
                           externalId=done.externalId, data=msgspec.Raw(msgspec.json.encode(
                               {"transferId": transfer, "transferStatus": "PENDING"})))  # fmt: skip
    with system.r.pipeline() as pipe:  # the mirror as it was five minutes ago
        store.write(pipe, lagging, None, before=store.read(system.r, [key])[0],
                    changes_maxlen=1000)  # fmt: skip
        pipe.execute()
    page = signed_in(browser, console_url, OPERATOR)
    page.goto(f"/entity/{key}")
    assert '"PENDING"' in page.inner_text("#data") and page.inner_text("#status") == "PENDING"
    shown_modified = page.inner_text("#modified")
    page.wait_for_selector("#live:not(.off)")
    page.evaluate("() => { window.notReloaded = true; }")
    page.evaluate("""() => fetch(location.pathname + '/refetch', {method: 'POST',
        body: new URLSearchParams({csrf: document.querySelector('input[name=csrf]').value})})""")
    wait_for(lambda: "PROCESSED" in page.inner_text("#data"), what="the data followed")
    assert page.evaluate("() => window.notReloaded") is True  # the same page, not a reload
    assert page.inner_text("#status") == "PROCESSED"
    assert page.inner_text("#modified") != shown_modified
    page.context.close()


def test_in_a_browser_logout_revokes_and_failed_sign_ins_are_throttled(
    system: System, console_url: str, browser: Any
) -> None:
    """#39, in Debian's chromium: a session cookie copied before Sign out opens nothing
    after it; the sixth sign-in after five wrong passwords is refused, right or wrong."""
    page = signed_in(browser, console_url, VIEWER)
    copied = page.context.cookies()
    page.click("button:has-text('Sign out')")
    page.wait_for_url("**/login**")
    thief = browser.new_context(base_url=console_url)
    thief.add_cookies(copied)
    stolen = thief.new_page()
    stolen.goto("/dlq")
    assert "/login" in stolen.url and stolen.locator("input[name=password]").count() == 1
    thief.close()
    page.context.close()

    tries = browser.new_context(base_url=console_url).new_page()
    try:
        for n in range(5):
            tries.goto("/login")
            tries.fill("input[name=name]", OPERATOR[0])
            tries.fill("input[name=password]", f"wrong-{n}")
            tries.click("button[type=submit]")
            assert "wrong name or password" in tries.inner_text("main")
        tries.goto("/login")
        tries.fill("input[name=name]", OPERATOR[0])
        tries.fill("input[name=password]", OPERATOR[1])
        tries.click("button[type=submit]")
        assert "too many failed sign-ins" in tries.inner_text("main")
        assert "/login" in tries.url
    finally:  # the rest of this module signs in from the same address
        tries.context.close()
        system.r.delete(*system.r.keys(keys.console_login_failures("*")))


def test_an_operator_replays_the_letters_ticked(
    system: System, console_url: str, browser: Any
) -> None:
    """#39: bulk selection. Three letters; two ticked and replayed; the third stays."""
    from datetime import UTC, datetime

    marker = f"tick-{uuid.uuid4().hex[:8]}"
    pipe = system.r.pipeline()
    for n in range(3):
        dlq.add(pipe, dlq.DeadLetter(id=f"{marker}-{n}", at=datetime.now(UTC), reason="reconcile",
                                     entity=f"tradevest:customer:{marker}{n}", error=marker,
                                     traceback="", attempts=1), retention=600)  # fmt: skip
    pipe.execute()
    page = signed_in(browser, console_url, OPERATOR)
    page.goto(f"/dlq?error={marker}")
    page.check(f"input[value='{marker}-0']")
    page.check(f"input[value='{marker}-2']")
    page.click("button:has-text('Replay ticked')")
    page.wait_for_selector("#outcome", timeout=60_000)
    assert "/dlq/replays/" in page.url and "Done: 2 letter(s)" in page.inner_text("main")
    assert dlq.get(system.r, f"{marker}-0") is None and dlq.get(system.r, f"{marker}-2") is None
    assert dlq.get(system.r, f"{marker}-1") is not None  # not ticked: still there
    page.context.close()


def test_a_delivery_is_a_row_of_its_own(system: System, console_url: str, browser: Any) -> None:
    """#39: from an entity's timeline to the delivery that moved it: its event, when, what
    came of it for each entity it named; its body's values hidden until an operator
    reveals them (audited)."""
    fx = system.fixtures()
    transfer = system.create_transfer(customerProductId=fx["balanceAccountId"], amount=4,
                                      reference="delivery", externalId=f"dv-{uuid.uuid4()}")  # fmt: skip
    key = keys.entity_key("tradevest", "transfer", transfer)
    system.wait_status(key, "PROCESSED")
    viewer = signed_in(browser, console_url, VIEWER)
    viewer.goto(f"/entity/{key}")
    viewer.locator("#timeline a[href^='/delivery/']").last.click()
    viewer.wait_for_selector("#outcomes")
    delivery_id = viewer.url.rsplit("/", 1)[1]
    # the partner resends it: a second attempt, answered as a duplicate, on the page
    sent = inbox.read(system.r, [delivery_id])[0]
    resend = system.http.post(
        system.receiver + "/webhooks/tradevest/transfer-notification", content=sent.body,
        headers={"api-key": WEBHOOK_SECRET, "content-type": "application/json",
                 "x-resend-marker": "second-try"},
    )  # fmt: skip
    assert resend.headers["partnersync-outcome"] == "duplicate"
    viewer.reload()
    attempts = viewer.locator("#attempts > tbody > tr")
    assert attempts.count() == 3, viewer.inner_text("#attempts")  # heading, first, resend
    assert "accepted" in attempts.nth(1).inner_text()
    assert "duplicate" in attempts.nth(2).inner_text()
    attempts.nth(2).locator("summary").click()
    assert "second-try" in attempts.nth(2).inner_text()
    assert WEBHOOK_SECRET not in viewer.inner_text("main")
    assert "api-key" in viewer.inner_text("#attempts") and inbox.REDACTED in viewer.inner_text(
        "#attempts"
    )
    assert viewer.inner_text("#event") == "TRANSFER_NOTIFICATION"
    outcome = viewer.locator("#outcomes tr", has_text=key).inner_text()
    assert "→" in outcome or "no transition of its own" in outcome, outcome
    assert "transferId" in viewer.inner_text("main")  # a field name...
    assert transfer not in viewer.inner_text("dl.facts")  # ...not its value
    assert viewer.locator("button", has_text="Reveal the body").count() == 0
    delivery_url = viewer.url
    viewer.context.close()

    page = signed_in(browser, console_url, OPERATOR)
    page.goto(delivery_url)
    page.click("button:has-text('Reveal the body')")
    page.wait_for_selector("#body")
    assert transfer in page.inner_text("#body")
    page.goto("/audit?what=reveal-delivery")
    assert delivery_id in page.inner_text("main")
    assert page.request.get(console_url + "/delivery/no-such-id").status == 404
    page.context.close()


@pytest.mark.worker_env(PARTNERSYNC_ENDPOINT_ATTEMPTS="1")
def test_endpoints_with_state_lag_and_dead_letters(
    system: System, console_url: str, browser: Any
) -> None:
    """#40: the console lists the outbound endpoints with their state and lag; an
    operator purges or replays an endpoint's dead letter and enables a disabled endpoint
    (audited); a viewer sees them and can do neither."""
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: every attempt fails
    # a status of its own: the sandbox's background transfers must not add letters
    made = endpoints.add(system.r, closed, ["tradevest.transfer.T?_*"])
    entity = f"tradevest:transfer:{uuid.uuid4()}"
    time.sleep(0.002)
    system.r.xadd(keys.CHANGES, {"key": entity, "partner": "tradevest", "kind": "transfer",
                                 "id": entity.rsplit(":", 1)[1], "from": "", "to": "T1_RECEIVED",
                                 "at": "2026-12-06T00:00:00+00:00"})  # fmt: skip
    box = outbound.Outbox(system.r, lease_ms=1, attempts=1)
    wait_for(lambda: box.letters(made.id), timeout=30, what="the endpoint's dead letter")

    viewer = signed_in(browser, console_url, VIEWER)
    viewer.goto("/endpoints")
    row = viewer.locator("#endpoints tr", has_text=made.id)
    assert "failing" in row.inner_text() and closed in row.inner_text()
    row.locator("a").click()
    assert entity in viewer.inner_text("#letters")
    assert viewer.locator("#letters button").count() == 0  # not a viewer's action
    viewer.context.close()

    page = signed_in(browser, console_url, OPERATOR)
    page.goto(f"/endpoints/{made.id}")
    page.locator("#letters tr", has_text=entity).locator("button", has_text="Purge").click()
    page.wait_for_selector("#done")
    assert "purged" in page.inner_text("#done") and not box.letters(made.id)
    endpoints.disable(system.r, made.id, "failing for 600 s without a success")
    page.goto(f"/endpoints/{made.id}")
    assert "disabled" in page.inner_text("#state")
    page.click("button:has-text('Enable')")
    page.wait_for_selector("#done")
    assert not endpoints.get(system.r, made.id).disabled
    page.goto("/audit?what=endpoint-purge")
    assert made.id in page.inner_text("main") and entity in page.inner_text("main")
    assert page.locator(f"a[href='/endpoints/{made.id}']").count() >= 1
    page.context.close()
