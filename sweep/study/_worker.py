"""One worker process: runs trials of a study until it has its target of finished trials.

Workers coordinate only through the storage. Before each trial a worker counts finished and
running trials; it stops when the target is reached, and waits (failing stale trials, whose
retries it may then pick up) while the last trials still run elsewhere. Two workers that ask in
the same instant can still overshoot by one: the later-numbered trial notices and ends as a
failed "surplus" trial without training, so finished trials equal the target exactly.
"""

from __future__ import annotations

import signal
import threading
import time
import warnings
from typing import Any

import optuna

from sweep.errors import OCLError
from sweep.storage import open_storage
from sweep.study import _records as records
from sweep.study._lifecycle import (
    SweepSettings,
    check_pseudonym_key,
    count_states,
    load_settings,
    load_study,
    make_pruner,
    make_sampler,
    target_of,
)
from sweep.study._objective import Objective, OutOfMemory, SurplusTrial
from sweep.study._resources import StudyResources
from sweep.training import TrainingDiverged

__all__ = ["prepare", "run_worker"]

POLL_SECONDS = 1.0


def prepare(settings: SweepSettings) -> list[str]:
    """Check the settings and build the image cache, feature banks and spatial banks once, before
    any worker starts; returns the caches' lines for the user (which blocks are banked, and why not)."""
    return StudyResources.from_settings(settings).prepare() or []


def run_worker(
    storage_url: str,
    study_name: str,
    *,
    device: str = "cpu",
    worker_index: int = 0,
    target: int | None = None,
    callbacks: list | None = None,
    grace_seconds: int | None = None,
) -> int:
    """Run trials until the study has ``target`` finished trials (default: the study's own target).

    Args:
        storage_url: the Optuna storage holding the study.
        study_name: a study created by ``ocl sweep`` / :func:`sweep.api.run_sweep`.
        device: recorded on each trial (``cpu:0``, ``gpu:1``); the process must already see only
            that device (``CUDA_VISIBLE_DEVICES`` set before TensorFlow loads).
        worker_index: distinct per worker: seeds its sampler.
        target: stop at this many finished trials (default: the study's target).
        callbacks: Optuna study callbacks, e.g. :func:`layers_index.dictionary_callback`.
        grace_seconds: a worker silent this long is taken for dead (default ``OCL_GRACE_SECONDS``).

    Returns:
        The number of trials this worker finished.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = open_storage(storage_url, grace_seconds=grace_seconds)
    study = load_study(storage, study_name)
    settings = load_settings(study)
    check_pseudonym_key(study)  # another machine's key would score other pseudonyms: refused here
    target = int(target if target is not None else target_of(study))
    from sweep._keras import device_in_use

    resources = StudyResources.from_settings(settings)
    objective = Objective(resources, device=device, target=target, storage_url=storage_url, device_used=device_in_use())
    space = settings.space
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=make_sampler(settings.data_options.seed + 1000 * worker_index),
        pruner=make_pruner(space.pruner),
    )
    finished_here = 0
    with _InterruptOnlyInTrials() as guard:
        while True:
            if guard.requested:
                raise KeyboardInterrupt
            finished = _one_trial(study, guard.wrap(objective), target, callbacks)
            if finished is None:
                return finished_here
            finished_here += finished


def _one_trial(study: optuna.Study, objective: Any, target: int, callbacks: list | None) -> int | None:
    """Run one trial (or wait while the last ones run elsewhere): 1 if it finished, 0 if not,
    None when the study has its target."""
    optuna.storages.fail_stale_trials(study)
    counts = count_states(study)
    if counts["finished"] >= target:
        return None
    _stop_on_systematic_failures(study, counts)
    if counts["finished"] + counts["running"] >= target and counts["waiting"] == 0:
        time.sleep(POLL_SECONDS)  # the last trials run elsewhere; stay in case one dies
        return 0
    before = counts["finished"]
    study.optimize(
        objective,
        n_trials=1,
        catch=(SurplusTrial, TrainingDiverged, OutOfMemory),
        callbacks=callbacks or [],
    )
    return int(count_states(study)["finished"] > before)


class _InterruptOnlyInTrials:
    """Ctrl-C (SIGINT) stops a worker without leaving a trial RUNNING in the storage.

    Python raises KeyboardInterrupt wherever the signal lands. Inside the objective that is safe:
    Optuna records the trial as FAIL and re-raises. But landing in ``study.ask`` or in ``tell``
    (database writes before and after the objective) leaves the trial RUNNING, as if its worker
    were still alive. So the handler raises only while the objective runs; anywhere else it
    notes the request, and the worker stops right after the trial's bookkeeping is written.
    """

    def __init__(self) -> None:
        self.requested = False
        self._in_trial = False
        self._previous: Any = None

    def __enter__(self) -> _InterruptOnlyInTrials:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self._in_trial:
            raise KeyboardInterrupt

    def wrap(self, objective: Any) -> Any:
        def guarded(trial: optuna.Trial) -> float:
            if self.requested:
                raise KeyboardInterrupt
            self._in_trial = True
            try:
                return objective(trial)
            finally:
                self._in_trial = False

        return guarded


MIN_FAILURES_TO_STOP = 10


def _stop_on_systematic_failures(study: optuna.Study, counts: dict[str, int]) -> None:
    """Give up when trials keep failing (at least 10, and more than have finished): a sweep whose
    every trial fails would otherwise retry forever."""
    failed = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
        if not t.user_attrs.get(records.SURPLUS)
    ]
    if len(failed) >= MIN_FAILURES_TO_STOP and len(failed) > counts["finished"]:
        reason = failed[-1].user_attrs.get(records.FAIL_REASON) or "see the worker log"
        raise OCLError(
            f"--study {study.study_name}: {len(failed)} trials failed and only {counts['finished']} finished "
            f"(last: {reason}); fix the cause, then rerun to resume"
        )
