"""Child processes that never outlive their parent."""

from __future__ import annotations

import subprocess

from partnersync.deathsig import die_with_parent


def child_preexec() -> None:
    """In the child, before exec: die with SIGTERM when the parent dies (Linux), and
    leave the terminal's process group so Ctrl-C reaches only the supervisor, which then
    stops the children in order."""
    import os

    os.setpgrp()
    die_with_parent()


def stop(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
