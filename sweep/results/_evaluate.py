"""Evaluating a study's best configuration on the held-out test split.

The sweep selects on validation AUROC only; the test split is touched here, once, after
selection. Beside AUROC it scores calibration (before and after a temperature fitted on
validation) and operating points chosen on validation (:mod:`sweep.results._clinical`).

The best trial's configuration is rebuilt from its stored parameters (an Optuna
``FixedTrial`` replays the search space), trained again with the same seed on train (best epoch
chosen on validation), and scored on test with the thresholds chosen on validation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from sweep.errors import OCLError
from sweep.results._clinical import ClinicalEvaluation, clinical_evaluation
from sweep.results._subgroups import subgroups_of
from sweep.stats import ScoreInterval, Scores, bootstrap_weights, interval, mean_auroc_resampled, score
from sweep.study import StudyResources, load_settings
from sweep.training import FEATURE_EXTRACTION, TrialConfig, TrialResult, run_trial

__all__ = ["CHEXNET_AUROC", "EVALUATE_CONFIGS", "Evaluation", "evaluate_best", "images_per_second"]

EVALUATE_CONFIGS = ("best", "cheapest")
"""Which candidate of the answer ``ocl evaluate --config`` retrains: the best-scoring one, or the
cheapest one in its confidence set (fewest FLOPs, as good as the best as far as the data can tell)."""

CHEXNET_AUROC = {
    "Atelectasis": 0.8094,
    "Cardiomegaly": 0.9248,
    "Effusion": 0.8638,
    "Infiltration": 0.7345,
    "Mass": 0.8676,
    "Nodule": 0.7802,
    "Pneumonia": 0.7680,
    "Pneumothorax": 0.8887,
    "Consolidation": 0.7901,
    "Edema": 0.8878,
    "Emphysema": 0.9371,
    "Fibrosis": 0.8047,
    "Pleural_Thickening": 0.8062,
    "Hernia": 0.9164,
}
"""Per-class test AUROC published for CheXNet (Rajpurkar et al., 2017, Table 1), for reference."""


@dataclass
class Evaluation:
    """The best trial's configuration, its validation and test scores, and the test predictions."""

    study: str
    trial: int
    config: TrialConfig
    weights: str
    val: Scores
    test: Scores
    y_test: np.ndarray
    p_test: np.ndarray
    result: TrialResult
    test_interval: ScoreInterval  # test mean AUROC with its 95% patient-level bootstrap interval
    warnings: tuple[str, ...] = ()  # the dataset's: patients across splits, per-image splits
    clinical: ClinicalEvaluation | None = None  # calibration and operating points (chosen on validation)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise OCLError(f"--study {study.study_name}: no completed trial yet; run `ocl sweep` first")
    return max(complete, key=lambda t: t.value)


def evaluate_best(study: optuna.Study, trial_number: int | None = None, *, operating_point: str = "youden") -> Evaluation:
    """Retrain a configuration (default: the best trial's) and score it once on the test split;
    subgroups' false-negative rates are read at ``operating_point``."""
    settings = load_settings(study)
    trial = best_trial(study) if trial_number is None else study.trials[trial_number]
    context = StudyResources.from_settings(settings)
    if len(context.dataset.split_indices("test")) == 0:
        raise OCLError(
            f"--study {study.study_name}: the dataset's test split has no images, so there is nothing held out to "
            "evaluate on; add a test split (a test/ folder, a split column or NIH's test_list.txt)"
        )
    fixed = optuna.trial.FixedTrial(trial.params, number=trial.number)
    config, weights_label = settings.space.suggest(
        fixed,
        context.cut_layers,
        context.catalog.candidate_names,
        settings.data_options.seed + trial.number,
        by_depth="cut_layer_depth" in trial.params,  # studies before depth sampling stored cut_layer
    )
    result = run_trial(
        config,
        context.data,
        backbone_factory=lambda: context.backbone(weights_label),
        bank=context.bank(weights_label) if config.strategy == FEATURE_EXTRACTION else None,
    )
    data = context.data
    y_test = data.targets[data.test]
    p_test = result.predict(data.test)
    test = score(y_test, p_test, data.outputs, np.asarray(result.val.thresholds), min_positives=data.min_positives)
    patients = context.patients(data.test)
    counted = np.asarray([name not in test.excluded for name in test.outputs])
    weights = bootstrap_weights(patients, seed=settings.data_options.seed)
    resampled = mean_auroc_resampled(y_test, p_test, weights, counted)
    test_interval = interval(test.mean_auroc, resampled)
    clinical = clinical_evaluation(
        data.outputs,
        (data.targets[data.val], result.val_predictions),
        (y_test, p_test),
        weights,
        groups=subgroups_of(context.dataset.table.iloc[data.test]),  # never a model input: read for this only
        operating_point=operating_point,
    )
    return Evaluation(
        study.study_name,
        trial.number,
        config,
        weights_label,
        result.val,
        test,
        y_test,
        p_test,
        result,
        test_interval,
        tuple(context.dataset.warnings),
        clinical,
    )


def images_per_second(model: Any, images: np.ndarray, batch_size: int = 32, min_seconds: float = 1.0) -> float:
    """Measured inference throughput of ``model`` on these images (grayscale, ``(n, size, size)``).

    One warm-up batch (compilation), then whole batches until ``min_seconds`` have passed: a
    figure measured on this machine, as the answer's cost against the full network needs it.
    """
    batch = np.asarray(images[:batch_size], np.float32)[..., None]
    model.predict_on_batch(batch)
    done, start = 0, time.perf_counter()
    while True:
        model.predict_on_batch(batch)
        done += len(batch)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def evaluation_summary(evaluation: Evaluation, report: str, model: str) -> dict[str, Any]:
    """What is stored on the study (``ocl:evaluation``) and printed as JSON."""
    return {
        "trial": evaluation.trial,
        "strategy": evaluation.config.strategy,
        "cut_layer": evaluation.config.cut_layer,
        "weights": evaluation.weights,
        "val_mean_auroc": evaluation.val.mean_auroc,
        "test": {
            **evaluation.test.summary(),
            "mean_auroc_low": evaluation.test_interval.low,
            "mean_auroc_high": evaluation.test_interval.high,
            "auroc_per_class": dict(zip(evaluation.test.outputs, evaluation.test.auroc)),
        },
        "report": report,
        "model": model,
        "warnings": list(evaluation.warnings),
        **(evaluation.clinical.to_dict() if evaluation.clinical else {}),
    }
