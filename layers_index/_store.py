"""Reading and writing the OCL dictionary: connect, check the schema version, upsert scores."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from layers_index._schema import SCHEMA_VERSION, SCORE_KINDS, Base, DatasetRow, LayerRow, SchemaVersion, ScoreRow
from sweep.model import LayerFacts
from sweep.storage import create_tables, parse_storage

MODEL = "densenet121"
_checked: set[str] = set()  # URLs whose dictionary schema this process has checked (the engine is the storage's)


@dataclass(frozen=True)
class DatasetKey:
    """Which dataset and task scores belong to."""

    name: str
    task: str
    modality: str
    images: int
    patients: int
    fingerprint: str


LayerKey = LayerFacts
"""Which layer a score belongs to: the model's :class:`~sweep.model.LayerFacts`, under the dictionary's name."""


@dataclass(frozen=True)
class Score:
    """One score to store."""

    layer: LayerKey
    kind: str
    value: float
    low: float | None = None
    high: float | None = None
    n_trials: int = 0
    source_study: str | None = None
    source_trial: int | None = None


def _stored_version(engine: Engine) -> int | None:
    """The schema version stamped in the database, or None when no dictionary is there yet."""
    if not inspect(engine).has_table(SchemaVersion.__tablename__):
        return None
    with Session(engine) as session:
        row = session.scalars(select(SchemaVersion)).first()
        return None if row is None else row.version


def engine_for(url: str, *, create: bool = True) -> Engine:
    """An engine on the storage URL with the dictionary's tables created and the version checked.

    The URL, engine settings, SQLite pragmas and error messages are the Optuna storage's
    (:func:`sweep.storage._database.parse_storage`): one database, opened one way. The version is read before
    anything is created, so a database written by a newer release is refused untouched.
    ``create=False`` (the read-only commands) refuses a SQLite file that does not exist instead of
    leaving an empty database behind a mistyped path.
    """
    database = parse_storage(url)
    if database.url in _checked:
        return database.shared_engine()
    if database.path is not None and not database.path.exists() and not create:
        raise database.error(
            f"no database at {database.path}; run `ocl dictionary build` or `ocl sweep` first, "
            "or pass the --storage URL they used"
        )
    database.prepare()
    engine = database.shared_engine()
    try:
        with database.errors():
            version = _stored_version(engine)
            if version is not None and version > SCHEMA_VERSION:
                raise database.error(
                    f"the OCL dictionary there has schema version {version}, newer than this "
                    f"ocl understands ({SCHEMA_VERSION}); upgrade ocl (pip install -U ocl)"
                )
            if version == 1:
                _upgrade_from_1(engine)
            create_tables(Base.metadata, engine)
            if version is None:
                _stamp(engine)
    except BaseException:
        engine.dispose()
        raise
    _checked.add(database.url)
    return engine


def _upgrade_from_1(engine: Engine) -> None:
    """Upgrade a version-1 dictionary in place, in one transaction.

    Version 1 keyed datasets by name and task only and pooled both strategies in its sweep scores.
    Datasets keep their rows (their fingerprint becomes part of their identity); probe and LogME
    scores are kept; version-1 sweep scores are dropped, because which strategy they came from is
    unknown, and the next trial of each study at a layer writes them again, per strategy.
    """
    from sqlalchemy import MetaData, Table, insert

    old = MetaData()
    datasets = Table(DatasetRow.__tablename__, old, autoload_with=engine)
    scores = Table(ScoreRow.__tablename__, old, autoload_with=engine)
    with engine.begin() as connection:
        dataset_rows = [dict(row._mapping) for row in connection.execute(select(datasets))]
        score_rows = [
            dict(row._mapping) for row in connection.execute(select(scores).where(scores.c.kind.in_(["probe_auroc", "logme"])))
        ]
        scores.drop(connection)
        datasets.drop(connection)
        Base.metadata.create_all(connection, tables=[DatasetRow.__table__, ScoreRow.__table__])
        if dataset_rows:
            connection.execute(insert(DatasetRow.__table__), dataset_rows)
        if score_rows:
            connection.execute(insert(ScoreRow.__table__), score_rows)
        connection.execute(SchemaVersion.__table__.update().values(version=SCHEMA_VERSION))


def _stamp(engine: Engine) -> None:
    """Write this release's schema version; a worker that raced us to it has written the same."""
    try:
        with Session(engine) as session, session.begin():
            if session.get(SchemaVersion, 1) is None:
                session.add(SchemaVersion(id=1, version=SCHEMA_VERSION))
    except IntegrityError:
        pass


