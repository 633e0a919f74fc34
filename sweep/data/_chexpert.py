"""The CheXpert-style label table: one row per image, one column per finding.

CheXpert (Irvin et al., 2019) publishes ``train.csv`` and ``valid.csv`` with the columns::

    Path, Sex, Age, Frontal/Lateral, AP/PA, No Finding, Enlarged Cardiomediastinum, Cardiomegaly,
    Lung Opacity, Lung Lesion, Edema, Consolidation, Pneumonia, Atelectasis, Pneumothorax,
    Pleural Effusion, Pleural Other, Fracture, Support Devices

``Path`` is relative to the folder that holds the CSV, or to the folder above it (CheXpert's own
paths start with ``CheXpert-v1.0-small/``). Each finding cell is ``1`` (positive), ``0``
(negative), ``-1`` (uncertain: the report hedges) or blank (not mentioned, read as negative);
``1.0``, ``0.0`` and ``-1.0`` are the same values. Every column that is not ``Path``, ``Sex``,
``Age``, ``Frontal/Lateral``, ``AP/PA``, a patient, study or split column is a finding, so other
tables in this layout (other findings, a subset of them) load too.

The uncertain labels follow one policy of the CheXpert paper (``--uncertain``):

- ``ones`` (U-Ones, the default): uncertain counts as positive;
- ``zeros`` (U-Zeros): uncertain counts as negative;
- ``ignore`` (U-Ignore): the (image, finding) pair is left out. :meth:`Dataset.targets` holds NaN
  there, and the table's ``ignored`` column lists the findings left out for each image.

``--view frontal|lateral|all`` keeps the frontal images (AP or PA), the lateral ones, or both; the
view comes from ``Frontal/Lateral``, else ``AP/PA``, else the file name (``view1_frontal.jpg``).

The patient is a ``patient`` (or ``Patient ID``, ``subject_id``) column, else the
``patientNNNNN`` folder in the path, else a DICOM file's PatientID. The split is a ``split`` column
(kept, checked for patients in several splits) or drawn by patient, 70/10/20, as for every dataset.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from sweep.data._dataset import RESPLIT, Dataset
from sweep.data._demographics import DEMOGRAPHICS, demographics
from sweep.data._generic import SPLIT_NAMES, patients_from_files
from sweep.data._positive import check_positive
from sweep.data._split import SEEDED_FRACTIONS, patient_split, resplit_by_patient, split_keys, split_warnings
from sweep.errors import OCLError

__all__ = ["CHEXPERT_FINDINGS", "UNCERTAIN_POLICIES", "VIEWS", "chexpert_folder_table", "load_chexpert", "looks_like_chexpert"]

CHEXPERT_FINDINGS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
"""CheXpert's 14 observations, in its CSV's column order."""

UNCERTAIN_POLICIES: dict[str, str] = {
    "ones": "U-Ones: uncertain counts as positive",
    "zeros": "U-Zeros: uncertain counts as negative",
    "ignore": "U-Ignore: uncertain is left out of loss and AUROC (NaN target)",
}
"""``--uncertain``: what a ``-1`` label becomes."""

VIEWS: tuple[str, ...] = ("all", "frontal", "lateral")
"""``--view``: which images of a CheXpert-style table to keep."""

_PATIENT_COLUMNS = ("patient", "patient id", "patientid", "patient_id", "subject_id", "subject id")
_METADATA = {"path", "sex", "age", "frontal/lateral", "ap/pa", "split", "view", "study", "study id", "study_id"}
_METADATA |= set(_PATIENT_COLUMNS)
_PATIENT_IN_PATH = re.compile(r"(?:^|[/\\])(patient\d+)(?=[/\\])", re.IGNORECASE)
_FRONTAL_PROJECTIONS = {"ap", "pa", "ap axial", "pa axial", "frontal"}
_LATERAL_PROJECTIONS = {"ll", "rl", "lat", "lateral", "latl", "latr"}
_LAYOUT = "Path, Sex, Age, Frontal/Lateral, AP/PA and one column per finding"


def looks_like_chexpert(columns: list[str]) -> bool:
    """A ``Path`` column, no ``label`` column, and at least two of CheXpert's finding columns."""
    lower = {str(c).strip().lower() for c in columns}
    findings = {f.lower() for f in CHEXPERT_FINDINGS}
    return "path" in lower and "label" not in lower and len(lower & findings) >= 2


