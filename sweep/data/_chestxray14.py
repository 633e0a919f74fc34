"""The NIH ChestX-ray14 adapter: reads a download laid out exactly as NIH publishes it.

Layout::

    ROOT/Data_Entry_2017.csv            (or Data_Entry_2017_v2020.csv; either header variant)
    ROOT/images/*.png                   (or ROOT/images_001/images/ ... ROOT/images_012/images/)
    ROOT/train_val_list.txt             (optional, official split)
    ROOT/test_list.txt                  (optional, official split)

With the official lists, test is NIH's test list and validation is carved out of train_val by
patient (seeded); patients the lists put in both are counted in a warning, and ``--split
patient`` re-draws the listed images by patient. Without the lists, patients are split 70/10/20
(seeded).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from sweep.data._dataset import RESPLIT, Dataset
from sweep.data._demographics import DEMOGRAPHICS, demographics
from sweep.data._label_tasks import FINDINGS, NO_FINDING
from sweep.data._positive import check_positive
from sweep.data._split import SEEDED_FRACTIONS, check_split_policy, patient_split, resplit_by_patient, split_warnings
from sweep.errors import OCLError

LABEL_FILES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
LIST_FILES = ("train_val_list.txt", "test_list.txt")
REQUIRED_COLUMNS = ("Image Index", "Finding Labels", "Patient ID")
VAL_FRACTION_OF_TRAIN_VAL = 0.125  # ~10% of all patients, as in the 70/10/20 fallback


def is_chestxray14(root: Path) -> bool:
    """Whether a directory looks like an NIH download (it holds one of NIH's label files)."""
    return any((root / name).is_file() for name in LABEL_FILES)


def is_chestxray14_without_labels(root: Path) -> bool:
    """Whether a directory holds only NIH image folders (images/ or images_NNN/) but no label file."""
    subdirs = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return bool(subdirs) and all(n == "images" or re.fullmatch(r"images_\d+", n) for n in subdirs)


def read_labels(csv_path: Path) -> pd.DataFrame:
    """Read NIH's label table into ``image``, ``patient`` and ``labels`` columns.

    Both published header variants work: the 2017 one (trailing comma) and the v2020 one; only
    the image, finding and patient columns are read.
    """
    try:
        raw = pd.read_csv(csv_path, index_col=False, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise OCLError(f"label file {csv_path} not found; pass --data to a ChestX-ray14 folder") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OCLError(
            f"label file {csv_path} cannot be read ({reason}); replace it with NIH's Data_Entry_2017_v2020.csv"
        ) from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise OCLError(
            f"label file {csv_path} lacks the column(s) {', '.join(repr(m) for m in missing)}; "
            f"NIH's Data_Entry_2017 CSV has {', '.join(REQUIRED_COLUMNS)}"
        )
    labels = []
    known = set(FINDINGS)
    for row, text in enumerate(raw["Finding Labels"]):
        parts = tuple(p.strip() for p in text.split("|") if p.strip())
        if parts == (NO_FINDING,):
            parts = ()
        unknown = [p for p in parts if p not in known]
        if unknown:
            raise OCLError(
                f"label file {csv_path}, row {row + 2}: unknown finding {unknown[0]!r}; "
                f"valid findings: {NO_FINDING}, {', '.join(FINDINGS)}"
            )
        labels.append(tuple(sorted(parts, key=FINDINGS.index)))
    table = pd.DataFrame(
        {
            "image": raw["Image Index"].str.strip(),
            "patient": raw["Patient ID"].str.strip().str.lstrip("0").replace("", "0"),
            "labels": labels,
        }
    )
    return table.assign(**demographics(raw, sex="Patient Gender", age="Patient Age", position="View Position"))


def _read_list(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def assign_splits(
    labels: pd.DataFrame,
    train_val: set[str] | None = None,
    test: set[str] | None = None,
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """Add a ``split`` column: official lists when given, else a seeded patient-wise 70/10/20.

    With the official lists, images in neither list are dropped (a partial download), and
    validation patients are drawn from train_val patients, so no patient crosses splits.
    """
    table = labels.copy()
    if train_val is None or test is None:
        table["split"] = patient_split(table["patient"], SEEDED_FRACTIONS, seed)
        return table
    in_test = table["image"].isin(test)
    in_train_val = table["image"].isin(train_val)
    table = table[in_test | in_train_val].reset_index(drop=True)
    in_test = table["image"].isin(test).to_numpy()
    split = pd.Series("test", index=table.index, dtype=object)
    train_val_rows = ~in_test
    split[train_val_rows] = patient_split(
        table.loc[train_val_rows, "patient"],
        {"train": 1 - VAL_FRACTION_OF_TRAIN_VAL, "val": VAL_FRACTION_OF_TRAIN_VAL},
        seed,
    )
    table["split"] = split.to_numpy()
    return table


def _find_images(root: Path) -> dict[str, str]:
    """Map image file name to path over ROOT/images and NIH's ROOT/images_NNN/images folders."""
    folders = [root / "images"] + sorted(p / "images" for p in root.glob("images_*") if p.is_dir())
    found: dict[str, str] = {}
    for folder in folders:
        if folder.is_dir():
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_file():
                        found.setdefault(entry.name, entry.path)
    return found


def load_chestxray14(
    root: Path,
    *,
    name: str | None = None,
    seed: int = 0,
    split: str = "given",
    positive: str | None = None,
) -> Dataset:
    """Load an NIH ChestX-ray14 folder (see the module docstring for the layout).

    ``split="patient"`` re-draws the official split by patient (seeded 70/10/20, the same images);
    without the lists the split is already drawn that way. ``positive`` makes the default task
    ``binary:<positive>`` instead of ``any``.
    """
    split = check_split_policy(split)
    default_task, notes = "any", ()
    if positive is not None:
        default_task = f"binary:{check_positive(positive, FINDINGS, root)}"
        notes = (f"positive class: {positive} (negative: every other image), as --positive asks",)
    csv_path = next((root / n for n in LABEL_FILES if (root / n).is_file()), root / LABEL_FILES[1])
    labels = read_labels(csv_path)
    lists = [root / n for n in LIST_FILES]
    if all(p.is_file() for p in lists):
        table = assign_splits(labels, _read_list(lists[0]), _read_list(lists[1]), seed=seed)
        source = "official"
    else:
        table = assign_splits(labels, seed=seed)
        source = "seeded"
    if table.empty:
        raise OCLError(f"label file {csv_path} lists no images of the official split lists in {root}")
    if split == "patient" and source == "official":
        table = resplit_by_patient(table, seed)
        source = RESPLIT
    found = _find_images(root)
    paths = table["image"].map(found)
    missing = table.loc[paths.isna(), "image"].tolist()
    if missing:
        raise OCLError(
            f"{len(missing)} image(s) listed in {csv_path.name} are missing under {root}/images "
            f"(first: {', '.join(missing[:3])}); extract NIH's images_NNN.tar.gz there or remove their rows"
        )
    table.insert(1, "path", paths.to_numpy())
    return Dataset(
        name=name or root.name,
        root=root,
        table=table[["image", "path", "patient", "labels", "split", *(c for c in DEMOGRAPHICS if c in table.columns)]],
        classes=FINDINGS,
        split_source=source,
        default_task=default_task,
        warnings=split_warnings(table, root, source),
        notes=notes,
    )
