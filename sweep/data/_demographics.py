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

__all__ = ["AGE_BANDS", "DEMOGRAPHICS", "age_band", "demographics", "dicom_age", "normal_position", "normal_sex"]

DEMOGRAPHICS = ("sex", "age", "position")
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
    columns: dict[str, list] = {}
    if sex in raw.columns:
        columns["sex"] = [normal_sex(v) for v in raw[sex]]
    if age in raw.columns:
        columns["age"] = [_years(v) for v in raw[age]]
    if position in raw.columns:
        columns["position"] = [normal_position(v) for v in raw[position]]
    return columns
