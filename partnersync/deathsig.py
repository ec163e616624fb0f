"""A child process that stops when its parent dies (Linux's parent-death signal)."""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Run in the child before exec (`preexec_fn`): SIGTERM it when its parent dies, so a
    killed supervisor leaves no unsupervised children behind. Elsewhere than Linux:
    nothing."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
