"""Faults a long sweep meets: diverging trials, out-of-memory, killed writers, corrupted caches, memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from sweep.caches import load_feature_bank, load_image_cache
from sweep.data import DataOptions, load_dataset
from sweep.model import Weights
from sweep.storage import open_storage
from sweep.study import SearchSpace, SweepSettings, count_states, create_or_resume, run_worker

pytestmark = pytest.mark.slow

FAST_SPACE = SearchSpace(
    strategies=("feature_extraction", "fine_tuning"),
    cut_layers=("conv2_block2_concat", "pool2_pool"),
    weights=("none",),
    learning_rate=(1e-4, 10.0),
    head_units=(0,),
    augment=(False,),
    batch_sizes=(64,),
    epochs=3,
    fine_tuning_epochs=1,
    patience=2,
    bank_views=0,
)


def _study(tmp_path: Path, space: SearchSpace, target: int, name: str = "faults") -> tuple[str, optuna.Study]:
    storage = f"sqlite:///{tmp_path / 'ocl.db'}"
    settings = SweepSettings(DataOptions(task="any"), "nih-cxr14-sample", 32, space)
    return storage, create_or_resume(open_storage(storage), name, settings, target)


def test_a_diverging_trial_fails_with_its_reason_and_the_sweep_goes_on(tmp_path):
    storage, study = _study(tmp_path, FAST_SPACE, target=3)
    study.enqueue_trial(
        {"strategy": "fine_tuning", "cut_layer": "pool2_pool", "unfreeze_back": 7, "optimizer": "adam", "learning_rate": 10.0}
    )
    for _ in range(3):
        study.enqueue_trial({"strategy": "feature_extraction", "learning_rate": 1e-3, "optimizer": "adam"})
    run_worker(storage, "faults", device="cpu:0")
    trials = optuna.load_study(study_name="faults", storage=storage).trials
    assert trials[0].state == optuna.trial.TrialState.FAIL
    assert trials[0].user_attrs["ocl:fail_reason"].startswith("diverged: loss is nan")
    assert count_states(optuna.load_study(study_name="faults", storage=storage))["finished"] == 3


def test_out_of_memory_fails_that_trial_only(tmp_path, monkeypatch):
    import sweep.study._objective

    real = sweep.study._objective.run_trial
    calls = []

    def first_call_runs_out_of_memory(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("ResourceExhaustedError: OOM when allocating tensor with shape[64,1024,7,7]")
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep.study._objective, "run_trial", first_call_runs_out_of_memory)
    space = SearchSpace(**{**FAST_SPACE.as_dict(), "strategies": ("feature_extraction",), "learning_rate": (1e-4, 1e-2)})
    storage, _ = _study(tmp_path, space, target=2)
    run_worker(storage, "faults", device="cpu:0")
    trials = optuna.load_study(study_name="faults", storage=storage).trials
    assert trials[0].state == optuna.trial.TrialState.FAIL
    assert trials[0].user_attrs["ocl:fail_reason"].startswith("out of memory on cpu:0: ResourceExhaustedError")
    assert [t.state for t in trials[1:]] == [optuna.trial.TrialState.COMPLETE] * 2


def test_trials_that_all_fail_stop_the_worker_with_the_reason(tmp_path, monkeypatch):
    import sweep.study._objective
    from sweep.errors import OCLError
    from sweep.training import TrainingDiverged

    def always_diverges(*args, **kwargs):
        raise TrainingDiverged("loss is nan")

    monkeypatch.setattr(sweep.study._objective, "run_trial", always_diverges)
    storage, _ = _study(tmp_path, FAST_SPACE, target=5)
    with pytest.raises(OCLError, match=r"10 trials failed and only 0 finished \(last: diverged: loss is nan"):
        run_worker(storage, "faults", device="cpu:0")


def _kill_when(pattern: str, folder: Path, process: subprocess.Popen, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if any(folder.rglob(pattern)):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.005)
    return False


def test_a_cache_build_killed_midway_is_never_read_and_is_rebuilt(tmp_path, cache_dir):
    process = subprocess.Popen(
        [sys.executable, "-m", "sweep", "data", "prepare", "--image-size", "200"],
        cwd=tmp_path,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert _kill_when(".*.npy.tmp-*", cache_dir, process), "the build finished before it could be killed"
    assert not list((cache_dir / "images").glob("*.json")), "a manifest exists for a half-written cache"
    dataset = load_dataset()
    cache = load_image_cache(dataset.paths, 200)
    assert not list((cache_dir / "images").glob(".*tmp-*")), "the killed build's temporary file was not cleaned up"
    from sweep.data import decode_image

    assert np.array_equal(cache.images[-1], decode_image(dataset.paths[-1], 200))


BANK_SCRIPT = """
import sys
from sweep.caches import load_feature_bank, load_image_cache
from sweep.data import load_dataset
from sweep.model import Weights, build_backbone, candidate_names
dataset = load_dataset()
cache = load_image_cache(dataset.paths, 32)
backbone = build_backbone(32, Weights("none"))
load_feature_bank(cache, Weights("none"), candidate_names(backbone), backbone=backbone)
"""


def test_a_feature_bank_killed_midway_is_rebuilt_and_a_corrupted_layer_is_recomputed(tmp_path, cache_dir):
    from sweep.model import build_backbone, candidate_names

    dataset = load_dataset()
    load_image_cache(dataset.paths, 32)  # built first, so only the bank is being written when killed
    process = subprocess.Popen(
        [sys.executable, "-c", BANK_SCRIPT],
        cwd=tmp_path,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert _kill_when("bank/**/.*.npy.tmp-*", cache_dir, process, timeout=180)
    assert not list(cache_dir.rglob("manifest.json")), "a manifest exists for a half-written bank"

    backbone = build_backbone(32, Weights("none"))
    layers = candidate_names(backbone)
    cache = load_image_cache(dataset.paths, 32)
    bank = load_feature_bank(cache, Weights("none"), layers, backbone=backbone)
    reference = np.array(bank.features("conv3_block4_concat"))
    layer_file = bank.directory / "layers" / "conv3_block4_concat.npy"
    with open(layer_file, "r+b") as handle:  # flip bytes in the middle of the data
        handle.seek(layer_file.stat().st_size // 2)
        handle.write(b"\xff" * 64)
    rebuilt = load_feature_bank(cache, Weights("none"), layers, backbone=backbone)
    np.testing.assert_allclose(rebuilt.features("conv3_block4_concat"), reference, rtol=1e-5, atol=1e-6)
    manifest = json.loads((bank.directory / "manifest.json").read_text())
    assert set(manifest["layers"]) == set(layers)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_memory_stays_flat_over_100_consecutive_trials_in_one_worker(tmp_path, capsys):
    space = SearchSpace(
        **{**FAST_SPACE.as_dict(), "strategies": ("feature_extraction",), "learning_rate": (1e-4, 1e-2), "head_units": (0, 128)}
    )
    storage, _ = _study(tmp_path, space, target=100)
    samples: dict[int, float] = {}

    def measure(study, trial):
        samples[trial.number] = _rss_mib()

    run_worker(storage, "faults", device="cpu:0", callbacks=[measure])
    finished = count_states(optuna.load_study(study_name="faults", storage=storage))["finished"]
    assert finished == 100
    growth = samples[max(samples)] - samples[min(n for n in samples if n >= 10)]
    with capsys.disabled():
        print(
            f"\nresident memory after trial 10: {samples[10]:.0f} MiB, after trial {max(samples)}: "
            f"{samples[max(samples)]:.0f} MiB (growth {growth:+.1f} MiB over {max(samples) - 10} trials)"
        )
    assert growth < 64, samples


def test_trials_of_workers_terminated_after_ctrl_c_are_marked_failed_not_left_running(tmp_path):
    """A worker that did not stop within the grace period is terminated mid-trial; its trial must not
    read RUNNING (alive) afterwards, while another worker's running trial is left alone."""
    from sweep.study import fail_trials_of

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'ocl.db'}", study_name="s", direction="maximize")
    stuck, other = study.ask(), study.ask()
    stuck.set_user_attr("ocl:pid", 4242)
    other.set_user_attr("ocl:pid", 7)
    assert fail_trials_of(study, [4242]) == [stuck.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {stuck.number: optuna.trial.TrialState.FAIL, other.number: optuna.trial.TrialState.RUNNING}
    assert fail_trials_of(study, [4242]) == []  # already failed: nothing to do
