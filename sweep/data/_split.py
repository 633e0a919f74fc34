"""Patient-wise splits, and the warnings that keep leakage from being silent.

ChestX-ray14 has several images per patient (follow-ups). If one patient's images land in both
train and test, the model is graded partly on a person it has already seen, and the score
overstates how it does on new patients. Every split OCL draws therefore assigns whole patients.

A split the dataset brings along (NIH's lists, split folders, a CSV split column) is kept as it is
by default, and every patient it puts in more than one split is counted and reported in one
warning; ``--split patient`` re-draws it by patient instead. Data without patient IDs can only be
split per image, which is reported too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sweep.data._dataset import SPLIT_POLICIES, empty_split_warnings, patient_overlap

__all__ = [
    "SEEDED_FRACTIONS",
    "patient_overlap",
    "patient_split",
    "resplit_by_patient",
    "split_keys",
    "split_warnings",
]

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


def split_keys(table: pd.DataFrame) -> pd.Series:
    """What a seeded split groups by: the patient, or the image itself when its patient is unknown."""
    return table["patient"].where(table["patient"].notna(), table["path"] if "path" in table else table["image"])


def resplit_by_patient(table: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same rows with their split re-drawn by patient (seeded 70/10/20, as for data without a split)."""
    table = table.copy()
    table["split"] = patient_split(split_keys(table), SEEDED_FRACTIONS, seed)
    return table


def _patients(count: int) -> str:
    return "1 patient appears" if count == 1 else f"{count} patients appear"


def cross_split_warning(table: pd.DataFrame, where: Path | str) -> str | None:
    """One line counting the patients that a given split puts in more than one split, or None."""
    overlap = patient_overlap(table)
    if not overlap["any"]:
        return None
    optimistic = []
    if overlap["train/val"]:
        optimistic.append("validation")
    if overlap["train/test"] or overlap["val/test"]:
        optimistic.append("test")
    return (
        f"{_patients(overlap['any'])} in more than one split (train/val {overlap['train/val']}, "
        f"train/test {overlap['train/test']}, val/test {overlap['val/test']}) of {where}; "
        f"their {' and '.join(optimistic)} scores are optimistic; pass --split patient to re-split by patient"
    )


def missing_patient_warning(table: pd.DataFrame, where: Path | str, split_source: str) -> str | None:
    """One line when some or all images have no patient ID, so their split is per image; else None."""
    unknown = int(table["patient"].isna().sum())
    if not unknown:
        return None
    if split_source == "given":
        how = "the given splits cannot be checked for patients in several splits"
    else:
        how = "the drawn split may put one patient's images in several splits"
    fix = "use a CSV with path,label,patient columns (and split, to keep your split)"
    if unknown == len(table):
        return (
            f"{where} has no patient IDs, so its splits are per image: {how}, which makes scores optimistic "
            f"if a patient has several images; {fix}"
        )
    return (
        f"{unknown} of {len(table)} images of {where} have no patient ID, so their splits are per image: "
        f"{how}, which makes scores optimistic if a patient has several images; fill in the patient column"
    )


def split_warnings(table: pd.DataFrame, where: Path | str, split_source: str) -> tuple[str, ...]:
    """Every split warning of a dataset, each one line: patients in several splits, missing patient
    IDs, empty splits. Adapters call this once, after the final split is drawn."""
    found = [
        cross_split_warning(table, where),
        missing_patient_warning(table, where, split_source),
        *empty_split_warnings(table, where, split_source),
    ]
    return tuple(w for w in found if w)


def check_split_policy(split: str) -> str:
    """``split`` as a plain string, refusing anything but ``given`` or ``patient`` (a programming error)."""
    value = getattr(split, "value", split)
    if value not in SPLIT_POLICIES:
        raise ValueError(f"split must be one of {', '.join(SPLIT_POLICIES)}, not {split!r}")
    return value
