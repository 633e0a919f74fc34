"""Training strategies: what one trial does with a configuration.

:func:`run_trial` is the one entry point the sweep calls. ``feature_extraction`` fits a head on the
feature bank (no backbone pass); ``fine_tuning`` trains the truncated network on cached images.
Both report validation mean AUROC after every epoch through ``on_epoch`` (the sweep's pruning
hook) and return a :class:`TrialResult` whose ``val`` scores are those of the best epoch's
validation predictions (kept as ``val_predictions``), and the predictions at the epochs best on
each patient half (``crossfit``, :mod:`sweep.training._epochs`), which the answer scores.

Example:
    >>> result = run_trial(TrialConfig(FEATURE_EXTRACTION, "conv4_block24_concat"), data,
    ...                    bank=bank, backbone_factory=lambda: backbone)
    >>> result.val.mean_auroc
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sweep.caches import FeatureBank
from sweep.training._config import (
    FEATURE_EXTRACTION,
    FINE_TUNING,
    OPTIMIZERS,
    STRATEGIES,
    STRATEGY_CHOICES,
    EpochHook,
    Strategy,
    TrainingDiverged,
    TrialConfig,
    TrialResult,
)
from sweep.training._data import TrialData
from sweep.training._epochs import CrossFitPredictions, EpochChoice

__all__ = [
    "FEATURE_EXTRACTION",
    "FINE_TUNING",
    "STRATEGY_CHOICES",
    "CrossFitPredictions",
    "EpochChoice",
    "Strategy",
    "OPTIMIZERS",
    "STRATEGIES",
    "TrainingDiverged",
    "TrialConfig",
    "TrialData",
    "TrialResult",
    "run_trial",
]


def run_trial(
    config: TrialConfig,
    data: TrialData,
    *,
    backbone_factory: Callable[[], Any],
    bank: FeatureBank | None = None,
    on_epoch: EpochHook | None = None,
    spatial_bank: Any = None,
) -> TrialResult:
    """Train one configuration and score it on the validation split.

    Args:
        config: what to train.
        data: images, targets and split rows.
        backbone_factory: returns a freshly built backbone with the trial's weights (fine-tuning
            changes weights, so it must not share a model with other trials).
        bank: the feature bank holding ``config.cut_layer`` (required for feature extraction).
        on_epoch: called with (epoch, validation mean AUROC); raising stops the trial.
        spatial_bank: a :class:`sweep.caches._spatial_bank.SpatialBank`: fine-tuning trains only the layers
            from the boundary on, on banked prefix tensors, when it holds the boundary (else on images).

    Raises:
        TrainingDiverged: when the loss becomes NaN or infinite.
    """
    if config.strategy == FEATURE_EXTRACTION:
        if bank is None:
            raise ValueError("feature_extraction needs bank=, a FeatureBank holding the cut layer")
        from sweep.training._feature_extraction import train_feature_extraction

        return train_feature_extraction(config, data, bank, backbone_factory, on_epoch)
    from sweep.training._fine_tuning import train_fine_tuning

    return train_fine_tuning(config, data, backbone_factory, on_epoch, spatial_bank)
