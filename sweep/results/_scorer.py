"""How a study's candidates are scored on its validation split, under shared patient resamples.

:class:`CandidateScorer` turns each trial's stored predictions into its mean AUROC at the point and
under every bootstrap resample, once, and keeps them in the storage. Over the validation halves
(``--selection halves``), a candidate's score is cross-fitted (:func:`crossfit_score`, with the
tied trials recentred by :func:`recentre_tied`); with ``--selection inner`` it is the one model
chosen on train, scored on every validation patient. :mod:`sweep.results._answer` judges them.

Under ``--cv K`` the scores are out of fold, from K heads, and a head's scores are compared only
with its own: every AUROC is the mean of the K folds' AUROCs (cvAUC, LeDell, Petersen & van der
Laan 2015), not one AUROC over the pooled predictions. A pooled AUROC ranks a positive scored by
one head against a negative scored by another, so it moves with how the K heads' offsets and
scales happen to differ, a chance that no patient resample replays, and its truth is no one
model's AUROC: with heads whose offsets differ by SD 0.5 (binormal scale), the pooled 95% interval
covered a head's true AUROC in 77 of 100 generated studies, the fold-by-fold one in 93
(``tests/results_tests/test_cv_scores.py``).
"""

from __future__ import annotations

import functools
import hashlib
import math
import warnings
from typing import Any

import numpy as np

from sweep.stats import (
    MIN_POSITIVES,
    N_RESAMPLES,
    bootstrap_weights,
    counted_outputs,
    crossfit_outputs,
    mean_auroc_resampled,
    patient_halves,
    weighted_auroc,
)
from sweep.storage import StoredPredictions, ValidationSplit, load_predictions, load_resampled, store_resampled

__all__ = ["CandidateScorer", "crossfit_score", "recentre_tied"]


