"""The study callback that feeds the OCL dictionary after every finished trial.

For the layer the trial used, it recomputes the sweep scores from all completed trials of the
study at that layer and weights (best and mean validation AUROC, number of trials) and upserts
them. Recomputing instead of incrementing makes the callback idempotent: a retried or
duplicated call writes the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from layers_index._store import DatasetKey, LayerKey, Score, upsert_scores
from sweep import _attrs
from sweep.study import load_settings

__all__ = ["dictionary_callback", "sweep_scores"]


def sweep_scores(study: optuna.Study, layer: str, weights: str) -> list[Score]:
    """Best and mean validation AUROC of the completed trials at one layer and weights."""
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.user_attrs.get("ocl:cut_layer") == layer and t.user_attrs.get("ocl:weights") == weights and t.value is not None
    ]
    if not trials:
        return []
    best = max(trials, key=lambda t: t.value)
    a = best.user_attrs
    key = LayerKey(
        layer,
        a.get("ocl:layer_depth"),
        int(a.get("ocl:layer_index", -1)),
        str(a.get("ocl:block") or "other"),
        int(a.get("ocl:channels") or 0),
        int(a.get("ocl:stride") or 0),
    )
    values = [t.value for t in trials]
    common = {"n_trials": len(trials), "source_study": study.study_name, "source_trial": best.number}
    return [
        Score(key, "sweep_best_auroc", max(values), **common),
        Score(key, "sweep_mean_auroc", sum(values) / len(values), **common),
    ]


def dictionary_callback(storage_url: str) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """A callback for ``study.optimize`` that upserts the finished trial's layer scores."""

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state != optuna.trial.TrialState.COMPLETE:
            return
        layer, weights = trial.user_attrs.get("ocl:cut_layer"), trial.user_attrs.get("ocl:weights")
        if not layer or not weights:
            return
        settings = load_settings(study)
        dataset = _dataset_key(study, settings)
        upsert_scores(storage_url, dataset, weights, settings.image_size, sweep_scores(study, layer, weights))

    return callback


def _dataset_key(study: optuna.Study, settings: Any) -> DatasetKey:
    info = study.user_attrs.get(_attrs.DATASET_INFO) or {}
    return DatasetKey(
        name=settings.dataset,
        task=settings.task,
        modality=info.get("modality", "chest x-ray"),
        images=int(info.get("images", 0)),
        patients=int(info.get("patients", 0)),
        fingerprint=info.get("fingerprint", ""),
    )
