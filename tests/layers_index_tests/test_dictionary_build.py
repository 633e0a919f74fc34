"""``ocl dictionary build`` on the real sample images, then show, sweep scores and PostgreSQL.

One build at 32 px (random weights) is shared by the module: it computes the feature bank once
(a few seconds) and scores all 63 candidate layers. Tests that write more into the dictionary work
on a copy of its SQLite file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from layers_index import build_dictionary, dictionary_callback, dictionary_frame, read_scores
from sweep.data import DataOptions, load_dataset
from sweep.model import is_candidate
from sweep.storage import open_storage
from sweep.study import DatasetInfo, SearchSpace, SweepSettings, create_or_resume

pytestmark = pytest.mark.slow  # DenseNet banks and trainings: minutes on 2 cores, not for the inner loop

SIZE = 32


@dataclass(frozen=True)
class Built:
    url: str
    database: Path
    rows: list
    cache: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    folder = tmp_path_factory.mktemp("dictionary")
    database = folder / "ocl.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OCL_CACHE_DIR", str(folder / "cache"))
        rows = build_dictionary(f"sqlite:///{database}", weights="none", image_size=SIZE)
    return Built(f"sqlite:///{database}", database, rows, folder / "cache")


def test_build_stores_one_probe_and_one_logme_score_per_candidate_layer(built: Built):
    scores = read_scores(built.url)
    for kind in ("probe_auroc", "logme"):
        layers = [s["layer"] for s in scores if s["kind"] == kind]
        assert len(layers) == len(set(layers)) == 63
        assert all(is_candidate(layer) for layer in layers)
    assert {s["kind"] for s in scores} == {"probe_auroc", "logme"}
    assert sorted(s["depth"] for s in scores if s["kind"] == "logme") == list(range(63))
    assert {(s["dataset"], s["task"], s["weights"], s["image_size"]) for s in scores} == {
        ("nih-cxr14-sample", "any", "none", SIZE)
    }
    probe = np.array([s["value"] for s in scores if s["kind"] == "probe_auroc"])
    assert ((probe >= 0) & (probe <= 1)).all() and probe.std() > 0  # real, differing AUROCs
    for s in scores:  # every probe AUROC carries its 95% patient-level bootstrap interval
        if s["kind"] == "probe_auroc":
            assert s["low"] <= s["value"] <= s["high"] and 0.05 < s["high"] - s["low"] < 0.6, s
        else:
            assert s["low"] is None and s["high"] is None
    assert np.isfinite([s["value"] for s in scores if s["kind"] == "logme"]).all()
    by_layer = {(s["layer"], s["kind"]): s["value"] for s in scores}
    for row in built.rows:  # what build returned is what it stored
        assert by_layer[(row.layer, "probe_auroc")] == pytest.approx(row.probe_auroc)
        assert by_layer[(row.layer, "logme")] == pytest.approx(row.logme)
    strides = {s["layer"]: s["stride"] for s in scores}
    assert strides["conv1_relu"] == 2 and strides["relu"] == 32


def test_a_multilabel_probe_point_lies_in_its_own_interval(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """With 14 findings, several have fewer than 5 validation positives (Hernia 2, Pneumonia 1). The
    interval averages only the outputs the mean AUROC counts; the point must average the same ones.
    Before, the point averaged every defined output and fell outside its own interval (for most
    layers: 8 layers from every dense block stand for the 63, 14 probes each, in a tenth of the time)."""
    monkeypatch.setenv("OCL_CACHE_DIR", str(built.cache))  # the bank is the shared build's: no second forward pass
    import sweep.model

    every = sweep.model.candidate_layers
    monkeypatch.setattr(sweep.model, "candidate_layers", lambda backbone: every(backbone)[::8])
    url = f"sqlite:///{tmp_path / 'multilabel.db'}"
    rows = build_dictionary(url, weights="none", image_size=SIZE, task="multilabel")
    scores = [s for s in read_scores(url) if s["kind"] == "probe_auroc"]
    assert len(scores) == len(rows) == 8
    outside = [(s["layer"], s["low"], s["value"], s["high"]) for s in scores if not s["low"] <= s["value"] <= s["high"]]
    assert not outside
    assert {s["task"] for s in scores} == {"multilabel"}


def test_show_json_returns_every_layer_and_marks_the_argmax(built: Built, ocl):
    result = ocl("dictionary", "show", "--storage", built.url, "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["depth"] for r in rows] == list(range(63))
    stored = {r.layer: r for r in built.rows}
    for row in rows:
        assert row["probe_auroc"] == pytest.approx(stored[row["layer"]].probe_auroc)
        assert row["logme"] == pytest.approx(stored[row["layer"]].logme)
        assert row["sweep_best_auroc"] is None and row["n_trials"] == 0
    best = [r for r in rows if r["best"]]
    assert len(best) == 1 and best[0]["best_by"] == "probe_auroc"
    assert best[0]["layer"] == max(rows, key=lambda r: r["probe_auroc"])["layer"]
    assert best[0]["rank"] == 1

    top = json.loads(ocl("dictionary", "show", "--storage", built.url, "--format", "json", "--top", "3").stdout)
    assert [r["layer"] for r in top] == [r["layer"] for r in sorted(rows, key=lambda r: -r["probe_auroc"])[:3]]


def test_show_table_and_csv(built: Built, ocl):
    table = ocl("dictionary", "show", "--storage", built.url, "--data", "nih-cxr14-sample")
    assert table.returncode == 0, table.stderr
    best = max(built.rows, key=lambda r: r.probe_auroc)
    starred = [line for line in table.stdout.splitlines() if "★" in line and "_" in line]
    assert len(starred) == 1 and best.layer in starred[0]
    csv = ocl("dictionary", "show", "--storage", built.url, "--format", "csv", "--weights", "none")
    assert csv.stdout.splitlines()[0].startswith("dataset,task,fingerprint,weights,image_size,layer,block,depth")
    assert len(csv.stdout.splitlines()) == 64
    missing = ocl("dictionary", "show", "--storage", built.url, "--weights", "imagenet")
    assert missing.returncode == 2 and "no dictionary rows match" in missing.stderr
    assert "nih-cxr14-sample" in missing.stderr and "Traceback" not in missing.stderr


def test_sweep_trials_become_sweep_scores_for_exactly_their_layers(built: Built, tmp_path: Path):
    """A real study whose trials carry the attributes the objective sets; Optuna calls the callback."""
    database = tmp_path / "ocl.db"
    # The database runs in WAL mode and the build's engine is still open: recent commits may be in
    # ocl.db-wal, so copy it the way SQLite copies a live database, not byte by byte.
    with closing(sqlite3.connect(built.database)) as source, closing(sqlite3.connect(database)) as target:
        source.backup(target)
    url = f"sqlite:///{database}"
    meta = dictionary_frame(url).set_index("layer")
    plan = [
        ("conv4_block3_concat", 0.61),
        ("conv4_block3_concat", 0.67),
        ("relu", 0.64),
        ("conv2_block1_concat", None),
        ("pool3_pool", "fail"),
    ]
    settings = SweepSettings(DataOptions(task="any"), "nih-cxr14-sample", SIZE, SearchSpace(weights=("none",)))
    study = create_or_resume(open_storage(url, heartbeat=False), "dictionary-test", settings, len(plan))
    for key, value in DatasetInfo.of(load_dataset()).to_user_attrs().items():  # as ocl sweep does: the same split
        study.set_user_attr(key, value)
    for layer, _ in plan:
        study.enqueue_trial({"cut_layer": layer})

    def objective(trial: optuna.Trial) -> float:
        layer = trial.suggest_categorical("cut_layer", list(meta.index))
        info = meta.loc[layer]
        for name, value in {
            "strategy": "feature_extraction",
            "cut_layer": layer,
            "weights": "none",
            "layer_depth": int(info.depth),
            "layer_index": int(info.layer_index),
            "block": info.block,
            "channels": int(info.channels),
            "stride": SIZE // 16,
        }.items():
            trial.set_user_attr(f"ocl:{name}", value)
        outcome = plan[trial.number][1]
        if outcome is None:
            raise optuna.TrialPruned()
        if outcome == "fail":
            raise RuntimeError("diverged")
        return outcome

    study.optimize(objective, n_trials=len(plan), callbacks=[dictionary_callback(url)], catch=(RuntimeError,))

    frame = dictionary_frame(url).set_index("layer")
    assert len(frame) == 63  # one profile: the sweep's scores joined the build's (same split fingerprint)
    swept = frame[frame["sweep_best_auroc"].notna()]
    assert set(swept.index) == {"conv4_block3_concat", "relu"}  # not the pruned or the failed trial's layer
    assert swept.loc["conv4_block3_concat", "sweep_best_auroc"] == pytest.approx(0.67)
    assert swept.loc["conv4_block3_concat", "sweep_mean_auroc"] == pytest.approx(0.64)
    assert swept.loc["conv4_block3_concat", "n_trials"] == 2 and swept.loc["relu", "n_trials"] == 1
    assert frame["probe_auroc"].notna().sum() == 63  # the build's scores are still there
    # Dictionary v2: a built profile ranks on the probe alone, never on a maximum over trials.
    best = frame[frame["best"]]
    assert list(best.index) == [frame["probe_auroc"].idxmax()] and best["best_by"].iloc[0] == "probe_auroc"
    ranked = frame.sort_values("rank")
    assert list(ranked["rank"]) == list(range(1, 64))
    assert list(ranked["probe_auroc"]) == sorted(frame["probe_auroc"], reverse=True)


@pytest.mark.skipif(
    not os.environ.get("OCL_TEST_POSTGRES_URL"),
    reason="set OCL_TEST_POSTGRES_URL=postgresql://user@host/db to test PostgreSQL (.ci/run does)",
)
def test_postgresql_holds_the_same_dictionary_as_sqlite(built: Built, monkeypatch: pytest.MonkeyPatch):
    """The same build into PostgreSQL reads back exactly as from SQLite.

    The database may hold other tests' sweeps of the same sample, so only what a build writes (layer
    metadata, probe and LogME) is compared, and nothing is dropped.
    """
    url = os.environ["OCL_TEST_POSTGRES_URL"]
    monkeypatch.setenv("OCL_CACHE_DIR", str(built.cache))  # the bank is cached: this build only scores
    build_dictionary(url, weights="none", image_size=SIZE)
    columns = [
        "dataset",
        "task",
        "weights",
        "image_size",
        "layer",
        "block",
        "depth",
        "layer_index",
        "channels",
        "probe_auroc",
        "logme",
    ]
    filters = {"dataset": "nih-cxr14-sample", "task": "any", "weights": "none", "image_size": SIZE}
    from_sqlite = dictionary_frame(built.url, **filters)[columns].reset_index(drop=True)
    from_postgres = dictionary_frame(url, **filters)[columns].reset_index(drop=True)
    assert len(from_postgres) == 63
    pd.testing.assert_frame_equal(from_sqlite, from_postgres, check_exact=True)


def test_the_probe_fits_on_a_patient_subsample_and_logme_on_all_of_train(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """--probe-images bounds the probe's cost at full size: its rows are whole patients drawn once,
    the same for every layer; LogME and the validation AUROC still use every row."""
    monkeypatch.setenv("OCL_CACHE_DIR", str(built.cache))
    import layers_index._build as build_module
    import sweep.model

    every = sweep.model.candidate_layers
    monkeypatch.setattr(sweep.model, "candidate_layers", lambda backbone: every(backbone)[::16])
    probed, evidenced, validated = [], [], []
    real_probe, real_logme = build_module.linear_probe, build_module.logme

    def probe(x_train, y_train, x_val, y_val, **options):
        probed.append(x_train.copy())
        validated.append(len(x_val))
        return real_probe(x_train, y_train, x_val, y_val, **options)

    monkeypatch.setattr(build_module, "linear_probe", probe)
    monkeypatch.setattr(build_module, "logme", lambda f, y: evidenced.append(len(f)) or real_logme(f, y))
    rows = build_dictionary(f"sqlite:///{tmp_path / 'd.db'}", weights="none", image_size=SIZE, probe_images=150)
    dataset = load_dataset(DataOptions.of())
    train, val = dataset.split_indices("train"), dataset.split_indices("val")
    assert len(rows) == len(probed) == 4
    assert {row.train_images for row in rows} == {len(train)} and set(evidenced) == {len(train)}
    assert set(validated) == {len(val)}
    assert {row.probe_images for row in rows} == {len(probed[0])} and 140 <= len(probed[0]) <= 150
    patients = dataset.table["patient"].to_numpy(dtype=object)[train]
    kept = build_module.probe_subsample(patients, 150, 0)
    assert set(patients[kept]) & set(np.delete(patients, kept)) == set()  # whole patients
    assert all(len(x) == len(kept) for x in probed)  # the same rows for every layer
    with pytest.raises(Exception, match="--probe-images"):
        build_dictionary(f"sqlite:///{tmp_path / 'e.db'}", weights="none", image_size=SIZE, probe_images=-1)


def test_the_cli_says_when_the_probe_was_fitted_on_a_subsample(built: Built, tmp_path: Path, ocl, monkeypatch):
    monkeypatch.setenv("OCL_CACHE_DIR", str(built.cache))  # the shared build's bank: no second forward pass
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    args = ("dictionary", "build", "--weights", "none", "--image-size", str(SIZE), "--storage", url)
    result = ocl(*args, "--probe-images", "100", timeout=300)
    assert result.returncode == 0, result.stderr
    train = len(load_dataset(DataOptions.of()).split_indices("train"))
    notes = [line for line in result.stderr.splitlines() if "the probe was fitted on" in line]
    assert len(notes) == 1 and f"of {train:,} training images" in notes[0] and "--probe-images 0" in notes[0], result.stderr
    fitted = int(notes[0].split("fitted on ")[1].split(" of")[0].replace(",", ""))
    assert 90 <= fitted <= 100
    assert "scored 63 layers" in result.stdout
