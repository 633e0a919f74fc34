"""The dataset table every adapter produces and every later step reads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sweep.data._label_tasks import Task, parse_task

SPLITS: tuple[str, ...] = ("train", "val", "test")

_EMPTY_SPLIT_FIX = {
    "seeded": "use more images (the seeded 70/10/20 split assigns whole patients)",
    "official": "use more images (test comes from test_list.txt, val from train_val_list.txt patients)",
    "given": "add images to the empty split(s), or drop the split folders or column to have one drawn",
}

RESPLIT = "re-split by patient"
"""``Dataset.split_source`` of a dataset whose given split was re-drawn by patient (``--split patient``)."""

SPLIT_POLICIES: tuple[str, ...] = ("given", "patient")
"""``load_dataset(split=...)``: keep the dataset's own split, or re-draw it by patient."""

_EMPTY_SPLIT_FIX[RESPLIT] = _EMPTY_SPLIT_FIX["seeded"]


def count_patients(rows: pd.DataFrame) -> int:
    """Distinct patients; an image whose patient is unknown counts as its own patient, as in the split."""
    return int(rows["patient"].dropna().nunique() + rows["patient"].isna().sum())


def patient_overlap(table: pd.DataFrame) -> dict[str, int]:
    """How many patients appear in each pair of splits, and in more than one split at all (``any``).

    Images whose patient is unknown are left out: they cannot be matched to anyone.
    """
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


def empty_split_warnings(table: pd.DataFrame, where: Path, split_source: str) -> tuple[str, ...]:
    """The one rule of every adapter for a split without images: a warning, not an error.

    ``ocl data info`` must still describe such a dataset (that is how the user finds out), while a
    sweep refuses it before training (``sweep.data._label_tasks.check_scorable``: validation AUROC selects
    every trial).
    """
    empty = [split for split in SPLITS if not (table["split"] == split).any()]
    if not empty:
        return ()
    return (
        f"the {', '.join(empty)} split(s) of {where} have no images ({len(table)} images, "
        f"{count_patients(table)} patients); sweeps need images in every split, so {_EMPTY_SPLIT_FIX[split_source]}",
    )


@dataclass(frozen=True)
class Dataset:
    """Images with their labels, patients and split.

    ``table`` has one row per image, in a fixed order that the image cache and the feature bank
    share, with the columns ``image`` (file name or relative path), ``path`` (absolute path),
    ``patient`` (patient id, or None when unknown), ``labels`` (tuple of class names; empty means
    no finding) and ``split`` (``train``, ``val`` or ``test``). Label tables with uncertain labels
    (CheXpert-style) add ``ignored`` (tuple of class names whose label is unknown for that image:
    uncertain under ``--uncertain ignore``; see :meth:`targets`) and ``view`` (``frontal``,
    ``lateral`` or ``""``).

    ``split_source`` says where the split came from: ``official`` (NIH's lists), ``given`` (split
    folders or a CSV split column), ``seeded`` (drawn by patient, 70/10/20) or ``re-split by
    patient`` (a given split re-drawn with ``--split patient``). ``warnings`` are one-line problems
    the user should know about (patients in several splits, no patient IDs, empty splits);
    ``notes`` are one-line facts about choices OCL made (which class is positive).
    """

    name: str
    root: Path
    table: pd.DataFrame
    classes: tuple[str, ...]
    split_source: str
    has_negative_class: bool = True
    modality: str = "chest x-ray"
    default_task: str = "any"
    warnings: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.table)

    @property
    def patient_count(self) -> int:
        return count_patients(self.table)

    @property
    def cross_split_patients(self) -> int:
        """Patients with images in more than one split (0 for every split OCL draws itself)."""
        return patient_overlap(self.table)["any"]

    @property
    def has_patient_ids(self) -> bool:
        """Whether any image has a known patient (otherwise every split is per image)."""
        return bool(self.table["patient"].notna().any())

    @property
    def paths(self) -> list[str]:
        return self.table["path"].tolist()

    def task(self, name: str | None = None) -> Task:
        """Parse a task name (default: the dataset's default task) against this dataset's classes."""
        return parse_task(name or self.default_task, self.classes, has_negative_class=self.has_negative_class)

    def targets(self, task: Task) -> np.ndarray:
        """The task's float32 target matrix, shape ``(images, outputs)``, rows in table order.

        Each cell is 1.0 (positive), 0.0 (negative) or **NaN: unknown**, which only a label table
        with ``--uncertain ignore`` (U-Ignore) produces: the image's label for that output must not
        count, so the loss and every metric (AUROC, thresholds, LogME, probes) must leave NaN cells
        out, per output. Datasets without an ``ignored`` column never hold NaN. For the ``any``
        task an image with a positive finding is 1.0 whatever else is unknown, and NaN when it has
        no positive but some unknown finding.
        """
        y = task.targets(self.table["labels"].tolist())
        if "ignored" not in self.table.columns:
            return y
        index = {name: i for i, name in enumerate(task.outputs)}
        for row, (ignored, labels) in enumerate(zip(self.table["ignored"], self.table["labels"])):
            if not ignored:
                continue
            if task.kind == "any":
                if not labels:
                    y[row, 0] = np.nan
                continue
            for name in ignored:
                if name in index:
                    y[row, index[name]] = np.nan
        return y

    @property
    def has_unknown_labels(self) -> bool:
        """Whether some (image, class) label is unknown, so :meth:`targets` may hold NaN."""
        return "ignored" in self.table.columns and bool(self.table["ignored"].map(bool).any())

    def split_indices(self, split: str) -> np.ndarray:
        """Row indices of one split, in table order."""
        return np.flatnonzero(self.table["split"].to_numpy() == split)

    def fingerprint(self) -> str:
        """A short hash of which images are in which split with which labels (names study data)."""
        digest = hashlib.sha256()
        ignored = self.table["ignored"] if "ignored" in self.table.columns else [()] * len(self.table)
        for image, labels, split, unknown in zip(self.table["image"], self.table["labels"], self.table["split"], ignored):
            # unknown labels only enter when present, so datasets without them keep their fingerprint
            extra = f"\t?{'|'.join(unknown)}" if unknown else ""
            digest.update(f"{image}\t{'|'.join(labels)}\t{split}{extra}\n".encode())
        return digest.hexdigest()[:12]
