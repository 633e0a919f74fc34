"""The NIH ChestX-ray14 adapter: official and seeded patient-wise splits, both CSV header variants,
NIH's images_NNN/images layout, and the numbers ``ocl data info`` reports."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import FULL_TABLE, OFFICIAL_SPLIT_DIR, SAMPLE_CSV, SAMPLE_DIR, sample_rows

from sweep.data import FINDINGS, NO_FINDING, SPLITS, assign_splits, load_dataset, patient_overlap, read_labels, summarize

OFFICIAL_TRAIN_VAL = 86_524
OFFICIAL_TEST = 25_596
ALL_IMAGES = 112_120


@pytest.fixture(scope="module")
def full_labels() -> pd.DataFrame:
    return read_labels(FULL_TABLE)


@pytest.fixture(scope="module")
def official_lists(tmp_path_factory) -> tuple[set[str], set[str]]:
    """NIH's train_val_list.txt and test_list.txt, decompressed as a user would have them."""
    folder = tmp_path_factory.mktemp("official-lists")
    lists = []
    for name in ("train_val_list.txt", "test_list.txt"):
        target = folder / name
        with gzip.open(OFFICIAL_SPLIT_DIR / f"{name}.gz", "rb") as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
        lists.append({line.strip() for line in target.read_text().splitlines() if line.strip()})
    return lists[0], lists[1]


def patients_by_split(table: pd.DataFrame) -> dict[str, set[str]]:
    return {split: set(table.loc[table["split"] == split, "patient"]) for split in SPLITS}


