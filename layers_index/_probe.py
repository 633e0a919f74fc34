"""The linear probe: how well a logistic regression on a layer's frozen features separates the classes.

A probe is the cheapest honest answer to "is the information there, linearly?": standardised
features, one L2-regularised logistic regression per output fitted on the training split, AUROC on
the validation split. Positives are weighted by negatives / positives (``class_weight="balanced"``)
as the sweep's heads are, so a 1-5% finding is not ignored by the fit. AUROC itself does not depend
on a threshold or on prevalence, which is why the dictionary stores it.

The regularisation strength ``C`` is chosen per output by patient-wise K-fold cross-validation
inside the training rows (:func:`patient_folds`: ``StratifiedGroupKFold``, so no patient is on
both sides of a fold and every fold holds positives), as the grid value with the highest mean
held-out-fold AUROC (the smaller C on a tie); the model is then refitted on all training rows with
that C. Validation rows are used for nothing but the final AUROC: choosing C on them would make
the probe's validation AUROC the maximum of several noisy scores, biased upward (Cawley & Talbot,
JMLR 2010). The scaler is fitted on all training rows (features only, no labels) and shared by
the folds. An output with fewer than two positive or two negative patients in train cannot be
cross-validated and gets scikit-learn's default ``C = 1`` (its ``cv_auroc`` is NaN).

The fits are those of scikit-learn's ``LogisticRegression(C=C, class_weight="balanced")`` (the
same objective, minimised to a tighter tolerance; a test checks the predictions against it), done
here because the build fits 31 models per output (6 values of C on 5 folds, and the refit) for
each of 63 layers, and scikit-learn's L-BFGS needs about 5 times as long. An L2-penalised linear
model's weights lie in the span of its training rows, so every fit runs in the coordinates of the
training rows' principal axes (one eigendecomposition per layer, at most ``min(rows, channels)``
of them), where the data term's curvature is nearly diagonal: L-BFGS preconditioned by it, and
warm-started along the C grid, needs a fraction of the iterations.

Example:
    >>> result = linear_probe(features[train], y[train], features[val], y[val], groups=patients[train])
    >>> result.auroc, result.c  # mean over the outputs whose validation AUROC is defined; C per output
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

__all__ = ["CS", "DEFAULT_C", "FOLDS", "Folds", "ProbeResult", "linear_probe", "patient_folds", "patient_ids"]

CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
"""The grid of inverse regularisation strengths the folds choose from (ascending)."""
DEFAULT_C = 1.0  # scikit-learn's default, for an output too rare to cross-validate
FOLDS = 5
# L-BFGS stops when no component of the preconditioned gradient of the mean weighted loss exceeds
# this: loose enough for ranking held-out rows in the CV fits (in float32, whose gradients are good
# to about 1e-7; measured on a 7,000 x 608 layer: the same C for all 14 outputs as 1e-8 in float64,
# held-out AUROCs within 1.2e-4, 2.4 times faster), tight for the refit whose predictions are kept.
GTOL_CV = 1e-6
GTOL_REFIT = 1e-11
MAX_ITER = 5000

Folds = list[tuple[np.ndarray, np.ndarray]]
"""(fit rows, held-out rows) pairs: positions in the training rows."""


@dataclass(frozen=True)
class ProbeResult:
    """The probe's validation predictions and AUROC; per-output values are NaN where undefined."""

    auroc: float  # mean over the outputs where it is defined, NaN if none is
    per_output: tuple[float, ...]
    predictions: np.ndarray  # (validation rows, outputs) probabilities; NaN for outputs not fitted
    c: tuple[float, ...] = ()  # the chosen C per output; NaN for outputs not fitted
    cv_auroc: tuple[float, ...] = ()  # mean held-out-fold AUROC at that C; NaN when not cross-validated


def _defined(y: np.ndarray) -> bool:
    return bool(y.min() != y.max())


