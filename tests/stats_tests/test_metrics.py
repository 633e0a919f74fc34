"""Youden thresholds: chosen on validation, they must not depend on the last bits of a score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from sweep.stats import MIN_POSITIVES, counted_outputs, mean_auroc, score, youden_thresholds


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


def _three_positive_output(seed: int = 0, n: int = 120) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Two outputs with many positives and one (``rare``) with exactly 3, its scores far better than chance."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < 0.3).astype(np.float32)
    y[:, 2] = 0
    y[rng.choice(n, 3, replace=False), 2] = 1
    scores = 1 / (1 + np.exp(-(rng.normal(size=(n, 3)) + np.array([0.5, 0.5, 4.0]) * y)))
    return y, scores, ["common", "frequent", "rare"]


def test_an_output_with_3_positives_leaves_the_mean_and_is_named():
    y, p, outputs = _three_positive_output()
    assert y[:, 2].sum() == 3 and MIN_POSITIVES == 5
    per_output = [roc_auc_score(y[:, k], p[:, k]) for k in range(3)]
    scored = score(y, p, outputs)
    assert scored.auroc == pytest.approx(per_output)  # still reported per output
    assert scored.excluded == ["rare"] and not scored.mean_auroc_fallback and scored.min_positives == MIN_POSITIVES
    assert scored.mean_auroc == pytest.approx(np.mean(per_output[:2]))
    assert mean_auroc(y, p) == pytest.approx(np.mean(per_output[:2]))

    counted = score(y, p, outputs, min_positives=1)  # a configurable threshold: now it counts
    assert counted.excluded == [] and counted.min_positives == 1
    assert counted.mean_auroc == pytest.approx(np.mean(per_output))
    assert mean_auroc(y, p, min_positives=1) == pytest.approx(np.mean(per_output))
    assert mean_auroc(y, p, min_positives=3) == pytest.approx(np.mean(per_output))
    assert mean_auroc(y, p, min_positives=4) == pytest.approx(np.mean(per_output[:2]))


def test_few_negatives_count_as_few_positives():
    y, p, outputs = _three_positive_output(seed=1)
    flipped = 1 - y  # output 2 now has 3 negatives
    scored = score(flipped, 1 - p, outputs)
    assert scored.excluded == ["rare"]
    assert mean_auroc(flipped, 1 - p) == pytest.approx(scored.mean_auroc)


def test_outputs_without_an_auroc_are_named_too():
    y, p, outputs = _three_positive_output(seed=2)
    y[:, 1] = 0
    scored = score(y, p, outputs)
    assert np.isnan(scored.auroc[1]) and scored.excluded == ["frequent", "rare"]
    assert scored.mean_auroc == pytest.approx(roc_auc_score(y[:, 0], p[:, 0]))


def test_a_small_binary_validation_split_still_gets_a_mean_flagged_as_the_fallback():
    y, p, _ = _three_positive_output(seed=3)
    binary, scores = y[:, 2:], p[:, 2:]  # only the 3-positive output
    expected = roc_auc_score(binary[:, 0], scores[:, 0])
    scored = score(binary, scores, ["rare"])
    assert scored.mean_auroc == pytest.approx(expected) and scored.mean_auroc_fallback
    assert scored.excluded == []  # it is in the mean
    assert mean_auroc(binary, scores) == pytest.approx(expected)
    none = score(np.zeros_like(binary), scores, ["rare"])  # no AUROC anywhere: NaN, and named
    assert np.isnan(none.mean_auroc) and none.excluded == ["rare"] and not none.mean_auroc_fallback
    assert np.isnan(mean_auroc(np.zeros_like(binary), scores))


def test_the_rank_form_matches_score_at_every_threshold():
    for seed in range(5):
        y, p = _generated(seed, n=80)
        for k in (0, 1, 5, 20):
            counted, _ = counted_outputs(y, k)
            expected = np.mean([roc_auc_score(y[:, j], p[:, j]) for j in np.flatnonzero(counted)])
            assert mean_auroc(y, p, min_positives=k) == pytest.approx(expected)
            assert score(y, p, [f"o{j}" for j in range(y.shape[1])], min_positives=k).mean_auroc == pytest.approx(expected)


@pytest.mark.parametrize("bad", [-1, 2.5, "5", True, None])
def test_bad_min_positives_is_refused_with_the_argument_named(bad):
    y, p, outputs = _three_positive_output()
    for call in (lambda: mean_auroc(y, p, min_positives=bad), lambda: score(y, p, outputs, min_positives=bad)):
        with pytest.raises(ValueError, match="min_positives="):
            call()


def test_unknown_labels_are_left_out_per_output():
    """NaN is an unknown label (U-Ignore): each output is scored on the images whose label it knows."""
    y, p = _generated(7, n=200, outputs=3)
    y = y.astype(np.float64)
    unknown = np.random.default_rng(107).random(y.shape) < 0.2
    unknown[:, 0] = False
    with_nan = np.where(unknown, np.nan, y)
    outputs = ["a", "b", "c"]
    scored = score(with_nan, p, outputs)
    for k in range(3):
        known = ~unknown[:, k]
        alone = score(y[known, k : k + 1], p[known, k : k + 1], [outputs[k]])
        assert scored.auroc[k] == pytest.approx(roc_auc_score(y[known, k], p[known, k]))
        assert scored.thresholds[k] == alone.thresholds[0]
        for field in ("auprc", "sensitivity", "specificity", "balanced_accuracy", "accuracy", "majority_accuracy"):
            assert getattr(scored, field)[k] == pytest.approx(getattr(alone, field)[0]), field
    expected = np.mean([roc_auc_score(y[~unknown[:, k], k], p[~unknown[:, k], k]) for k in range(3)])
    assert mean_auroc(with_nan, p, min_positives=1) == pytest.approx(expected)
    assert scored.mean_auroc == pytest.approx(expected)
    # an output whose positives are all unknown has no AUROC; its knowns are all negative
    with_nan[y[:, 2] > 0, 2] = np.nan
    assert counted_outputs(with_nan, 1)[0].tolist() == [True, True, False]
    assert np.isnan(score(with_nan, p, outputs).auroc[2]) and score(with_nan, p, outputs).excluded == ["c"]
