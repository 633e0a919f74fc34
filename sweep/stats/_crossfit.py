"""The two patient halves every validation choice is cross-fitted over, and what each half counts.

A choice made on validation data (a candidate's trial, a trial's epoch) and the score reported for
it must not see the same patients, or the score carries the luck of the choice. OCL splits the
validation patients once per study into two halves: whatever is chosen on one half is scored on
the other. The trainer (which epoch to keep) and the answer (which trial of a candidate to score)
use these same halves, computed from the validation split and the study's seed alone, so a worker
and a later reader of the storage agree on them without storing them.
"""

from __future__ import annotations

import numpy as np

from sweep.stats._metrics import MIN_POSITIVES, counted_outputs

__all__ = ["crossfit_outputs", "patient_folds", "patient_groups", "patient_halves"]


def patient_folds(patients: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of each image for ``--cv k``: whole patients to one fold, drawn by a seeded
    permutation of the sorted patient ids, so a worker and a reader of the storage draw the same folds."""
    unique, patient_of_image = np.unique(np.asarray(patients), return_inverse=True)
    return (np.random.default_rng(seed).permutation(len(unique)) % k)[patient_of_image]


def patient_halves(patients: np.ndarray, targets: np.ndarray, seed: int) -> np.ndarray:
    """A seeded patient-wise split of the validation images into two halves (0/1 per image),
    stratified by label, so that a rare finding's positive patients are shared out evenly.

    Unstratified, a finding with 6 positive patients lands 6-0 in one split of every 32, leaving its
    AUROC undefined in a half. :func:`patient_groups` with 2 groups: within each stratum (the
    rarest output a patient is positive for, or none), every output's positives for which it is the
    rarest differ by at most one between the halves, and the halves by at most one patient per stratum.
    """
    return patient_groups(patients, targets, 2, seed)


def patient_groups(patients: np.ndarray, targets: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A seeded patient-wise split of images into ``k`` groups (0..k-1 per image), stratified by label.

    Each patient's stratum is the rarest output it is positive for (or none); within a stratum,
    patients are dealt to the groups in turn in a seeded order, from a seeded first group, so the
    groups differ by at most one patient per stratum. ``--selection inner`` holds group 0 of the
    training patients out to choose on (:meth:`sweep.study.StudyResources.inner_split`); with
    ``k=2`` these are the validation halves, drawn exactly as they always were.
    """
    unique, patient_of_image = np.unique(np.asarray(patients).astype(str), return_inverse=True)
    y = np.asarray(targets, np.float64).reshape(len(patient_of_image), -1)
    positive = np.zeros((len(unique), y.shape[1]), bool)
    np.logical_or.at(positive, patient_of_image, y > 0)  # NaN (unknown) is not positive
    rarest_first = np.argsort(positive.sum(axis=0), kind="stable")
    ranked = positive[:, rarest_first]
    stratum = np.where(ranked.any(axis=1), ranked.argmax(axis=1), y.shape[1])
    rng = np.random.default_rng(seed)
    group = np.zeros(len(unique), np.int64)
    for value in np.unique(stratum):
        members = rng.permutation(np.flatnonzero(stratum == value))
        group[members] = (np.arange(len(members)) + rng.integers(k)) % k
    return group[patient_of_image]


def crossfit_outputs(targets: np.ndarray, halves: np.ndarray, min_positives: int = MIN_POSITIVES) -> np.ndarray:
    """The outputs a cross-fitted mean AUROC averages: those the mean counts on the whole split
    (:func:`~sweep.stats._metrics.counted_outputs`) whose AUROC is defined in each half.

    Both halves, every resample and every epoch choice then average the same outputs: a mean over
    fewer outputs is another quantity, not a noisier one.
    """
    y = np.asarray(targets, np.float64)
    y = y.reshape(len(y), -1)
    counted, _ = counted_outputs(y, min_positives)
    for side in (0, 1):
        rows = y[np.asarray(halves) == side]
        counted = counted & (rows == 1).any(axis=0) & (rows == 0).any(axis=0)
    return counted
