"""Which epoch's validation predictions a trial keeps, chosen so that no patient scores its own choice.

A trial trains for several epochs and keeps the one with the best validation AUROC. Scored on the
same patients, that maximum is biased upward, more so the more epochs a trial ran: a 30-epoch
feature-extraction trial would look better than a 4-epoch fine-tuning trial of the same true
quality, tilting the poster's central comparison. So besides the whole split's best epoch (the
weights a trial exports and the value Optuna optimises), :class:`EpochChoice` keeps, for each
validation image, two predictions over the study's patient halves (:func:`sweep.stats.patient_halves`):

- ``own``: at the epoch best on the image's own half: what the answer chooses a trial on, within
  that half;
- ``crossfit``: at the epoch best on the *other* half: what the answer scores a trial with.

The answer then scores half A with a trial chosen on half B at the epoch chosen on half B, so the
choice of trial and epoch never sees the patients it is scored on. Early stopping still watches
the whole split: it decides when to stop, not which epoch is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweep.stats import crossfit_outputs, mean_auroc, mean_auroc_point

__all__ = ["CrossFitPredictions", "EpochChoice"]


@dataclass(frozen=True)
class CrossFitPredictions:
    """Validation predictions over the two patient halves (see the module docstring)."""

    own: np.ndarray  # (val images, outputs): each at the epoch best on its own half
    crossfit: np.ndarray  # (val images, outputs): each at the epoch best on the other half
    epochs: tuple[int, int]  # the epoch best on half 0 and on half 1


class EpochChoice:
    """Follows a trial's epochs: the whole split's best (as before) and each half's best.

    Args:
        targets: the validation targets, ``(images, outputs)``.
        halves: each validation image's half (0 or 1), or None (no cross-fitted predictions).
        min_positives: as the mean AUROC counts outputs.
    """

    def __init__(self, targets: np.ndarray, halves: np.ndarray | None, min_positives: int) -> None:
        self.targets, self.min_positives = targets, min_positives
        self.best, self.best_epoch, self.best_predictions = -np.inf, 0, None
        self.halves = None if halves is None else np.asarray(halves)
        if self.halves is not None:
            self.rows = [np.flatnonzero(self.halves == side) for side in (0, 1)]
            self.outputs = crossfit_outputs(targets, self.halves, min_positives)
            self.half_best = [-np.inf, -np.inf]
            self.half_epoch = [0, 0]
            self.half_predictions: list[np.ndarray | None] = [None, None]

    def update(self, epoch: int, predictions: np.ndarray) -> tuple[float, bool]:
        """Take one epoch's validation predictions; returns its mean AUROC on the whole split and
        whether it is the best epoch so far there."""
        value = mean_auroc(self.targets, predictions, min_positives=self.min_positives)
        improved = value > self.best
        if improved:
            self.best, self.best_epoch, self.best_predictions = value, epoch, predictions
        if self.halves is not None and self.outputs.any():
            for side, rows in enumerate(self.rows):
                half_value = mean_auroc_point(self.targets[rows], predictions[rows], self.outputs)
                if half_value > self.half_best[side]:
                    self.half_best[side], self.half_epoch[side] = half_value, epoch
                    self.half_predictions[side] = predictions
        return value, improved

    def crossfit(self) -> CrossFitPredictions | None:
        """The own-half and other-half predictions; None without halves or before a defined epoch."""
        if self.halves is None or any(p is None for p in self.half_predictions):
            return None
        own = np.empty_like(self.half_predictions[0])
        crossfit = np.empty_like(own)
        for side, rows in enumerate(self.rows):
            own[rows] = self.half_predictions[side][rows]
            crossfit[rows] = self.half_predictions[1 - side][rows]
        return CrossFitPredictions(own, crossfit, (self.half_epoch[0], self.half_epoch[1]))
