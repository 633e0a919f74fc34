"""Which finding of another dataset is which output of a study: the label map of external validation.

A model trained on NIH ChestX-ray14 predicts NIH's findings; CheXpert, a hospital's DICOM folders
or a ``path,label`` CSV name their findings their own way (``Pleural Effusion`` for NIH's
``Effusion``). ``ocl evaluate --external DATA`` scores the exported model on such data, so each
of the study's outputs needs the external finding it is compared with:

1. a row of ``--map FILE``, a CSV with the header ``study,external`` and one row per output
   (``Effusion,Pleural Effusion``); for the ``any`` task a row ``No Finding,<class>`` names the
   external class that means "nothing found";
2. else the built-in NIH <-> CheXpert map (:data:`NIH_CHEXPERT`), in either direction;
3. else the same name, ignoring case, ``_`` and spaces.

An output with no counterpart in the external data is not scored there (and said so), never
guessed. The ``any`` task ("any finding" vs "no finding") maps onto every dataset that says which
images show nothing: NIH's empty label list, or a class such as ``No Finding`` or ``normal``
(:data:`sweep.data.NEGATIVE_CLASS_NAMES`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep.data._dataset import Dataset
from sweep.data._label_tasks import NO_FINDING, Task
from sweep.data._positive import looks_negative
from sweep.errors import OCLError

__all__ = ["NIH_CHEXPERT", "LabelMap", "read_label_map"]

NIH_CHEXPERT: dict[str, str] = {
    "Atelectasis": "Atelectasis",
    "Cardiomegaly": "Cardiomegaly",
    "Consolidation": "Consolidation",
    "Edema": "Edema",
    "Effusion": "Pleural Effusion",
    "Pneumonia": "Pneumonia",
    "Pneumothorax": "Pneumothorax",
    NO_FINDING: NO_FINDING,
}
"""NIH ChestX-ray14 finding -> CheXpert observation, for the findings both label the same way
(Irvin et al., 2019, compare them on these). NIH's Infiltration, Mass, Nodule, Emphysema,
Fibrosis, Pleural_Thickening and Hernia have no one-to-one CheXpert observation (Lung Opacity and
Lung Lesion are broader), so they are left out; ``--map`` can map them knowingly."""


def _key(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name.strip().lower())


def read_label_map(path: Path | str) -> dict[str, str]:
    """The ``study,external`` rows of a ``--map`` CSV, as study name -> external name.

    Raises:
        OCLError: for a missing or unreadable file, another header, an empty cell or a study
            name given twice.
    """
    path = Path(path)
    fix = "write a CSV with the header study,external and one row per output, e.g. Effusion,Pleural Effusion"
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise OCLError(f"--map {path}: cannot be read ({exc.__class__.__name__}); {fix}") from None
    if not rows or [cell.strip().lower() for cell in rows[0]] != ["study", "external"]:
        raise OCLError(f"--map {path}: the first line must be the header study,external; {fix}")
    mapping: dict[str, str] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2 or not all(cell.strip() for cell in row):
            raise OCLError(f"--map {path}: line {number} is not two names (study,external); {fix}")
        study, external = (cell.strip() for cell in row)
        if study in mapping:
            raise OCLError(f"--map {path}: line {number} maps {study!r} a second time; keep one row per output")
        mapping[study] = external
    return mapping


@dataclass(frozen=True)
class LabelMap:
    """A study's task and the ``--map`` rows: turns an external dataset's labels into the study's
    target matrix. Built once per ``ocl evaluate``, checked against every external dataset."""

    task: Task
    rows: dict[str, str]  # --map: study name -> external name
    source: str = "--map"

    def check(self, datasets: Sequence[Dataset]) -> None:
        """Refuse ``--map`` rows that name an output the study does not have, or a finding none of
        the external datasets has (a typo would otherwise score nothing, silently)."""
        study_names = set(self.task.outputs) | ({NO_FINDING} if self.task.kind == "any" else set())
        for study, external in self.rows.items():
            if study not in study_names:
                raise OCLError(
                    f"{self.source}: {study!r} is not an output of the study (outputs: {', '.join(sorted(study_names))}); "
                    "fix the study column"
                )
            known = {_key(c) for d in datasets for c in d.classes}
            if _key(external) not in known:
                found = sorted({c for d in datasets for c in d.classes})
                raise OCLError(
                    f"{self.source}: {external!r} (for {study}) is a finding of none of the --external datasets "
                    f"(their findings: {', '.join(found)}); fix the external column"
                )

    def counterpart(self, output: str, classes: Sequence[str]) -> str | None:
        """The external class compared with one of the study's finding outputs, or None."""
        by_key = {_key(c): c for c in classes}
        if output in self.rows:
            return by_key.get(_key(self.rows[output]))
        builtin = NIH_CHEXPERT.get(output) or {v: k for k, v in NIH_CHEXPERT.items()}.get(output)
        if builtin and _key(builtin) in by_key:
            return by_key[_key(builtin)]
        return by_key.get(_key(output))

    def negatives(self, dataset: Dataset) -> tuple[str, ...] | None:
        """The external classes meaning "nothing found" for the ``any`` task; None when the data
        cannot say which images show nothing."""
        named = self.rows.get(NO_FINDING)
        classes = tuple(c for c in dataset.classes if (named and _key(c) == _key(named)) or looks_negative(c))
        return classes if classes or dataset.has_negative_class else None

    def targets(self, dataset: Dataset) -> tuple[np.ndarray, dict[str, str | None]]:
        """The study's target matrix for the external images ``(images, outputs)`` (NaN: unknown or
        unmapped), and each output's external counterpart (None: not in the data)."""
        labels, ignored = dataset.table["labels"].tolist(), _ignored(dataset)
        y = np.full((len(labels), len(self.task.outputs)), np.nan, np.float32)
        if self.task.kind == "any":
            negatives = self.negatives(dataset)
            if negatives is None:
                return y, {self.task.outputs[0]: None}
            for row, (found, unknown) in enumerate(zip(labels, ignored)):
                positive = any(c not in negatives for c in found)
                y[row, 0] = 1.0 if positive else (np.nan if any(c not in negatives for c in unknown) else 0.0)
            return y, {self.task.outputs[0]: "any class but " + (", ".join(negatives) or "an empty label")}
        mapped = {output: self.counterpart(output, dataset.classes) for output in self.task.outputs}
        for k, output in enumerate(self.task.outputs):
            external = mapped[output]
            if external is None:
                continue
            y[:, k] = [np.nan if external in unknown else float(external in found) for found, unknown in zip(labels, ignored)]
        return y, mapped


def _ignored(dataset: Dataset) -> list[tuple[str, ...]]:
    if "ignored" in dataset.table.columns:
        return [tuple(v) if v else () for v in dataset.table["ignored"]]
    return [()] * len(dataset.table)
