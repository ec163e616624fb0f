"""The skewed clocks the chaos run gives its workers (libfaketime) skew the wall clock and
nothing else: a process under them still times out its waits. libfaketime 0.9.10 also
fakes CLOCK_MONOTONIC by default, and Python's timed lock waits (sem_clockwait on that
clock) then never return: an RQ worker's pubsub thread hung in Event.wait(1.0) and its
SIGTERM teardown with it, outliving the run as an orphan."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import LIBFAKETIME, skewed_clock

PROBE = """
import threading, time
lock = threading.Lock()
lock.acquire()
assert lock.acquire(timeout=0.2) is False
assert threading.Event().wait(0.2) is False
print(round(time.time()))
"""


@pytest.mark.skipif(LIBFAKETIME is None and not os.environ.get("CI"), reason="needs libfaketime")
@pytest.mark.parametrize("skew,offset", [("+120s", 120), ("-120s", -120)])
def test_a_skewed_clock_moves_the_wall_clock_and_timed_waits_still_return(
    skew: str, offset: int
) -> None:
    import time

    env = skewed_clock({"PATH": "/usr/bin:/bin"}, skew)
    try:
        out = subprocess.run(
            [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a timed wait under the skewed clock never returned")
    assert out.returncode == 0, out.stderr
    assert abs(int(out.stdout) - (time.time() + offset)) < 20  # the wall clock is skewed
