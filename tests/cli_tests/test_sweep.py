"""``ocl sweep``, ``ocl worker`` and ``ocl evaluate`` as a user runs them: real processes, real trials."""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from small_sweep import SMALL_STUDY, STUDY, SWEEP_ARGS, Swept, own_copy, run_ocl

from sweep.results import study_answer

pytestmark = pytest.mark.slow


def trials_of(storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=STUDY, storage=storage).get_trials(deepcopy=False)


def finished(trials) -> list:
    return [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]


@pytest.fixture
def swept(small_sweep) -> Swept:
    """The session's real 12-trial sweep, read by many tests; a test that writes to it takes :func:`own_copy`."""
    return small_sweep


def test_two_workers_finish_exactly_the_target_and_a_rerun_adds_only_the_missing(swept, tmp_path):
    trials = trials_of(swept.storage)
    assert len(finished(trials)) == 12
    devices = Counter(t.user_attrs["ocl:device"] for t in finished(trials))
    assert set(devices) == {"cpu:0", "cpu:1"}, devices
    assert "best trial #" in swept.result.stdout and "answer:" in swept.result.stdout
    report = swept.root / "studies" / "reports" / f"{STUDY}.html"
    assert f"report: studies/reports/{STUDY}.html" in swept.result.stdout and report.stat().st_size > 0
    assert f"ocl evaluate --study {STUDY} --storage {swept.storage}" in swept.result.stdout  # the next step
    (disk,) = [line for line in swept.result.stderr.splitlines() if line.startswith("disk:")]  # before banking
    written = r"disk: the caches write (\d+) MB under \S+ \(image cache \d+ MB, feature bank \d+ MB\), then a spatial"
    stated = re.match(written, disk)
    assert stated, disk
    cache = Path(swept.env["OCL_CACHE_DIR"])
    banked = sum(p.stat().st_size for folder in ("images", "bank") for p in (cache / folder).rglob("*.npy"))
    assert abs(int(stated.group(1)) * 10**6 - banked) <= 10**6, (disk, banked)  # what it said is what it wrote

    root, env, storage = own_copy(swept, tmp_path)
    second = run_ocl(root, env, "sweep", "--trials", "16", "--workers", "2", "--storage", storage, *SWEEP_ARGS)
    assert second.returncode == 0, second.stderr
    assert f"resuming study {STUDY} at 12/16 finished trials" in second.stdout
    assert "are built (nothing to write)" in second.stderr
    after = trials_of(storage)
    assert len(finished(after)) == 16
    old = {t.number: t.value for t in finished(trials)}
    assert {t.number: t.value for t in finished(after) if t.number in old} == old  # nothing redone or lost


