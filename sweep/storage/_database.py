"""The one database: the Optuna storage and the OCL dictionary's tables, opened the same way.

SQLite serves one machine, any RDB URL (PostgreSQL) many. Both the Optuna storage
(:func:`open_storage`) and the dictionary's engine (:meth:`Database.engine`, used by
:func:`layers_index._store.engine_for`) start from :func:`parse_storage`, so they share:

* the URL rules: :func:`normalize_url` picks the installed PostgreSQL driver, and a malformed URL
  or an unsupported database is refused in the same line from either entry point;
* the engine settings (:attr:`Database.engine_kwargs`): a pre-ping for servers that drop idle
  connections, and connect timeouts;
* SQLite's pragmas (:func:`sqlite_pragmas`), on every connection: several worker processes write
  to one file, so it runs in WAL mode (readers such as optuna-dashboard never block writers) with
  a generous busy timeout (writers queue instead of failing with "database is locked");
* the mapping of failures to one-line :class:`~sweep.errors.OCLError` messages
  (:meth:`Database.errors`): a missing driver, a server that cannot be reached.

Heartbeats mark the trials of a killed worker as failed, and Optuna's stale-trial retry callback
queues them again, so a crash costs one trial, not the study. One setting controls them, the grace
period (``OCL_GRACE_SECONDS``, read in :mod:`sweep._env`); the interval follows from it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sqlite3
import warnings
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from sweep.errors import OCLError

if TYPE_CHECKING:
    import optuna

__all__ = [
    "Database",
    "check_storage",
    "create_tables",
    "heartbeat_interval",
    "normalize_url",
    "open_storage",
    "parse_storage",
    "shared_url",
    "shown_url",
    "sqlite_path",
    "sqlite_pragmas",
]

SQLITE_TIMEOUT_SECONDS = 120
SERVER_CONNECT_TIMEOUT_SECONDS = 10
SUPPORTED = ("sqlite", "postgresql", "mysql")
_ENGINES: dict[str, Engine] = {}  # one per normalised URL and process (Database.shared_engine)
MALFORMED = "not a database URL; use sqlite:///studies/ocl.db or postgresql://user@host/db"


def normalize_url(url: str) -> str:
    """``postgresql://`` means SQLAlchemy's default driver (psycopg2); use psycopg 3 when only it is installed."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL; None for other URLs and an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def sqlite_pragmas(connection: Any, _record: Any = None) -> None:
    """Set OCL's pragmas on a SQLite DBAPI connection (also a SQLAlchemy ``connect`` listener).

    The busy timeout comes first, so that switching a fresh file to WAL waits for a lock like any
    write. In WAL mode, synchronous=NORMAL cannot corrupt the database; it only skips an fsync per
    commit (a sweep commits dozens of times per trial), at the risk of losing the last commits on
    power loss, not on a crash of the process.
    """
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA journal_mode=WAL").fetchall()
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _reason(exc: BaseException) -> str:
    """The first line of what the driver said (SQLAlchemy and Optuna wrap it)."""
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0][:200]


