"""LogME: how well a layer's features suit a task, without training anything.

You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer Learning" (ICML 2021)
score features by the evidence (marginal likelihood) of a Bayesian linear model that predicts the
label from them: ``y = F w + noise`` with prior ``w ~ N(0, I / alpha)`` and noise ``N(0, 1 / beta)``.
Features a linear model can use well explain the labels with small weights and little noise, so
their evidence is high. ``alpha`` and ``beta`` are the evidence maximisers, found by MacKay's
fixed-point iteration; after one SVD of ``F`` every iteration costs O(min(n, D)), so scoring all
63 candidate layers takes seconds where fitting a probe per layer takes longer.

As in the paper: raw (unstandardised) features, no bias term, one evidence per target column,
divided by the number of samples, averaged over the columns. Higher is better; values are
comparable between layers of one dataset, not between datasets.

For classification the paper's targets are one-hot: a task with C classes has C target columns,
so a binary task has two, ``1 - y`` and ``y``. Without a bias term they are not the same
regression (predicting a column of ones is a task of its own for features with no constant
direction), so their evidences differ and OCL scores both, as the paper does. A multilabel task is
K binary tasks: each output contributes its two one-hot columns, and :func:`logme` is the mean
over outputs of the mean of each output's two evidences (equivalently, the mean over all 2K
columns). :func:`logme_fit` fits the columns it is given, as regression targets, unchanged.
A NaN label is unknown (``Dataset.targets`` under U-Ignore): that output is scored on the rows
whose label it knows.

Where OCL's numbers differ from the authors' code: with more features than images (D > n, e.g.
1,024 channels of ``relu`` on 487 training images), ``F^T F`` has D - n zero eigenvalues. The
authors' default implementation (thuml/LogME, ``LogME.py``; see its issue #23) sums ``log(alpha +
beta * sigma_i)`` over the n non-zero singular values only, so it drops ``(D - n) log(alpha)`` from
the log-determinant of ``A = alpha I + beta F^T F``. OCL keeps that term (the exact evidence of the
model above, see :meth:`_Spectrum.log_evidence`), so for wide layers on small data the two differ by
``(D - n) log(alpha) / 2n`` per target column (alpha as fitted, so by a layer-dependent amount, of
either sign); with n >= D they agree.

No package implements it (``logme`` on PyPI is an unrelated logging tool), hence this module.

Example:
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, (200, 1)).astype(float)
    >>> informative = np.hstack([y + 0.1 * rng.normal(size=(200, 1)), rng.normal(size=(200, 7))])
    >>> logme(informative, y) > logme(rng.normal(size=(200, 8)), y)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Evidence", "logme", "logme_fit", "logme_per_output", "one_hot_columns"]

MAX_ITERATIONS = 100
TOLERANCE = 1e-6  # relative change of alpha / beta that counts as converged


@dataclass(frozen=True)
class Evidence:
    """The fitted model of one output column: its maximised evidence per sample and the evidence maximisers."""

    value: float  # log evidence / n
    alpha: float  # prior precision of the weights
    beta: float  # precision of the label noise
    iterations: int


class _Spectrum:
    """What every evidence evaluation needs from the features, computed once.

    Only the eigenvalues of ``F^T F`` and the projections of ``y`` onto the left singular vectors
    of ``F`` are needed. Both come from an eigendecomposition of the smaller Gram matrix
    (``F F^T`` when n <= D, else ``F^T F``), as in the authors' code: on a 487 x 1024 layer that
    is several times faster than an SVD, and with 80,000 training images it still fits in memory.
    """

    def __init__(self, features: np.ndarray) -> None:
        f = np.asarray(features, dtype=np.float64)
        if f.ndim != 2 or len(f) < 2:
            raise ValueError(f"features: expected a 2-D array with at least 2 rows, got shape {f.shape}")
        self.n, self.d = f.shape
        self.f = f
        if self.n <= self.d:
            sigma, self.u = np.linalg.eigh(f @ f.T)
            self.v = None
        else:
            sigma, self.v = np.linalg.eigh(f.T @ f)
            self.u = None
        self.sigma = np.clip(sigma, 0.0, None)  # the r = min(n, D) eigenvalues of F^T F (= squared singular values)

    def project(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """``U^T y`` and the squared norm of the part of ``y`` outside the span of the features."""
        if self.u is not None:
            z = self.u.T @ y
        else:  # u_i = F v_i / s_i; a direction with s_i ~ 0 is not in the span, so its z_i is 0
            s = np.sqrt(self.sigma)
            kept = s > s.max(initial=0.0) * max(self.n, self.d) * np.finfo(float).eps
            z = np.where(kept, (self.v.T @ (self.f.T @ y)) / np.where(kept, s, 1.0), 0.0)
        return z, max(float(y @ y - z @ z), 0.0)

    def terms(self, z: np.ndarray, outside: float, alpha: float, beta: float) -> tuple[float, float, float]:
        """Effective number of parameters gamma, ``|m|^2`` and ``|F m - y|^2`` at (alpha, beta).

        ``m = beta A^-1 F^T y`` is the posterior mean with ``A = alpha I + beta F^T F``; in the SVD
        basis both norms are sums over the singular values.
        """
        shrink = alpha + beta * self.sigma
        gamma = float(np.sum(beta * self.sigma / shrink))
        weight_norm = float(np.sum(self.sigma * (beta * z / shrink) ** 2))
        residual = float(np.sum((alpha * z / shrink) ** 2)) + outside
        return gamma, weight_norm, residual

    def log_evidence(self, z: np.ndarray, outside: float, alpha: float, beta: float) -> float:
        """log p(y | F, alpha, beta), the closed form of Bishop (3.86), not yet divided by n."""
        _, weight_norm, residual = self.terms(z, outside, alpha, beta)
        log_det_a = float(np.sum(np.log(alpha + beta * self.sigma))) + (self.d - len(self.sigma)) * np.log(alpha)
        return (
            self.n / 2 * np.log(beta)
            + self.d / 2 * np.log(alpha)
            - self.n / 2 * np.log(2 * np.pi)
            - beta / 2 * residual
            - alpha / 2 * weight_norm
            - log_det_a / 2
        )

    def fit(self, y: np.ndarray) -> Evidence:
        """Maximise the evidence over (alpha, beta) by the fixed-point updates of the paper."""
        z, outside = self.project(y)
        alpha, beta = 1.0, 1.0
        iterations = 0
        while iterations < MAX_ITERATIONS:
            iterations += 1
            gamma, weight_norm, residual = self.terms(z, outside, alpha, beta)
            new_alpha = gamma / max(weight_norm, 1e-300)
            new_beta = (self.n - gamma) / max(residual, 1e-300)
            done = abs(new_alpha - alpha) <= TOLERANCE * alpha and abs(new_beta - beta) <= TOLERANCE * beta
            alpha, beta = new_alpha, new_beta
            if done:
                break
        return Evidence(self.log_evidence(z, outside, alpha, beta) / self.n, alpha, beta, iterations)


def _targets(features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    y = np.asarray(targets, dtype=np.float64)
    y = y.reshape(len(y), -1)
    if len(y) != len(features):
        raise ValueError(f"targets: {len(y)} rows, but features has {len(features)}")
    if np.isnan(y).any():
        raise ValueError("targets: NaN (unknown) labels; logme and logme_per_output leave them out per output")
    constant = [k for k in range(y.shape[1]) if y[:, k].min() == y[:, k].max()]
    if constant:
        raise ValueError(f"targets: column {constant[0]} is constant; LogME needs both classes")
    return y


def logme_fit(features: np.ndarray, targets: np.ndarray) -> list[Evidence]:
    """The fitted evidence of every target column (``targets`` is ``(n,)`` or ``(n, columns)``), as given.

    This is the regression form: each column is one target. For 0/1 class labels use
    :func:`logme`, which scores both one-hot columns of every output.

    Raises:
        ValueError: when features and targets disagree in rows or a target column is constant
            (its evidence says nothing about the features).
    """
    y = _targets(features, targets)
    spectrum = _Spectrum(features)
    return [spectrum.fit(y[:, k]) for k in range(y.shape[1])]


def one_hot_columns(targets: np.ndarray) -> np.ndarray:
    """Each 0/1 output ``y`` as its two one-hot columns ``(1 - y, y)``: ``(n, outputs)`` to ``(n, 2 * outputs)``.

    Columns ``2k`` and ``2k + 1`` belong to output ``k``.

    Raises:
        ValueError: when a target is not 0 or 1.
    """
    y = np.asarray(targets, dtype=np.float64)
    y = y.reshape(len(y), -1)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("targets: expected 0/1 class labels for one-hot LogME")
    return np.stack([1.0 - y, y], axis=2).reshape(len(y), -1)


def logme_per_output(features: np.ndarray, targets: np.ndarray) -> list[float]:
    """Per 0/1 output, the mean of its two one-hot columns' maximised log evidence per sample.

    A NaN target is an unknown label (U-Ignore): the output is scored on the rows whose label it
    knows, and outputs that know the same rows share one decomposition of the features.

    Raises:
        ValueError: for mismatched rows, a constant output (on its known rows) or a target that is
            not 0, 1 or NaN.
    """
    y = np.asarray(targets, dtype=np.float64)
    y = y.reshape(len(y), -1)
    if len(y) != len(features):
        raise ValueError(f"targets: {len(y)} rows, but features has {len(features)}")
    known = ~np.isnan(y)
    values = np.full(y.shape[1], np.nan)
    by_rows: dict[bytes, list[int]] = {}
    for k in range(y.shape[1]):
        by_rows.setdefault(np.packbits(known[:, k]).tobytes(), []).append(k)
    for outputs in by_rows.values():
        rows = known[:, outputs[0]]
        columns = one_hot_columns(y[rows][:, outputs])
        constant = [k for k in outputs if y[rows, k].min() == y[rows, k].max()] if rows.any() else outputs
        if constant:
            raise ValueError(f"targets: column {constant[0]} is constant; LogME needs both classes")
        fitted = logme_fit(np.asarray(features)[rows], columns)
        for i, k in enumerate(outputs):
            values[k] = (fitted[2 * i].value + fitted[2 * i + 1].value) / 2
    return [float(v) for v in values]


def logme(features: np.ndarray, targets: np.ndarray) -> float:
    """LogME of ``features`` for 0/1 ``targets`` (``(n,)`` or ``(n, outputs)``), both one-hot columns per output.

    The maximised log evidence per sample of ``1 - y`` and of ``y`` for every output, averaged
    over all these columns (see the module docstring for why both).
    """
    return float(np.mean(logme_per_output(features, targets)))
