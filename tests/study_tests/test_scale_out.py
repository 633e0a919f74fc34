"""Scale-out with real processes: PostgreSQL workers from several shells, and four SQLite workers
sharing one file with a reader polling it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

from layers_index import read_scores

pytestmark = pytest.mark.slow

QUICK_STUDY = """
[space]
strategies = ["feature_extraction"]
cut_layers = ["conv3_block4_concat", "pool3_pool", "conv4_block8_concat"]
head_units = [0]
augment = [false]
epochs = {epochs}
patience = {epochs}
bank_views = 0
"""
COMMON = ("--image-size", "32", "--weights", "none", "--config", "quick.toml", "--log-dir", "logs")


def _env(root: Path) -> dict:
    return dict(os.environ, OCL_CACHE_DIR=str(root / "cache"))


def _ocl(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweep", *args]


def _finished(trials) -> list:
    return [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]


@pytest.fixture
def postgres_url():
    """A fresh database on the test server (dropped afterwards), so counts are this test's own."""
    base = os.environ.get("OCL_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("set OCL_TEST_POSTGRES_URL=postgresql://user@host/db to test PostgreSQL (.ci/run does)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from sweep.storage import normalize_url

    admin = create_engine(normalize_url(base), isolation_level="AUTOCOMMIT")
    name = f"ocl_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_sweep_and_two_joining_workers_share_one_postgresql_study(tmp_path, postgres_url):
    (tmp_path / "quick.toml").write_text(QUICK_STUDY.format(epochs=150))
    env = _env(tmp_path)
    sweep = subprocess.Popen(
        _ocl("sweep", "--trials", "10", "--storage", postgres_url, "--study", "pg", *COMMON),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            optuna.load_study(study_name="pg", storage=postgres_url)
            break
        except Exception:
            time.sleep(0.5)
    workers = [
        subprocess.Popen(
            _ocl("worker", "--study", "pg", "--storage", postgres_url, "--worker-index", str(i)),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    out, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, err
    for worker in workers:
        _, worker_err = worker.communicate(timeout=300)
        assert worker.returncode == 0, worker_err

    trials = optuna.load_study(study_name="pg", storage=postgres_url).trials
    finished = _finished(trials)
    assert len(finished) == 10
    devices = {t.user_attrs["ocl:device"] for t in finished}
    assert devices & {"cpu:1", "cpu:2"}, f"the joining workers ran no trial: {devices}"
    used = {t.user_attrs["ocl:cut_layer"] for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    rows = read_scores(postgres_url, dataset="nih-cxr14-sample", image_size=32)
    assert {r["layer"] for r in rows if r["kind"] == "sweep_best_auroc"} == used
    best = {r["layer"]: r["value"] for r in rows if r["kind"] == "sweep_best_auroc"}
    for layer in used:
        values = [
            t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs["ocl:cut_layer"] == layer
        ]
        assert best[layer] == pytest.approx(max(values))


READER = """
import sqlite3, sys, time
import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
path, stop = sys.argv[1], sys.argv[2]
reads = errors = 0
while True:
    try:
        optuna.load_study(study_name="busy", storage="sqlite:///" + path).get_trials(deepcopy=False)
        with sqlite3.connect(path, timeout=60) as connection:
            connection.execute("select count(*) from ocl_layer_scores").fetchall()
        reads += 1
    except Exception as exc:
        if "no such table" not in str(exc) and "Record does not exist" not in str(exc):
            errors += 1
            print(type(exc).__name__, exc, file=sys.stderr)
    import os
    if os.path.exists(stop):
        break
    time.sleep(0.2)
print(reads, errors)
"""


def test_four_sqlite_workers_finish_200_trials_without_lock_errors_while_a_reader_polls(tmp_path):
    (tmp_path / "quick.toml").write_text(QUICK_STUDY.format(epochs=3))
    env = _env(tmp_path)
    db = tmp_path / "busy.db"
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db), str(stop)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    result = subprocess.run(
        _ocl("sweep", "--trials", "200", "--workers", "4", "--storage", f"sqlite:///{db}", "--study", "busy", *COMMON),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    stop.write_text("")
    out, err = reader.communicate(timeout=120)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name="busy", storage=f"sqlite:///{db}").trials
    assert len(_finished(trials)) == 200
    assert {t.user_attrs["ocl:device"] for t in _finished(trials)} == {"cpu:0", "cpu:1", "cpu:2", "cpu:3"}
    completed = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert {t.user_attrs["ocl:device_used"] for t in completed} == {"cpu"}  # what the framework said it trained on
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert all(t.user_attrs.get("ocl:surplus") for t in failed), [t.user_attrs for t in failed]
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log"))
    assert "database is locked" not in logs
    reads, errors = map(int, out.split())
    assert reads > 10 and errors == 0, err