def read_columns(csv_path: Path) -> list[str] | None:
    """The header of a CSV, or None when it cannot be read (the adapter then reports why)."""
    try:
        return [str(c).strip() for c in pd.read_csv(csv_path, nrows=0, dtype=str).columns]
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        return None


def chexpert_folder_table(root: Path) -> Path | None:
    """A CheXpert-style CSV directly in ``root`` (CheXpert's own download folder), or None."""
    for path in sorted(root.glob("*.csv")):
        columns = read_columns(path)
        if columns and looks_like_chexpert(columns):
            return path
    return None


def _read(csv_path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OCLError(f"label file {csv_path} cannot be read ({reason}); it must be a CheXpert-style CSV ({_LAYOUT})") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    return raw


def _column(raw: pd.DataFrame, *names: str) -> str | None:
    by_lower = {c.lower(): c for c in raw.columns}
    return next((by_lower[n] for n in names if n in by_lower), None)


def _values(raw: pd.DataFrame, findings: list[str], csv_path: Path) -> np.ndarray:
    """The finding cells as a float matrix: 1, 0, -1, or NaN for blank; anything else is an error."""
    out = np.full((len(raw), len(findings)), np.nan)
    for j, name in enumerate(findings):
        text = raw[name].str.strip()
        blank = text == ""
        number = pd.to_numeric(text.where(~blank), errors="coerce")
        bad = ~blank & ~number.isin([1.0, 0.0, -1.0])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise OCLError(
                f"label file {csv_path}, row {row + 2}, column {name!r}: value {raw[name].iloc[row]!r} is not 1, 0, -1 or blank "
                f"({int(bad.sum())} such cell(s) in that column); CheXpert-style labels are 1 (positive), 0 (negative), "
                "-1 (uncertain) or blank (not mentioned); fix the cells, or rename the column to Sex, Age or Study if it "
                "is not a finding"
            )
        out[:, j] = number.to_numpy(dtype=float)
    return out


def _views(raw: pd.DataFrame) -> tuple[np.ndarray, str | None]:
    """Each row's view (``frontal``, ``lateral`` or ``""`` when unknown), and which column told it."""
    column = _column(raw, "frontal/lateral", "view")
    if column is not None:
        text = raw[column].str.strip().str.lower()
        views = np.where(text.isin(["frontal", "lateral"]), text, "")
        return views.astype(object), column
    column = _column(raw, "ap/pa")
    if column is not None:
        text = raw[column].str.strip().str.lower()
        views = np.where(text.isin(_FRONTAL_PROJECTIONS), "frontal", np.where(text.isin(_LATERAL_PROJECTIONS), "lateral", ""))
        return views.astype(object), column
    names = raw[_column(raw, "path")].str.lower()
    views = np.where(names.str.contains("frontal"), "frontal", np.where(names.str.contains("lateral"), "lateral", ""))
    found = (views != "").any()
    return views.astype(object), ("file names" if found else None)


def _resolve_paths(relative: pd.Series, csv_path: Path) -> tuple[list[str], Path]:
    """Absolute paths, relative to the CSV's folder or (CheXpert's own layout) the folder above it."""
    bases = [csv_path.parent, csv_path.parent.parent]
    probe = [p for p in relative[:50] if p and not Path(p).is_absolute()]
    base = max(bases, key=lambda b: sum((b / p).is_file() for p in probe)) if probe else bases[0]
    # the base is already resolved; normpath instead of resolve() per row: CheXpert has 224,316 rows
    paths = [p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p)) for p in relative]
    return paths, base


def _uncertain_note(values: np.ndarray, uncertain: str, given: bool) -> str:
    uncertain_cells = values == -1
    pairs, images = int(uncertain_cells.sum()), int(uncertain_cells.any(axis=1).sum())
    how = "as --uncertain asks" if given else "the default; pass --uncertain zeros or ignore to change it"
    if not pairs:
        return f"uncertain labels (-1): none, so --uncertain changes nothing; blank cells count as negative ({uncertain}: {how})"
    return (
        f"uncertain labels (-1): {pairs:,} (image, finding) pair(s) in {images:,} image(s), {UNCERTAIN_POLICIES[uncertain]} "
        f"({uncertain}, {how}); blank cells count as negative"
    )


