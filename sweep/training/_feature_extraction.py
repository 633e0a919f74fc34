"""Feature extraction: a head on the banked features of the cut-off layer."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from sweep.caches import FeatureBank
from sweep.stats import score
from sweep.training._config import EpochHook, TrialConfig, TrialResult
from sweep.training._data import TrialData
from sweep.training._epochs import EpochChoice
from sweep.training._head import NumpyHead

# The head's matrix products are small: one BLAS thread is many times faster than two threads
# spinning against each other (or against another worker) on a two-core machine. ``predict`` runs
# under the same limit: another thread count sums in another order, and the same rows would get
# scores that differ in the last bits from those the validation thresholds were chosen on.
ONE_BLAS_THREAD = {"limits": 1, "user_api": "blas"}


@threadpool_limits.wrap(**ONE_BLAS_THREAD)
def train_feature_extraction(
    config: TrialConfig, data: TrialData, bank: FeatureBank, backbone_factory: Any, on_epoch: EpochHook | None
) -> TrialResult:
    start = time.perf_counter()
    features = bank.features(config.cut_layer)
    x_train, y_train = np.asarray(features[data.train]), data.targets[data.train]
    if config.augment:
        views = bank.view_features(config.cut_layer, data.train)
        if views is None:
            raise ValueError("augment=True for feature extraction needs a bank with augmented views (--bank-views)")
        x_train = np.concatenate([x_train, *views])
        y_train = np.concatenate([y_train] * (1 + len(views)))
    x_val, y_val = np.asarray(features[data.val]), data.targets[data.val]
    pos_weight = data.positive_weight() if config.class_weight else np.ones(len(data.outputs), np.float32)

    head = NumpyHead(
        x_train.shape[1],
        len(data.outputs),
        config.head_units,
        config.dropout,
        config.optimizer,
        config.learning_rate,
        config.seed,
    )
    head.set_standardization(x_train)
    history, choice = _fit_keeping_best(head, (x_train, y_train, pos_weight), (x_val, y_val), config, data, on_epoch)
    val_predictions = head.predict(x_val)

    def predict(rows: np.ndarray) -> np.ndarray:
        with threadpool_limits(**ONE_BLAS_THREAD):
            return head.predict(np.asarray(features[rows]))

    def export() -> Any:
        from sweep.training._keras_models import feature_extraction_model

        return feature_extraction_model(backbone_factory(), config, head, len(data.outputs))

    return TrialResult(
        config,
        score(y_val, val_predictions, data.outputs, min_positives=data.min_positives),
        val_predictions,
        choice.best_epoch,
        len(history),
        history,
        time.perf_counter() - start,
        predict,
        export,
        crossfit=choice.crossfit(),
    )


def _fit_keeping_best(
    head: NumpyHead, train: tuple, val: tuple, config: TrialConfig, data: TrialData, on_epoch: EpochHook | None
) -> tuple[list[float], EpochChoice]:
    """Train epoch by epoch until the budget or patience ends it, then restore the best epoch's head.

    The hook hears each epoch's validation AUROC together with whether training ends with it, so a
    pruner is never asked about a trial that has already finished. Returns the history and the
    epoch choice (the whole split's best, and each patient half's for the answer's cross-fitting).
    """
    (x_train, y_train, pos_weight), (x_val, y_val) = train, val
    history: list[float] = []
    choice = EpochChoice(y_val, data.val_halves(), data.min_positives)
    best_state = head.state()
    for epoch in range(config.epochs):
        head.fit_epoch(x_train, y_train, pos_weight, config.batch_size, config.epoch_rows)
        value, improved = choice.update(epoch, head.predict(x_val))
        history.append(value)
        if improved:
            best_state = head.state()
        stopping = epoch - choice.best_epoch >= config.patience or epoch == config.epochs - 1
        if on_epoch is not None:
            on_epoch(epoch, value, stopping)
        if stopping:
            break
    head.restore(best_state)
    return history, choice
