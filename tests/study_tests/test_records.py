"""The typed trial record: what the real objective writes is what every reader reads.

These tests pair the real :class:`~sweep.study._objective.Objective` with the real dictionary callback
on a SQLite storage, so renaming or retyping a field on either side fails here.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import optuna
import pytest

from layers_index import dictionary_callback, read_scores
from sweep.data import DataOptions
from sweep.model import CANDIDATES
from sweep.results import summarize_layers
from sweep.study import (
    DatasetInfo,
    Objective,
    SearchSpace,
    StudyResources,
    SweepSettings,
    TrialRecord,
    create_or_resume,
    layer_catalog,
    load_search_space,
)
from sweep.study import _records as records

REPO = Path(__file__).resolve().parents[2]
LAYERS = ("pool2_pool", "conv3_block4_concat")


def _settings() -> SweepSettings:
    space = SearchSpace(
        strategies=("feature_extraction",),
        cut_layers=LAYERS,
        weights=("none",),
        head_units=(0,),
        augment=(False,),
        epochs=2,
        patience=2,
        bank_views=0,
    )
    return SweepSettings(DataOptions(task="any"), "nih-cxr14-sample", 32, space)


def test_the_real_objective_feeds_the_dictionary_through_the_record(tmp_path):
    url = f"sqlite:///{tmp_path / 'ocl.db'}"
    settings = _settings()
    context = StudyResources.from_settings(settings)
    study = create_or_resume(optuna.storages.RDBStorage(url), "records", settings, target=4)
    for key, value in DatasetInfo.of(context.dataset).to_user_attrs().items():
        study.set_user_attr(key, value)

    study.optimize(Objective(context, device="cpu:0"), n_trials=4, callbacks=[dictionary_callback(url)])

    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 4
    for trial in complete:
        record = TrialRecord.from_trial(trial)
        assert record.cut_layer in LAYERS and record.weights == "none" and record.strategy == "feature_extraction"
        assert record.val_mean_auroc == pytest.approx(trial.value)
        layer = context.catalog.info(record.cut_layer)
        assert (record.layer_depth, record.block, record.channels, record.stride) == (
            layer.depth,
            layer.block,
            layer.channels,
            32 // layer.height,
        )
        assert set(trial.user_attrs) == set(record.to_user_attrs())  # nothing written around the record

    rows = read_scores(url, dataset="nih-cxr14-sample", task="any", weights="none", image_size=32)
    by_layer_kind = {(row["layer"], row["kind"]): row for row in rows}
    for summary in summarize_layers(study):
        best = by_layer_kind[(summary.layer, "sweep_best_auroc")]
        mean = by_layer_kind[(summary.layer, "sweep_mean_auroc")]
        assert best["value"] == pytest.approx(summary.best) and mean["value"] == pytest.approx(summary.mean)
        assert best["n_trials"] == summary.n_trials and best["source_trial"] == summary.best_trial
        assert (best["depth"], best["stride"]) == (summary.depth, summary.stride)
    assert sum(s.n_trials for s in summarize_layers(study)) == 4


def test_the_static_candidate_order_is_the_built_networks():
    assert CANDIDATES == tuple(layer_catalog(32).candidate_names)


def test_the_cut_layer_is_sampled_by_depth_when_the_allowed_layers_are_contiguous():
    space = SearchSpace(strategies=("feature_extraction",))
    trial = optuna.trial.FixedTrial(
        {"cut_layer_depth": 44, "optimizer": "adam", "learning_rate": 1e-3, "head_units": 0, "augment": False, "batch_size": 32}
    )
    config, _ = space.suggest(trial, list(CANDIDATES), list(CANDIDATES), seed=0)
    assert config.cut_layer == CANDIDATES[44] == "conv4_block24_concat"
    assert space.depth_span(["pool2_pool", "conv3_block2_concat"]) is None  # not contiguous: categorical
    assert space.cut_layer_params("relu", list(CANDIDATES)) == {"cut_layer_depth": 62}


def test_a_record_round_trips_through_the_user_attributes():
    record = TrialRecord(
        strategy="fine_tuning",
        cut_layer="conv5_block16_2_conv",  # not a candidate: no depth, block or stride
        weights="imagenet",
        layer_depth=None,
        layer_index=420,
        block=None,
        channels=None,
        stride=None,
        flops_fraction=None,
        unfreeze_from="conv5_block15_concat",
        augment=True,
        epochs_budget=4,
        task="multilabel",
        dataset="nih-cxr14-sample",
        device="gpu:1",
        host="node-3",
        pid=4242,
    )
    assert all(key.startswith(records.PREFIX) for key in record.to_user_attrs())
    trial = optuna.trial.create_trial(value=0.5, user_attrs=record.to_user_attrs())
    assert TrialRecord.from_trial(trial) == record
    finished = dataclasses.replace(record, wall_seconds=12.5, val_mean_auroc=0.7, val_auroc_per_class={"Edema": float("nan")})
    attrs = finished.to_user_attrs()
    assert attrs[records.key_of("val_auroc_per_class")] == {"Edema": None}  # JSON has no NaN
    assert TrialRecord.from_trial(optuna.trial.create_trial(value=0.7, user_attrs=attrs)).val_mean_auroc == 0.7
    assert TrialRecord.from_trial(optuna.trial.create_trial(value=0.7)) is None  # not an OCL trial
    with pytest.raises(ValueError, match="no such field"):
        records.key_of("layer_dept")


def test_the_default_study_file_equals_the_built_in_search_space():
    document = tomllib.loads((REPO / "studies" / "default.toml").read_text())
    assert set(document["space"]) <= {f.name for f in dataclasses.fields(SearchSpace)}
    assert load_search_space(REPO / "studies" / "default.toml") == SearchSpace()
    # and it spells out every key, so a user copying it sees every setting there is
    missing = {f.name for f in dataclasses.fields(SearchSpace)} - set(document["space"])
    assert missing == {"unfreeze_from"}, missing  # no boundary by default: a TOML file cannot hold None


def test_what_a_fine_tuning_trial_trained_on_is_part_of_its_record():
    import numpy as np

    from sweep.stats import score
    from sweep.study import with_outcome
    from sweep.training import TrialConfig, TrialResult

    y = np.array([[0], [1], [0], [1], [1], [0]], float)
    p = np.array([[0.1], [0.8], [0.3], [0.6], [0.9], [0.2]])

    def result(strategy: str, prefix: str | None) -> TrialResult:
        config = TrialConfig(strategy, "conv4_block24_concat", unfreeze_from="conv4_block20_concat")
        return TrialResult(config, score(y, p, ["finding"]), p, 1, 2, [0.9, 1.0], 3.0, lambda r: p, lambda: None, prefix)

    base = TrialRecord.from_trial(optuna.trial.create_trial(value=1.0, user_attrs=_record().to_user_attrs()))
    banked = with_outcome(base, result("fine_tuning", "conv4_block24_concat[:928]")).to_user_attrs()
    assert banked[records.key_of("prefix_cache")] == "conv4_block24_concat[:928]"
    assert with_outcome(base, result("fine_tuning", None)).to_user_attrs()[records.key_of("prefix_cache")] == "images"
    assert records.key_of("prefix_cache") not in with_outcome(base, result("feature_extraction", None)).to_user_attrs()


def _record() -> TrialRecord:
    return TrialRecord(
        strategy="fine_tuning",
        cut_layer="conv4_block24_concat",
        weights="none",
        layer_depth=44,
        layer_index=309,
        block="dense block 3",
        channels=1024,
        stride=16,
        flops_fraction=0.9,
        unfreeze_from="conv4_block20_concat",
        augment=False,
        epochs_budget=4,
        task="any",
        dataset="nih-cxr14-sample",
        device="cpu:0",
        host="h",
        pid=1,
    )
