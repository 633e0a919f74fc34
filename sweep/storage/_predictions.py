"""Every finished trial's validation predictions, kept in the study's own database.

A trial's one number (validation mean AUROC) cannot say how sure it is, nor whether two layers
differ by more than chance: that needs the predictions, image by image, and which patient each
image belongs to. OCL keeps them in two tables beside Optuna's, in the same SQLite file or
PostgreSQL database, so every worker writes them through the storage URL it already has, on this
machine or another, and any report can be recomputed from the storage alone:

- ``ocl_validation``: per study, the validation split once: its outputs, targets and patient of
  each image, and the dataset's split fingerprint;
- ``ocl_predictions``: per finished trial, its validation scores (float32, compressed).

A trial's row is written in its own transaction before the trial is marked complete, so a crash
leaves either no row or a whole one, never half (rows of trials that then failed are ignored:
readers ask only for completed trials). At the full NIH validation split (about 11,000 images x
14 outputs) a row is about 0.6 MB, so 200 trials take about 120 MB.

Example:
    >>> split = load_validation(url, "nih-cxr14-sample-any-224px")
    >>> scores = load_predictions(url, "nih-cxr14-sample-any-224px", [3, 7])
    >>> scores[3].shape == split.targets.shape
    True
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, Integer, LargeBinary, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sweep.storage._database import create_tables, parse_storage

__all__ = ["ValidationSplit", "load_predictions", "load_validation", "store_predictions", "store_validation"]

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
    """Record a study's validation split once; a worker that raced another writes nothing new."""
    patients = np.asarray([str(p) for p in split.patients])
    row = _ValidationRow(
        study=study,
        fingerprint=split.fingerprint,
        outputs=json.dumps(list(split.outputs)),
        arrays=_pack(targets=np.asarray(split.targets, np.float32), patients=patients),
    )
    try:
        with Session(_engine(url)) as session, session.begin():
            if session.get(_ValidationRow, study) is None:
                session.add(row)
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


def store_predictions(url: str, study: str, trial: int, scores: np.ndarray) -> None:
    """Keep one trial's validation scores (images x outputs); a retried write replaces the row."""
    blob = _pack(scores=np.asarray(scores, np.float32))
    with Session(_engine(url)) as session, session.begin():
        row = session.get(_PredictionRow, (study, trial))
        if row is None:
            session.add(_PredictionRow(study=study, trial=trial, scores=blob))
        else:
            row.scores = blob


def load_predictions(url: str, study: str, trials: Iterable[int]) -> dict[int, np.ndarray]:
    """The stored validation scores of the given trials (those without a row are left out)."""
    wanted = sorted(set(int(t) for t in trials))
    if not wanted:
        return {}
    found: dict[int, np.ndarray] = {}
    with Session(_engine(url)) as session:
        for start in range(0, len(wanted), 500):  # keep IN (...) lists short for every database
            query = select(_PredictionRow).where(
                _PredictionRow.study == study, _PredictionRow.trial.in_(wanted[start : start + 500])
            )
            for row in session.scalars(query):
                found[row.trial] = _unpack(row.scores)["scores"]
    return found
