"""Ending a process group: SIGTERM, a grace period, then SIGKILL for whatever is left.

The S3 server (scripts/s3.py), the services an earlier stack left behind (scripts/stack.py) and
what a dead service leaves (the reaper of scripts/supervisor.py) are all ended this way; each says
what "still running" means for it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable


def group_alive(pgid: int) -> bool:
    """Whether the process group ``pgid`` still has members."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def end_group(
    pgid: int,
    grace_s: float,
    alive: Callable[[], bool] | None = None,
    poll_s: float = 0.2,
    on_signal: Callable[[str], None] | None = None,
) -> None:
    """SIGTERM the process group ``pgid``; SIGKILL it when ``alive()`` (default: the group has
    members) still holds after ``grace_s`` seconds. A group that is already gone is left alone;
    ``on_signal`` hears the name of every signal sent."""
    alive = alive or (lambda: group_alive(pgid))
    if not _send(pgid, signal.SIGTERM, on_signal):
        return  # nothing left behind
    deadline = time.monotonic() + grace_s
    while alive() and time.monotonic() < deadline:
        time.sleep(poll_s)
    if alive():
        _send(pgid, signal.SIGKILL, on_signal)


def _send(pgid: int, sig: signal.Signals, on_signal: Callable[[str], None] | None) -> bool:
    """Send ``sig`` to the group; False when the group is gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    if on_signal is not None:
        on_signal(sig.name)
    return True
