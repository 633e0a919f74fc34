"""Every finished trial's validation predictions, kept in the study's own database.

A trial's one number (validation mean AUROC) cannot say how sure it is, nor whether two layers
differ by more than chance: that needs the predictions, image by image, and which patient each
image belongs to. OCL keeps them in two tables beside Optuna's, in the same SQLite file or
PostgreSQL database, so every worker writes them through the storage URL it already has, on this
machine or another, and any report can be recomputed from the storage alone:

- ``ocl_validation``: per study, the validation split once: its outputs, targets and patient of
  each image, and the dataset's split fingerprint;
- ``ocl_predictions``: per finished trial, its validation scores (float32, compressed): each image
  at the epoch best on its own patient half, and, where another epoch was best on the other half,
  at that epoch too (:mod:`sweep.training._epochs`);
- ``ocl_resamples``: per finished trial, its half-scores under the answer's bootstrap resamples
  (about 16 KB), computed once from its predictions and reused by every later answer, report and
  dictionary update, keyed by the resampling scheme that made them.

A trial's row is written in its own transaction before the trial is marked complete, so a crash
leaves either no row or a whole one, never half (rows of trials that then failed are ignored:
readers ask only for completed trials). At the full NIH validation split (about 11,000 images x
14 outputs) a row is about 0.6 MB, or 1.2 MB when the halves chose different epochs, so 200
trials take 120-240 MB (``benchmarks/bench_uncertainty.py --full-study`` measures it).

Example:
    >>> split = load_validation(url, "nih-cxr14-sample-any-224px")
    >>> scores = load_predictions(url, "nih-cxr14-sample-any-224px", [3, 7])
    >>> scores[3].own.shape == split.targets.shape
    True
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, Integer, LargeBinary, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sweep.storage._database import create_tables, parse_storage

__all__ = [
    "StoredPredictions",
    "ValidationSplit",
    "load_predictions",
    "load_resampled",
    "load_validation",
    "store_predictions",
    "store_resampled",
    "store_validation",
    "stored_trials",
]

_tables_ready: set[str] = set()  # URLs whose prediction tables this process has created


class _Base(DeclarativeBase):
    pass


class _ValidationRow(_Base):
    __tablename__ = "ocl_validation"

    study: Mapped[str] = mapped_column(String(500), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    outputs: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list of output names
    arrays: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # npz: targets (float32, NaN unknown), patients


class _PredictionRow(_Base):
    __tablename__ = "ocl_predictions"

    study: Mapped[str] = mapped_column(String(500), primary_key=True)
    trial: Mapped[int] = mapped_column(Integer, primary_key=True)
    scores: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # npz: float32 (images, outputs)


class _ResampleRow(_Base):
    __tablename__ = "ocl_resamples"

    study: Mapped[str] = mapped_column(String(500), primary_key=True)
    trial: Mapped[int] = mapped_column(Integer, primary_key=True)
    scheme: Mapped[str] = mapped_column(String(500), primary_key=True)
    values: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # npz: float32 array


@dataclass(frozen=True)
class StoredPredictions:
    """One trial's kept validation predictions (images x outputs) over the study's patient halves.

    ``own`` is what the answer chooses the trial on within a half; ``crossfit`` what it scores the
    trial with (each half at the epoch chosen on the other). A trial stored before OCL kept the
    halves' epochs has one array, its whole split's best epoch, serving as both.
    """

    own: np.ndarray
    crossfit: np.ndarray


@dataclass(frozen=True)
class ValidationSplit:
    """A study's validation split: what every trial was scored on."""

    outputs: tuple[str, ...]
    targets: np.ndarray  # (images, outputs) 1, 0, or NaN for an unknown label (CheXpert's U-Ignore)
    patients: np.ndarray  # (images,) patient id per image; an unknown patient is its own id
    fingerprint: str


def _engine(url: str) -> Engine:
    """The database's shared engine, with the prediction tables created once per process."""
    database = parse_storage(url)
    engine = database.shared_engine()
    if database.url not in _tables_ready:
        database.prepare()
        with database.errors():
            create_tables(_Base.metadata, engine)
        _tables_ready.add(database.url)
    return engine


