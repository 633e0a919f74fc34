"""Reading and writing the OCL dictionary: connect, check the schema version, upsert scores."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from layers_index._schema import SCHEMA_VERSION, Base, DatasetRow, LayerRow, SchemaVersion, ScoreRow
from sweep.errors import OCLError
from sweep.storage import normalize_url

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


def weights_label(text: str) -> str:
    """How the dictionary names weights: ``imagenet``, ``none`` or a weights file's absolute path.

    The label ``ocl sweep`` stores on its trials, so build and sweep scores of the same weights
    land in one row. Lenient, for filters: text that names no existing file is kept as given.
    """
    lowered = text.strip().lower()
    if lowered == "imagenet":
        return "imagenet"
    if lowered in ("none", "random"):
        return "none"
    path = Path(text).expanduser()
    return str(path.resolve()) if path.is_file() else text


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=120000")
    cursor.close()


def _stored_version(engine: Engine) -> int | None:
    """The schema version stamped in the database, or None when no dictionary is there yet."""
    if not inspect(engine).has_table(SchemaVersion.__tablename__):
        return None
    with Session(engine) as session:
        row = session.scalars(select(SchemaVersion)).first()
        return None if row is None else row.version


def engine_for(url: str, *, create: bool = True) -> Engine:
    """An engine on the storage URL with the dictionary's tables created and the version checked.

    The version is read before anything is created, so a database written by a newer release is
    refused untouched. ``create=False`` (the read-only commands) refuses a SQLite file that does
    not exist instead of leaving an empty database behind a mistyped path.
    """
    if url in _engines:
        return _engines[url]
    try:
        engine = create_engine(normalize_url(url), pool_pre_ping=True)
    except ArgumentError:
        raise OCLError(
            f"--storage {url}: not a database URL; use sqlite:///studies/ocl.db or postgresql://user@host/db"
        ) from None
    except ImportError as exc:
        raise OCLError(f"--storage {url}: database driver missing ({exc}); pip install 'ocl[postgres]'") from None
    if engine.dialect.name == "sqlite":
        _prepare_sqlite_file(url, engine, create)
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        version = _stored_version(engine)
        if version is not None and version > SCHEMA_VERSION:
            raise OCLError(
                f"--storage {url}: the OCL dictionary there has schema version {version}, newer than this "
                f"ocl understands ({SCHEMA_VERSION}); upgrade ocl (pip install -U ocl)"
            )
        Base.metadata.create_all(engine)
        if version is None:
            _stamp(engine)
    except OperationalError as exc:
        reason = str(exc.orig).splitlines()[0][:200] if exc.orig else str(exc)[:200]
        raise OCLError(f"--storage {url}: cannot open the database ({reason}); check the URL and that the server runs") from None
    _engines[url] = engine
    return engine


def _stamp(engine: Engine) -> None:
    """Write this release's schema version; a worker that raced us to it has written the same."""
    try:
        with Session(engine) as session, session.begin():
            if session.get(SchemaVersion, 1) is None:
                session.add(SchemaVersion(id=1, version=SCHEMA_VERSION))
    except IntegrityError:
        pass


def _prepare_sqlite_file(url: str, engine: Engine, create: bool) -> None:
    database = engine.url.database
    if not database or database == ":memory:":
        return
    path = Path(database)
    if path.exists():
        return
    if not create:
        raise OCLError(
            f"--storage {url}: no database at {path}; run `ocl dictionary build` or `ocl sweep` first, "
            "or pass the --storage URL they used"
        )
    path.parent.mkdir(parents=True, exist_ok=True)


def _dataset_row(session: Session, key: DatasetKey) -> DatasetRow:
    row = session.scalars(select(DatasetRow).where(DatasetRow.name == key.name, DatasetRow.task == key.task)).first()
    if row is None:
        row = DatasetRow(
            name=key.name,
            task=key.task,
            modality=key.modality,
            images=key.images,
            patients=key.patients,
            fingerprint=key.fingerprint,
        )
        session.add(row)
        session.flush()
    else:
        row.images, row.patients, row.fingerprint = key.images, key.patients, key.fingerprint
        row.modality = key.modality
    return row


def _layer_row(session: Session, key: LayerKey) -> LayerRow:
    row = session.scalars(select(LayerRow).where(LayerRow.model == MODEL, LayerRow.name == key.name)).first()
    if row is None:
        row = LayerRow(
            model=MODEL,
            name=key.name,
            depth=key.depth,
            layer_index=key.layer_index,
            block=key.block,
            channels=key.channels,
            stride=key.stride,
        )
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
                    row = session.scalars(
                        select(ScoreRow).where(
                            ScoreRow.dataset_id == data_row.id,
                            ScoreRow.layer_id == layer_row.id,
                            ScoreRow.weights == weights,
                            ScoreRow.image_size == image_size,
                            ScoreRow.kind == score.kind,
                        )
                    ).first()
                    if row is None:
                        row = ScoreRow(
                            dataset_id=data_row.id, layer_id=layer_row.id, weights=weights, image_size=image_size, kind=score.kind
                        )
                        session.add(row)
                    row.value, row.n_trials = float(score.value), int(score.n_trials)
                    row.source_study, row.source_trial = score.source_study, score.source_trial
                    row.updated_at = datetime.now(UTC)
            return len(scores)
        except IntegrityError:
            if attempt == 2:
                raise
    return 0


def read_scores(
    url: str,
    *,
    dataset: str | None = None,
    task: str | None = None,
    weights: str | None = None,
    image_size: int | None = None,
) -> list[dict[str, Any]]:
    """Every stored score matching the filters, one dict per score, with its dataset and layer."""
    query = (
        select(
            DatasetRow.name.label("dataset"),
            DatasetRow.task,
            ScoreRow.weights,
            ScoreRow.image_size,
            LayerRow.name.label("layer"),
            LayerRow.depth,
            LayerRow.layer_index,
            LayerRow.block,
            LayerRow.channels,
            LayerRow.stride,
            ScoreRow.kind,
            ScoreRow.value,
            ScoreRow.n_trials,
            ScoreRow.source_study,
            ScoreRow.source_trial,
            ScoreRow.updated_at,
        )
        .join(DatasetRow, ScoreRow.dataset_id == DatasetRow.id)
        .join(LayerRow, ScoreRow.layer_id == LayerRow.id)
        .order_by(DatasetRow.name, DatasetRow.task, ScoreRow.weights, ScoreRow.image_size, LayerRow.layer_index, ScoreRow.kind)
    )
    for column, value in (
        (DatasetRow.name, dataset),
        (DatasetRow.task, task),
        (ScoreRow.weights, weights),
        (ScoreRow.image_size, image_size),
    ):
        if value is not None:
            query = query.where(column == value)
    with Session(engine_for(url, create=False)) as session:
        return [dict(row._mapping) for row in session.execute(query)]
