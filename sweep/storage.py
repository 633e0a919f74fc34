"""Opening the Optuna storage: SQLite for one machine, any RDB URL (PostgreSQL) for many.

Several worker processes write to one SQLite file, so the file runs in WAL mode (readers such as
optuna-dashboard never block writers) with a generous busy timeout (writers queue instead of
failing with "database is locked"). Heartbeats mark the trials of a killed worker as failed, and
Optuna's stale-trial retry callback queues them again, so a crash costs one trial, not the study.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from pathlib import Path

import optuna
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sweep.errors import OCLError

__all__ = ["HEARTBEAT_SECONDS", "GRACE_SECONDS", "check_storage", "normalize_url", "open_storage", "sqlite_path"]

HEARTBEAT_SECONDS = int(os.environ.get("OCL_HEARTBEAT_SECONDS", "5"))
GRACE_SECONDS = int(os.environ.get("OCL_GRACE_SECONDS", "20"))  # a worker silent this long is dead
SQLITE_TIMEOUT_SECONDS = 120
SUPPORTED = ("sqlite", "postgresql", "mysql")


def normalize_url(url: str) -> str:
    """``postgresql://`` means SQLAlchemy's default driver (psycopg2); use psycopg 3 when only it is installed."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        import importlib.util

        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, or None for other URLs."""
    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


def _prepare_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=SQLITE_TIMEOUT_SECONDS) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def _sqlite_connection_pragmas(dbapi_connection, _record) -> None:
    """In WAL mode, synchronous=NORMAL cannot corrupt the database; it only skips an fsync per
    commit (a sweep commits dozens of times per trial), at the risk of losing the last commits
    on power loss, not on a crash of the process."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def check_storage(url: str) -> None:
    """Fail early on a storage URL that cannot work, without creating anything.

    A SQLite path is only checked (its folder must exist or be creatable); a server URL is
    connected to once.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise OCLError(
            f"--storage {url}: not a database URL; use sqlite:///studies/ocl.db or postgresql://user@host/db"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        open_storage(url, heartbeat=False)
        return
    path = sqlite_path(url)
    if path is None:
        raise OCLError(f"--storage {url}: an in-memory SQLite database cannot be shared by workers; use sqlite:///PATH")
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if path.exists() and not os.access(path, os.W_OK) or not os.access(folder, os.W_OK):
        raise OCLError(f"--storage {url}: cannot write {path}; choose a writable location")


def open_storage(url: str, *, heartbeat: bool = True, retries: int = 2) -> optuna.storages.RDBStorage:
    """Open (and create on first use) the storage at ``url``.

    Raises:
        OCLError: for a malformed URL, an unsupported database, or one that cannot be reached.
    """
    if os.environ.get("OCL_OPTUNA_QUIET"):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    original, url = url, normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise OCLError(
            f"--storage {original}: not a database URL; use sqlite:///studies/ocl.db or postgresql://user@host/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise OCLError(f"--storage {original}: unsupported database {backend!r}; use sqlite:///PATH or postgresql://user@host/db")
    engine_kwargs: dict = {"pool_pre_ping": True}
    if backend == "sqlite":
        path = sqlite_path(url)
        if path is None:
            raise OCLError(f"--storage {original}: an in-memory SQLite database cannot be shared by workers; use sqlite:///PATH")
        try:
            _prepare_sqlite(path)
        except sqlite3.Error as exc:
            raise OCLError(f"--storage {original}: cannot open {path} ({exc}); check the path and its permissions") from None
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_SECONDS}
    else:
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    options: dict = {}
    if heartbeat:
        options = {"heartbeat_interval": HEARTBEAT_SECONDS, "grace_period": GRACE_SECONDS}
    try:
        # Heartbeats are "experimental" to Optuna since 2.8; OCL's crash safety rests on them.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if heartbeat:
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=retries)
                options["heartbeat_stale_trial_callback"] = retry
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **options)
        if backend == "sqlite":
            event.listen(storage.engine, "connect", _sqlite_connection_pragmas)
            storage.engine.dispose()  # reconnect, so every pooled connection gets the pragma
        return storage
    except ImportError as exc:
        raise OCLError(
            f"--storage {original}: the database driver is not installed ({exc}); pip install 'ocl[postgres]'"
        ) from None
    except Exception as exc:  # SQLAlchemy's OperationalError and friends: unreachable, bad credentials
        reason = str(exc).splitlines()[0][:200]
        raise OCLError(
            f"--storage {original}: cannot connect ({reason}); check that the server runs and the URL is right"
        ) from None
