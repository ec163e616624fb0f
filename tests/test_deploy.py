"""What ships next to the Procfile (#19): Prometheus alert rules that promtool accepts and
whose unit tests pass, and a Grafana dashboard whose queries parse; every series either
names is one a real receiver's /metrics exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from partners.saxo import keys as saxo_keys
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "partnersync.json"


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool missing: `make .venv/.installed` installs Debian's prometheus"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def alert_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def test_alert_rules_are_valid_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts_test.yml", cwd=RULES.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    # promtool parses PromQL in rule files: each panel's query becomes a recording rule
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:panel_{i}", "expr": e}
                    for i, e in enumerate(dashboard_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def exposed(text: str) -> set[str]:
    """Series names /metrics has, or would have once a labelled family has samples."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
            names.update(name.removesuffix("_total") + s for s in suffixes.get(kind, [""]))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


@pytest.mark.e2e
def test_every_series_they_name_is_exposed(r: redis.Redis, receiver_url: str) -> None:
    # the Saxo figures appear once the clock has taken in ENS activity and a report
    r.set(saxo_keys.ENS_LAST_TIME, datetime.now(UTC).isoformat())
    r.set(saxo_keys.UNSETTLED, json.dumps({"currency": "EUR", "total": "-10.5", "rows": []}))
    # and the receiver's own counters once it has answered a delivery
    refused = httpx.post(
        receiver_url + "/webhooks/tradevest/transfer-notification",
        content=b"{}", headers={"api-key": "wrong", "Content-Type": "application/json"},
    )  # fmt: skip
    assert refused.status_code == 401
    scrape = httpx.get(receiver_url + "/metrics")
    assert scrape.status_code == 200
    names = exposed(scrape.text)
    for expr in alert_exprs() + dashboard_exprs():
        for name in set(re.findall(r"\b[a-z_]+(?=\{|\[| |\)|$)", expr)):
            if name.startswith("partnersync_"):
                assert name in names, f"{name} (in {expr!r}) is not exposed"
        # every query names a partnersync series, or `up` (Prometheus's own, per scrape)
        assert re.search(r"\b(partnersync_\w+|up)\b", expr), expr


@pytest.mark.e2e
def test_rq_info_as_the_readme_shows_it(system) -> None:
    """`rq info` on partnersync's queue (JSON-serialized jobs), with workers running."""
    rq = Path(sys.executable).parent / "rq"
    url = system.env["REDIS_URL"]
    done = subprocess.run(
        [str(rq), "info", "--url", url, "-S", "json", "partnersync"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "partnersync" in done.stdout and "workers" in done.stdout, done.stdout
    assert 'rq info --url "$REDIS_URL" -S json partnersync' in (ROOT / "README.md").read_text()
