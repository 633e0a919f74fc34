"""Which adapter reads what ``--data`` points at, and the embedded sample when it points nowhere."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sweep.data._chestxray14 import LABEL_FILES, is_chestxray14, is_chestxray14_without_labels, load_chestxray14
from sweep.data._chexpert import chexpert_folder_table, load_chexpert, looks_like_chexpert, read_columns
from sweep.data._dataset import Dataset
from sweep.data._generic import load_generic
from sweep.data._options import DataOptions
from sweep.data._pseudonyms import pseudonym_key, pseudonymise
from sweep.errors import OCLError

__all__ = ["SAMPLE_DIR", "SAMPLE_NAME", "load_dataset"]

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample" / "nih-cxr14"
"""The embedded sample: real NIH ChestX-ray14 images with their official labels and split lists."""

SAMPLE_NAME = "nih-cxr14-sample"


def load_dataset(data: DataOptions | Path | str | None = None, **options: Any) -> Dataset:
    """Load a dataset: the :class:`DataOptions` given, or one built from ``data`` and ``options``.

    ``load_dataset(DataOptions(path, split="patient"))`` and ``load_dataset(path, split="patient")``
    are the same call; ``task`` is the caller's to apply (:meth:`Dataset.task`).

    Raises:
        OCLError: when the path is missing or its contents cannot be used, ``--split patient`` meets
            data without patient IDs, ``positive`` is not one of the classes, ``labels``,
            ``uncertain`` or ``view`` is unknown, or ``uncertain`` or a view is given for data that
            has no uncertain labels or views.
        ValueError: when ``split`` is not ``given`` or ``patient``.
    """
    checked = DataOptions.of(data, **options).check()
    dataset = _read(checked)
    # Patient IDs become keyed pseudonyms once the split is drawn: nothing downstream sees an ID.
    table = dataset.table.assign(patient=pseudonymise(dataset.table["patient"], pseudonym_key()))
    return dataclasses.replace(dataset, table=table)


def _read(checked: DataOptions) -> Dataset:
    """The dataset as its adapter reads it (real patient IDs)."""
    path = checked.path
    common = {"seed": checked.seed, "split": checked.split, "positive": checked.positive}
    if path is not None and path.is_file() and path.suffix.lower() == ".csv" and checked.labels != "generic":
        columns = read_columns(path)
        detected = checked.labels is None and columns is not None and looks_like_chexpert(columns)
        if checked.labels == "chexpert" or detected:
            return load_chexpert(path, **common, uncertain=checked.uncertain, view=checked.view, detected=detected)
    _refuse_chexpert_options(checked)
    if path is None:
        return load_chestxray14(SAMPLE_DIR, name=SAMPLE_NAME, **common)
    _refuse_unreadable(path)
    if path.is_dir() and is_chestxray14(path):
        return load_chestxray14(path, **common)
    return load_generic(path, **common)


def _refuse_unreadable(path: Path) -> None:
    """Folders and files no adapter reads, each with the fix for what it most likely is."""
    if path.is_dir() and not is_chestxray14(path) and is_chestxray14_without_labels(path):
        raise OCLError(
            f"--data {path}: no label file; an NIH ChestX-ray14 folder needs {LABEL_FILES[0]} (or {LABEL_FILES[1]}) "
            "next to images/, so download it from NIH; for a class-folder dataset put each class in its own folder"
        )
    if path.is_dir() and not is_chestxray14(path) and (table := chexpert_folder_table(path)) is not None:
        raise OCLError(
            f"--data {path}: a folder with the CheXpert-style label table {table.name}; pass the table itself, "
            f"--data {table} (and --labels chexpert, --uncertain, --view as needed)"
        )
    if path.is_file() and path.suffix.lower() != ".csv":
        raise OCLError(f"--data {path}: not a CSV file; pass a folder or a CSV with path,label columns")
    if path.is_file() and path.name.startswith("Data_Entry_2017"):
        raise OCLError(f"--data {path}: pass the folder that holds {path.name} and images/, not the CSV itself")


def _refuse_chexpert_options(options: DataOptions) -> None:
    """``--labels chexpert``, ``--uncertain`` and a ``--view`` need a CheXpert-style CSV."""
    where = options.where
    if options.labels == "chexpert":
        raise OCLError(f"--labels chexpert: {where} is not a CSV; pass the CheXpert-style label table, e.g. --data train.csv")
    if options.uncertain is not None:
        raise OCLError(
            f"--uncertain {options.uncertain}: {where} has no uncertain (-1) labels, only CheXpert-style label tables do; "
            "drop --uncertain"
        )
    if options.view not in (None, "all"):
        raise OCLError(
            f"--view {options.view}: {where} has no view column, only CheXpert-style label tables do; drop --view "
            "(or list the images you want in a path,label CSV)"
        )
