"""Youden thresholds: chosen on validation, they must not depend on the last bits of a score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from sweep.metrics import score, youden_thresholds


def _generated(seed: int, n: int = 300, outputs: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Labels at 5-30% prevalence and sigmoid-like float32 scores, many of them tied."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, outputs)) < rng.uniform(0.05, 0.3, outputs)).astype(np.float32)
    logits = rng.normal(size=(n, outputs)) + 1.5 * y
    scores = 1 / (1 + np.exp(-logits))
    scores[:, ::2] = np.round(scores[:, ::2], 2)  # ties, as saturated or quantised scores give
    return y, scores.astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_thresholds_lie_strictly_between_distinct_scores_and_still_maximise_youden(seed):
    y, p = _generated(seed)
    thresholds = youden_thresholds(y, p)
    for k, t in enumerate(thresholds):
        column = p[:, k].astype(np.float64)
        assert 0 < t < 1
        assert not np.any(column == t), f"output {k}: threshold {t} equals a score"
        fpr, tpr, _ = roc_curve(y[:, k], column)
        predicted = column >= t
        j = predicted[y[:, k] == 1].mean() - predicted[y[:, k] == 0].mean()
        assert j == pytest.approx(np.max(tpr - fpr)), f"output {k}"


@pytest.mark.parametrize("seed", range(5))
def test_nudging_every_score_by_a_relative_1e9_changes_no_thresholded_metric(seed):
    y, p = _generated(seed)
    outputs = [f"o{k}" for k in range(p.shape[1])]
    scored = score(y, p, outputs)
    rng = np.random.default_rng(seed + 100)
    p64 = p.astype(np.float64)
    for nudged in (p64 * (1 - 1e-9), p64 * (1 + 1e-9), p64 * (1 + 1e-9 * rng.choice([-1.0, 1.0], p.shape))):
        again = score(y, nudged, outputs, np.asarray(scored.thresholds))
        assert again.sensitivity == scored.sensitivity
        assert again.specificity == scored.specificity
        assert again.balanced_accuracy == scored.balanced_accuracy


def test_the_ends_one_class_and_saturated_scores():
    y = np.array([[0, 0], [0, 0], [1, 0], [1, 0]], np.float32)
    # Output 0 ranks positives lowest: the best cut predicts nothing positive. Output 1: one class.
    p = np.array([[0.9, 0.3], [0.8, 0.2], [0.2, 0.1], [0.1, 0.4]])
    assert youden_thresholds(y, p).tolist() == [pytest.approx(0.95), 0.5]
    saturated = np.array([[1.0], [1.0], [0.5], [0.4]])  # float32 sigmoid reaches 1.0 exactly
    (t,) = youden_thresholds(y[:, :1], saturated)
    assert t > 1.0  # nothing positive, even at a score of exactly 1.0
    perfect = np.array([[0.1], [0.2], [0.7], [0.9]])
    assert youden_thresholds(y[:, :1], perfect)[0] == pytest.approx(0.45)