def patient_ids(groups: Sequence | np.ndarray | None, n: int) -> np.ndarray:
    """Integer patient ids; an unknown patient (None or NaN) is a patient of its own."""
    if groups is None:
        return np.arange(n)
    values = pd.Series(np.asarray(groups, dtype=object))
    if len(values) != n:
        raise ValueError(f"groups: {len(values)} entries for {n} training rows")
    codes, _ = pd.factorize(values)  # -1 where unknown
    unknown = codes < 0
    codes[unknown] = codes.max(initial=-1) + 1 + np.arange(unknown.sum())
    return codes


def patient_folds(
    y_train: np.ndarray, groups: Sequence | np.ndarray | None = None, *, n_splits: int = FOLDS, seed: int = 0
) -> list[Folds]:
    """Per output, patient-wise stratified folds of the training rows (empty when it cannot be cross-validated).

    ``StratifiedGroupKFold`` (shuffled with ``seed``) keeps each patient's images in one fold and
    spreads the positives over the folds. An output gets ``min(n_splits, positive patients,
    negative patients)`` folds, and none when that is below 2. ``groups`` are patient ids
    (``None`` entries, or ``groups=None``, make each image its own patient). Rows whose label is
    NaN (unknown) are in no fold of that output.

    Raises:
        ValueError: for ``n_splits`` below 2 or ``groups`` of the wrong length.
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer) or n_splits < 2:
        raise ValueError(f"n_splits={n_splits!r}: expected an integer of at least 2")
    labels = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
    ids = patient_ids(groups, len(labels))
    result: list[Folds] = []
    for k in range(labels.shape[1]):
        rows = np.flatnonzero(~np.isnan(labels[:, k]))
        y, patients = labels[rows, k] > 0, ids[rows]
        splits = min(int(n_splits), len(np.unique(patients[y])), len(np.unique(patients[~y])))
        if splits < 2:
            result.append([])
            continue
        splitter = StratifiedGroupKFold(splits, shuffle=True, random_state=seed)
        result.append([(rows[fit], rows[held]) for fit, held in splitter.split(np.zeros(len(rows)), y, patients)])
    return result


def _fast_auroc(y: np.ndarray, scores: np.ndarray) -> float:
    """AUROC by the rank sum (ties count half, as ``roc_auc_score``); NaN with one class."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    return float((rankdata(scores)[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


class _Basis:
    """The standardised training rows in the coordinates of their principal axes.

    ``z = A V`` with ``V`` an orthonormal basis of the rows' span, ``z^T z`` diagonal (``lam``).
    Every L2-penalised linear fit on any subset of these rows has its weights in that span, so
    fitting on ``z`` and predicting ``x V`` gives the same predictions as fitting on ``A``.
    """

    def __init__(self, a: np.ndarray) -> None:
        n, d = a.shape
        if n <= d:
            lam, u = np.linalg.eigh(a @ a.T)
        else:
            lam, u = np.linalg.eigh(a.T @ a)
        keep = lam > max(lam.max(initial=0.0), 0.0) * max(n, d) * np.finfo(float).eps
        keep &= lam > 0
        self.lam = lam[keep]
        if n <= d:
            self.z = u[:, keep] * np.sqrt(self.lam)
            self.v = (a.T @ u[:, keep]) / np.sqrt(self.lam)
        else:
            self.v = u[:, keep]
            self.z = a @ self.v

    def project(self, x: np.ndarray) -> np.ndarray:
        return x @ self.v


