"""Who owns a run: this process's identity, and whether the process named by an identity still lives.

An owner is "host:pid:start time". On this host a dead or reused pid is told exactly (the start time must match);
a process on another host cannot be seen, so its runs hold a lease that their heartbeat renews.
"""
from __future__ import annotations

import os
import socket
import time
from typing import Optional

import psutil

LEASE_SECONDS = float(os.environ.get("RNNBENCH_LEASE_SECONDS", 2 * 3600))


def _start_of(pid: int) -> str:
    """When process `pid` started: its start time in clock ticks since boot from /proc (exact, and immune to the
    drift of the boot time that psutil adds to it: a VM's clock moved it by over a second within 25 minutes here),
    else psutil's start time in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return "t" + stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return f"{psutil.Process(pid).create_time():.3f}"


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_of(os.getpid())}"


def alive(owner: str) -> Optional[bool]:
    """True or False for an owner on this host; None for another host (or an unreadable owner)."""
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    if int(pid) == os.getpid():
        return started == _start_of(os.getpid())
    try:
        now = _start_of(int(pid))
    except (psutil.NoSuchProcess, ProcessLookupError):
        return False
    except psutil.AccessDenied:  # it exists, owned by someone else: alive
        return True
    if started.startswith("t") or now.startswith("t"):
        return now == started  # a different start: the pid was reused by another process
    return abs(float(now) - float(started)) < 5.0


def stranded(owner: Optional[str], heartbeat: Optional[float], started: float, now: Optional[float] = None) -> bool:
    """A RUNNING run nobody is training any more: its owner here is dead, or its lease ran out."""
    now = time.time() if now is None else now
    state = alive(owner) if owner else None
    if state is not None:
        return not state
    return now - (heartbeat or started) > LEASE_SECONDS
