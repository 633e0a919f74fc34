"""One worker process: runs trials of a study until it has its target of finished trials.

Workers coordinate only through the storage. Before each trial a worker counts finished and
running trials; it stops when the target is reached, and waits (failing stale trials, whose
retries it may then pick up) while the last trials still run elsewhere. Two workers that ask in
the same instant can still overshoot by one: the later-numbered trial notices and ends as a
failed "surplus" trial without training, so finished trials equal the target exactly.
"""

from __future__ import annotations

import time
import warnings

import optuna

from sweep import _attrs
from sweep.errors import OCLError
from sweep.objective import Objective, OutOfMemory, SurplusTrial
from sweep.storage import open_storage
from sweep.study import SweepSettings, count_states, load_settings, load_study, make_pruner, make_sampler
from sweep.training import TrainingDiverged

__all__ = ["prepare", "run_worker"]

POLL_SECONDS = 1.0


def prepare(settings: SweepSettings, *, device: str) -> None:
    """Check the settings and build the image cache and feature banks, before any study exists."""
    Objective(settings, device=device).prepare()


def run_worker(
    storage_url: str,
    study_name: str,
    *,
    device: str,
    worker_index: int = 0,
    target: int | None = None,
    callbacks: list | None = None,
) -> int:
    """Run trials until the study has ``target`` finished trials (default: the study's own target).

    Returns:
        The number of trials this worker finished.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = open_storage(storage_url)
    study = load_study(storage, study_name)
    settings = load_settings(study)
    target = int(target if target is not None else study.user_attrs.get(_attrs.TARGET, 0))
    objective = Objective(settings, device=device, target=target)
    space = objective.space
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=make_sampler(settings.seed + 1000 * worker_index),
        pruner=make_pruner(space.pruner, max(space.epochs, space.fine_tuning_epochs)),
    )
    finished_here = 0
    while True:
        optuna.storages.fail_stale_trials(study)
        counts = count_states(study)
        if counts["finished"] >= target:
            return finished_here
        _stop_on_systematic_failures(study, counts)
        if counts["finished"] + counts["running"] >= target and counts["waiting"] == 0:
            time.sleep(POLL_SECONDS)  # the last trials run elsewhere; stay in case one dies
            continue
        before = counts["finished"]
        study.optimize(
            objective,
            n_trials=1,
            catch=(SurplusTrial, TrainingDiverged, OutOfMemory),
            callbacks=callbacks or [],
        )
        if objective.built_keras_models:  # fine-tuning built models; feature extraction is numpy only
            _clear_keras()
            objective.built_keras_models = False
        finished_here += int(count_states(study)["finished"] > before)


MIN_FAILURES_TO_STOP = 10


def _stop_on_systematic_failures(study: optuna.Study, counts: dict[str, int]) -> None:
    """Give up when trials keep failing (at least 10, and more than have finished): a sweep whose
    every trial fails would otherwise retry forever."""
    failed = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
        if not t.user_attrs.get(_attrs.SURPLUS)
    ]
    if len(failed) >= MIN_FAILURES_TO_STOP and len(failed) > counts["finished"]:
        reason = failed[-1].user_attrs.get(_attrs.FAIL_REASON) or failed[-1].system_attrs.get("fail_reason", "see the worker log")
        raise OCLError(
            f"--study {study.study_name}: {len(failed)} trials failed and only {counts['finished']} finished "
            f"(last: {reason}); fix the cause, then rerun to resume"
        )


def _clear_keras() -> None:
    """Free the models of the last trial, so memory stays flat over hundreds of trials.

    Only after trials that built Keras models: with TensorFlow loaded, the garbage collection this
    triggers costs about 0.2 s, longer than a whole feature-extraction trial.
    """
    import keras

    keras.backend.clear_session(free_memory=True)
