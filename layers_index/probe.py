"""The linear probe: how well a logistic regression on a layer's frozen features separates the classes.

A probe is the cheapest honest answer to "is the information there, linearly?": standardised
features, one L2-regularised logistic regression per output fitted on the training split, AUROC on
the validation split. Positives are weighted by negatives / positives (``class_weight="balanced"``)
as the sweep's heads are, so a 1-5% finding is not ignored by the fit. AUROC itself does not depend
on a threshold or on prevalence, which is why the dictionary stores it.

Example:
    >>> result = linear_probe(features[train], y[train], features[val], y[val])
    >>> result.auroc  # mean over the outputs whose validation AUROC is defined
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

__all__ = ["ProbeResult", "linear_probe"]

C = 1.0  # scikit-learn's default inverse regularisation strength
MAX_ITER = 2000


@dataclass(frozen=True)
class ProbeResult:
    """The probe's validation predictions and AUROC; per-output values are NaN where undefined."""

    auroc: float  # mean over the outputs where it is defined, NaN if none is
    per_output: tuple[float, ...]
    predictions: np.ndarray  # (validation rows, outputs) probabilities; NaN for outputs not fitted


def _defined(y: np.ndarray) -> bool:
    return bool(y.min() != y.max())


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *, seed: int = 0) -> ProbeResult:
    """Fit one logistic regression per output on train, score AUROC on validation.

    An output whose training labels hold one class only is not fitted (no decision to learn) and
    an output whose validation labels hold one class has no AUROC; both count as NaN and are left
    out of the mean.
    """
    y_train = np.asarray(y_train).reshape(len(y_train), -1)
    y_val = np.asarray(y_val).reshape(len(y_val), -1)
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError(f"rows: x_train {len(x_train)} / y_train {len(y_train)}, x_val {len(x_val)} / y_val {len(y_val)}")
    scaler = StandardScaler().fit(np.asarray(x_train, dtype=np.float64))
    train = scaler.transform(np.asarray(x_train, dtype=np.float64))
    val = scaler.transform(np.asarray(x_val, dtype=np.float64))
    predictions = np.full(y_val.shape, np.nan)
    aurocs: list[float] = []
    for k in range(y_train.shape[1]):
        if not _defined(y_train[:, k]):
            aurocs.append(float("nan"))
            continue
        model = LogisticRegression(C=C, class_weight="balanced", max_iter=MAX_ITER, random_state=seed)
        model.fit(train, y_train[:, k].astype(int))
        predictions[:, k] = model.predict_proba(val)[:, 1]
        aurocs.append(float(roc_auc_score(y_val[:, k], predictions[:, k])) if _defined(y_val[:, k]) else float("nan"))
    finite = [a for a in aurocs if not np.isnan(a)]
    return ProbeResult(float(np.mean(finite)) if finite else float("nan"), tuple(aurocs), predictions)
