"""Finding the study a reading command means: the only one in the storage, or the one named.

``ocl evaluate``, ``ocl report`` and the dashboard read studies; they must never create a
database behind a mistyped ``--storage``, and a storage with several studies needs a name.
"""

from __future__ import annotations

from typing import Any

import optuna

from sweep._env import DEFAULT_STORAGE
from sweep.errors import OCLError
from sweep.storage import open_storage, parse_storage
from sweep.study import _records as records
from sweep.study._lifecycle import load_study

__all__ = ["ocl_studies", "open_study"]


def open_study(study: str | None = None, *, storage: str | None = None) -> tuple[Any, str]:
    """The OCL study to read (default: the only one in the storage) and its storage URL.

    Reads only: a missing SQLite file or one without Optuna's tables is refused, never created.

    Raises:
        OCLError: no database, no OCL study there, several and none named, or an unknown name.
    """
    url = storage or DEFAULT_STORAGE
    database = parse_storage(url)
    if database.path is not None and not database.path.exists():
        raise OCLError(f"--storage {url}: no database at {database.path}; run `ocl sweep` first, or pass the --storage it used")
    if not database.has_optuna_tables():  # open_storage would add them
        raise OCLError(f"--storage {url}: no OCL study there; run `ocl sweep` first, or pass the --storage it used")
    opened = open_storage(url, heartbeat=False)
    names = ocl_studies(opened)
    if study is None:
        if not names:
            raise OCLError(f"--storage {url}: no OCL study there; run `ocl sweep` first, or pass the --storage it used")
        if len(names) > 1:
            raise OCLError(f"--study: the storage holds {len(names)} studies; pass one of {_listed(names)}")
        study = names[0]
    elif study not in names:
        if not names:
            raise OCLError(f"--study {study}: no OCL study in {url}; run `ocl sweep` first, or pass the --storage it used")
        raise OCLError(f"--study {study}: no such OCL study in this storage (studies: {_listed(names)})")
    return load_study(opened, study), url


def _listed(names: list[str]) -> str:
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def ocl_studies(storage: Any) -> list[str]:
    """Names of the studies ``ocl sweep`` made (they carry stored settings), in creation order."""
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    return [s.study_name for s in summaries if records.SETTINGS in s.user_attrs]
