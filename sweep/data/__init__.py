"""Datasets: where images, labels, patients and splits come from.

:func:`load_dataset` picks the adapter from what ``--data`` points at: an NIH ChestX-ray14 folder,
a class-folder directory (PNG, JPEG, BMP, TIFF, GIF, WebP or DICOM files), a ``path,label`` CSV or a
CheXpert-style CSV (``--labels``; detected from the header otherwise, and a note says so). Without
``--data`` it loads the embedded NIH sample (638 real images at 256 px), so ``ocl`` works with no
download.
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
from sweep.data._chexpert import (
    CHEXPERT_FINDINGS,
    UNCERTAIN_POLICIES,
    VIEWS,
    chexpert_folder_table,
    load_chexpert,
    looks_like_chexpert,
    read_columns,
)
from sweep.data._dataset import RESPLIT, SPLIT_POLICIES, SPLITS, Dataset
from sweep.data._generic import load_generic
from sweep.data._info import summarize
from sweep.data._positive import NEGATIVE_CLASS_NAMES, looks_negative
from sweep.data._split import SEEDED_FRACTIONS, check_split_policy, patient_overlap, patient_split, resplit_by_patient
from sweep.errors import OCLError

__all__ = [
    "CHEXPERT_FINDINGS",
    "LABEL_FORMATS",
    "NEGATIVE_CLASS_NAMES",
    "RESPLIT",
    "SAMPLE_DIR",
    "SEEDED_FRACTIONS",
    "SPLITS",
    "SPLIT_POLICIES",
    "UNCERTAIN_POLICIES",
    "VIEWS",
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

LABEL_FORMATS: dict[str, str] = {
    "chexpert": "CheXpert-style: Path, view and one column per finding holding 1, 0, -1 (uncertain) or blank",
    "generic": "path,label[,patient,split]",
}
"""``--labels``: how to read a CSV given as ``--data`` (None: detect it from the header)."""


def _choice(option: str, value: str | None, choices, where: object, meaning: str, use: str) -> str | None:
    """``value`` lower-cased if it is one of ``choices``; an OCLError naming the data otherwise."""
    if value is None:
        return None
    value = str(getattr(value, "value", value)).strip().lower()
    if value not in choices:
        raise OCLError(f"{option} {value}: unknown {meaning} for {where}; use {use}")
    return value


def load_dataset(
    data: Path | str | None = None,
    *,
    seed: int = 0,
    split: str = "given",
    positive: str | None = None,
    labels: str | None = None,
    uncertain: str | None = None,
    view: str | None = None,
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
        labels: how to read a CSV: ``chexpert`` or ``generic`` (:data:`LABEL_FORMATS`); None
            detects it from the header (a CheXpert-style header gets a note in ``Dataset.notes``).
        uncertain: what CheXpert's uncertain (-1) labels become: ``ones`` (positive, the default),
            ``zeros`` (negative) or ``ignore`` (unknown: NaN in :meth:`Dataset.targets`, which the
            loss and metrics must leave out). Only for CheXpert-style tables; None keeps the default.
        view: ``frontal``, ``lateral`` or ``all`` images of a CheXpert-style table; None keeps all.
            ``all`` is accepted for any data.

    Raises:
        OCLError: when the path is missing or its contents cannot be used, ``--split patient`` meets
            data without patient IDs, ``positive`` is not one of the classes, ``labels``,
            ``uncertain`` or ``view`` is unknown, or ``uncertain`` or a view is given for data that
            has no uncertain labels or views.
        ValueError: when ``split`` is not ``given`` or ``patient``.
    """
    split = check_split_policy(split)
    options = {"seed": seed, "split": split, "positive": positive}
    path = None if data is None else Path(data).expanduser()
    where = "the embedded NIH sample" if path is None else path
    labels = _choice(
        "--labels", labels, LABEL_FORMATS, where, "label format", "chexpert (Path and finding columns) or generic (path,label)"
    )
    uncertain = _choice(
        "--uncertain",
        uncertain,
        UNCERTAIN_POLICIES,
        where,
        "policy for the uncertain (-1) labels",
        "ones (U-Ones: positive), zeros (U-Zeros: negative) or ignore (U-Ignore: left out)",
    )
    view = _choice("--view", view, VIEWS, where, "view", "frontal, lateral or all")
    if path is not None and not path.exists():
        raise OCLError(
            f"--data {path}: no such file or directory; pass an NIH ChestX-ray14 folder, a class-folder directory or a CSV"
        )
    if path is not None and path.is_file() and path.suffix.lower() == ".csv" and labels != "generic":
        columns = read_columns(path)
        detected = labels is None and columns is not None and looks_like_chexpert(columns)
        if labels == "chexpert" or detected:
            return load_chexpert(path.resolve(), **options, uncertain=uncertain, view=view, detected=detected)
    _refuse_chexpert_options(where, labels, uncertain, view)
    if path is None:
        return load_chestxray14(SAMPLE_DIR, name=SAMPLE_NAME, **options)
    if path.is_dir() and is_chestxray14(path):
        return load_chestxray14(path.resolve(), **options)
    if path.is_dir() and is_chestxray14_without_labels(path):
        raise OCLError(
            f"--data {path}: no label file; an NIH ChestX-ray14 folder needs {LABEL_FILES[0]} (or {LABEL_FILES[1]}) "
            "next to images/, so download it from NIH; for a class-folder dataset put each class in its own folder"
        )
    if path.is_dir() and (table := chexpert_folder_table(path)) is not None:
        raise OCLError(
            f"--data {path}: a folder with the CheXpert-style label table {table.name}; pass the table itself, "
            f"--data {table} (and --labels chexpert, --uncertain, --view as needed)"
        )
    if path.is_file() and path.suffix.lower() != ".csv":
        raise OCLError(f"--data {path}: not a CSV file; pass a folder or a CSV with path,label columns")
    if path.is_file() and path.name.startswith("Data_Entry_2017"):
        raise OCLError(f"--data {path}: pass the folder that holds {path.name} and images/, not the CSV itself")
    return load_generic(path.resolve(), **options)


def _refuse_chexpert_options(where: object, labels: str | None, uncertain: str | None, view: str | None) -> None:
    """``--labels chexpert``, ``--uncertain`` and a ``--view`` need a CheXpert-style CSV."""
    if labels == "chexpert":
        raise OCLError(f"--labels chexpert: {where} is not a CSV; pass the CheXpert-style label table, e.g. --data train.csv")
    if uncertain is not None:
        raise OCLError(
            f"--uncertain {uncertain}: {where} has no uncertain (-1) labels, only CheXpert-style label tables do; "
            "drop --uncertain"
        )
    if view not in (None, "all"):
        raise OCLError(
            f"--view {view}: {where} has no view column, only CheXpert-style label tables do; drop --view "
            "(or list the images you want in a path,label CSV)"
        )
