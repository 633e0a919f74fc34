"""Metrics that mean something at 1-5% prevalence (all from scikit-learn).

AUROC (per output and mean) is what the sweep optimises: it does not depend on a threshold or on
prevalence. Thresholded metrics use one threshold per output chosen on the validation split by
Youden's J (sensitivity + specificity - 1), then applied unchanged to whatever split is scored,
so the test split never tunes anything. Accuracy is only ever reported beside the accuracy of
always predicting the majority class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score, roc_curve

__all__ = ["Scores", "mean_auroc", "score", "youden_thresholds"]


def _auroc(y: np.ndarray, p: np.ndarray) -> float:
    """AUROC, or NaN when only one class is present (it is undefined then, not 0.5)."""
    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, p))


def mean_auroc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Mean AUROC over the outputs where it is defined (NaN if none is).

    This runs after every epoch of every trial, so it uses the rank-sum (Mann-Whitney) form of
    AUROC for all outputs at once, with tied scores counted half as sklearn does; it equals
    ``roc_auc_score`` (a test checks it) at a fraction of its per-call cost.
    """
    y = np.asarray(y_true) > 0
    ranks = rankdata(np.asarray(scores, dtype=np.float64), axis=0)
    positives = y.sum(axis=0)
    negatives = len(y) - positives
    defined = (positives > 0) & (negatives > 0)
    if not defined.any():
        return float("nan")
    rank_sum = (ranks * y).sum(axis=0)
    auc = (rank_sum[defined] - positives[defined] * (positives[defined] + 1) / 2) / (positives[defined] * negatives[defined])
    return float(auc.mean())


def youden_thresholds(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per output, a threshold that maximises Youden's J = sensitivity + specificity - 1.

    ``roc_curve``'s thresholds are score values themselves, and ``score`` predicts positive when
    ``p >= threshold``. Scores recomputed along another BLAS path (another thread count, another
    CPU) differ in the last bits, so a threshold equal to a score would send that image to either
    side and change sensitivity and specificity on the very split it was chosen on. So each
    threshold lies strictly between two distinct scores: halfway between the lowest score the best
    cut predicts positive and the next lower distinct score. Beyond the ends the neighbour is 0 or 1
    (the range of a sigmoid) when the scores lie strictly inside it, else one unit further out:
    when the best cut predicts nothing positive (``roc_curve``'s first threshold, ``inf``), the
    threshold lies between the highest score and 1. Outputs with one class only get 0.5.
    """
    scores = np.asarray(scores, dtype=np.float64)
    thresholds = np.full(y_true.shape[1], 0.5)
    for k in range(y_true.shape[1]):
        if y_true[:, k].min() == y_true[:, k].max():
            continue
        fpr, tpr, cut = roc_curve(y_true[:, k], scores[:, k])
        best = int(np.argmax(tpr - fpr))
        distinct = np.unique(scores[:, k])
        below = 0.0 if distinct[0] > 0 else distinct[0] - 1.0
        above = 1.0 if distinct[-1] < 1 else distinct[-1] + 1.0
        edges = np.concatenate([[below], distinct, [above]])
        # edges[i] is the lowest score predicted positive (``above`` when none is).
        i = len(edges) - 1 if cut[best] > distinct[-1] else int(np.searchsorted(edges, cut[best]))
        thresholds[k] = _between(edges[i - 1], edges[i])
    return thresholds


def _between(low: float, high: float) -> float:
    """Halfway from ``low`` to ``high``; ``high`` when they are adjacent floats (no float between)."""
    middle = low + (high - low) / 2
    return float(middle) if low < middle < high else float(high)


@dataclass
class Scores:
    """Metrics of one split; per-output lists follow ``outputs``."""

    outputs: list[str]
    auroc: list[float]
    auprc: list[float]
    sensitivity: list[float]
    specificity: list[float]
    balanced_accuracy: list[float]
    accuracy: list[float]
    majority_accuracy: list[float]
    thresholds: list[float]
    mean_auroc: float = float("nan")
    mean_auprc: float = float("nan")
    mean_balanced_accuracy: float = float("nan")

    def summary(self) -> dict[str, float]:
        """The flat numbers worth a column in a table or a trial attribute."""
        return {
            "mean_auroc": self.mean_auroc,
            "mean_auprc": self.mean_auprc,
            "mean_balanced_accuracy": self.mean_balanced_accuracy,
            "mean_sensitivity": _nanmean(self.sensitivity),
            "mean_specificity": _nanmean(self.specificity),
            "mean_accuracy": _nanmean(self.accuracy),
            "mean_majority_accuracy": _nanmean(self.majority_accuracy),
        }


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def score(y_true: np.ndarray, scores: np.ndarray, outputs: Sequence[str], thresholds: np.ndarray | None = None) -> Scores:
    """Score predictions; ``thresholds`` default to Youden's J on these same labels (use that for val)."""
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    if thresholds is None:
        thresholds = youden_thresholds(y_true, scores)
    result: dict[str, list[float]] = {
        k: [] for k in ("auroc", "auprc", "sensitivity", "specificity", "balanced_accuracy", "accuracy", "majority_accuracy")
    }
    for k in range(y_true.shape[1]):
        y, p = y_true[:, k].astype(int), scores[:, k]
        predicted = (p >= thresholds[k]).astype(int)
        both = y.min() != y.max()
        positives, negatives = (y == 1), (y == 0)
        result["auroc"].append(_auroc(y, p))
        result["auprc"].append(float(average_precision_score(y, p)) if both else float("nan"))
        result["sensitivity"].append(float(predicted[positives].mean()) if positives.any() else float("nan"))
        result["specificity"].append(float(1 - predicted[negatives].mean()) if negatives.any() else float("nan"))
        result["balanced_accuracy"].append(float(balanced_accuracy_score(y, predicted)) if both else float("nan"))
        result["accuracy"].append(float((predicted == y).mean()))
        result["majority_accuracy"].append(float(max(y.mean(), 1 - y.mean())))
    return Scores(
        outputs=list(outputs),
        thresholds=[float(t) for t in thresholds],
        mean_auroc=_nanmean(result["auroc"]),
        mean_auprc=_nanmean(result["auprc"]),
        mean_balanced_accuracy=_nanmean(result["balanced_accuracy"]),
        **result,
    )
