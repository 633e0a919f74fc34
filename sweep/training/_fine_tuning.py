"""Fine-tuning: the truncated network, trainable from the unfreeze boundary, on cached images.

With a :class:`~sweep.caches._spatial_bank.SpatialBank` holding the trial's boundary (see
:meth:`SpatialBank.source <sweep.caches._spatial_bank.SpatialBank.source>` for the rule), only the layers
from the boundary to the cut and the head run: the frozen prefix is read from the bank, as the
first channels of the banked block tensor. The trainer is a sub-model of the full fine-tuning
model (the same layer objects, so the same initial weights as without the bank, and training it
trains the full model): ``TrialResult.export`` returns the whole network, raw X-ray to scores.

With augmentation on, a banked trial trains on the bank's K augmented views (one drawn per image
and epoch, seeded by the trial), made with the feature bank's augmentation strengths: the
strengths sampled for the trial cannot be applied to banked tensors after the fact. The result
says so (``TrialResult.prefix``); ``ocl sweep --no-prefix-cache`` trains on images instead.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from sweep.caches import entry_layer
from sweep.model import predict_in_batches
from sweep.stats import score
from sweep.training._config import EpochHook, TrainingDiverged, TrialConfig, TrialResult
from sweep.training._data import TrialData
from sweep.training._epochs import EpochChoice
from sweep.training._keras_models import (
    WeightedBinaryCrossentropy,
    fine_tuning_model,
    keras,
    make_optimizer,
    suffix_model,
)


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


class BankedTensors(keras.utils.PyDataset):
    """Shuffled batches of banked prefix tensors (the first ``channels``) and their targets.

    The same row order as :class:`CachedImages` with the same seed. With ``views``
    (``(K, len(view_rows), h, w, c)``), each epoch draws one of the K views per image.
    """

    def __init__(
        self,
        clean: np.ndarray,
        channels: int,
        targets: np.ndarray,
        rows: np.ndarray,
        batch_size: int,
        seed: int,
        views: np.ndarray | None = None,
        view_rows: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.clean, self.channels, self.targets, self.rows, self.batch_size = clean, channels, targets, rows, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(rows)
        self.views = views
        if views is not None:
            self.position = np.full(len(targets), -1)
            self.position[np.asarray(view_rows)] = np.arange(len(view_rows))
            self.view_rng = np.random.default_rng([seed, 1])
            self._draw_views()

    def _draw_views(self) -> None:
        self.pick = self.view_rng.integers(len(self.views), size=len(self.targets))

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        c = self.channels
        if self.views is None:
            x = self.clean[rows, ..., :c]
        else:
            x = np.stack(
                [
                    self.views[self.pick[r], self.position[r], ..., :c] if self.position[r] >= 0 else self.clean[r, ..., :c]
                    for r in rows
                ]
            )
        return np.asarray(x, np.float32), self.targets[rows]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(self.rows)
        if self.views is not None:
            self._draw_views()


def predict_banked(model: Any, clean: np.ndarray, channels: int, rows: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Sigmoid scores for image rows from their banked prefix tensors."""
    parts = [
        np.asarray(model.predict_on_batch(np.asarray(clean[np.sort(rows[lo : lo + batch_size]), ..., :channels], np.float32)))
        for lo in range(0, len(rows), batch_size)
    ]
    if not parts:
        return np.zeros((0, model.output.shape[-1]), np.float32)
    # rows were sorted per batch for the memory map; put the scores back in the rows' order
    order = np.concatenate([np.argsort(np.argsort(rows[lo : lo + batch_size])) for lo in range(0, len(rows), batch_size)])
    offsets = np.concatenate([np.full(len(rows[lo : lo + batch_size]), lo) for lo in range(0, len(rows), batch_size)])
    return np.concatenate(parts)[offsets + order]


class _EpochEnd(keras.callbacks.Callback):
    """Scores validation after each epoch, keeps the best weights and the epoch choice, reports to the hook."""

    def __init__(self, data: TrialData, on_epoch: EpochHook | None, patience: int, epochs: int, predict_val: Any = None) -> None:
        super().__init__()
        self.data, self.on_epoch, self.patience, self.epochs = data, on_epoch, patience, epochs
        self.predict_val = predict_val or (lambda model: predict_in_batches(model, data.images, data.val))
        self.history: list[float] = []
        self.choice = EpochChoice(data.targets[data.val], data.val_halves(), data.min_positives)
        self.best_weights = None

    @property
    def best_epoch(self) -> int:
        return self.choice.best_epoch

    @property
    def best_predictions(self) -> np.ndarray | None:
        return self.choice.best_predictions

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss", 0.0)
        if not np.isfinite(loss):
            raise TrainingDiverged(f"loss is {loss} after epoch {epoch}")
        value, improved = self.choice.update(epoch, self.predict_val(self.model))
        self.history.append(value)
        if improved:
            self.best_weights = self.model.get_weights()
        patience_ran_out = epoch - self.best_epoch >= self.patience
        if self.on_epoch is not None:
            self.on_epoch(epoch, value, patience_ran_out or epoch == self.epochs - 1)
        if patience_ran_out:
            self.model.stop_training = True


