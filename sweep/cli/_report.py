"""``ocl report``: the study's answer on one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sweep.cli._common import console


def _ocl_studies(storage) -> list[str]:
    """Names of the studies ``ocl sweep`` made (they carry stored settings), in creation order."""
    import optuna

    from sweep import records

    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    return [s.study_name for s in summaries if records.SETTINGS in s.user_attrs]


def _has_optuna_tables(path: Path) -> bool:
    """Whether a SQLite file holds Optuna's tables, read without writing to it."""
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            found = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'").fetchone()
    except sqlite3.Error:
        return True  # not readable this way: let the storage say what is wrong
    return found is not None


def _listed(names: list[str]) -> str:
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def report(
    study: Annotated[
        str | None,
        typer.Option("--study", help="Study to report on. Default: the only study in the storage.", show_default=False),
    ] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", help="Optuna storage URL. Default: sqlite:///studies/ocl.db", show_default=False)
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="HTML file to write (folders are created; a folder gets STUDY.html). Default: studies/reports/STUDY.html",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the study's answer as one self-contained HTML page (opens offline, prints well).

    The optimal cut-off layer and strategy with its 95% interval and confidence set, the layer
    profile against depth, feature extraction vs fine-tuning, transfer vs scratch, the search
    history, the split and leakage facts, and the command that reproduces the study.
    Example: ocl report --study nih-cxr14-sample-any-224px --output answer.html
    """
    from sweep._defaults import DEFAULT_STORAGE
    from sweep.errors import OCLError
    from sweep.report import write_study_report
    from sweep.storage import open_storage, parse_storage
    from sweep.study import load_study

    url = storage or DEFAULT_STORAGE
    database = parse_storage(url)
    if database.path is not None and not database.path.exists():
        raise OCLError(f"--storage {url}: no database at {database.path}; run `ocl sweep` first, or pass the --storage it used")
    if database.path is not None and not _has_optuna_tables(database.path):  # open_storage would add them
        raise OCLError(f"--storage {url}: no OCL study there; run `ocl sweep` first, or pass the --storage it used")
    opened = open_storage(url, heartbeat=False)
    names = _ocl_studies(opened)
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
    the_study = load_study(opened, study)
    stem = study.replace("/", "_").replace(":", "_")
    path = output if output is not None else Path("studies/reports") / f"{stem}.html"
    if path.is_dir():
        path = path / f"{stem}.html"
    try:
        written = write_study_report(the_study, url, path)
    except OSError as exc:
        raise OCLError(f"--output {path}: cannot write it ({exc.strerror or exc}); choose a writable location") from None
    console.print(f"wrote {written}", highlight=False)
