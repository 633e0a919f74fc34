"""What ``ocl data info`` reports: sizes, patients per split, overlap, prevalence, baselines, notes.

``prevalence`` is the share of all images positive for a class; ``unknown_labels`` counts, per
class, the images whose label is unknown (``--uncertain ignore``; empty otherwise).

The majority-class accuracy is reported per task because ChestX-ray14 findings have 0.2-18%
prevalence: a model that always says "no Hernia" is 99.8% accurate and useless. Any accuracy the
tool prints must be read against this number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sweep.data._dataset import SPLITS, Dataset, count_patients, patient_overlap
from sweep.data._label_tasks import NO_FINDING


def _majority_accuracy(y: np.ndarray) -> float:
    """Accuracy of always predicting the more common value, averaged over output columns.

    Unknown targets (NaN, ``--uncertain ignore``) are left out of their column; a column with no
    known target is left out of the mean.
    """
    y = y.astype(np.float64)
    known = ~np.isnan(y)
    counts = known.sum(axis=0)
    positive = np.where(known, y, 0.0).sum(axis=0) / np.maximum(counts, 1)
    scored = counts > 0
    return float(np.mean(np.maximum(positive, 1 - positive)[scored])) if scored.any() else float("nan")


def summarize(dataset: Dataset, task: str | None = None) -> dict[str, Any]:
    """The facts ``ocl data info`` shows, as plain JSON-able values."""
    table = dataset.table
    labels = table["labels"].tolist()
    n = len(table)
    splits = {}
    for split in SPLITS:
        rows = table[table["split"] == split]
        splits[split] = {"images": int(len(rows)), "patients": count_patients(rows)}
    prevalence = {c: float(sum(c in lab for lab in labels) / n) for c in dataset.classes}
    if dataset.has_negative_class:
        prevalence[NO_FINDING] = float(sum(len(lab) == 0 for lab in labels) / n)
    task_list = ["any"] if dataset.has_negative_class else []
    task_list += [f"binary:{c}" for c in dataset.classes] + ["multilabel"]
    chosen = dataset.task(task)
    majority = {name: _majority_accuracy(dataset.targets(dataset.task(name))) for name in task_list}
    unknown = {}
    if dataset.has_unknown_labels:
        ignored = table["ignored"].tolist()
        unknown = {c: int(sum(c in lab for lab in ignored)) for c in dataset.classes}
    return {
        "dataset": dataset.name,
        "root": str(dataset.root),
        "images": int(n),
        "patients": count_patients(table),
        "split_source": dataset.split_source,
        "splits": splits,
        "patient_overlap": patient_overlap(table),
        "cross_split_patients": dataset.cross_split_patients,
        "patient_ids": dataset.has_patient_ids,
        "prevalence": prevalence,
        "unknown_labels": unknown,
        "task": chosen.name,
        "majority_accuracy": majority,
        "warnings": list(dataset.warnings),
        "notes": list(dataset.notes),
    }
