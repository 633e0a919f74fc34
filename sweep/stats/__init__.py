"""Pure numerics for scores and their uncertainty: no I/O, no Keras, no storage.

- :func:`score`: AUROC per output and their mean, AUPRC, sensitivity and specificity at a
  threshold chosen on validation, balanced accuracy beside the majority-class baseline;
- :func:`interval`, :func:`bootstrap_weights`, :func:`confidence_set`: patient-level bootstrap
  intervals and the max-T confidence set of candidates not worse than the best;
- :func:`ece`, :func:`fit_temperature`, :func:`reliability_curve`: calibration, and its repair on
  validation; :func:`choose_thresholds`, :func:`rates_at`: operating points chosen on validation
  with sensitivity, specificity, PPV and NPV on test;
- :func:`patient_halves`, :func:`crossfit_outputs`: the two validation halves that every choice
  (trial, epoch) is cross-fitted over, and the outputs both halves average;
- :func:`patient_folds`: the patient-wise folds of ``--cv K``; :func:`patient_groups`: stratified
  patient groups (the inner split of ``--selection inner``).
"""

from sweep.stats._calibration import BINS, apply_temperature, ece, ece_resampled, fit_temperature, reliability_curve
from sweep.stats._crossfit import crossfit_outputs, patient_folds, patient_groups, patient_halves
from sweep.stats._metrics import MIN_POSITIVES, Scores, counted_outputs, mean_auroc, score, youden_thresholds
from sweep.stats._operating_points import OPERATING_POINTS, choose_thresholds, rates_at, rates_resampled
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
    "BINS",
    "OPERATING_POINTS",
    "apply_temperature",
    "choose_thresholds",
    "ece",
    "ece_resampled",
    "fit_temperature",
    "rates_at",
    "rates_resampled",
    "reliability_curve",
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
    "patient_folds",
    "patient_groups",
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