def _pack(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _unpack(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def store_validation(url: str, study: str, split: ValidationSplit) -> None:
    """Record a study's validation split once; a worker that raced another writes nothing new.

    A split stored before OCL pseudonymised patient IDs (same images, other patient names) is
    rewritten with the pseudonyms, so the storage keeps no real ID once the study runs again.
    """
    patients = np.asarray([str(p) for p in split.patients])
    arrays = _pack(targets=np.asarray(split.targets, np.float32), patients=patients)
    row = _ValidationRow(study=study, fingerprint=split.fingerprint, outputs=json.dumps(list(split.outputs)), arrays=arrays)
    try:
        with Session(_engine(url)) as session, session.begin():
            stored = session.get(_ValidationRow, study)
            if stored is None:
                session.add(row)
            elif stored.fingerprint == split.fingerprint and not np.array_equal(_unpack(stored.arrays)["patients"], patients):
                stored.arrays = arrays
    except IntegrityError:  # another worker stored the same split first
        pass


def load_validation(url: str, study: str) -> ValidationSplit | None:
    """The study's validation split, or None when no trial has stored predictions yet."""
    with Session(_engine(url)) as session:
        row = session.get(_ValidationRow, study)
        if row is None:
            return None
        arrays = _unpack(row.arrays)
        return ValidationSplit(tuple(json.loads(row.outputs)), arrays["targets"], arrays["patients"], row.fingerprint)


def store_predictions(url: str, study: str, trial: int, scores: np.ndarray, crossfit: np.ndarray | None = None) -> None:
    """Keep one trial's validation scores (images x outputs): ``scores`` at the epoch best on each
    image's own half, ``crossfit`` at the epoch best on the other half (left out when the same, or
    None for a trial with one set of predictions). A retried write replaces the row."""
    arrays = {"scores": np.asarray(scores, np.float32)}
    if crossfit is not None and not np.array_equal(np.asarray(crossfit, np.float32), arrays["scores"]):
        arrays["crossfit"] = np.asarray(crossfit, np.float32)
    blob = _pack(**arrays)
    with Session(_engine(url)) as session, session.begin():
        row = session.get(_PredictionRow, (study, trial))
        if row is None:
            session.add(_PredictionRow(study=study, trial=trial, scores=blob))
        else:
            row.scores = blob


def load_predictions(url: str, study: str, trials: Iterable[int]) -> dict[int, StoredPredictions]:
    """The stored validation predictions of the given trials (those without a row are left out)."""
    found: dict[int, StoredPredictions] = {}
    for row in _rows(url, _PredictionRow, study, trials):
        arrays = _unpack(row.scores)
        found[row.trial] = StoredPredictions(arrays["scores"], arrays.get("crossfit", arrays["scores"]))
    return found


def stored_trials(url: str, study: str, trials: Iterable[int]) -> set[int]:
    """Which of the given trials have stored predictions (read without loading them)."""
    wanted = sorted(set(int(t) for t in trials))
    found: set[int] = set()
    with Session(_engine(url)) as session:
        for start in range(0, len(wanted), 500):
            query = select(_PredictionRow.trial).where(
                _PredictionRow.study == study, _PredictionRow.trial.in_(wanted[start : start + 500])
            )
            found.update(session.scalars(query))
    return found


def store_resampled(url: str, study: str, scheme: str, values: dict[int, np.ndarray]) -> None:
    """Keep trials' resampled half-scores under ``scheme``; a trial already stored is left as it is
    (the same scheme and predictions give the same values, so a racing worker wrote the same)."""
    if not values:
        return
    have = {row.trial for row in _rows(url, _ResampleRow, study, values, _ResampleRow.scheme == scheme)}
    try:
        with Session(_engine(url)) as session, session.begin():
            for trial, array in values.items():
                if trial not in have:
                    blob = _pack(values=np.asarray(array, np.float32))
                    session.add(_ResampleRow(study=study, trial=int(trial), scheme=scheme, values=blob))
    except IntegrityError:  # another process stored them first
        pass


def load_resampled(url: str, study: str, scheme: str, trials: Iterable[int]) -> dict[int, np.ndarray]:
    """The resampled half-scores stored under ``scheme`` for the given trials (missing ones left out)."""
    rows = _rows(url, _ResampleRow, study, trials, _ResampleRow.scheme == scheme)
    return {row.trial: _unpack(row.values)["values"] for row in rows}


def _rows(url: str, table: type, study: str, trials: Iterable[int], *where: Any) -> list:
    """The rows of ``table`` for these trials of ``study``, in chunks that keep IN (...) lists short."""
    wanted = sorted(set(int(t) for t in trials))
    rows: list = []
    if not wanted:
        return rows
    with Session(_engine(url)) as session:
        for start in range(0, len(wanted), 500):  # keep IN (...) lists short for every database
            query = select(table).where(table.study == study, table.trial.in_(wanted[start : start + 500]), *where)
            rows.extend(session.scalars(query))
    return rows
