"""Whether a score of 0.9 means 90%: expected calibration error, reliability curves, temperature scaling.

A classifier trained with a class-weighted loss and selected on AUROC ranks well but is rarely
calibrated: AUROC is blind to any monotone distortion of the scores. TRIPOD+AI (Collins et al.,
BMJ 2024) asks for calibration beside discrimination, so ``ocl evaluate`` reports, per output:

- **ECE with equal-mass bins**: images sorted by score and cut into ``bins`` groups of (nearly)
  equal size; ECE is the size-weighted mean of |observed frequency - mean score| over the bins.
  Equal-mass bins (as in MONAI's and Nixon et al.'s adaptive ECE) keep every bin populated where
  scores crowd near 0, as they do for rare findings. Its interval comes from the same
  patient-level bootstrap as every other score (bins fixed, weights resampled).
- **Temperature scaling** (Guo et al., ICML 2017): one scalar per output, ``sigmoid(logit(p) / T)``,
  fitted by minimising the log-loss on *validation* only and applied unchanged to test. It is
  monotone, so AUROC, the ranking and every operating point's images stay the same; only what the
  score says about risk changes. T > 1 softens an overconfident model, T < 1 sharpens a timid one.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit

__all__ = ["BINS", "apply_temperature", "ece", "ece_resampled", "fit_temperature", "reliability_curve"]

BINS = 10
_EPS = 1e-6


def _known(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, p = np.asarray(y, np.float64).ravel(), np.asarray(p, np.float64).ravel()
    known = ~np.isnan(y)
    return y[known] > 0, p[known], known


def _bins(p: np.ndarray, bins: int) -> np.ndarray:
    """Each image's equal-mass bin (by rank of its score; ties share the bin of their first rank)."""
    order = np.argsort(p, kind="stable")
    ranks = np.empty(len(p), np.int64)
    ranks[order] = np.arange(len(p))
    return np.minimum(ranks * bins // max(len(p), 1), bins - 1)


def reliability_curve(y: np.ndarray, p: np.ndarray, bins: int = BINS) -> dict[str, list[float]]:
    """Per equal-mass bin: mean score, observed frequency and image count (a reliability diagram)."""
    positive, scores, _ = _known(y, p)
    which = _bins(scores, bins)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore"):
        mean_score = np.bincount(which, scores, minlength=bins) / count
        frequency = np.bincount(which, positive.astype(np.float64), minlength=bins) / count
    return {"mean_score": mean_score.tolist(), "frequency": frequency.tolist(), "count": count.astype(int).tolist()}


def ece(y: np.ndarray, p: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error with equal-mass bins (NaN without known labels)."""
    return float(ece_resampled(y, p, np.ones((1, len(np.ravel(y)))), bins)[0])


def ece_resampled(y: np.ndarray, p: np.ndarray, weights: np.ndarray, bins: int = BINS) -> np.ndarray:
    """ECE under each resample of ``weights`` (``(resamples, images)``, e.g. patient-level bootstrap
    weights), with the bins of the data as it is."""
    positive, scores, known = _known(y, p)
    w = np.atleast_2d(np.asarray(weights, np.float64))[:, known]
    if not len(scores):
        return np.full(len(w), np.nan)
    member = np.zeros((len(scores), bins))
    member[np.arange(len(scores)), _bins(scores, bins)] = 1.0
    count, predicted, observed = w @ member, (w * scores) @ member, (w * positive) @ member
    total = count.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(observed - predicted).sum(axis=1) / total


def fit_temperature(y: np.ndarray, p: np.ndarray) -> float:
    """The temperature T minimising the log-loss of ``sigmoid(logit(p) / T)`` on these (validation)
    labels; 1.0 when they hold one class only (nothing to calibrate against)."""
    positive, scores, _ = _known(y, p)
    if positive.all() or not positive.any():
        return 1.0
    z = logit(np.clip(scores, _EPS, 1 - _EPS))

    def loss(log_t: float) -> float:
        q = np.clip(expit(z / np.exp(log_t)), _EPS, 1 - _EPS)
        return float(-np.mean(np.where(positive, np.log(q), np.log(1 - q))))

    found = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(found.x))


def apply_temperature(p: np.ndarray, temperature: float | np.ndarray) -> np.ndarray:
    """Scores rescaled by their temperature (one per output, broadcast over the last axis)."""
    z = logit(np.clip(np.asarray(p, np.float64), _EPS, 1 - _EPS))
    return expit(z / np.asarray(temperature, np.float64))
