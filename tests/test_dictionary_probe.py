"""The linear probe's AUROC is scikit-learn's, on the probe's own predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from layers_index.probe import linear_probe


def data(seed: int, outputs: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 20)) * rng.uniform(0.1, 10, size=20) + rng.normal(size=20) * 5
    y = (x[:, :outputs] / x[:, :outputs].std(axis=0) + rng.normal(size=(300, outputs)) > 0.8).astype(np.float32)
    return x[:200], y[:200], x[200:], y[200:]


@pytest.mark.parametrize("outputs", [1, 3])
def test_probe_auroc_is_sklearn_roc_auc_on_its_predictions(outputs):
    x_train, y_train, x_val, y_val = data(0, outputs)
    result = linear_probe(x_train, y_train, x_val, y_val)
    per_output = [roc_auc_score(y_val[:, k], result.predictions[:, k]) for k in range(outputs)]
    assert result.per_output == pytest.approx(per_output)
    assert result.auroc == pytest.approx(np.mean(per_output))
    assert 0.6 < result.auroc <= 1.0  # the labels depend on the features: the probe must find that


def test_probe_predictions_are_a_standardised_balanced_logistic_regression():
    x_train, y_train, x_val, y_val = data(1)
    result = linear_probe(x_train, y_train, x_val, y_val)
    reference = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    reference.fit(x_train, y_train[:, 0].astype(int))
    np.testing.assert_allclose(result.predictions[:, 0], reference.predict_proba(x_val)[:, 1], rtol=1e-4, atol=1e-6)


def test_outputs_with_one_class_are_left_out_of_the_mean():
    x_train, y_train, x_val, y_val = data(2, outputs=2)
    y_val = y_val.copy()
    y_val[:, 1] = 0  # no positive validation image: AUROC undefined for output 1
    result = linear_probe(x_train, y_train, x_val, y_val)
    assert np.isnan(result.per_output[1])
    assert result.auroc == pytest.approx(roc_auc_score(y_val[:, 0], result.predictions[:, 0]))
    y_train = y_train.copy()
    y_train[:, 0] = 1  # nothing to learn for output 0: not fitted
    result = linear_probe(x_train, y_train, x_val, y_val)
    assert np.isnan(result.auroc) and np.isnan(result.predictions[:, 0]).all()
