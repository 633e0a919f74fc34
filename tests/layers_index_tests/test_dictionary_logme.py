"""LogME against a direct computation of the same evidence, and that it prefers informative features."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from layers_index._logme import logme, logme_fit, logme_per_output, one_hot_columns


def dense_evidence(features: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """log p(y | F, alpha, beta) the textbook way: posterior mean and log|A| by dense inverse and determinant."""
    n, d = features.shape
    a = alpha * np.eye(d) + beta * features.T @ features
    m = beta * np.linalg.inv(a) @ features.T @ y
    return float(
        n / 2 * np.log(beta)
        + d / 2 * np.log(alpha)
        - n / 2 * np.log(2 * np.pi)
        - beta / 2 * np.sum((features @ m - y) ** 2)
        - alpha / 2 * m @ m
        - np.linalg.slogdet(a)[1] / 2
    )


def gaussian_evidence(features: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """The same evidence as a marginal likelihood: y ~ N(0, I / beta + F F^T / alpha)."""
    n = len(y)
    return float(multivariate_normal(np.zeros(n), np.eye(n) / beta + features @ features.T / alpha).logpdf(y))


def problem(n: int, d: int, seed: int, *, signal: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, d)) * rng.uniform(0.2, 3.0, size=d)
    y = (signal * features[:, 0] + rng.normal(size=n) > 0).astype(float)
    return features, y


@pytest.mark.parametrize("n, d", [(40, 8), (60, 30), (25, 80), (50, 50), (200, 5)])
@pytest.mark.parametrize("seed", [0, 1])
def test_logme_equals_the_dense_evidence_at_its_alpha_and_beta(n, d, seed):
    features, y = problem(n, d, seed)
    (fitted,) = logme_fit(features, y)
    direct = dense_evidence(features, y, fitted.alpha, fitted.beta)
    assert fitted.value * n == pytest.approx(direct, rel=1e-9, abs=1e-8)
    assert fitted.value * n == pytest.approx(gaussian_evidence(features, y, fitted.alpha, fitted.beta), rel=1e-8)


@pytest.mark.parametrize("n, d", [(40, 8), (30, 60), (200, 5)])
def test_alpha_and_beta_maximise_the_evidence(n, d):
    """The fixed point is the evidence maximum: moving alpha or beta either way lowers the dense evidence."""
    features, y = problem(n, d, seed=3, signal=3.0)
    (fitted,) = logme_fit(features, y)
    best = dense_evidence(features, y, fitted.alpha, fitted.beta)
    for da, db in [(1.1, 1), (1 / 1.1, 1), (1, 1.1), (1, 1 / 1.1), (1.05, 1.05), (1 / 1.05, 1 / 1.05)]:
        assert dense_evidence(features, y, fitted.alpha * da, fitted.beta * db) < best


def test_rank_deficient_features_with_more_rows_than_columns():
    """Duplicated columns make F^T F singular; the evidence must still match the dense computation."""
    features, y = problem(80, 6, seed=5)
    features = np.hstack([features, features[:, :2]])
    (fitted,) = logme_fit(features, y)
    assert fitted.value * 80 == pytest.approx(gaussian_evidence(features, y, fitted.alpha, fitted.beta), rel=1e-8)


def test_a_binary_target_scores_both_one_hot_columns():
    """You et al. score one-hot targets: a 0/1 output is the columns 1 - y and y, averaged."""
    features, y = problem(60, 12, seed=6)
    (positive,) = logme_fit(features, y)
    (negative,) = logme_fit(features, 1 - y)
    assert positive.value != pytest.approx(negative.value)  # no bias term: two different regressions
    assert logme(features, y) == pytest.approx((positive.value + negative.value) / 2)
    assert logme_per_output(features, y) == pytest.approx([(positive.value + negative.value) / 2])
    np.testing.assert_array_equal(one_hot_columns(y), np.stack([1 - y, y], axis=1))


def test_several_outputs_average_every_one_hot_column():
    """Behaviour changed on purpose: each output now counts as its two one-hot columns, not as y alone."""
    features, y0 = problem(60, 12, seed=6)
    _, y1 = problem(60, 12, seed=7)
    targets = np.stack([y0, y1], axis=1)
    columns = [logme_fit(features, column)[0].value for column in (1 - y0, y0, 1 - y1, y1)]
    assert logme(features, targets) == pytest.approx(np.mean(columns))
    assert logme_per_output(features, targets) == pytest.approx([np.mean(columns[:2]), np.mean(columns[2:])])
    assert logme_per_output(features, targets)[0] == pytest.approx(logme(features, y0))
    fitted = logme_fit(features, one_hot_columns(targets))
    assert [f.value for f in fitted] == pytest.approx(columns)


def test_the_layer_with_a_planted_signal_ranks_first():
    """Layers of pure noise and one where two outputs are linear in a few channels: LogME must find it."""
    rng = np.random.default_rng(10)
    n, outputs = 400, 3
    y = (rng.random((n, outputs)) < [0.5, 0.2, 0.1]).astype(float)
    layers = {f"noise{i}": rng.normal(size=(n, 64)) * rng.uniform(0.5, 2.0, 64) for i in range(4)}
    planted = rng.normal(size=(n, 64))
    planted[:, :outputs] += 1.5 * y
    layers["signal"] = planted
    scores = {name: logme(features, y) for name, features in layers.items()}
    assert max(scores, key=scores.get) == "signal"
    for k in range(outputs):  # and per output
        per_output = {name: logme_per_output(features, y)[k] for name, features in layers.items()}
        assert max(per_output, key=per_output.get) == "signal"


def test_informative_features_rank_above_noise():
    rng = np.random.default_rng(8)
    n = 300
    y = rng.integers(0, 2, n).astype(float)
    noise = rng.normal(size=(n, 32))
    weak = noise.copy()
    weak[:, 0] += 0.5 * y
    strong = noise.copy()
    strong[:, :4] += 2.0 * y[:, None]
    assert logme(strong, y) > logme(weak, y) > logme(noise, y)


def test_unknown_labels_are_left_out_per_output():
    """NaN is an unknown label: each output is scored on the rows whose label it knows."""
    features, y0 = problem(80, 10, seed=12)
    _, y1 = problem(80, 10, seed=13)
    targets = np.stack([y0, y1], axis=1)
    targets[::7, 0] = np.nan
    targets[1::5, 1] = np.nan
    known0, known1 = ~np.isnan(targets[:, 0]), ~np.isnan(targets[:, 1])
    expected = [logme(features[known0], y0[known0]), logme(features[known1], y1[known1])]
    assert logme_per_output(features, targets) == pytest.approx(expected)
    assert logme(features, targets) == pytest.approx(np.mean(expected))
    with pytest.raises(ValueError, match="NaN"):
        logme_fit(features, targets)
    targets[y1 > 0, 1] = np.nan  # every known label negative: nothing to score
    with pytest.raises(ValueError, match="column 1 is constant"):
        logme(features, targets)


def test_bad_input_is_refused_with_the_argument_named():
    features, y = problem(20, 4, seed=9)
    with pytest.raises(ValueError, match="targets: 19 rows"):
        logme(features, y[:19])
    with pytest.raises(ValueError, match="constant"):
        logme(features, np.ones(20))
    with pytest.raises(ValueError, match="targets: expected 0/1"):
        logme(features, y * 2)
