"""Fine-tuning: the truncated network, trainable from the unfreeze boundary, on cached images."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from sweep.metrics import mean_auroc, score
from sweep.training._config import EpochHook, TrainingDiverged, TrialConfig, TrialResult
from sweep.training._data import TrialData
from sweep.training._keras_models import WeightedBinaryCrossentropy, fine_tuning_model, keras, make_optimizer


class CachedImages(keras.utils.PyDataset):
    """Shuffled batches of cached grayscale images and their targets (backend-agnostic input)."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, rows: np.ndarray, batch_size: int, seed: int) -> None:
        super().__init__()
        self.images, self.targets, self.rows, self.batch_size = images, targets, rows, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(rows)

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        return np.asarray(self.images[rows], np.float32)[..., None], self.targets[rows]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(self.rows)


def predict_rows(model: Any, images: np.ndarray, rows: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Sigmoid scores for image rows, batch by batch through one compiled predict step."""
    parts = [
        np.asarray(model.predict_on_batch(np.asarray(images[rows[lo : lo + batch_size]], np.float32)[..., None]))
        for lo in range(0, len(rows), batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, model.output.shape[-1]), np.float32)


class _EpochEnd(keras.callbacks.Callback):
    """Scores validation after each epoch, keeps the best weights and predictions, reports to the hook."""

    def __init__(self, data: TrialData, on_epoch: EpochHook | None, patience: int) -> None:
        super().__init__()
        self.data, self.on_epoch, self.patience = data, on_epoch, patience
        self.history: list[float] = []
        self.best, self.best_epoch, self.best_weights = -np.inf, 0, None
        self.best_predictions: np.ndarray | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss", 0.0)
        if not np.isfinite(loss):
            raise TrainingDiverged(f"loss is {loss} after epoch {epoch}")
        predictions = predict_rows(self.model, self.data.images, self.data.val)
        value = mean_auroc(self.data.targets[self.data.val], predictions, min_positives=self.data.min_positives)
        self.history.append(value)
        if value > self.best:
            self.best, self.best_epoch, self.best_weights = value, epoch, self.model.get_weights()
            self.best_predictions = predictions
        if self.on_epoch is not None:
            self.on_epoch(epoch, value)
        if epoch - self.best_epoch >= self.patience:
            self.model.stop_training = True


def train_fine_tuning(config: TrialConfig, data: TrialData, backbone_factory: Any, on_epoch: EpochHook | None) -> TrialResult:
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    model = fine_tuning_model(backbone_factory(), config, len(data.outputs))
    pos_weight = data.positive_weight() if config.class_weight else np.ones(len(data.outputs), np.float32)
    model.compile(
        optimizer=make_optimizer(config.optimizer, config.learning_rate), loss=WeightedBinaryCrossentropy(pos_weight.tolist())
    )
    tracker = _EpochEnd(data, on_epoch, config.patience)
    batches = CachedImages(data.images, data.targets, data.train, config.batch_size, config.seed)
    model.fit(batches, epochs=config.epochs, callbacks=[tracker], verbose=0)
    if tracker.best_weights is not None:
        model.set_weights(tracker.best_weights)
    # The best epoch's own predictions (no second pass over validation); when no epoch had a
    # defined AUROC, the predictions of the weights as trained.
    val_predictions = tracker.best_predictions
    if val_predictions is None:
        val_predictions = predict_rows(model, data.images, data.val)
    val_scores = score(data.targets[data.val], val_predictions, data.outputs, min_positives=data.min_positives)

    def predict(rows: np.ndarray) -> np.ndarray:
        return predict_rows(model, data.images, rows)

    return TrialResult(
        config,
        val_scores,
        val_predictions,
        tracker.best_epoch,
        len(tracker.history),
        tracker.history,
        time.perf_counter() - start,
        predict,
        lambda: model,
    )
