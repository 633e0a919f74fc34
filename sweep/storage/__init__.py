"""Every touch of the database: one URL parsed once into a :class:`Database`, whose one engine the
Optuna storage, the prediction store and the OCL dictionary share.

- :func:`parse_storage` checks a ``--storage`` URL without connecting; :func:`open_storage` opens
  Optuna's RDB storage with heartbeats; :func:`check_storage` fails early without creating anything;
- :func:`store_predictions` / :func:`load_predictions`: each finished trial's validation scores,
  beside Optuna's tables; :func:`store_resampled` / :func:`load_resampled`: their bootstrap
  half-scores, computed once per trial;
- :meth:`Database.has_optuna_tables` and :func:`shown_url`: a SQLite file read without writing, and a URL
  with its password masked, for pages.

Nothing outside this folder opens a ``sqlite3`` connection or parses a URL.
"""

from sweep.storage._database import (
    Database,
    check_storage,
    create_tables,
    heartbeat_interval,
    normalize_url,
    open_storage,
    parse_storage,
    shared_url,
    shown_url,
    sqlite_path,
    sqlite_pragmas,
)
from sweep.storage._predictions import (
    StoredPredictions,
    ValidationSplit,
    load_predictions,
    load_resampled,
    load_validation,
    store_predictions,
    store_resampled,
    store_validation,
    stored_trials,
)

__all__ = [
    "Database",
    "StoredPredictions",
    "ValidationSplit",
    "check_storage",
    "create_tables",
    "heartbeat_interval",
    "load_predictions",
    "load_resampled",
    "load_validation",
    "normalize_url",
    "open_storage",
    "parse_storage",
    "shared_url",
    "shown_url",
    "sqlite_path",
    "sqlite_pragmas",
    "store_predictions",
    "store_resampled",
    "store_validation",
    "stored_trials",
]
