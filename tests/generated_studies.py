"""Generated studies where the truth is known, for the answer's statistics.

Validation predictions come from a binormal model with a patient effect: image ``i`` of patient
``p`` scores ``shift * y + u_p + e_i`` (``u`` shared by every trial, as real models share which
patients are hard; ``e`` the trial's own noise). With the candidate's ``shift`` known, its true
AUROC is ``Phi(shift / sqrt(2 (s_u^2 + s_e^2)))`` for every trial of it, so any difference the
answer finds between equal candidates is an error.

:func:`write_study` stores such trials through the project's own record and prediction store, so
:func:`sweep.results.study_answer` reads them as it reads a real sweep.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass

import numpy as np
import optuna
from scipy.stats import norm

from sweep.data import DataOptions
from sweep.model import CANDIDATES, block_of
from sweep.stats import mean_auroc_point
from sweep.storage import ValidationSplit, store_predictions, store_validation
from sweep.study import SearchSpace, SweepSettings, TrialRecord, create_or_resume

S_U, S_E = 0.7, 0.7


def true_auroc(shift: float) -> float:
    return float(norm.cdf(shift / math.sqrt(2 * (S_U**2 + S_E**2))))


def shift_for(auroc: float) -> float:
    """The binormal shift whose true AUROC is ``auroc``."""
    return float(norm.ppf(auroc) * math.sqrt(2 * (S_U**2 + S_E**2)))


def validation(rng: np.random.Generator, n_patients: int, prevalence: float = 0.4, per_patient: int = 2):
    """Labels (one per patient, shared by its images), patient ids and the patient effect per image."""
    patients = np.repeat(np.arange(n_patients), per_patient)
    label = rng.random(n_patients) < prevalence
    label[:2] = [True, False]  # both classes, always
    return label[patients].astype(np.float32)[:, None], patients.astype(str), rng.normal(0, S_U, n_patients)[patients]


def predictions(rng: np.random.Generator, y: np.ndarray, effect: np.ndarray, shift: float) -> np.ndarray:
    return (shift * y[:, 0] + effect + rng.normal(0, S_E, len(y)))[:, None].astype(np.float32)


@dataclass(frozen=True)
class Design:
    """A generated validation split and its candidates' scores, by variance components on the binormal scale.

    Image ``i`` of patient ``p``, scored by trial ``t`` of candidate ``c``:
    ``shift_c * y_p + u_p + v_i + w_ci + e_ti``, where ``u`` (patient) and ``v`` (image) are shared by
    every candidate (real layers agree on which patients and images are hard), ``w`` by a
    candidate's trials (what a layer sees in an image, whatever the optimizer), and ``e`` is the
    trial's own. Every trial of a candidate then has true AUROC ``Phi(shift / sqrt(2 total_var))``.
    """

    patient_sd: float
    image_sd: float
    candidate_sd: float
    trial_sd: float
    images_per_patient: tuple[int, int]  # drawn uniformly in [low, high]
    prevalence: float

    @property
    def total_sd(self) -> float:
        return math.sqrt(self.patient_sd**2 + self.image_sd**2 + self.candidate_sd**2 + self.trial_sd**2)

    def shift_for(self, auroc: float) -> float:
        return float(norm.ppf(auroc) * math.sqrt(2) * self.total_sd)

    def validation(self, rng: np.random.Generator, n_patients: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Labels (one per patient, shared by its images), patient ids, and the shared effect ``u + v`` per image."""
        low, high = self.images_per_patient
        counts = rng.integers(low, high + 1, n_patients)
        patients = np.repeat(np.arange(n_patients), counts)
        label = rng.random(n_patients) < self.prevalence
        label[:2] = [True, False]  # both classes, always
        shared = rng.normal(0, self.patient_sd, n_patients)[patients] + rng.normal(0, self.image_sd, len(patients))
        return label[patients].astype(np.float32)[:, None], patients.astype(str), shared

    def candidate_effect(self, rng: np.random.Generator, n_images: int) -> np.ndarray:
        """``w``: what one candidate adds to each image, the same for all of its trials."""
        return rng.normal(0, self.candidate_sd, n_images)

    def trial(
        self, rng: np.random.Generator, y: np.ndarray, shared: np.ndarray, candidate: np.ndarray, shift: float
    ) -> np.ndarray:
        """One trial's validation scores, ``(images, 1)``."""
        return (shift * y[:, 0] + shared + candidate + rng.normal(0, self.trial_sd, len(y)))[:, None].astype(np.float32)

    def out_of_fold(
        self,
        rng: np.random.Generator,
        y: np.ndarray,
        shared: np.ndarray,
        candidate: np.ndarray,
        shift: float,
        fold: np.ndarray,
        fold_sd: float,
    ) -> np.ndarray:
        """One trial's pooled out-of-fold scores (``--cv K``): each fold's model adds its own offset
        ``N(0, fold_sd)`` to every image it scores (the K heads of one configuration differ), so a
        pooled AUROC would compare images scored by different heads (OCL's answer averages the
        folds' AUROCs instead, :class:`sweep.results.CandidateScorer` with ``folds``)."""
        offsets = rng.normal(0, fold_sd, int(fold.max()) + 1)
        return self.trial(rng, y, shared, candidate, shift) + offsets[fold][:, None].astype(np.float32)

    def pooled_auroc(self, auroc: float, folds: int, fold_sd: float) -> float:
        """The true pooled out-of-fold AUROC of a trial whose single-head AUROC is ``auroc``, over
        folds of equal size: a positive-negative pair from one fold (probability ``1 / folds``)
        compares under one head, a pair from two folds also carries the heads' offset difference."""
        shift, var = self.shift_for(auroc), 2 * self.total_sd**2
        apart = float(norm.cdf(shift / math.sqrt(var + 2 * fold_sd**2)))
        return auroc / folds + apart * (1 - 1 / folds)