def assert_patient_wise(table: pd.DataFrame) -> None:
    by_split = patients_by_split(table)
    assert by_split["train"] and by_split["val"] and by_split["test"]
    assert not by_split["train"] & by_split["val"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["val"] & by_split["test"]


def test_full_table_reads_every_row(full_labels):
    assert len(full_labels) == ALL_IMAGES
    assert full_labels["image"].is_unique
    # 30,805 patients in NIH's table; ids lose their zero padding ("00000001" -> "1").
    assert full_labels["patient"].nunique() == 30_805
    assert set(full_labels.loc[full_labels["image"] == "00000001_001.png", "labels"]) == {("Cardiomegaly", "Emphysema")}
    no_finding = (full_labels["labels"].map(len) == 0).sum()
    assert no_finding == 60_361  # NIH's published No Finding count


@pytest.mark.parametrize("seed", [0, 7])
def test_official_split_sizes_and_no_shared_patients(full_labels, official_lists, seed):
    train_val, test = official_lists
    assert len(train_val) == OFFICIAL_TRAIN_VAL and len(test) == OFFICIAL_TEST

    table = assign_splits(full_labels, train_val, test, seed=seed)

    counts = table["split"].value_counts()
    assert counts["train"] + counts["val"] == OFFICIAL_TRAIN_VAL
    assert counts["test"] == OFFICIAL_TEST
    assert set(table.loc[table["split"] == "test", "image"]) == test
    assert set(table.loc[table["split"] != "test", "image"]) == train_val
    assert_patient_wise(table)
    # Validation is ~1/8 of the train_val patients, so ~10% of all patients, as documented.
    by_split = patients_by_split(table)
    share = len(by_split["val"]) / (len(by_split["train"]) + len(by_split["val"]))
    assert share == pytest.approx(0.125, abs=0.002)


def test_official_lists_share_no_patient_and_re_split_keeps_every_listed_image(full_labels, official_lists):
    # NIH's lists are patient-wise, so the official split never warns about shared patients;
    # --split patient re-draws the same images 70/10/20 by patient.
    from sweep.data import resplit_by_patient
    from sweep.data._split import cross_split_warning

    official = assign_splits(full_labels, *official_lists, seed=0)
    assert patient_overlap(official)["any"] == 0 and cross_split_warning(official, "nih") is None

    resplit = resplit_by_patient(official, seed=0)

    assert resplit["image"].tolist() == official["image"].tolist()
    assert_patient_wise(resplit)
    patients = resplit.groupby("split")["patient"].nunique() / resplit["patient"].nunique()
    assert patients.to_dict() == pytest.approx({"train": 0.7, "val": 0.1, "test": 0.2}, abs=0.001)


def test_official_split_validation_depends_only_on_seed(full_labels, official_lists):
    train_val, test = official_lists
    first = assign_splits(full_labels, train_val, test, seed=3)
    again = assign_splits(full_labels, train_val, test, seed=3)
    other = assign_splits(full_labels, train_val, test, seed=4)
    assert first["split"].tolist() == again["split"].tolist()
    assert first["split"].tolist() != other["split"].tolist()
    assert (first["split"] == "test").tolist() == (other["split"] == "test").tolist()


def test_images_in_neither_official_list_are_dropped(full_labels, official_lists):
    train_val, test = official_lists
    kept_train_val, kept_test = set(sorted(train_val)[:300]), set(sorted(test)[:100])
    table = assign_splits(full_labels, kept_train_val, kept_test, seed=0)
    assert len(table) == 400
    assert set(table.loc[table["split"] == "test", "image"]) == kept_test
    assert set(table.loc[table["split"] != "test", "image"]) == kept_train_val


def test_seeded_split_is_patient_wise_70_10_20_and_deterministic(full_labels):
    first = assign_splits(full_labels, seed=11)
    again = assign_splits(full_labels, seed=11)
    other = assign_splits(full_labels, seed=12)

    assert first["split"].notna().all()
    assert set(first["split"]) == set(SPLITS)
    assert_patient_wise(first)
    assert first["split"].tolist() == again["split"].tolist()
    assert first["split"].tolist() != other["split"].tolist()
    patients = first.groupby("split")["patient"].nunique() / first["patient"].nunique()
    assert patients.to_dict() == pytest.approx({"train": 0.7, "val": 0.1, "test": 0.2}, abs=0.001)


def test_seeded_split_does_not_depend_on_row_order(full_labels):
    shuffled = full_labels.sample(frac=1.0, random_state=1).reset_index(drop=True)
    original = assign_splits(full_labels, seed=5).set_index("image")["split"]
    reordered = assign_splits(shuffled, seed=5).set_index("image")["split"]
    assert reordered.reindex(original.index).tolist() == original.tolist()


# --- header variants --------------------------------------------------------------------------


def write_variant(target: Path, variant: str) -> None:
    """The sample table with NIH's 2017 trailing-comma header (and, for one variant, rows)."""
    lines = SAMPLE_CSV.read_text().splitlines()
    header, rows = lines[0] + ",", lines[1:]
    if variant == "2017-header-and-rows":
        rows = [row + "," for row in rows]
    target.write_text("\n".join([header, *rows]) + "\n")


def nih_copy(root: Path, csv_name: str) -> Path:
    root.mkdir()
    (root / "images").symlink_to(SAMPLE_DIR / "images", target_is_directory=True)
    for name in ("train_val_list.txt", "test_list.txt"):
        shutil.copyfile(SAMPLE_DIR / name, root / name)
    return root / csv_name


@pytest.mark.parametrize("csv_name", ["Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv"])
@pytest.mark.parametrize("variant", ["2017-header-and-rows", "2017-header-only"])
def test_2017_header_variant_loads_like_v2020(tmp_path, variant, csv_name):
    target = nih_copy(tmp_path / "nih", csv_name)
    write_variant(target, variant)
    assert target.read_text().splitlines()[0].endswith("OriginalImagePixelSpacing[x,y],")

    assert read_labels(target).equals(read_labels(SAMPLE_CSV))
    reference = load_dataset()
    copy = load_dataset(tmp_path / "nih")
    columns = ["image", "patient", "labels", "split"]
    assert copy.table[columns].equals(reference.table[columns])
    assert copy.split_source == "official"
    assert summarize(copy)["prevalence"] == summarize(reference)["prevalence"]
    assert copy.warnings == () and copy.cross_split_patients == 0


# --- NIH's images_NNN/images layout ------------------------------------------------------------


@pytest.mark.parametrize("lists", [True, False])
def test_images_nnn_layout(nih_folder, sample_table, lists):
    _, rows = sample_table
    names = [row[0] for row in rows[:40]]
    root = nih_folder(names, layout="images_NNN", lists=lists)

    dataset = load_dataset(root)

    assert dataset.table["image"].tolist() == names
    for image, path in zip(dataset.table["image"], dataset.table["path"], strict=True):
        assert Path(path).is_file() and Path(path).name == image
        assert Path(path).parent.parent.name in {"images_001", "images_002"}
    assert {Path(p).parent.parent.name for p in dataset.paths} == {"images_001", "images_002"}
    assert dataset.split_source == ("official" if lists else "seeded")
    if lists:
        official_test = set((SAMPLE_DIR / "test_list.txt").read_text().split())
        assert set(dataset.table.loc[dataset.table["split"] == "test", "image"]) == official_test & set(names)
    patients = patients_by_split(dataset.table)
    assert not (patients["train"] & patients["test"]) and not (patients["val"] & patients["test"])


# --- what `ocl data info` reports ---------------------------------------------------------------


@pytest.fixture(scope="module")
def expected_from_csv() -> dict:
    """Prevalence and majority-class accuracy computed straight from the sample CSV."""
    raw = pd.read_csv(SAMPLE_CSV, index_col=False)
    findings = raw["Finding Labels"].str.split("|")
    n = len(raw)
    prevalence = {f: sum(f in parts for parts in findings) / n for f in FINDINGS}
    prevalence[NO_FINDING] = sum(parts == [NO_FINDING] for parts in findings) / n
    majority = {"any": max(prevalence[NO_FINDING], 1 - prevalence[NO_FINDING])}
    majority.update({f"binary:{f}": max(p, 1 - p) for f, p in prevalence.items() if f != NO_FINDING})
    majority["multilabel"] = sum(max(prevalence[f], 1 - prevalence[f]) for f in FINDINGS) / len(FINDINGS)
    with open(SAMPLE_DIR / "test_list.txt") as handle:
        test = {line.strip() for line in handle if line.strip()}
    with open(SAMPLE_CSV, newline="") as handle:
        patients = {row["Patient ID"].lstrip("0") for row in csv.DictReader(handle)}
    return {
        "images": n,
        "patients": len(patients),
        "test_images": len(test),
        "prevalence": prevalence,
        "majority": majority,
    }


def test_summarize_matches_counts_from_the_csv(expected_from_csv):
    summary = summarize(load_dataset())
    assert summary["images"] == expected_from_csv["images"] == 638
    assert summary["patients"] == expected_from_csv["patients"]
    assert summary["splits"]["test"]["images"] == expected_from_csv["test_images"]
    assert sum(s["images"] for s in summary["splits"].values()) == 638
    assert summary["patient_overlap"]["any"] == 0
    assert summary["prevalence"] == pytest.approx(expected_from_csv["prevalence"], abs=1e-12)
    assert summary["majority_accuracy"] == pytest.approx(expected_from_csv["majority"], abs=1e-12)
    # The any-task baseline is the share of images with a finding: the accuracy a model must beat.
    assert summary["majority_accuracy"]["any"] == pytest.approx(1 - expected_from_csv["prevalence"][NO_FINDING])


def test_cli_info_json_matches_counts_from_the_csv(ocl, expected_from_csv):
    result = ocl("data", "info", "--format", "json", "--task", "binary:Pneumonia")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["images"] == expected_from_csv["images"]
    assert summary["patients"] == expected_from_csv["patients"]
    assert summary["task"] == "binary:Pneumonia"
    assert summary["prevalence"] == pytest.approx(expected_from_csv["prevalence"], abs=1e-12)
    assert summary["majority_accuracy"] == pytest.approx(expected_from_csv["majority"], abs=1e-12)


def test_cli_info_table_prints_the_baseline_to_beat(ocl, expected_from_csv):
    result = ocl("data", "info", "--task", "binary:Hernia")
    assert result.returncode == 0, result.stderr
    baseline = expected_from_csv["majority"]["binary:Hernia"]
    assert f"{baseline:.1%}" in result.stdout
    assert "638 images" in result.stdout


def test_a_folder_too_small_for_a_validation_split_is_warned_about(nih_folder):
    from sweep.data import load_dataset

    _, rows = sample_rows()
    dataset = load_dataset(nih_folder([row[0] for row in rows[:12]]))  # 12 images, 8 patients, seeded split
    if (dataset.table["split"] == "val").any():
        pytest.skip("this selection happens to give a validation image")
    assert any("the val split(s)" in w and "no images" in w for w in dataset.warnings)


def test_fingerprint_and_targets_are_unchanged_by_unknown_label_support():
    """Data without unknown labels keeps the fingerprint that names its stored studies, and no NaN."""
    import hashlib

    import numpy as np

    dataset = load_dataset()
    digest = hashlib.sha256()
    for image, labels, split in zip(dataset.table["image"], dataset.table["labels"], dataset.table["split"]):
        digest.update(f"{image}\t{'|'.join(labels)}\t{split}\n".encode())
    assert dataset.fingerprint() == digest.hexdigest()[:12]
    assert not dataset.has_unknown_labels and "ignored" not in dataset.table.columns
    for task in ("any", "multilabel", "binary:Effusion"):
        assert not np.isnan(dataset.targets(dataset.task(task))).any()
    assert summarize(dataset)["unknown_labels"] == {}
