"""The confidence set's step-down: never larger than the single-step max-T set, sometimes smaller."""

from __future__ import annotations

import numpy as np

from sweep.stats import confidence_set


def _single_step(estimates: np.ndarray, resampled: np.ndarray) -> np.ndarray:
    """The set before step-down: one max-T critical value over every candidate."""
    return confidence_set(estimates, resampled, step_down=False)


def test_step_down_excludes_what_one_step_cannot_once_the_clearly_worse_are_gone():
    """Six candidates: the best, a second one 2.4 standard errors behind it, four far behind. One step
    over all six needs about 2.9; after the four leave, two candidates need about 2.0."""
    rng = np.random.default_rng(0)
    estimates = np.array([0.80, 0.776, 0.60, 0.60, 0.60, 0.60])
    resampled = estimates + rng.normal(0, 0.01 / np.sqrt(2), (2000, 6))
    assert _single_step(estimates, resampled).tolist() == [True, True, False, False, False, False]
    assert confidence_set(estimates, resampled).tolist() == [True, False, False, False, False, False]


def test_step_down_never_keeps_more_than_one_step_and_always_keeps_the_best():
    for seed in range(50):
        rng = np.random.default_rng(seed)
        m = int(rng.integers(2, 8))
        estimates = 0.75 + rng.normal(0, 0.02, m)
        shared = rng.normal(0, 0.02, (500, 1))
        resampled = estimates + shared + rng.normal(0, rng.uniform(0.005, 0.02), (500, m))
        step_down, single = confidence_set(estimates, resampled), _single_step(estimates, resampled)
        assert not (step_down & ~single).any(), seed
        assert step_down[np.argmax(estimates)]
