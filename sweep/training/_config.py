"""What one trial trains: the configuration the sweep samples and the result it gets back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from sweep.model import Augmentation
from sweep.stats import Scores
from sweep.training._epochs import CrossFitPredictions


class Strategy(StrEnum):
    """How a trial uses the network. Members are strings, so stored values and TOML compare equal.

    ``FEATURE_EXTRACTION`` fits a head on banked features of the cut layer (no backbone pass);
    ``FINE_TUNING`` trains the truncated network from an unfreeze boundary on.
    """

    FEATURE_EXTRACTION = "feature_extraction"
    FINE_TUNING = "fine_tuning"

    @property
    def abbreviation(self) -> str:
        """``fe`` or ``ft``, as default study names spell it."""
        return "fe" if self is Strategy.FEATURE_EXTRACTION else "ft"

    @property
    def words(self) -> str:
        """``feature extraction`` or ``fine-tuning``, as sentences and plots say it."""
        return "feature extraction" if self is Strategy.FEATURE_EXTRACTION else "fine-tuning"


FEATURE_EXTRACTION = Strategy.FEATURE_EXTRACTION
FINE_TUNING = Strategy.FINE_TUNING
STRATEGIES: tuple[Strategy, ...] = tuple(Strategy)
STRATEGY_CHOICES: dict[str, tuple[Strategy, ...]] = {**{s.value: (s,) for s in STRATEGIES}, "both": STRATEGIES}
"""``--strategy``: one strategy, or ``both``."""
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")


@dataclass(frozen=True)
class TrialConfig:
    """One point of the search space.

    ``feature_extraction`` trains a head on banked features of ``cut_layer``; ``fine_tuning``
    trains the network truncated at ``cut_layer`` with every layer from ``unfreeze_from`` on
    trainable (BatchNormalization stays frozen, in inference mode).
    """

    strategy: str
    cut_layer: str
    unfreeze_from: str | None = None
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    augment: bool = False
    augmentation: Augmentation = field(default_factory=Augmentation)
    head_units: int = 0
    dropout: float = 0.0
    epochs: int = 10
    batch_size: int = 32
    class_weight: bool = True
    patience: int = 5
    seed: int = 0
    epoch_rows: int = 0  # feature extraction: an epoch trains on at most this many rows (0: one whole pass)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r}: expected one of {STRATEGIES}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r}: expected one of {OPTIMIZERS}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate!r}: expected a positive number")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs={self.epochs}, batch_size={self.batch_size}: both must be at least 1")
        if self.epoch_rows < 0:
            raise ValueError(f"epoch_rows={self.epoch_rows}: expected 0 (a whole pass) or a positive number of rows")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout!r}: expected 0 <= dropout < 1")


EpochHook = Callable[[int, float, bool], None]
"""Called after every epoch with (epoch, validation mean AUROC, whether training ends with this
epoch: its last one, or patience ran out); may raise to stop the trial. A hook must not prune a
trial whose training has ended: its result is complete and is kept."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite (typically a learning rate far too large)."""


@dataclass
class TrialResult:
    """What a trial learned: validation scores of its best epoch, and a predictor to reuse."""

    config: TrialConfig
    val: Scores
    """Scores of ``val_predictions``; its Youden thresholds are applied unchanged to test."""
    val_predictions: np.ndarray = field(repr=False)
    """Sigmoid scores of the validation rows at the best epoch, computed once and kept."""
    best_epoch: int
    epochs_run: int
    history: list[float]
    seconds: float
    predict: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    """Maps image-table row indices to sigmoid scores (for the test split in ``ocl evaluate``)."""
    export: Callable[[], Any] = field(repr=False)
    """Builds a Keras model that takes raw grayscale images and returns these same scores."""
    prefix: str | None = None
    """Fine-tuning from the spatial bank: the banked tensor it trained on (``conv4_block24_concat[:640]``,
    and whether with the bank's augmented views); None when it trained on images."""
    crossfit: CrossFitPredictions | None = None
    """The validation predictions at the epochs best on each patient half, for the answer's
    cross-fitting (:mod:`sweep.training._epochs`); None when the data has no halves."""
    chosen_on: float | None = None
    """With ``--selection inner``: the mean AUROC on the inner split of train that chose the epoch,
    the trial's value (``val`` then scores the validation rows, which chose nothing); else None."""
