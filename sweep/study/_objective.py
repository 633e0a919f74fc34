"""The Optuna objective: sample a configuration, train it, record what the dashboard needs.

One :class:`Objective` lives in each worker process, on a :class:`~sweep.study._resources.StudyResources`
that holds the dataset, caches and banks; every call trains one trial. Validation mean AUROC is
reported after each epoch, so the pruner can stop a hopeless trial early; the test split is never
touched here. What a trial was and what it scored is written as a
:class:`~sweep.study._records.TrialRecord`, the one contract its readers rely on.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from typing import Any

import numpy as np
import optuna

from sweep.errors import OCLError
from sweep.stats import interval, mean_auroc_resampled, score
from sweep.storage import store_predictions, store_validation
from sweep.study import _records as records
from sweep.study._lifecycle import FINISHED
from sweep.study._pruning import may_prune
from sweep.study._records import TrialRecord
from sweep.study._resources import StudyResources
from sweep.training import (
    FEATURE_EXTRACTION,
    FINE_TUNING,
    CrossFitPredictions,
    TrainingDiverged,
    TrialConfig,
    TrialResult,
    run_trial,
)

__all__ = ["Objective", "OutOfMemory", "SurplusTrial"]


class SurplusTrial(RuntimeError):
    """Another worker already started the trial that reaches the target; this one is not run."""


class OutOfMemory(RuntimeError):
    """The device ran out of memory in a trial; the worker goes on with the next one."""


class Objective:
    """Trains one sampled configuration per call; see the module docstring.

    Args:
        context: the study's trial context.
        device: where trials run (``cpu:0``, ``gpu:1``), recorded on each trial.
        target: finished trials the study wants; a trial asked for beyond it ends as surplus.
        storage_url: where each finished trial's validation predictions are kept
            (:mod:`sweep.storage._predictions`); None keeps none.
    """

    def __init__(
        self,
        context: StudyResources,
        *,
        device: str,
        target: int | None = None,
        storage_url: str | None = None,
        device_used: str | None = None,
    ) -> None:
        self.context, self.device, self.target, self.storage_url = context, device, target, storage_url
        self.device_used = device_used  # what the framework trains on, as it says (sweep._keras.device_in_use)
        self._split_stored = False

    def __call__(self, trial: optuna.Trial) -> float:
        if self.target is not None and _is_surplus(trial, self.target):
            trial.set_user_attr(records.SURPLUS, True)
            raise SurplusTrial(f"trial {trial.number} not run: {self.target} trials were already finished or running")
        context = self.context
        config, weights_label = context.settings.space.suggest(
            trial, context.cut_layers, context.catalog.candidate_names, context.settings.data_options.seed + trial.number
        )
        record = self.describe(config, weights_label)
        for key, value in record.description_attrs().items():
            trial.set_user_attr(key, value)
        start = time.perf_counter()

        def on_epoch(epoch: int, value: float, training_ends: bool) -> None:
            trial.report(value, epoch)
            if may_prune(epoch, config.epochs, training_ends=training_ends) and trial.should_prune():
                trial.set_user_attr(records.key_of("wall_seconds"), round(time.perf_counter() - start, 3))
                raise optuna.TrialPruned(f"pruned at epoch {epoch} with validation AUROC {value:.4f}")

        try:
            if context.cv_folds:
                result = self._cross_validate(config, weights_label)
            elif context.settings.selection == "inner":
                result = self._fit_inside_train(config, weights_label, context.data.train, context.validation_rows, on_epoch)
            else:
                result = self._run(config, context.data, weights_label, on_epoch)
        except TrainingDiverged as exc:
            trial.set_user_attr(records.FAIL_REASON, f"diverged: {exc} (learning rate {config.learning_rate:.3g})")
            raise
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            first_line = (str(exc).splitlines() or [""])[0][:200]
            if _is_out_of_memory(exc):
                trial.set_user_attr(records.FAIL_REASON, f"out of memory on {self.device}: {first_line}")
                raise OutOfMemory(first_line) from None
            trial.set_user_attr(records.FAIL_REASON, f"{type(exc).__name__}: {first_line}")
            raise
        finally:
            if config.strategy == FINE_TUNING:
                _clear_keras()
        if not np.isfinite(result.val.mean_auroc):
            raise OCLError("validation AUROC is undefined: the validation split has no positive or no negative image")
        low, high = self._interval(result)
        if self.storage_url is not None:
            self._keep_predictions(trial, result)
        for key, value in with_outcome(record, result, low, high).to_user_attrs().items():
            if key not in record.description_attrs():
                trial.set_user_attr(key, value)
        if result.chosen_on is not None:
            return float(result.chosen_on)  # what TPE, the pruner's peers and the answer's choice compare
        return float(result.val.mean_auroc)

    def _cross_validate(self, config: TrialConfig, weights_label: str) -> TrialResult:
        """Score a configuration by patient-wise K-fold CV over train+val (``--cv K``).

        Each fold trains on the other folds (feature extraction: a head on the feature bank;
        fine-tuning: the layers from the boundary on, on the spatial bank's clean prefix tensors),
        chooses its best epoch on its own held-out fold (as a holdout trial chooses on validation,
        and per patient half of it for the answer's cross-fitting) and predicts its held-out
        patients; the pooled out-of-fold predictions score every train+val patient once, about 8x
        the patients of the validation split behind each comparison. Not pruned: the folds run to
        their ends.
        """
        context, start = self.context, time.perf_counter()
        data = context.data
        pooled = np.zeros(data.targets.shape, np.float32)
        own, crossfit = np.zeros_like(pooled), np.zeros_like(pooled)
        best_epochs, epochs_run, chosen_on = [], 0, []
        for fold_train, fold_held_out in context.cv_folds:
            result = self._fold(config, fold_train, fold_held_out, weights_label)
            pooled[fold_held_out] = result.val_predictions
            halves = result.crossfit or CrossFitPredictions(result.val_predictions, result.val_predictions, (0, 0))
            own[fold_held_out], crossfit[fold_held_out] = halves.own, halves.crossfit
            best_epochs.append(result.best_epoch)
            epochs_run += result.epochs_run
            chosen_on.append(result.chosen_on)
        rows, inner = context.validation_rows, context.settings.selection == "inner"
        val = score(data.targets[rows], pooled[rows], data.outputs, min_positives=data.min_positives)

        def no_single_model(_rows: np.ndarray) -> np.ndarray:
            raise RuntimeError("a cross-validated trial is K models; `ocl evaluate` retrains its configuration on train")

        return TrialResult(
            config,
            val,
            pooled[rows],
            int(np.median(best_epochs)),
            epochs_run,
            [],
            time.perf_counter() - start,
            no_single_model,
            no_single_model,
            crossfit=None if inner else CrossFitPredictions(own[rows], crossfit[rows], (0, 0)),
            chosen_on=float(np.nanmean(chosen_on)) if inner else None,
        )

    def _fold(self, config: TrialConfig, train: np.ndarray, held_out: np.ndarray, weights_label: str) -> TrialResult:
        """One fold of :meth:`_cross_validate`: ``config`` trained on ``train``, scored on ``held_out``
        (with ``--selection inner``, its epoch chosen on an inner split of ``train``: nested)."""
        context, extracting = self.context, config.strategy == FEATURE_EXTRACTION
        try:
            if context.settings.selection == "inner":
                return self._fit_inside_train(config, weights_label, train, held_out)
            return self._run(config, dataclasses.replace(context.data, train=train, val=held_out), weights_label)
        finally:
            if not extracting:
                _clear_keras()  # K fine-tuned networks must not pile up in one process

    def _fit_inside_train(
        self, config: TrialConfig, weights_label: str, train: np.ndarray, scored: np.ndarray, on_epoch: Any = None
    ) -> TrialResult:
        """``--selection inner``: ``config`` fitted on ``train`` less its inner split
        (:meth:`StudyResources.inner_split`), its epoch chosen (and pruned) on the inner split, then
        the ``scored`` rows predicted once by that one model. The trial's value is the inner AUROC
        (``chosen_on``), so no choice of epoch, trial or candidate's trial ever sees ``scored``."""
        context = self.context
        fit, inner = context.inner_split(train)
        result = self._run(config, dataclasses.replace(context.data, train=fit, val=inner), weights_label, on_epoch)
        data = context.data
        predictions = result.predict(scored)
        scores = score(data.targets[scored], predictions, data.outputs, min_positives=data.min_positives)
        return dataclasses.replace(
            result, val=scores, val_predictions=predictions, crossfit=None, chosen_on=result.val.mean_auroc
        )

    def _run(self, config: TrialConfig, data: Any, weights_label: str, on_epoch: Any = None) -> TrialResult:
        """:func:`run_trial` on the study's banks: the feature bank or the spatial bank, by strategy."""
        context, extracting = self.context, config.strategy == FEATURE_EXTRACTION
        return run_trial(
            config,
            data,
            backbone_factory=lambda: context.backbone(weights_label),
            bank=context.bank(weights_label) if extracting else None,
            on_epoch=on_epoch,
            spatial_bank=None if extracting else context.spatial_bank(weights_label),
        )

    def _interval(self, result: TrialResult) -> tuple[float, float]:
        """The trial's validation mean AUROC interval, over the same outputs as its mean."""
        y = self.context.data.targets[self.context.validation_rows]
        included = np.asarray([name not in result.val.excluded for name in result.val.outputs])
        resampled = mean_auroc_resampled(y, result.val_predictions, self.context.validation_resamples, included)
        ci = interval(result.val.mean_auroc, resampled)
        return ci.low, ci.high

    def _keep_predictions(self, trial: optuna.Trial, result: TrialResult) -> None:
        study = trial.study.study_name
        if not self._split_stored:
            store_validation(self.storage_url, study, self.context.validation_split())
            self._split_stored = True
        if result.crossfit is None:
            store_predictions(self.storage_url, study, trial.number, result.val_predictions)
        else:
            store_predictions(self.storage_url, study, trial.number, result.crossfit.own, result.crossfit.crossfit)

    def describe(self, config: TrialConfig, weights_label: str) -> TrialRecord:
        """What a person browsing the dashboard needs to read the trial without the code."""
        context = self.context
        info = context.catalog.info(config.cut_layer)
        return TrialRecord(
            strategy=config.strategy,
            cut_layer=config.cut_layer,
            weights=weights_label,
            layer_depth=info.depth if info else None,
            layer_index=context.catalog.index(config.cut_layer),
            block=info.block if info else None,
            channels=info.channels if info else None,
            stride=info.stride if info else None,
            flops_fraction=round(info.flops_fraction, 4) if info else None,
            unfreeze_from=config.unfreeze_from,
            augment=config.augment,
            epochs_budget=config.epochs,
            task=context.task.name,
            dataset=context.dataset.name,
            device=self.device,
            host=socket.gethostname(),
            pid=os.getpid(),
            params=info.params if info else None,
            device_used=self.device_used,
        )


def with_outcome(record: TrialRecord, result: TrialResult, low: float | None = None, high: float | None = None) -> TrialRecord:
    """The record with a finished trial's validation outcome (and its interval) filled in."""
    val = result.val
    summary = {f"val_{name}": value for name, value in val.summary().items()}
    return dataclasses.replace(
        record,
        wall_seconds=round(result.seconds, 3),
        best_epoch=result.best_epoch,
        epochs_run=result.epochs_run,
        val_auroc_per_class=dict(zip(val.outputs, val.auroc)),
        val_mean_auroc_low=low,
        val_mean_auroc_high=high,
        # What a fine-tuning trial trained on: a banked prefix tensor (an augmented one trained on the
        # bank's views, made with the feature bank's strengths, not its own sampled ones) or images.
        prefix_cache=(result.prefix or "images") if result.config.strategy == FINE_TUNING else None,
        inner_mean_auroc=result.chosen_on,
        **summary,
    )


def _is_out_of_memory(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return "resourceexhausted" in text or "out of memory" in text or isinstance(exc, MemoryError)


def _is_surplus(trial: optuna.Trial, target: int) -> bool:
    """Whether trials numbered before this one already finish the target (exact trial counts)."""
    running = optuna.trial.TrialState.RUNNING
    earlier = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number]
    busy = sum(1 for t in earlier if t.state in FINISHED or t.state == running)
    return busy >= target


def _clear_keras() -> None:
    """Free the models of a fine-tuning trial, so memory stays flat over hundreds of trials.

    Only after trials that built Keras models: with TensorFlow loaded, the garbage collection this
    triggers costs about 0.2 s, longer than a whole feature-extraction trial.
    """
    from sweep._keras import keras_module

    keras_module().backend.clear_session(free_memory=True)
