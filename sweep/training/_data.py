"""The arrays a trial trains on, prepared once per dataset, task and image size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweep.caches import ImageCache
from sweep.data import Dataset, Task
from sweep.stats import MIN_POSITIVES


@dataclass(frozen=True)
class TrialData:
    """Images (the cache), targets and split rows for one dataset and task.

    ``min_positives``: outputs with fewer validation positives (or negatives) are left out of the
    validation mean AUROC, per epoch and in the final scores (see :func:`sweep.stats._metrics.counted_outputs`).
    ``halves``: the study's patient halves of the rows it scores trials on
    (:func:`sweep.stats.patient_halves`), so a trial keeps its epochs cross-fitted over them
    (:class:`sweep.training._epochs.EpochChoice`); None keeps only the whole split's best epoch.
    """

    images: np.ndarray  # (n, size, size) uint8, memory-mapped
    targets: np.ndarray  # (n, outputs) float32
    outputs: tuple[str, ...]
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    min_positives: int = MIN_POSITIVES
    halves: np.ndarray | None = None  # per image row: its validation half (0/1), -1 outside validation

    def __post_init__(self) -> None:
        if isinstance(self.min_positives, bool) or not isinstance(self.min_positives, int | np.integer) or self.min_positives < 0:
            raise ValueError(f"min_positives={self.min_positives!r}: expected a non-negative integer")

    @classmethod
    def from_dataset(cls, dataset: Dataset, task: Task, cache: ImageCache, *, min_positives: int = MIN_POSITIVES) -> TrialData:
        return cls(
            images=cache.images,
            targets=dataset.targets(task),
            outputs=task.outputs,
            train=dataset.split_indices("train"),
            val=dataset.split_indices("val"),
            test=dataset.split_indices("test"),
            min_positives=min_positives,
        )

    def val_halves(self) -> np.ndarray | None:
        """The half of each ``val`` row, or None when some row has none (or no halves are set)."""
        if self.halves is None:
            return None
        halves = np.asarray(self.halves)[self.val]
        return halves if len(halves) and (halves >= 0).all() else None

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def positive_weight(self) -> np.ndarray:
        """Per output, negatives / positives on train: balances rare findings in the loss.

        Unknown (NaN) labels count as neither; the losses leave those cells out.
        """
        y = self.targets[self.train]
        positives = (y > 0).sum(axis=0)
        negatives = (y <= 0).sum(axis=0)
        return np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0).astype(np.float32)
