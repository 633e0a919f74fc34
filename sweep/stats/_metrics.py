"""Metrics that mean something at 1-5% prevalence (all from scikit-learn).

AUROC (per output and mean) is what the sweep optimises: it does not depend on a threshold or on
prevalence. Thresholded metrics use one threshold per output chosen on the validation split by
Youden's J (sensitivity + specificity - 1), then applied unchanged to whatever split is scored,
so the test split never tunes anything. Accuracy is only ever reported beside the accuracy of
always predicting the majority class.

An AUROC from a handful of positives is mostly noise (Hanley & McNeil 1982: its standard error
grows as the positives or the negatives become few), and one such output can move a mean over
a few outputs more than any real difference between layers. So the mean AUROC counts only the
outputs with at least ``min_positives`` (default :data:`MIN_POSITIVES`) positives and as many
negatives on the scored split; the rank-based AUROC is symmetric in the two classes, so a class
with 3 negatives is as noisy as one with 3 positives. Per-output AUROC is still reported for every
output, and :class:`Scores` names the outputs left out of the mean. When no output reaches the
threshold (a binary task on a small validation split), the mean falls back to every output whose
AUROC is defined, and says so (``Scores.mean_auroc_fallback``): a task whose AUROC is defined
always gets a number, never NaN.

A NaN label means unknown (``Dataset.targets`` under U-Ignore): every metric leaves that image
out for that output only, so each output is scored on the images whose label it knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score, roc_curve

__all__ = ["MIN_POSITIVES", "Scores", "counted_outputs", "mean_auroc", "score", "youden_thresholds"]

MIN_POSITIVES = 5
"""Fewest positives (and negatives) on the scored split for an output to count in the mean AUROC."""


def _auroc(y: np.ndarray, p: np.ndarray) -> float:
    """AUROC, or NaN when only one class is present (it is undefined then, not 0.5)."""
    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, p))


def _check_min_positives(min_positives: int) -> int:
    if isinstance(min_positives, bool) or not isinstance(min_positives, int | np.integer) or min_positives < 0:
        raise ValueError(f"min_positives={min_positives!r}: expected a non-negative integer")
    return int(min_positives)


def counted_outputs(y_true: np.ndarray, min_positives: int = MIN_POSITIVES) -> tuple[np.ndarray, bool]:
    """Which outputs the mean AUROC counts, and whether that is the fallback.

    An output counts when its labels hold at least ``min_positives`` positives and at least
    ``min_positives`` negatives. When none does, every output whose AUROC is defined (both
    classes present) counts instead and the second value is True. ``min_positives`` 0 or 1
    counts every output whose AUROC is defined.

    Returns:
        A boolean mask over the outputs (all False when no AUROC is defined), and the fallback flag.

    Raises:
        ValueError: when ``min_positives`` is not a non-negative integer.
    """
    min_positives = _check_min_positives(min_positives)
    labels = np.asarray(y_true, dtype=np.float64)
    labels = labels.reshape(len(labels), -1)
    positives = (labels > 0).sum(axis=0)
    negatives = (labels <= 0).sum(axis=0)  # NaN (unknown) is neither
    defined = (positives > 0) & (negatives > 0)
    counted = defined & (positives >= min_positives) & (negatives >= min_positives)
    if counted.any() or not defined.any():
        return counted, False
    return defined, True


def mean_auroc(y_true: np.ndarray, scores: np.ndarray, *, min_positives: int = MIN_POSITIVES) -> float:
    """Mean AUROC over the outputs :func:`counted_outputs` counts (NaN if no AUROC is defined).

    This runs after every epoch of every trial, so it uses the rank-sum (Mann-Whitney) form of
    AUROC for all outputs at once, with tied scores counted half as sklearn does; it equals
    ``roc_auc_score`` (a test checks it) at a fraction of its per-call cost. Images whose label
    is NaN (unknown) are left out of that output's AUROC.
    """
    labels = np.asarray(y_true, dtype=np.float64)
    labels = labels.reshape(len(labels), -1)
    counted, _ = counted_outputs(labels, min_positives)
    if not counted.any():
        return float("nan")
    labels = labels[:, counted]
    p = np.asarray(scores, dtype=np.float64).reshape(len(labels), -1)[:, counted]
    known = ~np.isnan(labels)
    if known.all():
        return float(np.mean(_rank_auroc(labels > 0, rankdata(p, axis=0))))
    return float(np.mean([_rank_auroc(labels[m, k] > 0, rankdata(p[m, k])) for k, m in enumerate(known.T)]))


def _rank_auroc(y: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUROC of each column from its 0/1 labels and the ranks of its scores."""
    positives = y.sum(axis=0)
    negatives = len(y) - positives
    return ((ranks * y).sum(axis=0) - positives * (positives + 1) / 2) / (positives * negatives)


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
    threshold lies between the highest score and 1. Outputs with one class only get 0.5. Images
    whose label is NaN (unknown) are left out of that output.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(y_true, dtype=np.float64)
    thresholds = np.full(labels.shape[1], 0.5)
    for k in range(labels.shape[1]):
        known = ~np.isnan(labels[:, k])
        y, p = labels[known, k], scores[known, k]
        if len(y) == 0 or y.min() == y.max():
            continue
        fpr, tpr, cut = roc_curve(y, p)
        best = int(np.argmax(tpr - fpr))
        distinct = np.unique(p)
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
    """Metrics of one split; per-output lists follow ``outputs``.

    ``mean_auroc`` counts the outputs :func:`counted_outputs` counts; ``excluded`` names the
    others (too few positives or negatives, or AUROC undefined), in output order, and
    ``mean_auroc_fallback`` is True when no output had ``min_positives`` of each class, so the
    mean is over every output whose AUROC is defined. ``mean_auprc`` and
    ``mean_balanced_accuracy`` are means over every output where they are defined.
    """

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
    excluded: list[str] = field(default_factory=list)
    min_positives: int = MIN_POSITIVES
    mean_auroc_fallback: bool = False

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


