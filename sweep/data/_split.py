"""Patient-wise splits.

ChestX-ray14 has several images per patient (follow-ups). If one patient's images land in both
train and test, the model is graded partly on a person it has already seen, and the score
overstates how it does on new patients. Every split here therefore assigns whole patients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweep.data._dataset import SPLITS

SEEDED_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}
"""Fractions of patients per split when a dataset brings no split of its own."""


def patient_split(
    patients: pd.Series,
    fractions: dict[str, float],
    seed: int,
) -> np.ndarray:
    """Assign each image the split of its patient, drawing patients in a seeded random order.

    Args:
        patients: one patient id per image.
        fractions: split name to fraction of patients, in assignment order (they must sum to 1).
        seed: the random seed; the same seed and patients always give the same split.

    Returns:
        An array of split names, one per image.
    """
    unique = np.array(sorted(patients.unique(), key=str), dtype=object)
    order = np.random.default_rng(seed).permutation(len(unique))
    shuffled = unique[order]
    bounds = np.cumsum([fractions[name] for name in fractions]) * len(unique)
    bounds = np.rint(bounds).astype(int)
    assignment: dict[object, str] = {}
    start = 0
    for name, stop in zip(fractions, bounds):
        for patient in shuffled[start:stop]:
            assignment[patient] = name
        start = stop
    return patients.map(assignment).to_numpy(dtype=object)


def patient_overlap(table: pd.DataFrame) -> dict[str, int]:
    """How many patients appear in each pair of splits, and in more than one split at all."""
    known = table[table["patient"].notna()]
    by_split = {s: set(known.loc[known["split"] == s, "patient"]) for s in SPLITS}
    pairs = {
        "train/val": len(by_split["train"] & by_split["val"]),
        "train/test": len(by_split["train"] & by_split["test"]),
        "val/test": len(by_split["val"] & by_split["test"]),
    }
    per_patient = known.groupby("patient")["split"].nunique()
    pairs["any"] = int((per_patient > 1).sum())
    return pairs
