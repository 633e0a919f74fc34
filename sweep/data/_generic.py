"""The generic adapter, for other modalities: class folders or a CSV.

Folder layouts::

    ROOT/<class>/IMAGE                  (split drawn here, patient-wise when patients are known)
    ROOT/<split>/<class>/IMAGE          (split given: train, val or valid, test)

IMAGE is any format OCL reads (:data:`sweep.data.IMAGE_FORMATS`: PNG, JPEG, BMP, TIFF, GIF,
WebP, DICOM; a DICOM file may have no suffix), in the class folder or below it.

CSV: columns ``path`` and ``label`` (``|`` separates several labels), optional ``patient`` and
``split``. Relative paths are relative to the CSV's folder.

Patients are known from a ``patient`` column, else from a DICOM file's ``PatientID``, else from
NIH-style file names ``PPPPPPPP_FFF.png``; without any, every split is per image and a warning says
so. When a dataset brings its own split, patients found in more than one split are counted and
reported in one warning, because they make validation and test scores look better than they
are; ``split="patient"`` (``--split patient``) re-draws such a split by patient.

With two classes the default task is ``binary:<positive>``, where the positive class is the one
that is not ``normal`` (see :mod:`sweep.data._positive`) or the one ``--positive`` names.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from sweep.data._dataset import RESPLIT, Dataset
from sweep.data._decode import IMAGE_SUFFIXES, formats_text
from sweep.data._demographics import CSV_COLUMN, DEMOGRAPHICS, demographics
from sweep.data._dicom import dicom_facts, is_dicom
from sweep.data._positive import check_positive, choose_positive
from sweep.data._split import (
    SEEDED_FRACTIONS,
    check_split_policy,
    patient_split,
    resplit_by_patient,
    split_keys,
    split_warnings,
)
from sweep.errors import OCLError

SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
_NIH_NAME = re.compile(r"^(\d{8})_\d{3}\.\w+$")


def _patient_from_name(path: str) -> str | None:
    match = _NIH_NAME.match(Path(path).name)
    return str(int(match.group(1))) if match else None


def patients_from_files(paths: list[str], demographics: dict | None = None) -> tuple[list[str | None], str | None]:
    """Each image's patient from the file itself: a DICOM's PatientID, else an NIH-style name; and a
    note saying how many DICOM files gave theirs (None without DICOM files). With ``demographics``
    (a dict), the DICOM files' sex, age and view position fill it, one list per column."""
    dicoms = [i for i, p in enumerate(paths) if is_dicom(p)]
    patients = [_patient_from_name(p) for p in paths]
    if not dicoms:
        return patients, None
    facts = dicom_facts([paths[i] for i in dicoms])
    for index, found in zip(dicoms, facts):
        patients[index] = found["patient"]
    if demographics is not None:
        for column, missing in (("sex", None), ("age", float("nan")), ("position", None)):
            values = [missing] * len(paths)
            for index, found in zip(dicoms, facts):
                values[index] = found[column]
            if any(v is not None and v == v for v in values):
                demographics[column] = values
    known = [patients[i] for i in dicoms if patients[i] is not None]
    note = (
        f"patients: the PatientID of {len(known):,} of {len(dicoms):,} DICOM file(s), {len(set(known)):,} distinct "
        "(a CSV with a patient column overrides them)"
    )
    return patients, note


def _is_image(path: Path) -> bool:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    # DICOM exports often have no suffix (IM000001) or a UID as name (1.2.840.113619.2.55); DICOMDIR
    # is their index, not an image
    return path.name.upper() != "DICOMDIR" and is_dicom(path)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and _is_image(p))