def _dataset_row(session: Session, key: DatasetKey) -> DatasetRow:
    row = session.scalars(
        select(DatasetRow).where(
            DatasetRow.name == key.name, DatasetRow.task == key.task, DatasetRow.fingerprint == key.fingerprint
        )
    ).first()
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
        row.images, row.patients, row.modality = key.images, key.patients, key.modality
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


RETRIES = 2
"""Extra attempts of :func:`upsert_scores` after a unique-constraint race."""


def upsert_scores(url: str, dataset: DatasetKey, weights: str, image_size: int, scores: Iterable[Score]) -> int:
    """Insert or update scores in one transaction; returns how many were written.

    Two writers (sweep workers, a build) may race to insert the same dataset, layer or score row;
    the loser's transaction fails a unique constraint and rolls back. It is tried again, up to
    :data:`RETRIES` more times, and then finds the winner's rows and updates them. An
    ``IntegrityError`` on the last attempt propagates.
    """
    scores = list(scores)
    unknown = sorted({score.kind for score in scores} - set(SCORE_KINDS))
    if unknown:
        raise ValueError(f"score kind {unknown[0]!r}: expected one of {', '.join(SCORE_KINDS)}")
    for _ in range(RETRIES):
        try:
            return _write_scores(url, dataset, weights, image_size, scores)
        except IntegrityError:
            continue
    return _write_scores(url, dataset, weights, image_size, scores)


def _write_scores(url: str, dataset: DatasetKey, weights: str, image_size: int, scores: list[Score]) -> int:
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
            row.low, row.high = score.low, score.high
            row.source_study, row.source_trial = score.source_study, score.source_trial
            row.updated_at = datetime.now(UTC)
    return len(scores)


def read_scores(
    url: str,
    *,
    dataset: str | None = None,
    task: str | None = None,
    weights: str | None = None,
    image_size: int | None = None,
    fingerprint: str | None = None,
) -> list[dict[str, Any]]:
    """Every stored score matching the filters, one dict per score, with its dataset and layer."""
    query = (
        select(
            DatasetRow.name.label("dataset"),
            DatasetRow.task,
            DatasetRow.fingerprint,
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
            ScoreRow.low,
            ScoreRow.high,
            ScoreRow.n_trials,
            ScoreRow.source_study,
            ScoreRow.source_trial,
            ScoreRow.updated_at,
        )
        .join(DatasetRow, ScoreRow.dataset_id == DatasetRow.id)
        .join(LayerRow, ScoreRow.layer_id == LayerRow.id)
        .order_by(
            DatasetRow.name,
            DatasetRow.task,
            DatasetRow.fingerprint,
            ScoreRow.weights,
            ScoreRow.image_size,
            LayerRow.layer_index,
            ScoreRow.kind,
        )
    )
    for column, value in (
        (DatasetRow.name, dataset),
        (DatasetRow.task, task),
        (ScoreRow.weights, weights),
        (ScoreRow.image_size, image_size),
        (DatasetRow.fingerprint, fingerprint),
    ):
        if value is not None:
            query = query.where(column == value)
    with Session(engine_for(url, create=False)) as session:
        return [dict(row._mapping) for row in session.execute(query)]
