"""The skewed clocks the chaos run gives its workers (libfaketime): the wall clock moves,
sleeps still sleep. (Timed lock waits do not return under it: tests/conftest.py,
skewed_clock; test_worker_stop.py: a worker's teardown does not wait on one.)"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import needs_faketime, skewed_clock

pytestmark = needs_faketime

PROBE = """
import time
time.sleep(0.05)
print(round(time.time()))
"""


@pytest.mark.parametrize("skew,offset", [("+120s", 120), ("-120s", -120)])
def test_a_skewed_clock_moves_the_wall_clock(skew: str, offset: int) -> None:
    env = skewed_clock({"PATH": "/usr/bin:/bin"}, skew)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert abs(int(out.stdout) - (time.time() + offset)) < 20