def _no_images_message(root: Path) -> str:
    """Why a folder gave no images, teaching every format and layout OCL reads."""
    loose = [p for p in root.iterdir() if p.is_file() and _is_image(p)]
    others = sorted({p.suffix.lower() or p.name for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")})
    if loose:
        hint = f"; the {len(loose)} image(s) directly in {root} need a folder per class (ROOT/<class>/IMAGE)"
    elif others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        hint = f"; its files are none of these ({shown})"
    else:
        hint = "; the folder holds no files"
    return (
        f"--data {root}: no images found; OCL reads {formats_text()} in ROOT/<class>/ or ROOT/<split>/<class>/ "
        f"folders, a CSV with path,label columns or CheXpert's columns, or an NIH folder with Data_Entry_2017.csv{hint}"
    )


def _read_folders(root: Path) -> pd.DataFrame:
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = [p for p in subdirs if p.name.lower() in SPLIT_NAMES]
    rows = []
    if split_dirs:
        for split_dir in split_dirs:
            for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
                for image in _images_in(class_dir):
                    rows.append((image, class_dir.name, SPLIT_NAMES[split_dir.name.lower()]))
    else:
        for class_dir in subdirs:
            for image in _images_in(class_dir):
                rows.append((image, class_dir.name, None))
    if not rows:
        raise OCLError(_no_images_message(root))
    return pd.DataFrame(
        {
            "image": [str(p.relative_to(root)) for p, _, _ in rows],
            "path": [str(p.resolve()) for p, _, _ in rows],
            "label": [c for _, c, _ in rows],
            "split": [s for _, _, s in rows],
        }
    )


def _read_csv(csv_path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OCLError(f"label file {csv_path} cannot be read ({reason}); it must be a CSV with path,label columns") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in ("path", "label") if c not in raw.columns]
    if missing:
        raise OCLError(
            f"label file {csv_path} lacks the column(s) {', '.join(missing)}; "
            "a generic CSV needs path,label (and optionally patient,split); a CheXpert-style CSV needs Path and "
            "one column per finding (--labels chexpert)"
        )
    base = csv_path.parent
    paths = [str((base / p).resolve()) if not Path(p).is_absolute() else p for p in raw["path"]]
    table = pd.DataFrame({"image": raw["path"], "path": paths, "label": raw["label"]})
    if "patient" in raw.columns:
        table["patient"] = raw["patient"].replace("", None)
    for column in raw.columns:  # the others, for subgroups only (ocl evaluate --subgroup); never a model input
        if column not in ("path", "label", "patient", "split"):
            table[CSV_COLUMN + column] = raw[column].to_numpy()
    table = table.assign(**demographics(raw, sex="sex", age="age", position="position"))
    if "split" in raw.columns:
        bad = sorted({s for s in raw["split"] if s.lower() not in SPLIT_NAMES})
        if bad:
            raise OCLError(f"label file {csv_path}: unknown split {bad[0]!r}; use train, val or test")
        table["split"] = [SPLIT_NAMES[s.lower()] for s in raw["split"]]
    else:
        table["split"] = None
    missing_files = [p for p in table["path"] if not Path(p).is_file()]
    if missing_files:
        raise OCLError(
            f"{len(missing_files)} image(s) listed in {csv_path} are missing on disk "
            f"(first: {', '.join(missing_files[:3])}); fix the paths or remove their rows"
        )
    return table


def _require_patients(table: pd.DataFrame, source: Path, split: str) -> None:
    """``--split patient`` needs patient IDs: an error when no image has one."""
    if split == "patient" and table["patient"].isna().all():
        raise OCLError(
            f"--split patient: {source} has no patient IDs (no patient column, no DICOM PatientID, no NIH-style "
            "PPPPPPPP_FFF.png file names), so it cannot be split by patient; add a patient column "
            "(a CSV with path,label,patient) or drop --split patient"
        )


def _add_labels(table: pd.DataFrame, source: Path) -> tuple[str, ...]:
    """Split each ``label`` cell at ``|`` into ``table["labels"]``; the classes, at least two of them."""
    labels = [tuple(sorted(part.strip() for part in text.split("|") if part.strip())) for text in table["label"]]
    table["labels"] = labels
    classes = tuple(sorted({c for lab in labels for c in lab}))
    if len(classes) < 2 and not any(len(lab) == 0 for lab in labels):
        raise OCLError(
            f"--data {source}: found only the class {classes[0] if classes else '(none)'}; a classifier needs two classes or more"
        )
    return classes


def _default_task(classes: tuple[str, ...], positive: str | None, source: Path) -> tuple[str, list[str]]:
    """The default task (binary with two classes or a ``--positive``, else multilabel) and any note saying why."""
    if len(classes) == 2:
        chosen, note = choose_positive(classes, positive, source)
        return f"binary:{chosen}", [note]
    if positive is not None:
        task = f"binary:{check_positive(positive, classes, source)}"
        return task, [f"positive class: {positive} (negative: every other image), as --positive asks"]
    return ("multilabel" if len(classes) > 2 else f"binary:{classes[-1]}"), []


def _assign_split(table: pd.DataFrame, source: Path, split: str, seed: int) -> tuple[pd.DataFrame, str]:
    """The table with every row's split (drawn by patient when none is given) and the split's source kind."""
    if table["split"].isna().all():
        table["split"] = patient_split(split_keys(table), SEEDED_FRACTIONS, seed)
        return table, "seeded"
    if table["split"].isna().any():
        raise OCLError(f"--data {source}: some rows have a split and some do not; give every row a split or none")
    if split == "patient":
        return resplit_by_patient(table, seed), RESPLIT
    return table, "given"


def load_generic(
    source: Path,
    *,
    name: str | None = None,
    seed: int = 0,
    split: str = "given",
    positive: str | None = None,
) -> Dataset:
    """Load a class-folder directory or a ``path,label[,patient,split]`` CSV.

    ``split="patient"`` re-draws a given split by patient (seeded 70/10/20); it needs patient IDs.
    ``positive`` names the positive class of the default binary task (see :mod:`sweep.data._positive`).
    """
    split = check_split_policy(split)
    table = _read_csv(source) if source.is_file() else _read_folders(source)
    notes: list[str] = []
    if "patient" not in table.columns:
        from_files: dict = {}
        patients, note = patients_from_files(table["path"].tolist(), from_files)
        table["patient"] = patients
        for column, values in from_files.items():  # read for subgroup analysis only, never a model input
            if column not in table.columns:  # a CSV's own column wins over the DICOM tag
                table[column] = values
        notes += [note] if note else []
    _require_patients(table, source, split)
    classes = _add_labels(table, source)
    default_task, task_notes = _default_task(classes, positive, source)
    notes += task_notes
    table, source_kind = _assign_split(table, source, split, seed)
    return Dataset(
        name=name or source.stem,
        root=source if source.is_dir() else source.parent,
        table=table[
            ["image", "path", "patient", "labels", "split", *(c for c in DEMOGRAPHICS if c in table)]
            + [c for c in table.columns if c.startswith(CSV_COLUMN)]
        ].reset_index(drop=True),
        classes=classes,
        split_source=source_kind,
        has_negative_class=False,
        modality="image",
        default_task=default_task,
        warnings=split_warnings(table, source, source_kind),
        notes=tuple(notes),
    )