class CandidateScorer:
    """Cross-fitted scores of candidates on one study's validation split, under shared resamples.

    Built once per answer (or per dictionary update); every candidate scored with it sees the same
    halves and the same patient resamples, so their scores are paired.

    A trial's half-scores under the resamples depend only on its own predictions and on this
    scheme (split, seed, resamples, outputs), not on the other trials: each is computed once, from
    the trial's stored predictions, and, with ``storage_url`` and ``study``, kept in the storage
    (``ocl_resamples``), so the next answer, the report and every dictionary update read about
    16 KB per trial instead of its predictions. A trial's predictions are loaded only when its
    values are not stored yet.
    """

    def __init__(
        self,
        split: ValidationSplit,
        *,
        n_resamples: int = N_RESAMPLES,
        seed: int = 0,
        min_positives: int = MIN_POSITIVES,
        storage_url: str | None = None,
        study: str | None = None,
        selection: str = "halves",
        folds: np.ndarray | None = None,
    ) -> None:
        self.y = np.asarray(split.targets)
        self.patients = split.patients
        self.n_patients = len(np.unique(np.asarray(split.patients).astype(str)))
        half = patient_halves(split.patients, self.y, seed)
        self.rows = [np.flatnonzero(half == side) for side in (0, 1)]
        self.selection = selection
        fold = np.zeros(len(self.y), np.int64) if folds is None else np.asarray(folds, np.int64)
        if selection == "inner":  # one model per candidate, scored on every validation patient
            self.counted = counted_outputs(self.y.reshape(len(self.y), -1), min_positives)[0]
        else:
            self.counted = crossfit_outputs(self.y, half, min_positives)
        # per half (or the whole split under inner): the positions of each fold's images in it
        self.cells = [_fold_cells(fold[rows]) for rows in self.rows] if selection != "inner" else [_fold_cells(fold)]
        self.n_resamples, self.seed = n_resamples, seed
        self.storage_url, self.study = storage_url, study
        self.scheme = (
            f"{'single-v1' if selection == 'inner' else 'crossfit-v1'} {split.fingerprint} {_split_digest(split)} "
            f"seed={seed} resamples={n_resamples} min_positives={min_positives}"
            + ("" if folds is None else f" fold-mean={hashlib.sha256(fold.tobytes()).hexdigest()[:12]}")
        )
        self._values: dict[int, np.ndarray] = {}

    @functools.cached_property
    def _half_weights(self) -> list[np.ndarray]:
        """Per half, image-major: a column of ones (the point), then the bootstrap resamples,
        ``(images, 1 + resamples)``, the layout :func:`sweep.stats.weighted_auroc` runs in."""
        weights = bootstrap_weights(self.patients, self.n_resamples, self.seed)
        return [
            np.ascontiguousarray(np.concatenate([np.ones((1, len(rows)), np.float32), weights[:, rows]]).T) for rows in self.rows
        ]

    @functools.cached_property
    def _whole_weights(self) -> np.ndarray:
        """The whole split's point and resamples, image-major ``(images, 1 + resamples)`` (``--selection inner``)."""
        weights = bootstrap_weights(self.patients, self.n_resamples, self.seed)
        return np.ascontiguousarray(np.concatenate([np.ones((1, len(self.y)), np.float32), weights]).T)

    def trial_values(self, trial: int, predictions: StoredPredictions) -> np.ndarray:
        """One trial's mean AUROC per (choose on ``own`` / score ``crossfit``, half, point + resamples):
        shape ``(2, 2, 1 + resamples)``; NaN where a resample leaves an output undefined (strict).
        With ``--selection inner``, on the whole split: ``(1 + resamples,)``."""
        if self.selection == "inner":
            values = self._fold_mean(self.y, predictions.own, self._whole_weights, self.cells[0])
            return np.asarray(values, np.float32)
        kinds = [predictions.own] if predictions.crossfit is predictions.own else [predictions.own, predictions.crossfit]
        values = [
            np.stack(
                [
                    self._fold_mean(self.y[rows], scores[rows], weights, cells)
                    for rows, weights, cells in zip(self.rows, self._half_weights, self.cells)
                ]
            )
            for scores in kinds
        ]
        return np.stack(values * 2 if len(values) == 1 else values).astype(np.float32)

    def _fold_mean(self, y: np.ndarray, scores: np.ndarray, weights: np.ndarray, cells: list[np.ndarray]) -> np.ndarray:
        """The mean AUROC (strict) at the point and under every resample, each output's AUROC
        averaged over ``cells`` (each fold's images apart under ``--cv``; one cell of every image
        otherwise). A fold with no positive or no negative of an output leaves that output's
        average (a small study's rare finding), at the point and in every resample alike."""
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if len(cells) == 1:  # no copy of the (images, resamples) weights
                return mean_auroc_resampled(y, scores, weights, self.counted, strict=True, by_image=True)
            y, scores = y.reshape(len(y), -1), np.asarray(scores).reshape(len(y), -1)
            outputs = np.flatnonzero(self.counted)
            per_cell = {k: [] for k in outputs}
            for cell in cells:
                cell_weights = weights[cell]  # one copy per fold, shared by its outputs
                for k in outputs:
                    if (y[cell, k] == 1).any() and (y[cell, k] == 0).any():
                        per_cell[k].append(weighted_auroc(y[cell, k], scores[cell, k], cell_weights, by_image=True))
        scored = [np.mean(per_cell[k], axis=0) for k in outputs if per_cell[k]]  # no fold with both classes: left out
        return np.mean(scored, axis=0) if scored else np.full(weights.shape[1], np.nan)

    def values(self, trials: list[int], stored: dict[int, Any] | None = None) -> np.ndarray:
        """``trial_values`` of each trial, ``(trials, 2, 2, 1 + resamples)``.

        With ``stored`` (trial -> :class:`StoredPredictions`, or one array serving as both), computed
        from those predictions. Without, read from this scorer's memory, then from the storage's
        ``ocl_resamples``, and only then computed from the stored predictions and kept in both.
        """
        if stored is not None:
            return np.stack([self.trial_values(t, _as_stored(stored[t])) for t in trials])
        missing = [t for t in trials if t not in self._values]
        if missing and self.storage_url and self.study:
            self._values.update(load_resampled(self.storage_url, self.study, self.scheme, missing))
            missing = [t for t in missing if t not in self._values]
        if missing:
            if not (self.storage_url and self.study):
                raise ValueError("CandidateScorer.values needs stored= predictions, or storage_url= and study= to load them")
            loaded = load_predictions(self.storage_url, self.study, missing)
            computed = {t: self.trial_values(t, loaded[t]) for t in missing}
            self._values.update(computed)
            store_resampled(self.storage_url, self.study, self.scheme, computed)
        return np.stack([self._values[t] for t in trials])

    def score(
        self, trials: list[int], stored: dict[int, Any] | None = None, *, chosen: int | None = None
    ) -> tuple[float, np.ndarray]:
        """A candidate's score and its resampled values, from its trials' predictions.

        Cross-fitted over the halves: :func:`crossfit_score` of their :meth:`values`. With
        ``--selection inner``, the trial ``chosen`` off validation (the candidate's best on the inner
        split of train) is one fixed model: its point and resamples on the whole split, with no
        choice inside the bootstrap to correct for.
        """
        if self.selection == "inner":
            values = self.values([_chosen_trial(trials, chosen)], stored)[0]
            return float(values[0]), values[1:]
        return crossfit_score(self.values(trials, stored), self.n_patients)

    def chosen_trials(
        self, trials: list[int], stored: dict[int, Any] | None = None, *, chosen: int | None = None
    ) -> tuple[int, int]:
        """The trials the point scores on half 0 and half 1 (each chosen on the other half); with
        ``--selection inner``, ``chosen`` on both."""
        if self.selection == "inner":
            return (_chosen_trial(trials, chosen),) * 2
        values = self.values(trials, stored)
        return tuple(trials[_best_index(values[:, 0, 1 - side, 0])] for side in (0, 1))


def _fold_cells(fold: np.ndarray) -> list[np.ndarray]:
    """The positions of each fold's images (one cell of every position when there is one fold)."""
    folds = np.unique(fold)
    return [np.arange(len(fold))] if len(folds) <= 1 else [np.flatnonzero(fold == f) for f in folds]


