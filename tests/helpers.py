"""Paths to the test data and small helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import csv
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
FIXTURES_DIR = TESTS_DIR / "fixtures"
FULL_TABLE = FIXTURES_DIR / "Data_Entry_2017_v2020_full.csv.gz"
OFFICIAL_SPLIT_DIR = FIXTURES_DIR / "official_split"
NIH_FULL_DIR = FIXTURES_DIR / "nih-full"
SAMPLE_DIR = TESTS_DIR.parent / "sweep" / "sample" / "nih-cxr14"
SAMPLE_CSV = SAMPLE_DIR / "Data_Entry_2017.csv"
SAMPLE_IMAGES = SAMPLE_DIR / "images"


def files_under(folder: Path) -> list[Path]:
    """Every plain file below ``folder`` (hidden temporaries included)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def sample_rows() -> tuple[list[str], list[list[str]]]:
    """The embedded sample's label table: header and rows, as NIH wrote them."""
    with open(SAMPLE_CSV, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, list(reader)


def sample_names_with(label: str) -> list[str]:
    """Sample images whose Finding Labels cell is exactly ``label``."""
    return [row[0] for row in sample_rows()[1] if row[1] == label]


def pseudonyms(patient_ids) -> list:
    """The pseudonyms ``load_dataset`` gives these patient IDs under this test's key (None stays None)."""
    import pandas as pd

    from sweep.data import pseudonym_key, pseudonymise

    return pseudonymise(pd.Series(list(patient_ids), dtype=object), pseudonym_key()).tolist()
