"""How a dataset is read: one record, checked once, passed whole from the CLI to every entry point.

``--data``, ``--task``, ``--split``, ``--positive``, ``--labels``, ``--uncertain``, ``--view`` and
``--seed`` travel together from ``ocl sweep`` down to the worker that reloads the dataset, and
``ocl data info``, ``ocl data prepare`` and ``ocl dictionary build`` read data the same way. Adding
a data option touches this record and the adapter that uses it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from sweep.data._chexpert import UNCERTAIN_POLICIES, VIEWS
from sweep.data._split import check_split_policy
from sweep.errors import OCLError

__all__ = ["LABEL_FORMATS", "DataOptions"]

LABEL_FORMATS: dict[str, str] = {
    "chexpert": "CheXpert-style: Path, view and one column per finding holding 1, 0, -1 (uncertain) or blank",
    "generic": "path,label[,patient,split]",
}
"""``--labels``: how to read a CSV given as ``--data`` (None: detect it from the header)."""

_CHOICES = {
    "labels": ("--labels", LABEL_FORMATS, "label format", "chexpert (Path and finding columns) or generic (path,label)"),
    "uncertain": (
        "--uncertain",
        UNCERTAIN_POLICIES,
        "policy for the uncertain (-1) labels",
        "ones (U-Ones: positive), zeros (U-Zeros: negative) or ignore (U-Ignore: left out)",
    ),
    "view": ("--view", VIEWS, "view", "frontal, lateral or all"),
}


@dataclass(frozen=True)
class DataOptions:
    """How to read a dataset.

    Attributes:
        data: an NIH ChestX-ray14 folder, a class-folder directory or a CSV; None for the embedded sample.
        task: ``any``, ``binary:<Finding>`` or ``multilabel``; None for the dataset's default.
        split: ``given`` keeps a split the dataset brings (warning about patients it puts in more
            than one split); ``patient`` re-draws it by patient (seeded 70/10/20, the same images).
        positive: the positive class of a two-class dataset (default: the one that is not normal).
        labels: how to read a CSV: ``chexpert`` or ``generic`` (:data:`LABEL_FORMATS`); None detects it.
        uncertain: CheXpert's uncertain (-1) labels become ``ones``, ``zeros`` or ``ignore`` (NaN,
            left out of the loss and the metrics); None keeps the default (ones).
        view: ``frontal``, ``lateral`` or ``all`` images of a CheXpert-style table; None keeps all.
        seed: seeds every split OCL draws (same seed, same split), the sampler and initialisation.

    Example:
        >>> DataOptions("~/ChestX-ray14", task="multilabel").check().data
        '/home/me/ChestX-ray14'
    """

    data: str | None = None
    task: str | None = None
    split: str = "given"
    positive: str | None = None
    labels: str | None = None
    uncertain: str | None = None
    view: str | None = None
    seed: int = 0

    @classmethod
    def of(cls, data: DataOptions | Path | str | None = None, **options: object) -> DataOptions:
        """``data`` itself when it is a DataOptions, else one built from a path and keyword options:
        notebooks write ``run_sweep(data="~/cxr", seed=1)``, the CLI passes a whole record."""
        if isinstance(data, DataOptions):
            if options:
                raise TypeError(f"a DataOptions record takes no other data options, got {sorted(options)}")
            return data
        return cls(None if data is None else str(data), **options)

    @property
    def path(self) -> Path | None:
        return None if self.data is None else Path(self.data).expanduser()

    @property
    def where(self) -> object:
        """How messages name the data."""
        return "the embedded NIH sample" if self.path is None else self.path

    def check(self) -> DataOptions:
        """The options with choices lower-cased and the path resolved; one OCLError line for a bad one.

        Raises:
            OCLError: an unknown ``labels``, ``uncertain`` or ``view``, or a path that does not exist.
            ValueError: a ``split`` other than ``given`` or ``patient``.
        """
        values = {name: self._choice(name) for name in _CHOICES}
        path = self.path
        if path is not None and not path.exists():
            raise OCLError(
                f"--data {path}: no such file or directory; pass an NIH ChestX-ray14 folder, a class-folder directory or a CSV"
            )
        data = None if path is None else str(path.resolve())
        return dataclasses.replace(self, data=data, split=check_split_policy(self.split), **values)

    def _choice(self, name: str) -> str | None:
        value = getattr(self, name)
        if value is None:
            return None
        option, choices, meaning, use = _CHOICES[name]
        value = str(getattr(value, "value", value)).strip().lower()
        if value not in choices:
            raise OCLError(f"{option} {value}: unknown {meaning} for {self.where}; use {use}")
        return value
