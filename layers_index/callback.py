"""The study callback that feeds the OCL dictionary after every finished trial.

For the layer the trial used, it recomputes the sweep scores from all completed trials of the
study at that layer and weights (best and mean validation AUROC, number of trials) and upserts
them. Recomputing instead of incrementing makes the callback idempotent: a retried or
duplicated call writes the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from layers_index._store import DatasetKey, LayerKey, Score, upsert_scores
from sweep.records import DatasetInfo, TrialRecord
from sweep.study import load_settings
from sweep.summary import summarize_layers

__all__ = ["dictionary_callback", "sweep_scores"]


def sweep_scores(study: optuna.Study, layer: str, weights: str) -> list[Score]:
    """Best and mean validation AUROC of the completed trials at one layer and weights."""
    summaries = summarize_layers(study, layer=layer, weights=weights)
    if not summaries:
        return []
    s = summaries[0]
    key = LayerKey(s.layer, s.depth, s.layer_index, s.block or "other", s.channels or 0, s.stride or 0)
    common = {"n_trials": s.n_trials, "source_study": study.study_name, "source_trial": s.best_trial}
    return [
        Score(key, "sweep_best_auroc", s.best, **common),
        Score(key, "sweep_mean_auroc", s.mean, **common),
    ]


def dictionary_callback(storage_url: str) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """A callback for ``study.optimize`` that upserts the finished trial's layer scores."""

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state != optuna.trial.TrialState.COMPLETE:
            return
        record = TrialRecord.from_trial(trial)
        if record is None:
            return
        settings = load_settings(study)
        info = DatasetInfo.from_study(study)
        dataset = DatasetKey(settings.dataset, settings.task, info.modality, info.images, info.patients, info.fingerprint)
        upsert_scores(
            storage_url, dataset, record.weights, settings.image_size, sweep_scores(study, record.cut_layer, record.weights)
        )

    return callback
