"""Failpoints: named points in the code where a test can pause or stop a process.

Off, one dictionary lookup is all a point costs (`hit` returns at once while nothing is
armed). A test arms a point in its own process with `arm(name, action)` (e.g. wait on a
threading.Event: "pause worker A here, let B run, resume A"), or in a child process through
`PARTNERSYNC_FAILPOINTS=name=stop[,name=exit…]`: `stop` sends the process SIGSTOP, as a
long GC pause or a VM freeze would, and the test resumes it with SIGCONT; `exit` ends it at
once with status 1, as a crash would.

Points in the code (grep `failpoints.hit`):
- `reconcile.before_write`   — a reconcile batch fetched, about to store its results
- `commands.before_send`     — a command journaled SENT, its request not yet sent
- `transport.before_write`   — a create's bytes passed the send-deadline check, not yet written
- `commands.after_lookup`    — a create without an externalId looked up, not yet resent
- `replay.claimed`           — `dlq replay` took a letter, has not acted on it yet
- `worker.start`             — a pool's worker process started, before its first job
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping

_armed: dict[str, Callable[[], None]] = {}


def hit(name: str) -> None:
    """A failpoint: runs the armed action, if any."""
    if _armed:
        action = _armed.get(name)
        if action is not None:
            action()


def arm(name: str, action: Callable[[], None]) -> None:
    _armed[name] = action


def disarm(name: str | None = None) -> None:
    """Disarm one point, or all of them."""
    if name is None:
        _armed.clear()
    else:
        _armed.pop(name, None)


def _stop() -> None:
    os.kill(os.getpid(), signal.SIGSTOP)


def _exit() -> None:
    os._exit(1)


ACTIONS: dict[str, Callable[[], None]] = {"stop": _stop, "exit": _exit}


def from_environ(environ: Mapping[str, str] | None = None) -> None:
    """Arm the points named in PARTNERSYNC_FAILPOINTS (`name=stop,…`)."""
    spec = (os.environ if environ is None else environ).get("PARTNERSYNC_FAILPOINTS", "")
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, action = part.partition("=")
        if action not in ACTIONS:
            raise ValueError(
                f"failpoint {name!r}: unknown action {action!r}; known: {', '.join(ACTIONS)}"
            )
        arm(name, ACTIONS[action])
