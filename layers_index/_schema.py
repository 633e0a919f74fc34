"""The OCL dictionary's tables, in the same database as the Optuna storage.

Three tables: datasets (what was scored), layers (where in the network), and layer scores (how
good a layer's features were, by one kind of score, for one dataset, task, weights and image
size). A one-row version table lets later releases upgrade a user's database in place and lets
this release refuse a database written by a newer one instead of misreading it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from layers_index import SCORE_KINDS

__all__ = ["SCHEMA_VERSION", "SCORE_KINDS", "Base", "DatasetRow", "LayerRow", "SchemaVersion", "ScoreRow"]

SCHEMA_VERSION = 2
"""1: the first release. 2: a dataset is identified by its split fingerprint too; scores carry an
interval (``low``/``high``); sweep scores are kept per strategy (see :data:`SCORE_KINDS`)."""


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    __tablename__ = "ocl_schema_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class DatasetRow(Base):
    __tablename__ = "ocl_datasets"
    # The same name with another split (another --seed, --split or file list) is another dataset.
    __table_args__ = (UniqueConstraint("name", "task", "fingerprint", name="uq_ocl_dataset_v2"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    task: Mapped[str] = mapped_column(String(200), nullable=False)
    modality: Mapped[str] = mapped_column(String(100), nullable=False)
    images: Mapped[int] = mapped_column(Integer, nullable=False)
    patients: Mapped[int] = mapped_column(Integer, nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)


class LayerRow(Base):
    __tablename__ = "ocl_layers"
    __table_args__ = (UniqueConstraint("model", "name", name="uq_ocl_layer_model_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(100), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    depth: Mapped[int | None] = mapped_column(Integer)  # position among candidate layers
    layer_index: Mapped[int] = mapped_column(Integer, nullable=False)  # position among all layers
    block: Mapped[str] = mapped_column(String(100), nullable=False)
    channels: Mapped[int] = mapped_column(Integer, nullable=False)
    stride: Mapped[int] = mapped_column(Integer, nullable=False)  # input size / output size


class ScoreRow(Base):
    __tablename__ = "ocl_layer_scores"
    __table_args__ = (UniqueConstraint("dataset_id", "layer_id", "weights", "image_size", "kind", name="uq_ocl_score_v2"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("ocl_datasets.id"), nullable=False)
    layer_id: Mapped[int] = mapped_column(ForeignKey("ocl_layers.id"), nullable=False)
    weights: Mapped[str] = mapped_column(String(200), nullable=False)
    image_size: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(50), nullable=False)  # one of SCORE_KINDS
    value: Mapped[float] = mapped_column(Float, nullable=False)
    low: Mapped[float | None] = mapped_column(Float)  # 95% interval, where the score has one
    high: Mapped[float | None] = mapped_column(Float)
    n_trials: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    source_study: Mapped[str | None] = mapped_column(String(500))
    source_trial: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=_now, onupdate=_now)
