"""Datasets: where images, labels, patients and splits come from.

:func:`load_dataset` picks the adapter from what ``--data`` points at: an NIH ChestX-ray14 folder,
a class-folder directory, or a CSV. Without ``--data`` it loads the embedded NIH sample (638 real
images at 256 px), so ``ocl`` works with no download.
"""

from __future__ import annotations

from pathlib import Path

from sweep.data._chestxray14 import (
    LABEL_FILES,
    assign_splits,
    is_chestxray14,
    is_chestxray14_without_labels,
    load_chestxray14,
    read_labels,
)
from sweep.data._dataset import RESPLIT, SPLIT_POLICIES, SPLITS, Dataset
from sweep.data._generic import load_generic
from sweep.data._info import summarize
from sweep.data._positive import NEGATIVE_CLASS_NAMES, looks_negative
from sweep.data._split import SEEDED_FRACTIONS, check_split_policy, patient_overlap, patient_split, resplit_by_patient
from sweep.errors import OCLError

__all__ = [
    "NEGATIVE_CLASS_NAMES",
    "RESPLIT",
    "SAMPLE_DIR",
    "SEEDED_FRACTIONS",
    "SPLITS",
    "SPLIT_POLICIES",
    "Dataset",
    "assign_splits",
    "load_dataset",
    "looks_negative",
    "patient_overlap",
    "patient_split",
    "read_labels",
    "resplit_by_patient",
    "summarize",
]

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample" / "nih-cxr14"
"""The embedded sample: real NIH ChestX-ray14 images with their official labels and split lists."""

SAMPLE_NAME = "nih-cxr14-sample"


def load_dataset(
    data: Path | str | None = None,
    *,
    seed: int = 0,
    split: str = "given",
    positive: str | None = None,
) -> Dataset:
    """Load the dataset at ``data`` (default: the embedded NIH sample).

    Args:
        data: an NIH ChestX-ray14 folder, a class-folder directory or a CSV; None for the sample.
        seed: seeds every split OCL draws (same seed, same split).
        split: ``given`` keeps a split the dataset brings (NIH lists, split folders, a CSV split
            column) and warns, in one line of ``Dataset.warnings``, about patients it puts in more
            than one split; ``patient`` re-draws such a split by patient (seeded 70/10/20, the same
            images), so no patient crosses splits. Data without a split of its own is always split
            by patient, so ``patient`` changes nothing there. ``patient`` needs patient IDs.
        positive: the positive class of the default binary task (``binary:<positive>``); by
            default a two-class dataset's positive class is the one that is not normal.

    Raises:
        OCLError: when the path is missing or its contents cannot be used, ``--split patient`` meets
            data without patient IDs, or ``positive`` is not one of the classes.
        ValueError: when ``split`` is not ``given`` or ``patient``.
    """
    split = check_split_policy(split)
    options = {"seed": seed, "split": split, "positive": positive}
    if data is None:
        return load_chestxray14(SAMPLE_DIR, name=SAMPLE_NAME, **options)
    path = Path(data).expanduser()
    if not path.exists():
        raise OCLError(
            f"--data {path}: no such file or directory; pass an NIH ChestX-ray14 folder, a class-folder directory or a CSV"
        )
    if path.is_dir() and is_chestxray14(path):
        return load_chestxray14(path.resolve(), **options)
    if path.is_dir() and is_chestxray14_without_labels(path):
        raise OCLError(
            f"--data {path}: no label file; an NIH ChestX-ray14 folder needs {LABEL_FILES[0]} (or {LABEL_FILES[1]}) "
            "next to images/, so download it from NIH; for a class-folder dataset put each class in its own folder"
        )
    if path.is_file() and path.suffix.lower() != ".csv":
        raise OCLError(f"--data {path}: not a CSV file; pass a folder or a CSV with path,label columns")
    if path.is_file() and path.name.startswith("Data_Entry_2017"):
        raise OCLError(f"--data {path}: pass the folder that holds {path.name} and images/, not the CSV itself")
    return load_generic(path.resolve(), **options)