def train_fine_tuning(
    config: TrialConfig, data: TrialData, backbone_factory: Any, on_epoch: EpochHook | None, spatial_bank: Any = None
) -> TrialResult:
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    full = fine_tuning_model(backbone_factory(), config, len(data.outputs))
    boundary = config.unfreeze_from or config.cut_layer
    block = spatial_bank.source(boundary) if spatial_bank is not None else None
    views = spatial_bank.view_tensors(block) if block is not None and config.augment else None
    if config.augment and views is None:
        block = None  # augmentation without banked views: only the images can give it
    if block is None:
        model, batches, predict, prefix = _image_trainer(full, config, data)
    else:
        model, batches, predict, prefix = _banked_trainer(full, config, data, spatial_bank, boundary, block, views)
    tracker = _fit_keeping_best(model, batches, config, data, on_epoch, predict)
    # The best epoch's own predictions (no second pass over validation); when no epoch had a
    # defined AUROC, the predictions of the weights as trained.
    val_predictions = tracker.best_predictions
    if val_predictions is None:
        val_predictions = predict(data.val)
    val_scores = score(data.targets[data.val], val_predictions, data.outputs, min_positives=data.min_positives)

    return TrialResult(
        config,
        val_scores,
        val_predictions,
        tracker.best_epoch,
        len(tracker.history),
        tracker.history,
        time.perf_counter() - start,
        predict,
        lambda: full,  # the trainer's layers are the full model's: it holds the trained weights
        prefix,
        tracker.choice.crossfit(),
    )


def _image_trainer(full: Any, config: TrialConfig, data: TrialData) -> tuple[Any, Any, Any, None]:
    """The whole network trained on cached images: (model, batches, predict, no prefix)."""
    model = full
    batches = CachedImages(data.images, data.targets, data.train, config.batch_size, config.seed)

    def predict(rows: np.ndarray) -> np.ndarray:
        return predict_in_batches(model, data.images, rows)

    return model, batches, predict, None


def _banked_trainer(
    full: Any, config: TrialConfig, data: TrialData, spatial_bank: Any, boundary: str, block: str, views: np.ndarray | None
) -> tuple[Any, Any, Any, str]:
    """The layers after the banked prefix trained on its tensors: (model, batches, predict, prefix description)."""
    entry = entry_layer(boundary, block)
    model, channels = suffix_model(full, config, entry)
    clean = spatial_bank.clean(block)
    batches = BankedTensors(
        clean,
        channels,
        data.targets,
        data.train,
        config.batch_size,
        config.seed,
        views,
        np.asarray(spatial_bank.views.indices) if views is not None else None,
    )
    prefix = f"{block}[:{channels}]"
    if entry != boundary:
        prefix += f" through the frozen {boundary[:5]} transition"
    prefix += " with the bank's augmented views" if views is not None else ""

    def predict(rows: np.ndarray) -> np.ndarray:
        return predict_banked(model, clean, channels, np.asarray(rows))

    return model, batches, predict, prefix


def _fit_keeping_best(
    model: Any, batches: Any, config: TrialConfig, data: TrialData, on_epoch: EpochHook | None, predict: Any
) -> _EpochEnd:
    """Compile and train the model with early stopping on validation AUROC, ending at the best epoch's weights."""
    pos_weight = data.positive_weight() if config.class_weight else np.ones(len(data.outputs), np.float32)
    model.compile(
        optimizer=make_optimizer(config.optimizer, config.learning_rate), loss=WeightedBinaryCrossentropy(pos_weight.tolist())
    )
    tracker = _EpochEnd(data, on_epoch, config.patience, config.epochs, lambda _model: predict(data.val))
    model.fit(batches, epochs=config.epochs, callbacks=[tracker], verbose=0)
    if tracker.best_weights is not None:
        model.set_weights(tracker.best_weights)
    return tracker
