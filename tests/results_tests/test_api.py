"""The library API as a notebook user calls it: a sweep in-process, its result read back in Python."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest

import sweep
import sweep.api
import sweep.api._plan
from sweep.errors import OCLError
from sweep.study import TrialRecord

NOTEBOOK_STUDY = """
[space]
strategies = ["feature_extraction"]
cut_layers = ["pool2_pool", "conv4_block24_concat"]
head_units = [0]
augment = [false]
epochs = 3
patience = 3
bank_views = 0
"""


@pytest.mark.slow
def test_run_sweep_in_process_returns_the_best_trial_and_the_layer_summaries(tmp_path, monkeypatch):
    config = tmp_path / "notebook.toml"
    config.write_text(NOTEBOOK_STUDY)
    storage = f"sqlite:///{tmp_path / 'ocl.db'}"
    loads = []
    real_load = sweep.api._plan.load_dataset
    monkeypatch.setattr(sweep.api._plan, "load_dataset", lambda *a, **k: loads.append(1) or real_load(*a, **k))

    result = sweep.run_sweep(
        trials=4, image_size=64, weights="none", storage=storage, config=config, study="notebook", log_dir=tmp_path / "logs"
    )

    assert len(loads) == 1  # the parent loads the dataset once, to check it; workers load their own
    assert result.study_name == "notebook" and result.finished == 4 and result.failed == 0
    study = optuna.load_study(study_name="notebook", storage=storage)
    best = study.best_trial
    assert result.best_trial == best.number and result.best_value == pytest.approx(best.value)
    assert result.best == TrialRecord.from_trial(best)
    assert result.best.cut_layer in ("pool2_pool", "conv4_block24_concat") and result.best.weights == "none"
    assert sum(layer.n_trials for layer in result.layers) == 4
    assert result.layers[0].best == pytest.approx(result.best_value)  # best first
    assert {layer.layer for layer in result.layers} <= {"pool2_pool", "conv4_block24_concat"}


def test_plan_sweep_refuses_bad_input_and_writes_nothing(tmp_path):
    storage = f"sqlite:///{tmp_path / 'ocl.db'}"
    with pytest.raises(OCLError, match="--weights random"):
        sweep.plan_sweep(4, weights="random", storage=storage)
    with pytest.raises(OCLError, match="--strategy sideways"):
        sweep.plan_sweep(4, strategy="sideways", storage=storage)
    plan = sweep.plan_sweep(4, weights="none", image_size=64, storage=storage)
    assert plan.study_name == "nih-cxr14-sample-any-64px-fe+ft-none" and plan.finished_before is None
    assert plan.settings.space.weights == ("none",)
    # both strategies by default, on this CPU too (the spatial bank makes fine-tuning affordable), and the CLI says so
    assert plan.settings.space.strategies == ("feature_extraction", "fine_tuning") and plan.fine_tuning_on_cpu
    fe = sweep.plan_sweep(4, weights="none", image_size=64, storage=storage, strategy="feature_extraction")
    assert fe.settings.space.strategies == ("feature_extraction",) and not fe.fine_tuning_on_cpu
    assert fe.study_name == "nih-cxr14-sample-any-64px-fe-none"  # can't share a study with both: own name
    # a lone CPU worker leaves the other cores idle (a head trains on one); two workers leave none
    assert fe.idle_cores == len(os.sched_getaffinity(0)) - 1
    two = sweep.plan_sweep(4, weights="none", image_size=64, storage=storage, strategy="feature_extraction", workers=2)
    assert two.idle_cores == 0
    cv = sweep.plan_sweep(4, weights="none", image_size=64, storage=storage, cv=5)
    assert cv.settings.cv == 5 and cv.settings.space.augment == (False,) and any("--cv 5" in n for n in cv.dataset_notes)
    assert cv.study_name.startswith("nih-cxr14-sample-any-64px-fe-none-") and len(cv.study_name.split("-")[-1]) == 6
    both = sweep.plan_sweep(4, weights="none", image_size=64, storage=storage, cv=5, strategy="both")  # fine-tuning too
    assert both.settings.space.strategies == ("feature_extraction", "fine_tuning") and both.settings.space.augment == (False,)
    assert not Path(tmp_path / "ocl.db").exists()  # planning writes nothing


def test_a_lone_cpu_worker_on_a_feature_extraction_sweep_is_told_how_to_use_the_idle_cores(tmp_path, capsys, monkeypatch):
    """A feature-extraction trial trains on one core: with one worker on a 2-core machine, half of it
    sits idle, and the plan says which --workers uses it; with --workers 2 it says nothing."""
    from sweep.cli._common import console
    from sweep.cli._sweep import _print_plan

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    storage = f"sqlite:///{tmp_path / 'ocl.db'}"
    flags = {"weights": "none", "image_size": 64, "storage": storage, "strategy": "feature_extraction"}
    _print_plan(sweep.plan_sweep(4, **flags), console)
    note = "note: 1 CPU worker on 2 cores: a feature-extraction trial trains on one core, so --workers 2 runs 2 trials"
    assert note in capsys.readouterr().err
    _print_plan(sweep.plan_sweep(4, workers=2, **flags), console)
    assert "--workers 2 runs" not in capsys.readouterr().err


def test_a_cpu_affinity_mask_sets_both_the_worker_threads_and_the_idle_cores_note(tmp_path, monkeypatch):
    """Under taskset or a container's cpuset, os.cpu_count() still counts the machine's cores: the
    workers got threads for cores they could not use while the note counted the mask."""
    from sweep.study import parse_devices

    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {2, 3, 4, 5})
    (cpu,) = parse_devices("cpu", None, [])
    assert cpu.threads(1) == 4 and cpu.threads(2) == 2
    flags = {"weights": "none", "image_size": 64, "storage": f"sqlite:///{tmp_path / 'ocl.db'}", "strategy": "feature_extraction"}
    assert sweep.plan_sweep(4, **flags).idle_cores == 3
