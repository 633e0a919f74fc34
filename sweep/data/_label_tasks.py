"""Classification tasks: which label columns a model predicts.

ChestX-ray14 images carry zero or more of 14 findings (``No Finding`` means none). The same dataset
answers three questions, so the task is chosen separately from the data:

- ``any``: any finding vs ``No Finding`` (the poster's binary task);
- ``binary:<Finding>``: one finding vs everything else, e.g. ``binary:Pneumonia``;
- ``multilabel``: every class at once, one sigmoid output each (CheXNet-style).

Example:
    >>> task = parse_task("binary:Pneumonia", FINDINGS)
    >>> task.outputs
    ('Pneumonia',)
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sweep.errors import OCLError

__all__ = ["FINDINGS", "NO_FINDING", "Task", "check_scorable", "parse_task", "task_names"]

FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
"""The 14 official ChestX-ray14 findings, in NIH's order (also CheXNet's)."""

NO_FINDING = "No Finding"


@dataclass(frozen=True)
class Task:
    """A parsed task: its name and the names of its sigmoid outputs."""

    name: str
    kind: str  # "any", "binary" or "multilabel"
    outputs: tuple[str, ...]

    def targets(self, labels: Sequence[tuple[str, ...]]) -> np.ndarray:
        """Turn per-image label tuples into a float32 target matrix of shape (images, outputs)."""
        if self.kind == "any":
            return np.array([[1.0 if lab else 0.0] for lab in labels], dtype=np.float32).reshape(-1, 1)
        index = {name: i for i, name in enumerate(self.outputs)}
        y = np.zeros((len(labels), len(self.outputs)), dtype=np.float32)
        for row, lab in enumerate(labels):
            for name in lab:
                if name in index:
                    y[row, index[name]] = 1.0
        return y


def task_names(classes: Sequence[str], *, has_negative_class: bool) -> list[str]:
    """Every valid task name for a dataset with these classes."""
    names = ["any"] if has_negative_class else []
    return names + [f"binary:{c}" for c in classes] + ["multilabel"]


def parse_task(name: str, classes: Sequence[str], *, has_negative_class: bool = True) -> Task:
    """Parse a task name against a dataset's classes.

    Args:
        name: ``any``, ``binary:<class>`` or ``multilabel``.
        classes: the dataset's class names (the 14 findings for ChestX-ray14).
        has_negative_class: whether "no class at all" exists (``No Finding``); ``any`` needs it.

    Raises:
        OCLError: for an unknown task or class, naming the valid ones.
    """
    valid = task_names(classes, has_negative_class=has_negative_class)
    if name == "any" and has_negative_class:
        return Task("any", "any", ("Any finding",))
    if name == "multilabel":
        return Task("multilabel", "multilabel", tuple(classes))
    if name.startswith("binary:"):
        label = name.split(":", 1)[1]
        if label in classes:
            return Task(name, "binary", (label,))
        near = difflib.get_close_matches(label, list(classes), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join('binary:' + n for n in near)}? " if near else ""
        raise OCLError(f"--task {name}: unknown finding {label!r}; {hint}valid findings: {', '.join(classes)}")
    shown = ", ".join(valid[:1] + ["binary:<class>", "multilabel"]) if len(valid) > 6 else ", ".join(valid)
    raise OCLError(f"--task {name}: unknown task; valid tasks: {shown} (classes: {', '.join(classes)})")


def check_scorable(targets: np.ndarray, train: np.ndarray, val: np.ndarray, task: Task) -> None:
    """Refuse a task that no output can be trained and scored on.

    A trial (or a probe) fits on train and is judged by validation AUROC, which is undefined for an
    output whose training or validation images are all positive or all negative. Such an output is
    left out of the mean; when every output is, nothing can be scored and a sweep would run blind.

    Raises:
        OCLError: for an empty validation split, or when no output has both classes in both splits.
    """
    if len(val) == 0:
        raise OCLError("--data: the validation split has no images; a sweep selects on validation AUROC, use more images")

    def both_classes(rows: np.ndarray) -> np.ndarray:
        y = np.asarray(targets[rows], np.float64)  # NaN: an unknown label, on neither side
        return ((y == 1).any(axis=0) & (y == 0).any(axis=0)) if len(y) else np.zeros(targets.shape[1], bool)

    if not (both_classes(train) & both_classes(val)).any():
        raise OCLError(
            f"--task {task.name}: the train or validation split has no positive (or no negative) image for "
            f"{', '.join(task.outputs)}; choose another task or a larger dataset"
        )