def _view_note(views: np.ndarray, source: str | None, view: str, kept: int) -> str | None:
    if source is None:
        return None
    frontal, lateral = int((views == "frontal").sum()), int((views == "lateral").sum())
    unknown = len(views) - frontal - lateral
    counts = f"{frontal:,} frontal, {lateral:,} lateral" + (f", {unknown:,} unknown" if unknown else "")
    if view == "all":
        return f"views (from {source}): {counts}; all kept, pass --view frontal or --view lateral to keep one"
    return f"views (from {source}): {counts}; --view {view} keeps {kept:,}"


def _finding_columns(raw: pd.DataFrame, csv_path: Path) -> tuple[str, list[str]]:
    """The Path column and the finding columns, checked before any cell is read."""
    path_column = _column(raw, "path")
    if path_column is None:
        raise OCLError(f"label file {csv_path} lacks the column Path; a CheXpert-style CSV has {_LAYOUT}")
    findings = [c for c in raw.columns if c.lower() not in _METADATA and not c.lower().startswith("unnamed:")]
    if not findings:
        raise OCLError(f"label file {csv_path} has no finding columns; a CheXpert-style CSV has {_LAYOUT}")
    if raw.empty:
        raise OCLError(f"label file {csv_path} lists no images; add one row per image")
    return path_column, findings


def _detected_note(findings: list[str]) -> str:
    """The note saying the format was detected from the header, not named with --labels."""
    return (
        f"label table read as CheXpert-style (a Path column and {len(findings)} finding columns: 1, 0, -1 or blank), "
        "detected from its header; pass --labels chexpert to say so, or --labels generic for a path,label CSV"
    )


def _view_mask(views: np.ndarray, view_source: str | None, chosen_view: str, csv_path: Path) -> np.ndarray:
    """The rows ``--view`` keeps; an error when the views are unknown or none is of the chosen view."""
    keep = np.ones(len(views), dtype=bool)
    if chosen_view != "all":
        if view_source is None:
            raise OCLError(
                f"--view {chosen_view}: {csv_path} says no image's view (no Frontal/Lateral or AP/PA column, no 'frontal' "
                "or 'lateral' in the paths); add a Frontal/Lateral column or drop --view"
            )
        keep = views == chosen_view
        if not keep.any():
            raise OCLError(f"--view {chosen_view}: {csv_path} has no {chosen_view} image; pass --view all or another view")
    return keep


def _image_paths(relative: pd.Series, csv_path: Path) -> list[str]:
    """The images' absolute paths, every one of which must exist."""
    paths, base = _resolve_paths(relative, csv_path)
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise OCLError(
            f"{len(missing)} image(s) listed in {csv_path} are missing under {base} "
            f"(first: {', '.join(missing[:3])}); Path is read relative to the CSV's folder or the folder above it, "
            "so fix the paths or remove their rows"
        )
    return paths


def _label_table(
    relative: pd.Series, paths: list[str], values: np.ndarray, findings: list[str], policy: str, views: np.ndarray
) -> pd.DataFrame:
    """One row per image: its positive findings and ignored findings under the ``--uncertain`` policy."""
    positive_cells = (values == 1) | ((values == -1) if policy == "ones" else False)
    ignored_cells = (values == -1) if policy == "ignore" else np.zeros_like(positive_cells)
    labels = [tuple(f for f, on in zip(findings, row) if on) for row in positive_cells]
    ignored = [tuple(f for f, on in zip(findings, row) if on) for row in ignored_cells]
    return pd.DataFrame({"image": relative, "path": paths, "labels": labels, "ignored": ignored, "view": views})


def _add_patients(table: pd.DataFrame, raw: pd.DataFrame, relative: pd.Series, paths: list[str]) -> list[str]:
    """Fill ``table["patient"]`` from a patient column, else the path, else the files; and the note saying how."""
    patient_column = _column(raw, *_PATIENT_COLUMNS)
    if patient_column is not None:
        table["patient"] = raw[patient_column].str.strip().replace("", None).to_numpy(dtype=object)
        return []
    table["patient"] = [(m.group(1).lower() if (m := _PATIENT_IN_PATH.search(p)) else None) for p in relative]
    if not table["patient"].isna().any():
        return []
    unknown = table["patient"].isna().to_numpy()
    from_files, note = patients_from_files([p for p, u in zip(paths, unknown) if u])
    table.loc[unknown, "patient"] = pd.Series(from_files, dtype=object).to_numpy()
    return [note] if note else []


