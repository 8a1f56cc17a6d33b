"""The safety of a local store, without MLflow: reachability before any training, the lock beside an SQLite store,
and one-line errors for unwritable or damaged SQLite files. Part of `rnnbench.tracking`, which uses it; it imports
no mlflow (only `tracking` does)."""
from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from rnnbench.errors import UserError

# What SQLAlchemy/MLflow say about a store whose schema creation was cut short, or a file that is no SQLite store.
_DAMAGE_SIGNS = ("already exists", "duplicate column", "out-of-date database schema", "no such table",
                 "file is not a database", "malformed", "alembic_version")


def check_reachable(uri: str, timeout: float = 3.0) -> None:
    """Fails fast, before any training, when the tracking store cannot be reached."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
        except OSError as error:
            raise UserError(
                f"MLflow tracking server {uri} is unreachable ({error.strerror or error}); start it, or unset "
                "MLFLOW_TRACKING_URI to use the local SQLite store mlflow.db"
            ) from None
    elif parsed.scheme == "sqlite":
        folder = Path(uri[len("sqlite:///"):]).parent
        if not folder.is_dir():
            raise UserError(f"MLflow store {uri}: folder {folder} does not exist; create it or fix MLFLOW_TRACKING_URI")


@contextlib.contextmanager
def store_lock(uri: str):
    """An exclusive file lock beside a local SQLite store (no-op for other stores)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    with open(uri[len("sqlite:///"):] + ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sqlite_path(uri: str) -> Optional[Path]:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def store_error(uri: str, error: BaseException) -> BaseException:
    """The user-facing error for a store that cannot be opened: unwritable or damaged SQLite files get one line
    naming the file and the fix; anything else is returned unchanged."""
    path = sqlite_path(uri)
    if path is None:
        return error
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    unwritable = (isinstance(error, OSError) and error.errno in (13, 30)) or "readonly" in str(error).lower() \
        or not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK))
    if unwritable:
        return UserError(f"MLflow store {path} is not writable ({text}): run from a folder you can write to, make "
                         f"the file writable, or set MLFLOW_TRACKING_URI=sqlite:////a/writable/folder/mlflow.db")
    if any(sign in str(error).lower() for sign in _DAMAGE_SIGNS):
        return UserError(f"MLflow store {path} is damaged ({text}); an earlier command was probably killed while "
                         f"creating it. Move it aside (mv {path} {path}.damaged) and run again to start a new store; "
                         "rnnbench cannot recover the runs in it")
    return error
