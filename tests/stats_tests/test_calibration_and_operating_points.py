"""Calibration and operating points on generated predictions where the truth is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score

from sweep.stats import (
    OPERATING_POINTS,
    apply_temperature,
    bootstrap_weights,
    choose_thresholds,
    ece,
    ece_resampled,
    fit_temperature,
    rates_at,
    reliability_curve,
)


def _risks(rng: np.random.Generator, n: int, overconfidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from true risks sigmoid(z), and a model that reports sigmoid(overconfidence * z)."""
    z = rng.normal(-1.0, 1.5, n)
    y = (rng.random(n) < expit(z)).astype(np.float32)
    return y, expit(overconfidence * z).astype(np.float32)


def test_equal_mass_ece_matches_scikit_learns_quantile_reliability_curve():
    rng = np.random.default_rng(0)
    y, p = _risks(rng, 1000, 2.0)
    frequency, mean_score = calibration_curve(y, p, n_bins=10, strategy="quantile")
    assert ece(y, p) == pytest.approx(np.mean(np.abs(frequency - mean_score)), abs=1e-9)  # 10 bins of 100
    curve = reliability_curve(y, p)
    assert curve["count"] == [100] * 10
    np.testing.assert_allclose(curve["frequency"], frequency) and np.testing.assert_allclose(curve["mean_score"], mean_score)


@pytest.mark.parametrize("overconfidence", [2.5, 0.5])
def test_temperature_fitted_on_validation_repairs_test_calibration(overconfidence):
    """An overconfident (T should be 2.5) and a timid (0.5) model over 20 seeds: the temperature is
    recovered within 15%, test ECE falls by more than half every time, to what the
    true risks themselves score, within 0.02 (ECE's noise floor at 3,000 images is 0.01-0.03), and AUROC is unchanged."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        y_val, p_val = _risks(rng, 3000, overconfidence)
        y_test, p_test = _risks(rng, 3000, overconfidence)
        truth = expit(logit(np.clip(p_test, 1e-6, 1 - 1e-6)) / overconfidence)  # the risks the labels were drawn from
        temperature = fit_temperature(y_val, p_val)
        assert temperature == pytest.approx(overconfidence, rel=0.15), seed
        calibrated = apply_temperature(p_test, temperature)
        before, after = ece(y_test, p_test), ece(y_test, calibrated)
        assert after < before / 2 and after <= ece(y_test, truth) + 0.02, (seed, before, after)
        assert roc_auc_score(y_test, calibrated) == pytest.approx(roc_auc_score(y_test, p_test), abs=1e-12)


def test_a_calibrated_model_keeps_a_temperature_near_one_and_a_small_ece_with_an_interval():
    rng = np.random.default_rng(3)
    y, p = _risks(rng, 4000, 1.0)
    assert fit_temperature(y, p) == pytest.approx(1.0, abs=0.08)
    weights = bootstrap_weights(np.arange(4000).astype(str), 500, seed=0)
    values = ece_resampled(y, p, weights)
    low, high = np.percentile(values, [2.5, 97.5])
    # ECE is a mean of absolute gaps, so resampling only adds to it: near perfect calibration the
    # whole interval sits above the point. Both stay small.
    assert ece(y, p) < 0.02 and low < high < 0.05


def test_each_operating_point_reaches_its_target_on_validation_and_is_the_best_that_does():
    rng = np.random.default_rng(7)
    y = (rng.random(2000) < 0.2).astype(np.float32)
    p = (1.2 * y + rng.normal(0, 1, 2000)).astype(np.float32)
    chosen = choose_thresholds(y, p)
    assert set(chosen) == set(OPERATING_POINTS)
    positives, negatives = p[y == 1], p[y == 0]

    def rates(t: float) -> tuple[float, float]:
        return float((positives >= t).mean()), float((negatives < t).mean())

    for target in (90, 95):
        sens, spec = rates(chosen[f"sens@spec{target}"])
        assert spec >= target / 100
        lower = np.max(p[p < chosen[f"sens@spec{target}"]])  # the next lower cut is below target
        assert rates(lower - 1e-6)[1] < target / 100
        sens, spec = rates(chosen[f"spec@sens{target}"])
        assert sens >= target / 100
    youden = chosen["youden"]
    best = max(sum(rates(t)) for t in np.unique(p))
    assert sum(rates(youden)) == pytest.approx(best, abs=1e-9)


def test_rates_at_a_threshold_count_as_a_confusion_matrix_with_intervals():
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.3).astype(np.float32)
    p = (y + rng.normal(0, 1, 500)).astype(np.float32)
    called = p >= 0.5
    tp, fp = np.sum(called & (y == 1)), np.sum(called & (y == 0))
    tn, fn = np.sum(~called & (y == 0)), np.sum(~called & (y == 1))
    result = rates_at(y, p, 0.5, bootstrap_weights(np.arange(500).astype(str), 300, seed=0))
    assert result["sensitivity"]["estimate"] == pytest.approx(tp / (tp + fn))
    assert result["specificity"]["estimate"] == pytest.approx(tn / (tn + fp))
    assert result["ppv"]["estimate"] == pytest.approx(tp / (tp + fp))
    assert result["npv"]["estimate"] == pytest.approx(tn / (tn + fn))
    for value in result.values():
        assert value["low"] <= value["estimate"] <= value["high"]
