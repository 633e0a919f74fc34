"""The study callback that feeds the OCL dictionary after every finished trial.

For the candidate the trial belongs to (its cut layer, weights and strategy), it recomputes the
sweep scores from all completed trials of the study there and upserts them: the cross-fitted
validation AUROC with its 95% interval (the score the dictionary ranks on), and the best and mean
over trials for reference. Feature-extraction and fine-tuning trials write separate kinds
(``sweep_*`` and ``ft_sweep_*``). Recomputing instead of incrementing makes the callback
idempotent: a retried or duplicated call writes the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from layers_index._store import DatasetKey, Score, upsert_scores
from sweep.results import CandidateScorer, completed_trials, study_folds, summarize_layers
from sweep.stats import interval
from sweep.storage import load_validation, stored_trials
from sweep.study import DatasetInfo, TrialRecord, load_settings
from sweep.training import FEATURE_EXTRACTION, FINE_TUNING

__all__ = ["dictionary_callback", "sweep_scores"]

PREFIX = {FEATURE_EXTRACTION: "sweep_", FINE_TUNING: "ft_sweep_"}
"""The score kinds of each strategy (:data:`layers_index.SCORE_KINDS`)."""


def sweep_scores(study: optuna.Study, layer: str, weights: str, strategy: str, storage_url: str | None = None) -> list[Score]:
    """The sweep scores of one candidate: best and mean validation AUROC over its completed trials,
    and, where their predictions are stored, the cross-fitted AUROC with its 95% interval."""
    members = [
        (trial, record)
        for trial, record in completed_trials(study)
        if (record.cut_layer, record.weights, record.strategy) == (layer, weights, strategy)
    ]
    if not members:
        return []
    summary = summarize_layers(study, layer=layer, weights=weights, strategy=strategy)[0]
    key = max(members, key=lambda pair: pair[0].value)[1].layer_facts
    common = {"n_trials": summary.n_trials, "source_study": study.study_name, "source_trial": summary.best_trial}
    prefix = PREFIX[strategy]
    scores = [
        Score(key, f"{prefix}best_auroc", summary.best, **common),
        Score(key, f"{prefix}mean_auroc", summary.mean, **common),
    ]
    split = load_validation(storage_url, study.study_name) if storage_url else None
    if split is not None:
        stored = stored_trials(storage_url, study.study_name, [trial.number for trial, _ in members])
        trials = [trial.number for trial, _ in members if trial.number in stored]
        if trials:
            settings = load_settings(study)
            scorer = CandidateScorer(
                split,
                seed=settings.data_options.seed,
                min_positives=settings.space.min_positives,
                storage_url=storage_url,
                study=study.study_name,
                folds=study_folds(split, settings),
            )
            point, resampled = scorer.score(trials)  # only the new trial's resamples are computed
            ci = interval(point, resampled)
            scores.append(Score(key, f"{prefix}auroc", ci.estimate, low=ci.low, high=ci.high, **common))
    return scores


def dictionary_callback(storage_url: str) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """A callback for ``study.optimize`` that upserts the finished trial's candidate scores."""

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state != optuna.trial.TrialState.COMPLETE:
            return
        record = TrialRecord.from_trial(trial)
        if record is None:
            return
        settings = load_settings(study)
        info = DatasetInfo.from_study(study)
        dataset = DatasetKey(settings.dataset, settings.task, info.modality, info.images, info.patients, info.fingerprint)
        scores = sweep_scores(study, record.cut_layer, record.weights, record.strategy, storage_url)
        upsert_scores(storage_url, dataset, record.weights, settings.image_size, scores)

    return callback
