"""benchmarks/make_chestxray14.py, the stand-in for the real download: NIH's exact layout and
label table, whole patients, other people with ``--patient-offset``, and a weak signal in the pixels."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from sweep.data import DataOptions, load_dataset

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def _generate(out: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "make_chestxray14.py"), str(out), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_generated_set_has_nih_layout_its_label_table_and_whole_patients(tmp_path):
    out = tmp_path / "nih"
    printed = _generate(out, "--images", "3000")
    table = pd.read_csv(out / "Data_Entry_2017.csv", dtype=str, keep_default_na=False)
    nih = pd.read_csv(FIXTURES / "Data_Entry_2017_v2020_full.csv.gz", dtype=str, keep_default_na=False)
    assert list(table.columns) == list(nih.columns)
    assert 3000 <= len(table) < 3000 + 184  # whole patients: at most one patient's images over
    merged = table.merge(nih, on="Image Index", suffixes=("", "_nih"))
    assert len(merged) == len(table) and (merged["Finding Labels"] == merged["Finding Labels_nih"]).all()
    kept = set(table["Patient ID"])
    assert len(nih[nih["Patient ID"].isin(kept)]) == len(table)  # every image of each kept patient
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(table["Image Index"])
    listed = [(out / name).read_text().split() for name in ("train_val_list.txt", "test_list.txt")]
    assert sorted(listed[0] + listed[1]) == sorted(table["Image Index"])
    with gzip.open(FIXTURES / "official_split" / "test_list.txt.gz", "rt") as official:
        assert set(listed[1]) == set(official.read().split()) & set(table["Image Index"])
    with Image.open(out / "images" / table["Image Index"].iloc[0]) as image:
        assert image.mode == "L" and image.size == (32, 32)
    assert f"{len(table):,} images of {len(kept):,} patients" in printed

    dataset = load_dataset(DataOptions.of(out))  # OCL reads it as the NIH download it imitates
    assert len(dataset) == len(table) and dataset.task("multilabel").outputs[0] == "Atelectasis"


def test_the_pixels_carry_a_weak_signal_of_each_finding(tmp_path):
    """A finding's blob is there on average (its place is brighter in positives), yet far from obvious."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from make_chestxray14 import FINDINGS, blob_centres
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    out = tmp_path / "nih"
    _generate(out, "--images", "3000")
    table = pd.read_csv(out / "Data_Entry_2017.csv", dtype=str, keep_default_na=False)
    pixels = np.stack([np.asarray(Image.open(out / "images" / name), np.float64) for name in table["Image Index"]])
    effusion = FINDINGS.index("Effusion")
    y, x = np.rint(blob_centres(32, 0)[effusion]).astype(int)
    value = pixels[:, y, x]
    positive = table["Finding Labels"].str.contains("Effusion").to_numpy()
    gap = value[positive].mean() - value[~positive].mean()
    assert 10 < gap < 40, gap  # the blob adds up to 28 grey levels...
    assert gap < value.std()  # ...under a background that varies more than that


def test_patient_offset_makes_other_people(tmp_path):
    _generate(tmp_path / "a", "--images", "300")
    _generate(tmp_path / "b", "--images", "300", "--seed", "1", "--patient-offset", "40000")
    a, b = (pd.read_csv(tmp_path / name / "Data_Entry_2017.csv", dtype=str) for name in ("a", "b"))
    assert not set(a["Patient ID"]) & set(b["Patient ID"]) and not set(a["Image Index"]) & set(b["Image Index"])
    assert b["Image Index"].str.match(r"^000[4-7]\d{4}_\d{3}\.png$").all()
    assert (b["Patient ID"].astype(int) > 40000).all()
