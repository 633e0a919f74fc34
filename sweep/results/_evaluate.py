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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from sweep.data import DEMOGRAPHICS, LabelMap, custom_groupings
from sweep.errors import OCLError
from sweep.results._clinical import ClinicalEvaluation, clinical_evaluation
from sweep.results._external import auroc_with_intervals, prepare_external, score_external
from sweep.results._saliency import SaliencyMaps, saliency_maps
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
    test_aurocs: dict[str, Any] = field(default_factory=dict)  # per output AUROC with interval, and their mean
    model: Any = field(default=None, repr=False)  # the export: raw X-ray in, calibrated scores out
    external: tuple[dict[str, Any], ...] = ()  # per --external dataset: score_external's summary
    saliency: SaliencyMaps | None = None  # Grad-CAM of chosen test images, and the randomisation check


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise OCLError(f"--study {study.study_name}: no completed trial yet; run `ocl sweep` first")
    return max(complete, key=lambda t: t.value)


def evaluate_best(
    study: optuna.Study,
    trial_number: int | None = None,
    *,
    operating_point: str = "youden",
    external: Sequence[str | Path] = (),
    label_map: dict[str, str] | None = None,
    map_source: str = "--map",
    saliency: int = 2,
    subgroups: Sequence[str] = (),
) -> Evaluation:
    """Retrain a configuration (default: the best trial's) and score it once on the test split;
    subgroups' false-negative rates are read at ``operating_point``. The calibrated export is then
    scored on each ``external`` dataset (outputs matched through ``label_map``, the rows of the
    ``--map`` file ``map_source`` names), which is loaded and checked before anything trains, and
    explained by Grad-CAM maps of ``saliency`` test images per output and kind (0: none).
    ``subgroups`` (``--subgroup NAME[=COLUMN]``) adds groupings from a ``path,label`` CSV's columns."""
    settings = load_settings(study)
    seed = settings.data_options.seed
    trial = best_trial(study) if trial_number is None else study.trials[trial_number]
    context = _context(study.study_name, settings)
    mapping = LabelMap(context.task, dict(label_map or {}), source=map_source)
    externals = prepare_external(external, context.dataset, mapping, seed=seed)
    custom = custom_groupings(context.dataset.table, list(subgroups), settings.data_options.where)
    config, weights_label, result = _retrain(settings, trial, context)
    data = context.data
    y_test, p_test = data.targets[data.test], _predict_with_progress(result, data.test)
    test = score(y_test, p_test, data.outputs, np.asarray(result.val.thresholds), min_positives=data.min_positives)
    weights = bootstrap_weights(context.patients(data.test), seed=seed)
    clinical = _clinical(context, result, (y_test, p_test), weights, custom, operating_point)
    model, thresholds = calibrated_export(result, clinical), clinical.thresholds(operating_point)
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
        interval(test.mean_auroc, mean_auroc_resampled(y_test, p_test, weights, _counted(test))),
        tuple(context.dataset.warnings),
        clinical,
        auroc_with_intervals(y_test, p_test, weights, data.outputs),
        model,
        tuple(score_external(found, model, settings.image_size, thresholds, seed=seed) for found in externals),
        saliency_maps(
            model,
            data.images[data.test],
            y_test,
            clinical.calibrate(p_test),
            thresholds,
            data.outputs,
            per_kind=saliency,
            seed=seed,
        ),
    )


def _clinical(
    context: StudyResources,
    result: TrialResult,
    test: tuple[np.ndarray, np.ndarray],
    weights: np.ndarray,
    custom: dict[str, list],
    operating_point: str,
) -> ClinicalEvaluation:
    """Calibration, operating points and subgroups: chosen on validation, scored on ``test``."""
    data = context.data
    rows = context.dataset.table.assign(**custom).iloc[data.test]  # never a model input: read for the subgroups only
    return clinical_evaluation(
        data.outputs,
        (data.targets[data.val], result.val_predictions),
        test,
        weights,
        groups=subgroups_of(rows, tuple(n for n in custom if n not in DEMOGRAPHICS)),
        operating_point=operating_point,
    )


def _predict_with_progress(result: TrialResult, rows: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """The trained model's scores for ``rows``, in chunks with a progress bar (25,000 test images at full size).

    ``chunk`` is a multiple of every prediction batch size (32, 64), so the model sees the same batches as in one call.
    """
    from sweep._progress import tracked_slices

    parts = [result.predict(rows[part]) for part in tracked_slices(len(rows), chunk, "scoring the test split")]
    return np.concatenate(parts) if parts else result.predict(rows)


def _counted(test: Scores) -> np.ndarray:
    """Per output: part of the mean AUROC (not excluded for too few positives)."""
    return np.asarray([name not in test.excluded for name in test.outputs])


def _context(name: str, settings: Any) -> StudyResources:
    """The study's data and layers, refusing a dataset with nothing held out."""
    context = StudyResources.from_settings(settings)
    if len(context.dataset.split_indices("test")) == 0:
        raise OCLError(
            f"--study {name}: the dataset's test split has no images, so there is nothing held out to "
            "evaluate on; add a test split (a test/ folder, a split column or NIH's test_list.txt)"
        )
    return context


def _retrain(settings: Any, trial: optuna.trial.FrozenTrial, context: StudyResources) -> tuple[TrialConfig, str, TrialResult]:
    """The trial's configuration, replayed from its stored parameters, trained again with its seed."""
    fixed = optuna.trial.FixedTrial(trial.params, number=trial.number)
    config, weights_label = settings.space.suggest(
        fixed,
        context.cut_layers,
        context.catalog.candidate_names,
        settings.data_options.seed + trial.number,
        by_depth="cut_layer_depth" in trial.params,  # studies before depth sampling stored cut_layer
    )
    from sweep._progress import epoch_progress

    with epoch_progress(f"retraining trial {trial.number}", config.epochs) as on_epoch:  # minutes when fine-tuning at full size
        result = run_trial(
            config,
            context.data,
            backbone_factory=lambda: context.backbone(weights_label),
            bank=context.bank(weights_label) if config.strategy == FEATURE_EXTRACTION else None,
            on_epoch=on_epoch,
        )
    return config, weights_label, result


def calibrated_export(result: TrialResult, clinical: ClinicalEvaluation) -> Any:
    """The trial's Keras model with each output's validation temperature applied: what is saved,
    scored on external data and explained by saliency maps."""
    from sweep.model import with_temperature

    return with_temperature(result.export(), list(clinical.temperatures))


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
            "auroc_intervals": evaluation.test_aurocs.get("auroc", {}),
        },
        "external": list(evaluation.external),
        "saliency": evaluation.saliency.to_dict() if evaluation.saliency else None,
        "report": report,
        "model": model,
        "warnings": list(evaluation.warnings),
        **(evaluation.clinical.to_dict() if evaluation.clinical else {}),
    }
