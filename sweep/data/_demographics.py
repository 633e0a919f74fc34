"""Who each image is of, for subgroup analysis only: sex, age and view position.

Chest X-ray classifiers are known to underdiagnose some groups (Seyyed-Kalantari et al., Nature
Medicine 2021), so ``ocl evaluate`` reports performance per subgroup. The columns are read where
the data has them (NIH's ``Patient Gender``, ``Patient Age`` and ``View Position``; DICOM's
``PatientSex``, ``PatientAge`` and ``ViewPosition``; CheXpert's ``Sex``, ``Age`` and ``AP/PA``), kept
in the dataset table beside the labels, and **never** given to a model: no trial, bank or cache
reads them.

Values are normalised so every source reads the same: ``sex`` is ``F``, ``M`` or unknown (None or
NaN, as pandas keeps it); ``age`` is years as a float (NaN when unknown, and for NIH's few impossible
ages above 120); ``position`` is ``PA``, ``AP`` or unknown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweep.errors import OCLError

__all__ = [
    "AGE_BANDS",
    "CSV_COLUMN",
    "DEMOGRAPHICS",
    "age_band",
    "custom_groupings",
    "demographics",
    "dicom_age",
    "normal_position",
    "normal_sex",
    "parse_subgroup",
]

DEMOGRAPHICS = ("sex", "age", "position")
CSV_COLUMN = "csv:"
"""Prefix of the dataset-table columns that keep a ``path,label`` CSV's other columns (``csv:site``),
for ``ocl evaluate --subgroup``; like the demographics, never a model input."""
AGE_BANDS = ((0, 18, "0-17"), (18, 40, "18-39"), (40, 60, "40-59"), (60, 80, "60-79"), (80, 200, "80+"))


def normal_sex(value: object) -> str | None:
    text = str(value).strip().upper() if value is not None and value == value else ""
    return {"F": "F", "FEMALE": "F", "M": "M", "MALE": "M"}.get(text)


def normal_position(value: object) -> str | None:
    text = str(value).strip().upper() if value is not None and value == value else ""
    return text if text in ("PA", "AP") else None


def dicom_age(value: object) -> float:
    """DICOM's PatientAge (``045Y``, ``006M``, ``010W``, ``003D``) in years; NaN when absent or malformed."""
    text = str(value).strip().upper() if value is not None else ""
    units = {"Y": 1.0, "M": 1 / 12, "W": 1 / 52.18, "D": 1 / 365.25}
    if len(text) >= 2 and text[-1] in units and text[:-1].isdigit():
        return _years(float(text[:-1]) * units[text[-1]])
    return _years(text)


def _years(value: object) -> float:
    try:
        years = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return years if 0 <= years <= 120 else float("nan")


def age_band(age: float) -> str | None:
    """The age band of ``age`` years (0-17, 18-39, 40-59, 60-79, 80+), None when unknown."""
    if age is None or not np.isfinite(age):
        return None
    return next(label for low, high, label in AGE_BANDS if low <= age < high)


def demographics(raw: pd.DataFrame, *, sex: str, age: str, position: str) -> dict[str, list]:
    """The normalised demographic columns of a label table, for the columns it has."""
    named = {"sex": sex, "age": age, "position": position}
    return {name: [_NORMAL[name](v) for v in raw[column]] for name, column in named.items() if column in raw.columns}


_NORMAL = {"sex": normal_sex, "age": _years, "position": normal_position}
"""How each demographic reads its column, from any source: F/M, years, PA/AP."""


def parse_subgroup(spec: str) -> tuple[str, str]:
    """``--subgroup NAME[=COLUMN]`` as ``(grouping, column)``: ``sex=Gender`` reads the column
    ``Gender`` as sex (F/M), ``age=Years`` as age bands, ``position=View`` as PA/AP; any other name
    groups by the column's values as they are (``site``, ``scanner=Model``)."""
    name, _, column = spec.partition("=")
    name, column = name.strip(), (column or name).strip()
    if not name or not column:
        raise OCLError(f"--subgroup {spec}: expected NAME or NAME=COLUMN, e.g. --subgroup site or --subgroup sex=gender")
    return name, column


def custom_groupings(table: pd.DataFrame, specs: list[str], where: object) -> dict[str, list]:
    """The ``--subgroup`` groupings of a dataset table, normalised as their name says.

    Raises:
        OCLError: for a column the data's label table does not have (naming those it has).
    """
    kept = {c.removeprefix(CSV_COLUMN).lower(): c for c in table.columns if c.startswith(CSV_COLUMN)}
    found: dict[str, list] = {}
    for spec in specs:
        name, column = parse_subgroup(spec)
        if column.lower() not in kept:
            if name in DEMOGRAPHICS and name == column and name in table.columns:
                continue  # already read from the data itself (NIH table, CheXpert table, DICOM tags)
            others = ", ".join(sorted(kept)) or "none: only a path,label CSV keeps its other columns"
            raise OCLError(
                f"--subgroup {spec}: {where} has no column {column!r} (its other columns: {others}); "
                "name one of them, e.g. --subgroup sex=gender"
            )
        found[name] = [_NORMAL.get(name, _category)(v) for v in table[kept[column.lower()]]]
    return found


def _category(value: object) -> str | None:
    """A grouping's value as written (``site-3``); None when empty or missing."""
    return str(value).strip() or None if value is not None and value == value else None