def score(
    y_true: np.ndarray,
    scores: np.ndarray,
    outputs: Sequence[str],
    thresholds: np.ndarray | None = None,
    *,
    min_positives: int = MIN_POSITIVES,
) -> Scores:
    """Score predictions; ``thresholds`` default to Youden's J on these same labels (use that for val).

    ``min_positives``: see :func:`counted_outputs`; the mean AUROC counts only those outputs.
    """
    y_true = np.asarray(y_true)
    outputs = list(outputs)
    if len(outputs) != y_true.shape[1]:
        raise ValueError(f"outputs: {len(outputs)} names for {y_true.shape[1]} label columns")
    counted, fallback = counted_outputs(y_true, min_positives)
    scores = np.asarray(scores, dtype=np.float64)
    if thresholds is None:
        thresholds = youden_thresholds(y_true, scores)
    result: dict[str, list[float]] = {
        k: [] for k in ("auroc", "auprc", "sensitivity", "specificity", "balanced_accuracy", "accuracy", "majority_accuracy")
    }
    for k in range(y_true.shape[1]):
        known = ~np.isnan(np.asarray(y_true[:, k], dtype=np.float64))  # unknown labels: left out of this output
        y, p = y_true[known, k].astype(int), scores[known, k]
        if len(y) == 0:
            for values in result.values():
                values.append(float("nan"))
            continue
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
        outputs=outputs,
        thresholds=[float(t) for t in thresholds],
        mean_auroc=_nanmean([a for a, kept in zip(result["auroc"], counted) if kept]),
        mean_auprc=_nanmean(result["auprc"]),
        mean_balanced_accuracy=_nanmean(result["balanced_accuracy"]),
        excluded=[name for name, kept in zip(outputs, counted) if not kept],
        min_positives=int(min_positives),
        mean_auroc_fallback=fallback,
        **result,
    )
