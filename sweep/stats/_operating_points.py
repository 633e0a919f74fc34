"""Operating points a clinician would use, chosen on validation and reported on test.

An AUROC says nothing about what happens at the threshold a department would run the model at.
Each operating point here is a threshold chosen on the *validation* split only, then applied
unchanged to test, where sensitivity, specificity, PPV and NPV are reported with patient-level
bootstrap intervals (the counts of each resample are the patients' bootstrap weights):

- ``youden``: the threshold that maximises sensitivity + specificity - 1 on validation;
- ``sens@spec90`` / ``sens@spec95``: the lowest threshold whose validation specificity reaches
  90% / 95% (the most sensitive such threshold), for a rule-in test;
- ``spec@sens90`` / ``spec@sens95``: the highest threshold whose validation sensitivity reaches
  90% / 95% (the most specific such), for a rule-out or triage test.

Thresholds sit halfway between two distinct validation scores, so a test image scored exactly
like a validation image is never on the fence.
"""

from __future__ import annotations

import numpy as np

from sweep.stats._uncertainty import LEVEL

__all__ = ["OPERATING_POINTS", "choose_thresholds", "rates_at", "rates_resampled"]

OPERATING_POINTS = ("youden", "sens@spec90", "sens@spec95", "spec@sens90", "spec@sens95")


def _candidates(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct cut (midpoints between distinct scores, and beyond both ends) with the
    sensitivity and specificity of ``score >= cut``."""
    unique = np.unique(p)
    cuts = np.concatenate([[unique[0] - 1.0], (unique[:-1] + unique[1:]) / 2, [unique[-1] + 1.0]])
    positives, negatives = p[y], p[~y]
    sensitivity = 1 - np.searchsorted(np.sort(positives), cuts, side="left") / max(len(positives), 1)
    specificity = np.searchsorted(np.sort(negatives), cuts, side="left") / max(len(negatives), 1)
    return cuts, sensitivity, specificity


def choose_thresholds(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Each operating point's threshold for one output, from its validation labels and scores
    (NaN for every point when the labels hold one class only)."""
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    known = ~np.isnan(y)
    y, p = y[known] > 0, p[known]
    if y.all() or not y.any():
        return dict.fromkeys(OPERATING_POINTS, float("nan"))
    cuts, sensitivity, specificity = _candidates(y, p)
    chosen = {"youden": float(cuts[int(np.argmax(sensitivity + specificity - 1))])}
    for target in (0.90, 0.95):
        reaches = np.flatnonzero(specificity >= target)  # cuts ascend, specificity rises with them
        chosen[f"sens@spec{round(target * 100)}"] = float(cuts[reaches[0]])
        reaches = np.flatnonzero(sensitivity >= target)  # sensitivity falls as cuts rise
        chosen[f"spec@sens{round(target * 100)}"] = float(cuts[reaches[-1]])
    return chosen


def rates_resampled(y: np.ndarray, p: np.ndarray, threshold: float, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Sensitivity, specificity, PPV and NPV of ``score >= threshold`` under each resample of
    ``weights`` (``(resamples, images)``); NaN where a resample leaves a denominator empty."""
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    known = ~np.isnan(y)
    positive, called = y[known] > 0, p[known] >= threshold
    w = np.atleast_2d(np.asarray(weights, np.float64))[:, known]
    tp, fn = w @ (positive & called), w @ (positive & ~called)
    fp, tn = w @ (~positive & called), w @ (~positive & ~called)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "sensitivity": tp / (tp + fn),
            "specificity": tn / (tn + fp),
            "ppv": tp / (tp + fp),
            "npv": tn / (tn + fn),
        }


def rates_at(y: np.ndarray, p: np.ndarray, threshold: float, weights: np.ndarray, level: float = LEVEL) -> dict:
    """Each rate at ``threshold`` on the data as it is, with its percentile interval over ``weights``."""
    point = {k: float(v[0]) for k, v in rates_resampled(y, p, threshold, np.ones((1, len(np.ravel(y))))).items()}
    resampled = rates_resampled(y, p, threshold, weights)
    tail = (1 - level) / 2 * 100
    out = {}
    for name, values in resampled.items():
        finite = values[np.isfinite(values)]
        low, high = np.percentile(finite, [tail, 100 - tail]) if len(finite) else (np.nan, np.nan)
        out[name] = {"estimate": point[name], "low": float(low), "high": float(high)}
    return out
