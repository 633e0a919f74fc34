"""One database, opened one way: the Optuna storage and the dictionary engine share pragmas and messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from layers_index import DatasetKey, LayerKey, Score, engine_for, upsert_scores
from sweep.errors import OCLError
from sweep.storage import (
    load_predictions,
    load_resampled,
    open_storage,
    store_predictions,
    store_resampled,
    stored_trials,
)


def pragmas(engine) -> tuple:
    """(journal mode, busy timeout in ms, synchronous level) as a connection from ``engine`` sees them."""
    with engine.connect() as connection:
        names = ("journal_mode", "busy_timeout", "synchronous")
        return tuple(connection.execute(text(f"PRAGMA {name}")).scalar() for name in names)


WAL_120S_NORMAL = ("wal", 120_000, 1)


def test_each_entry_point_makes_a_fresh_sqlite_file_wal_with_a_busy_timeout(tmp_path: Path):
    assert pragmas(open_storage(f"sqlite:///{tmp_path / 'a' / 'optuna-first.db'}", heartbeat=False).engine) == WAL_120S_NORMAL
    assert pragmas(engine_for(f"sqlite:///{tmp_path / 'b' / 'dictionary-first.db'}")) == WAL_120S_NORMAL


def test_both_engines_on_one_file_get_the_same_pragmas(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'ocl.db'}"
    storage = open_storage(url, heartbeat=False)
    dictionary = engine_for(url)
    assert pragmas(storage.engine) == pragmas(dictionary) == WAL_120S_NORMAL


@pytest.mark.parametrize(
    "url, expected",
    [
        ("nonsense", "not a database URL; use sqlite:///studies/ocl.db or postgresql://user@host/db"),
        ("redis://localhost/0", "unsupported database 'redis'; use sqlite:///PATH or postgresql://user@host/db"),
        ("postgresql+nope://ocl@localhost/ocl", "not a database URL; use sqlite:///studies/ocl.db"),
        ("postgresql://ocl@127.0.0.1:9/ocl", "cannot connect ("),
    ],
)
def test_a_bad_url_gets_the_same_one_line_message_from_both(url: str, expected: str):
    messages = []
    for open_ in (lambda: open_storage(url, heartbeat=False), lambda: engine_for(url)):
        with pytest.raises(OCLError) as caught:
            open_()
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith(f"--storage {url}: {expected}") and "\n" not in messages[0]


def test_one_variable_sets_the_grace_period_and_the_heartbeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    url = f"sqlite:///{tmp_path / 'ocl.db'}"
    monkeypatch.delenv("OCL_GRACE_SECONDS", raising=False)
    default = open_storage(url)
    assert (default.grace_period, default.heartbeat_interval) == (20, 5)
    monkeypatch.setenv("OCL_GRACE_SECONDS", "8")
    from_env = open_storage(url)
    assert (from_env.grace_period, from_env.heartbeat_interval) == (8, 2)
    given = open_storage(url, grace_seconds=3)
    assert (given.grace_period, given.heartbeat_interval) == (3, 1)
    monkeypatch.setenv("OCL_GRACE_SECONDS", "soon")
    with pytest.raises(OCLError, match=r"^OCL_GRACE_SECONDS=soon: expected a whole number of seconds"):
        open_storage(url)


def test_opening_the_storage_leaves_optunas_log_level_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OCL_OPTUNA_QUIET", "1")  # no longer read: the CLI sets Optuna's verbosity itself
    before = optuna.logging.get_verbosity()
    try:
        optuna.logging.set_verbosity(optuna.logging.INFO)
        open_storage(f"sqlite:///{tmp_path / 'ocl.db'}")
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(before)


def test_an_in_memory_database_cannot_hold_a_sweep():
    with pytest.raises(OCLError, match=r"^--storage sqlite://: an in-memory SQLite database cannot be shared by workers"):
        open_storage("sqlite://")


def test_upsert_retries_a_lost_race_twice_then_lets_it_propagate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import layers_index._store as store

    url = f"sqlite:///{tmp_path / 'ocl.db'}"
    dataset = DatasetKey("chest", "any", "xray", 10, 5, "f" * 16)
    scores = [Score(LayerKey("relu", 1, 2, "final", 1024, 32), "probe_auroc", 0.7)]
    write, calls = store._write_scores, []

    def losing(times: int):
        def attempt(*args):
            calls.append(1)
            if len(calls) <= times:
                raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
            return write(*args)

        return attempt

    monkeypatch.setattr(store, "_write_scores", losing(2))
    assert upsert_scores(url, dataset, "none", 64, scores) == 1 and len(calls) == 3
    calls.clear()
    monkeypatch.setattr(store, "_write_scores", losing(3))
    with pytest.raises(IntegrityError):
        upsert_scores(url, dataset, "none", 64, scores)
    assert len(calls) == 3
    with pytest.raises(ValueError, match="score kind 'auroc'"):
        upsert_scores(url, dataset, "none", 64, [Score(scores[0].layer, "auroc", 0.7)])


def test_a_worker_that_loses_the_race_to_create_the_tables_carries_on(tmp_path: Path, monkeypatch):
    """Four workers opening a fresh database at once: each sees ocl_predictions missing, one creates it,
    the others then fail with "table ocl_predictions already exists". That failed a trial of a CI
    run (and left its worker with no finished trial); the loser now creates what is left and goes on."""
    import numpy as np
    from sqlalchemy import MetaData
    from sqlalchemy.exc import OperationalError

    from sweep.storage import ValidationSplit, load_validation, store_validation

    url = f"sqlite:///{tmp_path / 'race.db'}"
    real_create_all = MetaData.create_all
    calls = []

    def raced(self, bind, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # another worker wins between our check and our CREATE TABLE
            real_create_all(self, bind, *args, **kwargs)
            raise OperationalError("CREATE TABLE ocl_predictions", {}, Exception("table ocl_predictions already exists"))
        return real_create_all(self, bind, *args, **kwargs)

    monkeypatch.setattr(MetaData, "create_all", raced)
    split = ValidationSplit(("finding",), np.array([[1.0], [0.0]], np.float32), np.array(["a", "b"]), "fingerprint")
    store_validation(url, "race", split)
    assert load_validation(url, "race").fingerprint == "fingerprint" and len(calls) == 2


def test_a_trials_two_sets_of_predictions_round_trip_and_one_set_serves_as_both(tmp_path: Path):
    """Predictions at each half's epoch come back as stored; a trial whose halves chose the same
    epoch (or one stored before OCL kept them) is stored once and serves as both."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    rng = np.random.default_rng(0)
    own, crossfit = rng.random((50, 3)).astype(np.float32), rng.random((50, 3)).astype(np.float32)
    store_predictions(url, "s", 0, own, crossfit)
    store_predictions(url, "s", 1, own, own.copy())
    store_predictions(url, "s", 2, own)
    loaded = load_predictions(url, "s", [0, 1, 2, 3])
    assert sorted(loaded) == [0, 1, 2] and stored_trials(url, "s", [0, 1, 2, 3]) == {0, 1, 2}
    np.testing.assert_array_equal(loaded[0].own, own)
    np.testing.assert_array_equal(loaded[0].crossfit, crossfit)
    for trial in (1, 2):
        assert loaded[trial].crossfit is loaded[trial].own
        np.testing.assert_array_equal(loaded[trial].own, own)


def test_resampled_values_are_kept_per_scheme_and_a_second_write_changes_nothing(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    first, other = np.arange(8, dtype=np.float32).reshape(2, 4), np.ones((2, 4), np.float32)
    store_resampled(url, "s", "scheme-a", {3: first})
    store_resampled(url, "s", "scheme-a", {3: other, 4: other})  # trial 3 is already there: kept
    assert sorted(load_resampled(url, "s", "scheme-a", [3, 4, 5])) == [3, 4]
    np.testing.assert_array_equal(load_resampled(url, "s", "scheme-a", [3])[3], first)
    assert load_resampled(url, "s", "scheme-b", [3]) == {}
