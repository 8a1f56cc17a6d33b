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


def this_process() -> str:
    process = psutil.Process()
    return f"{socket.gethostname()}:{process.pid}:{process.create_time():.3f}"


def alive(owner: str) -> Optional[bool]:
    """True or False for an owner on this host; None for another host (or an unreadable owner)."""
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        return abs(psutil.Process(int(pid)).create_time() - float(started)) < 1.0
    except (psutil.NoSuchProcess, ValueError):
        return False
    except psutil.AccessDenied:  # it exists, owned by someone else: alive
        return True


def stranded(owner: Optional[str], heartbeat: Optional[float], started: float, now: Optional[float] = None) -> bool:
    """A RUNNING run nobody is training any more: its owner here is dead, or its lease ran out."""
    now = time.time() if now is None else now
    state = alive(owner) if owner else None
    if state is not None:
        return not state
    return now - (heartbeat or started) > LEASE_SECONDS
