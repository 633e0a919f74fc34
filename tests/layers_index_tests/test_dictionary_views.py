"""Reading the dictionary: compare, plot data, warm start, and refusing a newer schema.

Profiles here are written through the public store API with made-up scores (no network, no
Keras), so each test states exactly what the dictionary holds.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest

from layers_index import (
    SCHEMA_VERSION,
    DatasetKey,
    LayerKey,
    Score,
    compare_profiles,
    dictionary_frame,
    engine_for,
    enqueue_top_layers,
    plot_data,
    upsert_scores,
)
from sweep.data import DataOptions
from sweep.model import CANDIDATES
from sweep.storage import open_storage
from sweep.study import SearchSpace, SweepSettings, create_or_resume

# (name, block) of ten layers in network order; layer_index grows by 7 as in DenseNet's dense layers
LAYERS = (
    [("conv1_relu", "stem")]
    + [(f"conv2_block{i}_concat", "dense block 1") for i in range(1, 4)]
    + [("pool2_pool", "transition 1")]
    + [(f"conv3_block{i}_concat", "dense block 2") for i in range(1, 5)]
    + [("relu", "final")]
)


def layer_key(position: int) -> LayerKey:
    name, block = LAYERS[position]
    return LayerKey(name, position, 5 + 7 * position, block, 64 + 32 * position, 2 ** min(position, 5))


def dataset_key(name: str, task: str = "any") -> DatasetKey:
    return DatasetKey(name, task, "chest x-ray", 100, 50, "0" * 12)


def write_profile(
    url: str,
    dataset: str,
    values: list[float],
    *,
    kind: str = "probe_auroc",
    weights: str = "none",
    image_size: int = 64,
    task: str = "any",
) -> None:
    scores = [Score(layer_key(i), kind, v) for i, v in enumerate(values) if v is not None]
    upsert_scores(url, dataset_key(dataset, task), weights, image_size, scores)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ocl.db'}"


PROFILE = [0.55, 0.58, 0.60, 0.57, 0.62, 0.66, 0.64, 0.70, 0.68, 0.72]


def test_compare_identical_profiles_is_one_and_reversed_is_minus_one(url: str):
    write_profile(url, "chest", PROFILE)
    write_profile(url, "same", PROFILE)
    write_profile(url, "shifted", [v + 0.1 for v in PROFILE])  # same ranking, other level
    write_profile(url, "reversed", [1 - v for v in PROFILE])
    frame = dictionary_frame(url)
    for other in ("same", "shifted"):
        result = compare_profiles(frame, "chest", other)
        assert result.layers == 10
        assert result.spearman == pytest.approx(1.0) and result.kendall == pytest.approx(1.0)
        assert result.disagreements == ()
    reversed_ = compare_profiles(frame, "chest", "reversed")
    assert reversed_.spearman == pytest.approx(-1.0) and reversed_.kendall == pytest.approx(-1.0)
    worst = reversed_.disagreements[0]
    assert worst.shift == 9 and {worst.rank_a, worst.rank_b} == {1, 10}
    assert worst.layer in ("relu", "conv1_relu")


def test_compare_uses_only_common_layers_and_reports_where_ranks_differ(url: str):
    write_profile(url, "chest", PROFILE)
    swapped = list(PROFILE)
    swapped[0], swapped[9] = swapped[9], swapped[0]  # best and worst layers trade places
    write_profile(url, "other", swapped[:8] + [None, None])
    result = compare_profiles(dictionary_frame(url), "chest", "other")
    assert result.layers == 8
    assert 0 < result.spearman < 1
    assert result.disagreements[0].layer == "conv1_relu"


def test_compare_refuses_an_unknown_or_ambiguous_dataset(url: str):
    from sweep.errors import OCLError

    write_profile(url, "chest", PROFILE)
    write_profile(url, "chest", PROFILE, weights="imagenet")
    write_profile(url, "other", PROFILE)
    frame = dictionary_frame(url)
    with pytest.raises(OCLError, match="--data nope: the dictionary has no probe_auroc scores"):
        compare_profiles(frame, "other", "nope")
    with pytest.raises(OCLError, match="several profiles.*--weights"):
        compare_profiles(frame, "chest", "other")
    assert compare_profiles(dictionary_frame(url, weights="none"), "chest", "other").spearman == pytest.approx(1)


def test_compare_cli(url: str, ocl):
    write_profile(url, "chest", PROFILE)
    write_profile(url, "reversed", [1 - v for v in PROFILE])
    result = ocl("dictionary", "compare", "--data", "chest", "--data", "reversed", "--storage", url)
    assert result.returncode == 0, result.stderr
    assert "Spearman rho -1.000" in result.stdout and "Kendall tau -1.000" in result.stdout
    assert "conv1_relu" in result.stdout  # among the layers that disagree most
    one = ocl("dictionary", "compare", "--data", "chest", "--storage", url)
    assert one.returncode == 2
    assert one.stderr.strip() == "error: --data: got 1 dataset(s); pass exactly two, e.g. --data A --data B"


def test_plot_data_has_one_curve_per_dataset_and_weights_and_a_gain_curve(url: str):
    write_profile(url, "chest", PROFILE, weights="none")
    write_profile(url, "chest", [v + 0.1 for v in PROFILE[:8]] + [None, None], weights="imagenet")
    write_profile(url, "hands", PROFILE, weights="none")
    write_profile(url, "chest", [v / 10 for v in PROFILE], kind="logme", weights="none")
    data = plot_data(dictionary_frame(url))
    assert data.metrics == ("probe_auroc", "logme")  # no sweep scores: no sweep panel
    probe = [c for c in data.curves if c.metric == "probe_auroc"]
    pairs = sorted((c.dataset, c.weights) for c in probe)
    assert pairs == [("chest", "imagenet"), ("chest", "none"), ("hands", "none")]
    assert len({c.label for c in probe}) == 3
    chest_none = next(c for c in probe if c.dataset == "chest" and c.weights == "none")
    assert chest_none.values == tuple(PROFILE) and chest_none.x == tuple(5 + 7 * i for i in range(10))
    assert [(c.dataset, c.weights) for c in data.curves if c.metric == "logme"] == [("chest", "none")]
    (gain,) = data.gains  # only chest has both weights, only probe_auroc is scored for both
    assert gain.metric == "probe_auroc" and gain.dataset == "chest" and len(gain.values) == 8
    assert gain.values == pytest.approx([0.1] * 8)
    assert [(b.block, b.first, b.last) for b in data.blocks] == [("dense block 1", 12, 26), ("dense block 2", 40, 61)]


def test_plot_cli_writes_self_contained_html(url: str, ocl, tmp_path: Path):
    write_profile(url, "chest", PROFILE, weights="none")
    write_profile(url, "chest", PROFILE, weights="imagenet")
    result = ocl("dictionary", "plot", "--storage", url, "--output", "out/dictionary.html")
    assert result.returncode == 0, result.stderr
    assert "2 curve(s), 1 ImageNet-minus-none gain curve(s)" in result.stdout
    html = (tmp_path / "out" / "dictionary.html").read_text()
    assert "plotly.js" in html and "<script src=" not in html  # plotly.js inside, nothing fetched
    assert "dense block 2" in html and "transfer gain" in html


def test_a_newer_schema_is_refused_in_one_line_by_the_cli(url: str, ocl, tmp_path: Path):
    engine_for(url)
    with sqlite3.connect(tmp_path / "ocl.db") as connection:
        connection.execute("UPDATE ocl_schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    for command in (["show"], ["build", "--weights", "none", "--image-size", "32"]):
        result = ocl("dictionary", *command, "--storage", url)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr
        assert lines[0].startswith(
            f"error: --storage {url}: the OCL dictionary there has schema version "
            f"{SCHEMA_VERSION + 1}, newer than this ocl understands ({SCHEMA_VERSION})"
        )
        assert "upgrade ocl" in lines[0]


def test_show_on_a_missing_database_creates_nothing(ocl, tmp_path: Path):
    result = ocl("dictionary", "show")
    assert result.returncode == 2 and "no database at studies/ocl.db" in result.stderr
    assert not (tmp_path / "studies").exists()


def sweep_study(url: str, space: SearchSpace, name: str = "warm") -> tuple[optuna.Study, SweepSettings]:
    settings = SweepSettings(DataOptions(task="any"), "chest", 64, space)
    return create_or_resume(open_storage(url, heartbeat=False), name, settings, 10), settings


def fixed_params(study: optuna.Study) -> list[dict]:
    return [t.system_attrs["fixed_params"] for t in study.get_trials(states=(optuna.trial.TrialState.WAITING,))]


def test_warm_start_enqueues_the_top_k_allowed_layers(url: str):
    write_profile(url, "chest", PROFILE)
    write_profile(url, "chest", [0.99] * 10, task="binary:Pneumonia")  # another task: ignored
    write_profile(url, "chest", [0.99] * 10, image_size=224)  # another size: ignored
    study, settings = sweep_study(url, SearchSpace(weights=("none",)))
    assert enqueue_top_layers(study, url, settings, k=3) == ["relu", "conv3_block3_concat", "conv3_block4_concat"]
    assert fixed_params(study) == [  # every layer allowed: sampled (and enqueued) by depth
        {"cut_layer_depth": CANDIDATES.index(name), "strategy": "feature_extraction"}
        for name in ("relu", "conv3_block3_concat", "conv3_block4_concat")
    ]
    assert enqueue_top_layers(study, url, settings, k=3) == []  # a rerun adds nothing
    assert len(fixed_params(study)) == 3


def test_warm_start_respects_the_space(url: str):
    write_profile(url, "chest", PROFILE)
    # a high maximum over trials no longer jumps the queue: the profile ranks on one score, the probe
    upsert_scores(url, dataset_key("chest"), "none", 64, [Score(layer_key(2), "sweep_best_auroc", 0.8, n_trials=4)])
    space = SearchSpace(strategies=("feature_extraction",), cut_layers=("conv2_*", "conv3_block1_concat"), weights=("none",))
    study, settings = sweep_study(url, space)
    # the allowed layers by probe AUROC; relu is better but not allowed
    assert enqueue_top_layers(study, url, settings, k=3) == ["conv3_block1_concat", "conv2_block2_concat", "conv2_block1_concat"]
    # one strategy: not a parameter; the allowed layers skip pool2_pool, so the layer is categorical
    assert fixed_params(study)[0] == {"cut_layer": "conv3_block1_concat"}
    single, single_settings = sweep_study(url, SearchSpace(cut_layers=("relu",), weights=("none",)), "single")
    assert enqueue_top_layers(single, url, single_settings) == []  # one cut layer: nothing to choose
    unknown, unknown_settings = sweep_study(url, SearchSpace(weights=("imagenet",)), "imagenet")
    assert enqueue_top_layers(unknown, url, unknown_settings) == []  # the dictionary knows no imagenet scores


def test_writing_a_profile_again_replaces_its_scores(url: str, ocl):
    write_profile(url, "chest", PROFILE)
    write_profile(url, "chest", [v - 0.1 for v in PROFILE])
    frame = dictionary_frame(url)
    assert len(frame) == 10
    assert list(frame["probe_auroc"]) == pytest.approx([v - 0.1 for v in PROFILE])
    assert list(frame.loc[frame["best"], "layer"]) == ["relu"]
    empty = f"sqlite:///{Path(url.removeprefix('sqlite:///')).with_name('empty.db')}"
    engine_for(empty)
    result = ocl("dictionary", "show", "--storage", empty, "--format", "json")
    assert result.returncode == 0 and result.stdout.strip() == "[]"


def test_the_score_kinds_are_declared_once():
    from layers_index import SCORE_KINDS
    from layers_index._views import SCORE_COLUMNS
    from sweep.cli._dictionary import Metric

    assert list(SCORE_KINDS) == SCORE_COLUMNS == [m.value for m in Metric]


def test_a_dataset_with_another_split_is_another_entry_and_warm_start_keeps_to_its_own(url: str):
    write_profile(url, "chest", PROFILE)
    other_split = DatasetKey("chest", "any", "chest x-ray", 100, 50, "f" * 12)  # same name, another --seed
    upsert_scores(url, other_split, "none", 64, [Score(layer_key(1), "probe_auroc", 0.99)])
    frame = dictionary_frame(url, dataset="chest")
    assert sorted(set(frame["fingerprint"])) == ["0" * 12, "f" * 12]  # two profiles, neither overwritten
    assert frame.loc[frame["fingerprint"] == "0" * 12, "probe_auroc"].tolist() == PROFILE
    study, settings = sweep_study(url, SearchSpace(strategies=("feature_extraction",), weights=("none",)))
    # the other split's 0.99 at conv2_block1 may have trained on this split's test patients: ignored
    assert enqueue_top_layers(study, url, settings, k=1, fingerprint="0" * 12) == ["relu"]
    upsert_scores(url, dataset_key("ultrasound"), "none", 64, [Score(layer_key(3), "probe_auroc", 0.9)])
    assert enqueue_top_layers(study, url, settings, k=1, source="ultrasound") == ["conv2_block3_concat"]  # named: used


def test_sweep_scores_rank_on_the_cross_fitted_score_per_strategy_with_intervals(url: str):
    fe = [Score(layer_key(i), "sweep_auroc", v, low=v - 0.1, high=v + 0.1, n_trials=3) for i, v in [(1, 0.70), (4, 0.66)]]
    best = [Score(layer_key(4), "sweep_best_auroc", 0.95, n_trials=3)]  # a lucky maximum: never ranked on
    ft = [Score(layer_key(1), "ft_sweep_auroc", 0.75, low=0.6, high=0.9, n_trials=3)]
    upsert_scores(url, dataset_key("chest"), "none", 64, fe + best + ft)
    frame = dictionary_frame(url)
    ranked = frame.dropna(subset=["rank"]).sort_values("rank")
    assert ranked["layer"].tolist() == ["conv2_block1_concat", "pool2_pool"] and set(frame["best_by"]) == {"sweep_auroc"}
    row = frame.set_index("layer").loc["conv2_block1_concat"]
    assert (row["sweep_auroc_low"], row["sweep_auroc_high"], row["n_trials"]) == (pytest.approx(0.6), pytest.approx(0.8), 3)
    assert (row["ft_sweep_auroc"], row["ft_n_trials"]) == (pytest.approx(0.75), 3)  # fine-tuning kept apart


def test_a_version_1_dictionary_is_upgraded_in_place(tmp_path: Path):
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE ocl_schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
            INSERT INTO ocl_schema_version VALUES (1, 1);
            CREATE TABLE ocl_datasets (id INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, task VARCHAR(200) NOT NULL,
                modality VARCHAR(100) NOT NULL, images INTEGER NOT NULL, patients INTEGER NOT NULL,
                fingerprint VARCHAR(64) NOT NULL, CONSTRAINT uq_ocl_dataset_name_task UNIQUE (name, task));
            CREATE TABLE ocl_layers (id INTEGER PRIMARY KEY, model VARCHAR(100) NOT NULL, name VARCHAR(200) NOT NULL,
                depth INTEGER, layer_index INTEGER NOT NULL, block VARCHAR(100) NOT NULL, channels INTEGER NOT NULL,
                stride INTEGER NOT NULL, CONSTRAINT uq_ocl_layer_model_name UNIQUE (model, name));
            CREATE TABLE ocl_layer_scores (id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL REFERENCES ocl_datasets (id),
                layer_id INTEGER NOT NULL REFERENCES ocl_layers (id), weights VARCHAR(200) NOT NULL,
                image_size INTEGER NOT NULL, kind VARCHAR(50) NOT NULL, value FLOAT NOT NULL, n_trials INTEGER NOT NULL,
                source_study VARCHAR(500), source_trial INTEGER, updated_at DATETIME NOT NULL,
                CONSTRAINT uq_ocl_score UNIQUE (dataset_id, layer_id, weights, image_size, kind));
            INSERT INTO ocl_datasets VALUES (1, 'chest', 'any', 'chest x-ray', 100, 50, 'aaaaaaaaaaaa');
            INSERT INTO ocl_layers VALUES (1, 'densenet121', 'relu', 62, 426, 'final', 1024, 32);
            INSERT INTO ocl_layer_scores VALUES (1, 1, 1, 'none', 64, 'probe_auroc', 0.7, 0, NULL, NULL, '2026-01-01');
            INSERT INTO ocl_layer_scores VALUES (2, 1, 1, 'none', 64, 'sweep_best_auroc', 0.9, 5, 's', 3, '2026-01-01');
            """
        )
    url = f"sqlite:///{path}"
    frame = dictionary_frame(url)
    assert frame["probe_auroc"].tolist() == [0.7]  # kept
    assert frame["sweep_best_auroc"].isna().all()  # pooled both strategies: dropped, rewritten by the next trial
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM ocl_schema_version").fetchone() == (SCHEMA_VERSION,)
    upsert_scores(
        url, DatasetKey("chest", "any", "chest x-ray", 100, 50, "b" * 12), "none", 64, [Score(layer_key(9), "probe_auroc", 0.5)]
    )
    assert len(set(dictionary_frame(url)["fingerprint"])) == 2  # the new unique key holds


def test_show_reads_in_an_80_column_terminal(url: str):
    from rich.console import Console

    from layers_index import format_tables

    write_profile(url, "chest", PROFILE)
    console = Console(width=80, record=True, color_system=None)
    for table in format_tables(dictionary_frame(url), width=console.width):
        console.print(table)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for position, (name, _) in enumerate(LAYERS):  # every name, depth and rank whole, the best starred
        line = next(line for line in text.splitlines() if f" {name} " in line)
        assert f" {position} " in line
    best = next(line for line in text.splitlines() if "★" in line and "relu" in line)
    assert best.rstrip().rstrip("│").split()[-1] == "1"  # relu has the best probe AUROC: rank 1
    assert "…" not in text