def _chosen_trial(trials: list[int], chosen: int | None) -> int:
    if chosen is None or chosen not in trials:
        raise ValueError(f"chosen={chosen!r}: --selection inner scores the candidate's trial chosen on train, one of {trials}")
    return chosen


def _split_digest(split: ValidationSplit) -> str:
    """A short hash of the split's patients and targets: resamples made for other patient names (a
    split stored before pseudonymisation) or other labels are never reused."""
    digest = hashlib.sha256("\n".join(map(str, split.patients)).encode())
    digest.update(np.nan_to_num(np.asarray(split.targets, np.float32), nan=-1).tobytes())
    return digest.hexdigest()[:12]


def _as_stored(predictions: Any) -> StoredPredictions:
    """A trial's predictions as :class:`StoredPredictions` (one array serves as both)."""
    if isinstance(predictions, StoredPredictions):
        return predictions
    array = np.asarray(predictions)
    return StoredPredictions(array, array)


def _best_index(values: np.ndarray) -> int:
    """The index of the highest value (the first one when none is finite)."""
    return int(np.argmax(np.where(np.isfinite(values), values, -np.inf)))


def crossfit_score(values: np.ndarray, n_patients: int) -> tuple[float, np.ndarray]:
    """A candidate's cross-fitted score and its resampled values, from its trials' :meth:`CandidateScorer.values`.

    The point chooses, for each half, the trial best on the other half (each trial at the epoch
    best on that other half) and scores it on this one, at the epoch the other half chose; the
    score is the mean of the two halves.

    The resamples must reproduce how much that choice moves the score, no more and no less:

    - Holding the point's choice fixed in every resample treats the lucky choice as known: the
      resamples miss what *which* trial is chosen adds to the score, the spread of a difference
      between equal candidates came out 15% too small, and the confidence set's family-wise error
      7.5-12% instead of 5% (``benchmarks/bench_power.py --repeats 400``, rule ``fixed``).
    - Choosing again in every resample on the resampled values replays the realised gaps between
      equally good trials as if they were real (the bootstrap of a maximum is inconsistent at ties:
      Andrews 2000): the error came out at 0-1.5%, power lost to slack (rule ``every``).
    - So the trials statistically tied with each half's choice are recentred first
      (:func:`recentre_tied`), and then the choice is made again in every resample: a fair draw
      among equals, a sure one where a trial truly stands out (rule ``tied``: 4-5.5% with
      candidate-level correlation, 5.8-7% without, coverage at least 94.2%).
    """
    values = recentre_tied(values, n_patients)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample where both halves are undefined stays NaN
        combined = np.nanmean(np.stack([_chosen_on_other_half(values, side) for side in (0, 1)]), axis=0)
    return float(combined[0]), combined[1:]


def recentre_tied(values: np.ndarray, n_patients: int) -> np.ndarray:
    """``values`` (``(trials, 2 kinds, 2 halves, point + resamples)``) with the trials tied with each
    half's choice recentred in the resamples, as equally good trials' values would be.

    For the score on half ``s``, a trial is tied with the point's choice when its choosing value
    (the other half) is within ``sqrt(2 log log n)`` bootstrap standard errors of the chosen one's:
    the threshold of Hansen's (2005) test for superior predictive ability, which separates trials
    truly worse (their gap grows like sqrt(n)) from ties (it stays within a standard error) as ``n``
    grows. In the resamples, tied trials' choosing values are shifted to share one centre, so a
    resample's choice among them is a fair draw; and their scoring values (half ``s``) to the chosen
    trial's point value, so the bootstrap world's truth is the point estimate that the max-T
    centres on. Points (column 0) are never changed.
    """
    out = np.array(values, np.float64)
    kappa = math.sqrt(2 * math.log(math.log(max(n_patients, 3))))
    for side in (0, 1):
        choose = out[:, 0, 1 - side].copy()
        point = np.where(np.isfinite(choose[:, 0]), choose[:, 0], -np.inf)
        chosen = int(np.argmax(point))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a trial undefined in every resample has no spread
            spread = np.nanstd(choose[chosen, 1:] - choose[:, 1:], axis=1)
        tied = point[chosen] - point <= kappa * spread
        tied[chosen] = True
        out[tied, 0, 1 - side, 1:] += np.mean(choose[tied, 0]) - choose[tied, :1]
        out[tied, 1, side, 1:] += out[chosen, 1, side, 0] - out[tied, 1, side, :1]
    return out


def _chosen_on_other_half(values: np.ndarray, side: int) -> np.ndarray:
    """Per column (point, resamples): the ``crossfit`` value on ``side`` of the trial whose ``own``
    value is best on the other half.

    Args:
        values: ``(trials, 2 kinds, 2 halves, columns)`` from :meth:`CandidateScorer.values`.
    """
    choose = values[:, 0, 1 - side, :]
    chosen = np.argmax(np.where(np.isfinite(choose), choose, -np.inf), axis=0)
    return values[chosen, 1, side, np.arange(values.shape[3])]