INDEPENDENT = Design(S_U, 0.0, 0.0, S_E, (2, 2), 0.4)
"""The design the tests above use: a patient effect, and trials otherwise independent (2 images per patient, 40% positive)."""
CORRELATED = Design(0.6, 0.4, 0.4, 0.3, (1, 3), 0.3)
"""Closer to real layers (issue 27): trials of one candidate share its effect, 1-3 images per patient, 30% positive."""


def write_study(url: str, name: str, y: np.ndarray, patients: np.ndarray, trials: dict, seed: int = 0):
    """A finished study whose trials at each candidate predicted these validation scores.

    ``trials`` maps a layer (feature extraction) or a ``(strategy, layer)`` pair to its trials'
    predictions: one array each, or an ``(own, crossfit)`` pair (each patient half at the epoch
    best on it, and at the other half's best epoch).
    """
    keys = [key if isinstance(key, tuple) else ("feature_extraction", key) for key in trials]
    strategies = tuple(dict.fromkeys(strategy for strategy, _ in keys))
    layers = tuple(dict.fromkeys(layer for _, layer in keys))
    space = SearchSpace(strategies=strategies, cut_layers=layers, weights=("none",), pruner="none")
    settings = SweepSettings(DataOptions(task="any", seed=seed), "generated", 32, space)
    storage = optuna.storages.RDBStorage(url)
    study = create_or_resume(storage, name, settings, target=sum(map(len, trials.values())))
    outputs = ("finding",) if y.shape[1] == 1 else tuple(f"finding_{k}" for k in range(y.shape[1]))
    store_validation(url, name, ValidationSplit(outputs, y, patients, "generated"))
    for key, scores in zip(keys, trials.values()):
        for p in scores:
            add_trial(study, url, y, key, p)
    return study


def add_trial(study: optuna.Study, url: str, y: np.ndarray, key: tuple[str, str], p) -> optuna.trial.FrozenTrial:
    """One completed trial of candidate ``key`` (strategy, layer) that predicted ``p`` (an array, or
    an ``(own, crossfit)`` pair), written as a worker writes it: record, predictions, value."""
    strategy, layer = key
    own, crossfit = p if isinstance(p, tuple) else (p, None)
    trial = study.ask()
    value = mean_auroc_point(y, own)
    record = TrialRecord(
        strategy=strategy,
        cut_layer=layer,
        weights="none",
        layer_depth=CANDIDATES.index(layer),
        layer_index=10 + CANDIDATES.index(layer),
        block=block_of(layer),
        channels=256,
        stride=8,
        flops_fraction=(CANDIDATES.index(layer) + 1) / len(CANDIDATES),  # deeper costs more
        params=1000 * (CANDIDATES.index(layer) + 1),
        unfreeze_from=None,
        augment=False,
        epochs_budget=10,
        task="any",
        dataset="generated",
        device="cpu:0",
        host=socket.gethostname(),
        pid=os.getpid(),
        val_mean_auroc=value,
    )
    for name, attr in record.to_user_attrs().items():
        trial.set_user_attr(name, attr)
    store_predictions(url, study.study_name, trial.number, own, crossfit)
    study.tell(trial, value)
    return study.trials[trial.number]
