"""Pure numerics for scores and their uncertainty: no I/O, no Keras, no storage.

- :func:`score`: AUROC per output and their mean, AUPRC, sensitivity and specificity at a
  threshold chosen on validation, balanced accuracy beside the majority-class baseline;
- :func:`interval`, :func:`bootstrap_weights`, :func:`confidence_set`: patient-level bootstrap
  intervals and the max-T confidence set of candidates not worse than the best;
- :func:`patient_halves`, :func:`crossfit_outputs`: the two validation halves that every choice
  (trial, epoch) is cross-fitted over, and the outputs both halves average.
"""

from sweep.stats._crossfit import crossfit_outputs, patient_halves
from sweep.stats._metrics import MIN_POSITIVES, Scores, counted_outputs, mean_auroc, score, youden_thresholds
from sweep.stats._uncertainty import (
    LEVEL,
    MIN_TRIALS,
    N_RESAMPLES,
    ScoreInterval,
    bootstrap_weights,
    confidence_set,
    interval,
    mean_auroc_point,
    mean_auroc_resampled,
    patients_of,
    weighted_auroc,
)

__all__ = [
    "LEVEL",
    "MIN_POSITIVES",
    "MIN_TRIALS",
    "N_RESAMPLES",
    "ScoreInterval",
    "Scores",
    "bootstrap_weights",
    "confidence_set",
    "counted_outputs",
    "crossfit_outputs",
    "interval",
    "mean_auroc",
    "mean_auroc_point",
    "mean_auroc_resampled",
    "patient_halves",
    "patients_of",
    "score",
    "weighted_auroc",
    "youden_thresholds",
]