@dataclass(frozen=True)
class Database:
    """A checked ``--storage`` URL: what the Optuna storage and the dictionary engine connect with."""

    given: str
    """The URL as the user gave it; every message names it so."""
    url: str
    """The normalised URL (:func:`normalize_url`) that is connected to."""
    backend: str
    """``sqlite``, ``postgresql`` or ``mysql``."""
    path: Path | None
    """A SQLite database's file; None for a server or an in-memory SQLite database."""

    def error(self, problem: str) -> OCLError:
        return OCLError(f"--storage {self.given}: {problem}")

    @property
    def engine_kwargs(self) -> dict[str, Any]:
        """SQLAlchemy engine arguments: a pre-ping, and how long connecting may take.

        SQLite's timeout is how long a writer waits for the lock; a server must answer within 10 s.
        """
        if self.backend == "sqlite":
            connect_args: dict[str, Any] = {"timeout": SQLITE_TIMEOUT_SECONDS}
        else:
            connect_args = {"connect_timeout": SERVER_CONNECT_TIMEOUT_SECONDS}
        return {"pool_pre_ping": True, "connect_args": connect_args}

    def prepare(self) -> None:
        """Create a SQLite file (and its folder) in WAL mode, or check that it opens; nothing for a server."""
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=SQLITE_TIMEOUT_SECONDS)) as connection:
                sqlite_pragmas(connection)
        except (OSError, sqlite3.Error) as exc:
            raise self.error(f"cannot open {self.path} ({exc}); check the path and its permissions") from None

    def has_optuna_tables(self) -> bool:
        """Whether a SQLite file holds Optuna's tables, read without writing to it (True for a
        server, whose storage says itself what is wrong)."""
        if self.path is None:
            return True
        try:
            with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as connection:
                query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'"
                return connection.execute(query).fetchone() is not None
        except sqlite3.Error:
            return True  # not readable this way: let the storage say what is wrong

    @property
    def shown(self) -> str:
        """The URL as pages and messages may show it: any password masked."""
        return make_url(self.given).render_as_string(hide_password=True)

    @property
    def shared(self) -> str:
        """The URL as a page made to be shared shows it: no folder, user, host or port, only the
        database's name (``sqlite:///ocl.db``, ``postgresql://…/ocl``)."""
        url = make_url(self.given)
        if self.path is not None:
            return f"sqlite:///{self.path.name}"
        return f"{url.drivername.split('+')[0]}://…/{url.database or ''}"

    def shared_engine(self) -> Engine:
        """This process's one engine on the database (the prediction store and the dictionary share it)."""
        if self.url not in _ENGINES:
            _ENGINES[self.url] = self.engine()
        return _ENGINES[self.url]

    def attach(self, engine: Engine) -> None:
        """Give every new connection of ``engine`` the SQLite pragmas (nothing for a server)."""
        if self.backend == "sqlite":
            event.listen(engine, "connect", sqlite_pragmas)

    def engine(self) -> Engine:
        """A SQLAlchemy engine with :attr:`engine_kwargs` and the pragmas; connecting is left to its first use."""
        with self.errors():
            engine = create_engine(self.url, **self.engine_kwargs)
        self.attach(engine)
        return engine

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn a missing driver or a database that cannot be reached into one line that says how to fix it."""
        try:
            yield
        except ImportError as exc:
            fix = "pip install 'ocl[postgres]'" if self.backend == "postgresql" else "install the driver the URL names"
            raise self.error(f"the database driver is not installed ({_reason(exc)}); {fix}") from None
        except SQLAlchemyError as exc:  # OperationalError and friends: unreachable, bad credentials, no such file
            raise self.error(f"cannot connect ({_reason(exc)}); check that the server runs and the URL is right") from None


@functools.lru_cache(maxsize=64)
def parse_storage(url: str) -> Database:
    """Check a ``--storage`` URL without connecting: it must parse and name a supported database.

    Parsed once per process and URL: every later caller (the Optuna storage, the prediction
    store, the dictionary) gets the same :class:`Database`, and so the same shared engine.

    Raises:
        OCLError: for a malformed URL, an unsupported database, or an unknown driver.
    """
    normalized = normalize_url(url)
    try:
        parsed = make_url(normalized)
    except ArgumentError:
        raise OCLError(f"--storage {url}: {MALFORMED}") from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise OCLError(f"--storage {url}: unsupported database {backend!r}; use sqlite:///PATH or postgresql://user@host/db")
    try:
        parsed.get_dialect()  # an unknown driver (postgresql+nope://) fails here, before anything is created
    except ArgumentError:
        raise OCLError(f"--storage {url}: {MALFORMED}") from None
    return Database(given=url, url=normalized, backend=backend, path=sqlite_path(normalized))


def create_tables(metadata: Any, engine: Engine) -> None:
    """``metadata.create_all`` that survives a race: workers that open a fresh database at once each
    check that a table is missing, and all but the first then fail creating it ("table ... already
    exists"). Such a loser creates what is still missing once more, and carries on."""
    try:
        metadata.create_all(engine)
    except SQLAlchemyError as exc:
        if "already exists" not in str(exc).lower():
            raise
        metadata.create_all(engine)


def shared_url(url: str) -> str:
    """``url`` without folders, user, host or port (:attr:`Database.shared`), for reports and exports."""
    try:
        return parse_storage(url).shared
    except OCLError:
        return "(storage)"


def shown_url(url: str) -> str:
    """``url`` with any password masked; a string that is no database URL is shown as given."""
    try:
        return parse_storage(url).shown
    except OCLError:
        return url


def _in_memory(database: Database) -> OCLError:
    return database.error("an in-memory SQLite database cannot be shared by workers; use sqlite:///PATH")


def heartbeat_interval(grace_seconds: int) -> int:
    """Seconds between a worker's heartbeats: four fit in the grace period, so one late beat is no death."""
    return max(1, grace_seconds // 4)


def check_storage(url: str) -> None:
    """Fail early on a storage URL that cannot work, without creating anything.

    A SQLite path is only checked (its folder must exist or be creatable); a server URL is
    connected to once.
    """
    database = parse_storage(url)
    if database.backend != "sqlite":
        open_storage(url, heartbeat=False)
        return
    path = database.path
    if path is None:
        raise _in_memory(database)
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if path.exists() and not os.access(path, os.W_OK) or not os.access(folder, os.W_OK):
        raise database.error(f"cannot write {path}; choose a writable location")


def open_storage(
    url: str, *, heartbeat: bool = True, grace_seconds: int | None = None, retries: int = 2
) -> optuna.storages.RDBStorage:
    """Open (and create on first use) the Optuna storage at ``url``.

    Args:
        heartbeat: record workers' heartbeats, so that a dead worker's trial is failed and retried
            (off for readers: ``ocl evaluate``, the dashboard).
        grace_seconds: how long a worker may stay silent before it counts as dead; default
            :func:`sweep._env.grace_seconds` (``OCL_GRACE_SECONDS``, 20). Heartbeats come every
            :func:`heartbeat_interval` of it.
        retries: how many times a dead worker's trial is queued again.

    Raises:
        OCLError: for a malformed URL, an unsupported database, one that cannot be reached, or one
            whose tables another Optuna version set up.
    """
    import optuna

    database = parse_storage(url)
    if database.backend == "sqlite" and database.path is None:
        raise _in_memory(database)
    database.prepare()
    options: dict[str, Any] = {}
    if heartbeat:
        if grace_seconds is None:
            from sweep._env import grace_seconds as default_grace

            grace_seconds = default_grace()
        options = {"heartbeat_interval": heartbeat_interval(grace_seconds), "grace_period": grace_seconds}
    # Heartbeats are "experimental" to Optuna since 2.8; OCL's crash safety rests on them.
    with database.errors(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if heartbeat:
            options["heartbeat_stale_trial_callback"] = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=retries)
        try:
            storage = optuna.storages.RDBStorage(database.url, engine_kwargs=database.engine_kwargs, **options)
        except RuntimeError as exc:  # Optuna: the tables were set up by an incompatible Optuna version
            raise database.error(" ".join(str(exc).split())) from None
    database.attach(storage.engine)
    storage.engine.dispose()  # reconnect, so that every pooled connection gets the pragmas
    return storage
