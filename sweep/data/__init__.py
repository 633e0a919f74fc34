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
from sweep.data._dataset import SPLITS, Dataset
from sweep.data._generic import load_generic
from sweep.data._info import summarize
from sweep.data._split import patient_overlap, patient_split
from sweep.errors import OCLError

__all__ = [
    "SAMPLE_DIR",
    "SPLITS",
    "Dataset",
    "assign_splits",
    "load_dataset",
    "patient_overlap",
    "patient_split",
    "read_labels",
    "summarize",
]

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample" / "nih-cxr14"
"""The embedded sample: real NIH ChestX-ray14 images with their official labels and split lists."""

SAMPLE_NAME = "nih-cxr14-sample"


def load_dataset(data: Path | str | None = None, *, seed: int = 0) -> Dataset:
    """Load the dataset at ``data`` (default: the embedded NIH sample).

    Raises:
        OCLError: when the path is missing or its contents cannot be used.
    """
    if data is None:
        return load_chestxray14(SAMPLE_DIR, name=SAMPLE_NAME, seed=seed)
    path = Path(data).expanduser()
    if not path.exists():
        raise OCLError(
            f"--data {path}: no such file or directory; pass an NIH ChestX-ray14 folder, a class-folder directory or a CSV"
        )
    if path.is_dir() and is_chestxray14(path):
        return load_chestxray14(path.resolve(), seed=seed)
    if path.is_dir() and is_chestxray14_without_labels(path):
        raise OCLError(
            f"--data {path}: no label file; an NIH ChestX-ray14 folder needs {LABEL_FILES[0]} (or {LABEL_FILES[1]}) "
            "next to images/, so download it from NIH; for a class-folder dataset put each class in its own folder"
        )
    if path.is_file() and path.suffix.lower() != ".csv":
        raise OCLError(f"--data {path}: not a CSV file; pass a folder or a CSV with path,label columns")
    if path.is_file() and path.name.startswith("Data_Entry_2017"):
        raise OCLError(f"--data {path}: pass the folder that holds {path.name} and images/, not the CSV itself")
    return load_generic(path.resolve(), seed=seed)