def test_trials_carry_what_the_dashboard_needs(swept):
    study = optuna.load_study(study_name=STUDY, storage=swept.storage)
    assert study.metric_names == ["val_mean_auroc"]
    trial = next(t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    attrs = trial.user_attrs
    for key in (
        "ocl:cut_layer",
        "ocl:layer_depth",
        "ocl:block",
        "ocl:channels",
        "ocl:strategy",
        "ocl:device",
        "ocl:wall_seconds",
        "ocl:val_mean_auroc",
        "ocl:val_auroc_per_class",
    ):
        assert key in attrs, key
    assert attrs["ocl:val_mean_auroc"] == pytest.approx(trial.value)
    assert attrs["ocl:cut_layer"] in ("conv2_block6_concat", "pool3_pool", "conv4_block24_concat", "relu")
    assert 0 <= attrs["ocl:wall_seconds"] < 120


@pytest.mark.parametrize(
    "flags, setting",
    [
        (["--image-size", "64"], "image_size"),
        (["--image-size", "32", "--cv", "2"], "cv"),  # another scheme
        (["--image-size", "32", "--selection", "inner"], "selection"),  # trials chosen elsewhere
    ],
)
def test_a_different_setting_under_the_same_study_name_is_refused(swept, tmp_path, flags, setting):
    root, env, storage = own_copy(swept, tmp_path)
    env = dict(env, OCL_CACHE_DIR=str(tmp_path / "fresh-cache"))
    result = run_ocl(
        root, env, "sweep", "--trials", "20", "--storage", storage, *flags, "--weights", "none", "--config", "small.toml",
        "--study", STUDY,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: --study small: this study was run with other {setting}")
    assert "Traceback" not in result.stderr
    assert len(finished(trials_of(storage))) == 12
    assert not (tmp_path / "fresh-cache").exists()  # refused before any cache was built


def test_evaluate_config_cheapest_retrains_the_cheapest_candidate_as_good_as_the_best(swept, tmp_path):
    root, env, storage = own_copy(swept, tmp_path)
    answer = study_answer(optuna.load_study(study_name=STUDY, storage=storage), storage)
    result = run_ocl(root, env, "evaluate", "--storage", storage, "--config", "cheapest", "--format", "json")
    if answer.cheapest is None:  # nothing judged yet in this small study: one line says so
        assert result.returncode == 2 and result.stderr.strip().startswith("error: --config cheapest"), result.stderr
        return
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["config"] == "cheapest" and summary["trial"] == answer.cheapest.trial
    assert summary["candidate"] == answer.cheapest.name
    assert summary["inference"]["flops_fraction"] == answer.cheapest.flops_fraction


def test_a_killed_worker_loses_no_finished_trial_and_its_trial_is_retried(tmp_path):
    # Long enough trials (about 10 s here) that the one killed is still running: it is picked within
    # a second of its start.
    (tmp_path / "small.toml").write_text(
        SMALL_STUDY.replace("epochs = 4", "epochs = 100").replace("patience = 2", "patience = 100")
    )
    env = dict(os.environ, OCL_CACHE_DIR=str(tmp_path / "cache"), OCL_GRACE_SECONDS="4")  # heartbeat every second
    storage = f"sqlite:///{tmp_path / 'ocl.db'}"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "sweep", "sweep", "--trials", "5", "--workers", "2", "--storage", storage, *SWEEP_ARGS],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    victim = None
    deadline = time.monotonic() + 240
    while victim is None and time.monotonic() < deadline and sweep.poll() is None:
        time.sleep(0.05)
        try:
            trials = trials_of(storage)
        except Exception:
            continue
        running = [
            t for t in trials
            if t.state == optuna.trial.TrialState.RUNNING and "ocl:pid" in t.user_attrs
            and (datetime.datetime.now() - t.datetime_start).total_seconds() < 1
        ]  # fmt: skip
        if running and finished(trials):
            victim = running[0]
            os.kill(victim.user_attrs["ocl:pid"], signal.SIGKILL)
    assert victim is not None, "no trial was seen running"
    before = {t.number: t.value for t in finished(trials_of(storage))}
    out, err = sweep.communicate(timeout=900)
    assert sweep.returncode == 0, err
    trials = trials_of(storage)
    assert len(finished(trials)) == 5
    killed = next(t for t in trials if t.number == victim.number)
    assert killed.state == optuna.trial.TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert retried and retried[0].params == victim.params
    assert {n: v for n, v in ((t.number, t.value) for t in finished(trials)) if n in before} == before


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_the_study_its_metric_name_and_trial_attributes(swept):
    import urllib.request

    root, env, storage = swept.root, swept.env, swept.storage
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sweep", "dashboard", "--storage", storage, "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        studies = None
        deadline = time.monotonic() + 180
        while studies is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    studies = json.load(response)["study_summaries"]
            except OSError:
                time.sleep(0.5)
        assert studies is not None, "optuna-dashboard did not answer"
        (ours,) = [s for s in studies if s["study_name"] == STUDY]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{ours['study_id']}", timeout=30) as response:
            detail = json.load(response)
        assert detail["objective_names"] == ["val_mean_auroc"]
        keys = {a["key"] for a in detail["union_user_attrs"]}
        assert {"ocl:cut_layer", "ocl:layer_depth", "ocl:strategy", "ocl:device", "ocl:val_mean_auroc"} <= keys
        assert len(detail["trials"]) >= 12
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_ctrl_c_stops_the_workers_and_keeps_finished_trials(tmp_path):
    (tmp_path / "small.toml").write_text(SMALL_STUDY)
    env = dict(os.environ, OCL_CACHE_DIR=str(tmp_path / "cache"))
    storage = f"sqlite:///{tmp_path / 'ocl.db'}"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "sweep", "sweep", "--trials", "500", "--workers", "2", "--storage", storage, *SWEEP_ARGS],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            if len(finished(trials_of(storage))) >= 3:
                break
        except Exception:
            continue
    sweep.send_signal(signal.SIGINT)
    # The workers get 30 s to finish their trial, then are terminated; a loaded 2-core machine
    # can take minutes to start and stop processes that import TensorFlow, hence the room.
    _, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 130, err
    assert "finished trials stay in the storage" in err
    trials = trials_of(storage)
    assert len(finished(trials)) >= 3
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    for pid in {t.user_attrs["ocl:pid"] for t in trials if "ocl:pid" in t.user_attrs}:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_cpu_note_states_what_this_study_measured_not_a_typed_in_figure(swept, tmp_path, monkeypatch):
    from sweep.api import plan_sweep
    from sweep.cli._sweep import _cpu_fine_tuning_note

    root, _, storage = own_copy(swept, tmp_path)
    monkeypatch.chdir(root)
    flags = {"image_size": 32, "weights": "none", "config": "small.toml", "devices": "cpu"}
    plan = plan_sweep(20, storage=storage, study=STUDY, **flags)
    trials = [t for t in trials_of(storage) if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    fine = [t.user_attrs["ocl:wall_seconds"] for t in trials if t.user_attrs["ocl:strategy"] == "fine_tuning"]
    note = _cpu_fine_tuning_note(plan)
    assert fine  # the small sweep samples both strategies
    assert f"so far this study's {len(fine)} fine-tuning trial(s) took {sum(fine) / len(fine):.0f} s on average" in note
    fresh = plan_sweep(20, storage=f"sqlite:///{tmp_path / 'new.db'}", study="new", **flags)
    assert "many times a feature-extraction trial (measured on 2 cores: README" in _cpu_fine_tuning_note(fresh)
    assert not any(ch.isdigit() for ch in _cpu_fine_tuning_note(fresh).split("(measured")[0])  # no typed-in figure
