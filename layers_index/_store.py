"""Reading and writing the OCL dictionary: connect, check the schema version, upsert scores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from layers_index._schema import SCHEMA_VERSION, Base, DatasetRow, LayerRow, SchemaVersion, ScoreRow
from sweep.errors import OCLError

MODEL = "densenet121"
_engines: dict[str, Engine] = {}


@dataclass(frozen=True)
class DatasetKey:
    """Which dataset and task scores belong to."""

    name: str
    task: str
    modality: str
    images: int
    patients: int
    fingerprint: str


@dataclass(frozen=True)
class LayerKey:
    name: str
    depth: int | None
    layer_index: int
    block: str
    channels: int
    stride: int


@dataclass(frozen=True)
class Score:
    """One score to store."""

    layer: LayerKey
    kind: str
    value: float
    n_trials: int = 0
    source_study: str | None = None
    source_trial: int | None = None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=120000")
    cursor.close()


def engine_for(url: str) -> Engine:
    """An engine on the storage URL with the dictionary's tables created and the version checked."""
    if url in _engines:
        return _engines[url]
    try:
        engine = create_engine(url, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            row = session.scalars(select(SchemaVersion)).first()
            if row is None:
                session.add(SchemaVersion(id=1, version=SCHEMA_VERSION))
                session.commit()
            elif row.version > SCHEMA_VERSION:
                raise OCLError(
                    f"--storage {url}: the OCL dictionary there has schema version {row.version}, newer than this "
                    f"ocl understands ({SCHEMA_VERSION}); upgrade ocl (pip install -U ocl)"
                )
    except OCLError:
        raise
    except ImportError as exc:
        raise OCLError(f"--storage {url}: database driver missing ({exc}); pip install 'ocl[postgres]'") from None
    except OperationalError as exc:
        reason = str(exc.orig).splitlines()[0][:200] if exc.orig else str(exc)[:200]
        raise OCLError(f"--storage {url}: cannot open the database ({reason}); check the URL and that the server runs") from None
    _engines[url] = engine
    return engine


def _dataset_row(session: Session, key: DatasetKey) -> DatasetRow:
    row = session.scalars(select(DatasetRow).where(DatasetRow.name == key.name, DatasetRow.task == key.task)).first()
    if row is None:
        row = DatasetRow(name=key.name, task=key.task, modality=key.modality, images=key.images,
                         patients=key.patients, fingerprint=key.fingerprint)
        session.add(row)
        session.flush()
    else:
        row.images, row.patients, row.fingerprint, row.modality = key.images, key.patients, key.fingerprint, key.modality
    return row


def _layer_row(session: Session, key: LayerKey) -> LayerRow:
    row = session.scalars(select(LayerRow).where(LayerRow.model == MODEL, LayerRow.name == key.name)).first()
    if row is None:
        row = LayerRow(model=MODEL, name=key.name, depth=key.depth, layer_index=key.layer_index, block=key.block,
                       channels=key.channels, stride=key.stride)
        session.add(row)
        session.flush()
    return row


def upsert_scores(url: str, dataset: DatasetKey, weights: str, image_size: int, scores: Iterable[Score]) -> int:
    """Insert or update scores in one transaction; retried once when another writer raced us."""
    scores = list(scores)
    for attempt in range(3):
        try:
            with Session(engine_for(url)) as session, session.begin():
                data_row = _dataset_row(session, dataset)
                for score in scores:
                    layer_row = _layer_row(session, score.layer)
                    row = session.scalars(select(ScoreRow).where(
                        ScoreRow.dataset_id == data_row.id, ScoreRow.layer_id == layer_row.id,
                        ScoreRow.weights == weights, ScoreRow.image_size == image_size, ScoreRow.kind == score.kind,
                    )).first()
                    if row is None:
                        row = ScoreRow(dataset_id=data_row.id, layer_id=layer_row.id, weights=weights,
                                       image_size=image_size, kind=score.kind)
                        session.add(row)
                    row.value, row.n_trials = float(score.value), int(score.n_trials)
                    row.source_study, row.source_trial = score.source_study, score.source_trial
                    row.updated_at = datetime.now(timezone.utc)
            return len(scores)
        except IntegrityError:
            if attempt == 2:
                raise
    return 0
