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
from sweep.layers import CANDIDATES
from sweep.search_space import SearchSpace
from sweep.storage import open_storage
from sweep.study import SweepSettings, create_or_resume

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
    assert "2 curve(s), 1 gain curve(s)" in result.stdout
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
    settings = SweepSettings(data=None, dataset="chest", task="any", image_size=64, seed=0, space=space)
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
    upsert_scores(url, dataset_key("chest"), "none", 64, [Score(layer_key(2), "sweep_best_auroc", 0.8, n_trials=4)])
    space = SearchSpace(strategies=("feature_extraction",), cut_layers=("conv2_*", "conv3_block1_concat"), weights=("none",))
    study, settings = sweep_study(url, space)
    # the swept layer first, then the allowed rest by probe AUROC; relu is better but not allowed
    assert enqueue_top_layers(study, url, settings, k=3) == ["conv2_block2_concat", "conv3_block1_concat", "conv2_block1_concat"]
    # one strategy: not a parameter; the allowed layers skip pool2_pool, so the layer is categorical
    assert fixed_params(study)[0] == {"cut_layer": "conv2_block2_concat"}
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
    from layers_index.views import SCORE_COLUMNS
    from sweep.cli._dictionary import Metric

    assert list(SCORE_KINDS) == SCORE_COLUMNS == [m.value for m in Metric]