def _add_split(table: pd.DataFrame, raw: pd.DataFrame, csv_path: Path, split: str, seed: int) -> tuple[pd.DataFrame, str]:
    """The table with its split column (the CSV's, re-drawn for --split patient, or seeded), and its source kind."""
    if split == "patient" and table["patient"].isna().all():
        raise OCLError(
            f"--split patient: {csv_path} has no patient IDs (no patient column, no patientNNNNN folder in Path, no DICOM "
            "PatientID), so it cannot be split by patient; add a patient column or drop --split patient"
        )
    split_column = _column(raw, "split")
    if split_column is None:
        table["split"] = patient_split(split_keys(table), SEEDED_FRACTIONS, seed)
        return table, "seeded"
    given = raw[split_column].str.strip()
    bad = sorted({s for s in given if s.lower() not in SPLIT_NAMES})
    if bad:
        raise OCLError(f"label file {csv_path}: unknown split {bad[0]!r}; use train, val or test")
    table["split"] = [SPLIT_NAMES[s.lower()] for s in given]
    if split == "patient":
        return resplit_by_patient(table, seed), RESPLIT
    return table, "given"


def load_chexpert(
    csv_path: Path,
    *,
    name: str | None = None,
    seed: int = 0,
    split: str = "given",
    positive: str | None = None,
    uncertain: str | None = None,
    view: str | None = None,
    detected: bool = False,
) -> Dataset:
    """Load a CheXpert-style label table (see the module docstring).

    Args:
        csv_path: the CSV.
        seed, split, positive: as for every adapter (see :func:`sweep.data.load_dataset`).
        uncertain: ``ones``, ``zeros`` or ``ignore`` (None: ``ones``); see :data:`UNCERTAIN_POLICIES`.
        view: ``all``, ``frontal`` or ``lateral`` (None: ``all``).
        detected: the format was detected from the header rather than named (``--labels``); a note says so.

    Raises:
        OCLError: for an unreadable CSV, missing Path or finding columns, a finding cell that is not
            1, 0, -1 or blank, a view that keeps no image, missing image files, or a bad ``--positive``.
    """
    policy, chosen_view = uncertain or "ones", view or "all"
    raw = _read(csv_path)
    path_column, findings = _finding_columns(raw, csv_path)
    values = _values(raw, findings, csv_path)
    views, view_source = _views(raw)
    notes: list[str] = [_detected_note(findings)] if detected else []
    keep = _view_mask(views, view_source, chosen_view, csv_path)
    view_note = _view_note(views, view_source, chosen_view, int(keep.sum()))
    raw, values, views = raw[keep].reset_index(drop=True), values[keep], views[keep]
    notes.append(_uncertain_note(values, policy, uncertain is not None))  # of the images kept
    notes += [view_note] if view_note else []
    relative = raw[path_column].str.strip()
    paths = _image_paths(relative, csv_path)
    table = _label_table(relative, paths, values, findings, policy, views)
    names = {key: _column(raw, key.lower()) or "" for key in ("Sex", "Age", "AP/PA")}
    table = table.assign(**demographics(raw, sex=names["Sex"], age=names["Age"], position=names["AP/PA"]))
    notes += _add_patients(table, raw, relative, paths)
    table, source_kind = _add_split(table, raw, csv_path, split, seed)

    default_task = "multilabel"
    if positive is not None:
        default_task = f"binary:{check_positive(positive, findings, csv_path)}"
        notes.append(f"positive class: {positive} (negative: every other image), as --positive asks")
    return Dataset(
        name=name or _name(csv_path),
        root=csv_path.parent,
        table=table[["image", "path", "patient", "labels", "split", "ignored", "view", *(c for c in DEMOGRAPHICS if c in table)]],
        classes=tuple(findings),
        split_source=source_kind,
        has_negative_class=False,
        modality="chest x-ray",
        default_task=default_task,
        warnings=split_warnings(table, csv_path, source_kind),
        notes=tuple(notes),
    )


def _name(csv_path: Path) -> str:
    """``train.csv`` in ``CheXpert-v1.0-small/`` is ``CheXpert-v1.0-small-train``; other CSVs keep their stem."""
    generic = csv_path.stem.lower() in SPLIT_NAMES or csv_path.stem.lower() in {"labels", "label"}
    return f"{csv_path.parent.name}-{csv_path.stem}" if generic and csv_path.parent.name else csv_path.stem