def _fit(
    z: np.ndarray, y: np.ndarray, c: float, curvature: np.ndarray, start: np.ndarray | None, gtol: float, dtype=np.float64
) -> np.ndarray:
    """Weights and intercept of the balanced L2 logistic regression ``LogisticRegression(C=c, class_weight="balanced")``.

    Minimises ``sum_i s_i log-loss_i + |w|^2 / (2 c)`` (divided by ``sum_i s_i``), with
    ``s_i = n / (2 n_class(i))``, by L-BFGS in variables scaled by the square root of the
    approximate diagonal curvature (``curvature / 4 + 1 / c`` for the weights, ``n / 4`` for the
    intercept). ``dtype`` is that of the two matrix products per evaluation, which are all of the
    cost and memory-bound: ``float32`` halves it, and is precise enough for the CV fits, whose
    weights only rank held-out rows (the refit, whose predictions are kept, stays in float64).
    """
    n = len(y)
    positives = float(y.sum())
    # Balanced weights n / (2 n_class) sum to n; divided by n the objective is the mean weighted loss.
    s = np.where(y, 1 / (2 * positives), 1 / (2 * (n - positives)))
    target = y.astype(np.float64)
    scale = np.sqrt(np.append(curvature / 4 + 1.0 / c, n / 4))
    # In the scaled variables v = theta * scale the logits are ([z, 1] / scale) @ v and the penalty
    # |w|^2 / (2 c n) is sum(penalty * v^2) / 2: precomputed, each evaluation is two products.
    scaled = (np.hstack([z, np.ones((n, 1))]) / scale).astype(dtype, copy=False)
    penalty = np.append(1.0 / (c * n * scale[:-1] ** 2), 0.0)

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        t = (scaled @ v.astype(dtype, copy=False)).astype(np.float64, copy=False)
        residual = s * (expit(t) - target)
        loss = float(s @ (np.logaddexp(0.0, t) - target * t) + 0.5 * (penalty @ (v * v)))
        return loss, (scaled.T @ residual.astype(dtype, copy=False)).astype(np.float64, copy=False) + penalty * v

    x0 = np.zeros(z.shape[1] + 1) if start is None else start * scale
    fitted = minimize(objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITER, "gtol": gtol, "ftol": 1e-15})
    return fitted.x / scale


def _curvature(z: np.ndarray) -> np.ndarray:
    """The diagonal of ``z^T z``: exactly the eigenvalues for all training rows, nearly for a subset."""
    return np.einsum("ij,ij->j", z, z)


def _choose_c(z: np.ndarray, y: np.ndarray, folds: Folds, cs: Sequence[float]) -> tuple[float, float]:
    """The grid value with the highest mean held-out AUROC over the folds, and that mean."""
    totals, counts = np.zeros(len(cs)), np.zeros(len(cs))
    for fit_rows, held in folds:
        y_fit, y_held = y[fit_rows], y[held]
        if not _defined(y_fit) or not _defined(y_held):  # a fold without both classes says nothing
            continue
        z_fit, z_held = z[fit_rows], z[held]
        curvature = _curvature(z_fit)
        theta = None
        for j, c in enumerate(cs):
            theta = _fit(z_fit, y_fit, c, curvature, theta, GTOL_CV, np.float32)
            totals[j] += _fast_auroc(y_held, z_held @ theta[:-1] + theta[-1])
            counts[j] += 1
    if not counts.any():
        return DEFAULT_C, float("nan")
    means = totals / np.maximum(counts, 1)
    best = int(np.argmax(means))  # the first maximum: the smallest such C
    return float(cs[best]), float(means[best])


def _probe_output(
    basis: _Basis, val: np.ndarray, y_train: np.ndarray, y_val: np.ndarray, folds: Folds, cs: Sequence[float]
) -> tuple[np.ndarray | None, float, float, float]:
    """One output's probe: (validation predictions, AUROC, chosen C, CV AUROC); None and NaNs when it cannot be fitted."""
    rows = ~np.isnan(y_train)
    y = y_train[rows] > 0
    if not rows.any() or not _defined(y):
        return None, float("nan"), float("nan"), float("nan")
    c, cv_auroc = _choose_c(basis.z, y_train > 0, folds, cs)
    z = basis.z if rows.all() else basis.z[rows]
    theta = _fit(z, y, c, basis.lam if rows.all() else _curvature(z), None, GTOL_REFIT)
    predicted = expit(val @ theta[:-1] + theta[-1])
    known = ~np.isnan(y_val)
    defined = known.any() and _defined(y_val[known])
    auroc = float(roc_auc_score(y_val[known], predicted[known])) if defined else float("nan")
    return predicted, auroc, c, cv_auroc


def _probe_outputs(
    basis: _Basis,
    val: np.ndarray,
    y_train: np.ndarray,
    y_val: np.ndarray,
    folds: list[Folds],
    cs: Sequence[float],
    n_jobs: int | None,
) -> tuple[np.ndarray, list[float], list[float], list[float]]:
    """Every output's probe, ``n_jobs`` outputs at once in threads: (validation predictions, AUROCs, Cs, CV AUROCs)."""
    predictions = np.full(y_val.shape, np.nan)
    aurocs: list[float] = []
    chosen: list[float] = []
    cv: list[float] = []
    workers = max(1, min(y_train.shape[1], n_jobs or os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        fitted = pool.map(lambda k: _probe_output(basis, val, y_train[:, k], y_val[:, k], folds[k], cs), range(y_train.shape[1]))
        for k, (predicted, auroc, c, cv_auroc) in enumerate(fitted):
            if predicted is not None:
                predictions[:, k] = predicted
            aurocs.append(auroc)
            chosen.append(c)
            cv.append(cv_auroc)
    return predictions, aurocs, chosen, cv


def linear_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    groups: Sequence | np.ndarray | None = None,
    folds: list[Folds] | None = None,
    cs: Sequence[float] = CS,
    seed: int = 0,
    n_jobs: int | None = None,
) -> ProbeResult:
    """Per output, choose C by patient-wise CV on train, refit on all of train, score AUROC on validation.

    Args:
        x_train, y_train: training features and 0/1 targets (``(n,)`` or ``(n, outputs)``).
        x_val, y_val: validation features and targets; used only for the final AUROC.
        groups: patient id of every training row (``None``, or ``None`` entries: one patient per image).
        folds: :func:`patient_folds` of these training rows, when the caller reuses them across layers.
        cs: the grid of C values.
        seed: shuffles the folds (when ``folds`` is not given).
        n_jobs: outputs fitted at once, in threads (default: one per CPU). Each output's fits are
            independent and their matrix products release the GIL, so with one BLAS thread per
            fit the outputs spread over the cores; the results do not depend on it.

    An output whose training labels hold one class only is not fitted (no decision to learn) and
    an output whose validation labels hold one class has no AUROC; both count as NaN and are left
    out of the mean. A NaN label is unknown: that row is left out of that output's folds, fit and
    AUROC (it still gets a prediction).

    Raises:
        ValueError: for mismatched rows, a bad grid or folds of another number of outputs.
    """
    y_train = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
    y_val = np.asarray(y_val, dtype=np.float64).reshape(len(y_val), -1)
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError(f"rows: x_train {len(x_train)} / y_train {len(y_train)}, x_val {len(x_val)} / y_val {len(y_val)}")
    cs = tuple(float(c) for c in cs)
    if not cs or any(not np.isfinite(c) or c <= 0 for c in cs) or list(cs) != sorted(set(cs)):
        raise ValueError(f"cs={cs!r}: expected distinct positive values in ascending order")
    if folds is None:
        folds = patient_folds(y_train, groups, seed=seed)
    elif len(folds) != y_train.shape[1]:
        raise ValueError(f"folds: {len(folds)} outputs, but y_train has {y_train.shape[1]}")
    scaler = StandardScaler().fit(np.asarray(x_train, dtype=np.float64))
    train = scaler.transform(np.asarray(x_train, dtype=np.float64))
    basis = _Basis(train)
    val = basis.project(scaler.transform(np.asarray(x_val, dtype=np.float64)))
    predictions, aurocs, chosen, cv = _probe_outputs(basis, val, y_train, y_val, folds, cs, n_jobs)
    finite = [a for a in aurocs if not np.isnan(a)]
    return ProbeResult(float(np.mean(finite)) if finite else float("nan"), tuple(aurocs), predictions, tuple(chosen), tuple(cv))
