"""Leakage is never silent: patients in several given splits are counted in one warning,
``--split patient`` re-draws the split by patient, data without patient IDs is said to be split per
image, and a two-class folder's positive class is the finding, not "normal".

The images are real sample radiographs; where a test needs patients with many images it copies them
under NIH-style names ``PPPPPPPP_FFF.png``, which is how the generic adapter knows the patient.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import SAMPLE_IMAGES, sample_names_with

from sweep.data import RESPLIT, load_dataset, looks_negative, patient_overlap, summarize
from sweep.errors import OCLError

SPLIT_FOLDERS = {"train": "train", "val": "valid", "test": "test"}

# Patient number -> the splits its images are in. Expected overlap: train/val 4, train/test 5,
# val/test 3, and 10 patients in more than one split; the other 20 patients stay in one split.
PLANTED = (
    [("train", "val")] * 3
    + [("train", "test")] * 4
    + [("val", "test")] * 2
    + [("train", "val", "test")]
    + [("train",)] * 14
    + [("val",)] * 2
    + [("test",)] * 4
)
EXPECTED_OVERLAP = {"train/val": 4, "train/test": 5, "val/test": 3, "any": 10}


def real_images(count: int) -> list[Path]:
    """``count`` distinct real sample radiographs (normal first, then findings)."""
    names = sample_names_with("No Finding") + sample_names_with("Infiltration") + sample_names_with("Effusion")
    assert len(names) >= count
    return [SAMPLE_IMAGES / name for name in names[:count]]


def build_shared_patient_folders(root: Path) -> list[str]:
    """ROOT/<split>/<class>/PPPPPPPP_FFF.png laid out as in PLANTED; returns every image's relative path."""
    images = iter(real_images(sum(len(splits) for splits in PLANTED)))
    written = []
    for patient, splits in enumerate(PLANTED, start=1):
        for follow_up, split in enumerate(splits):
            label = "normal" if (patient + follow_up) % 2 else "nodule"
            target = root / SPLIT_FOLDERS[split] / label / f"{patient:08d}_{follow_up:03d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(next(images), target)
            written.append(str(target.relative_to(root)))
    return written


def build_class_folders_without_patients(root: Path, classes=("normal", "nodule"), per_class: int = 10) -> None:
    """ROOT/<class>/imageN.png: real images under names that carry no patient."""
    images = iter(real_images(per_class * len(classes)))
    for label in classes:
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            shutil.copyfile(next(images), root / label / f"image{index}.png")


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# --- patients in more than one given split ----------------------------------------------------


def test_split_folders_that_share_patients_get_one_counted_warning(tmp_path):
    build_shared_patient_folders(tmp_path / "ds")

    dataset = load_dataset(tmp_path / "ds")

    assert dataset.split_source == "given"
    assert patient_overlap(dataset.table) == EXPECTED_OVERLAP
    assert dataset.cross_split_patients == 10 == summarize(dataset)["cross_split_patients"]
    (warning,) = dataset.warnings
    assert "\n" not in warning
    assert warning == (
        f"10 patients appear in more than one split (train/val 4, train/test 5, val/test 3) of {tmp_path / 'ds'}; "
        "their validation and test scores are optimistic; pass --split patient to re-split by patient"
    )


def test_split_patient_re_splits_by_patient_and_keeps_every_image(tmp_path):
    written = build_shared_patient_folders(tmp_path / "ds")
    given = load_dataset(tmp_path / "ds")

    resplit = load_dataset(tmp_path / "ds", split="patient")

    assert resplit.split_source == RESPLIT == "re-split by patient"
    assert resplit.cross_split_patients == 0 and patient_overlap(resplit.table)["any"] == 0
    assert resplit.warnings == ()
    assert sorted(resplit.table["image"]) == sorted(written) == sorted(given.table["image"])
    columns = ["image", "path", "patient", "labels"]
    assert resplit.table[columns].equals(given.table[columns])  # same rows, same order: only the split changed
    # Whole patients, 70/10/20 as for data without a split (30 patients: 21/3/6).
    per_patient = resplit.table.groupby("patient")["split"].agg(set)
    assert per_patient.map(len).max() == 1
    assert per_patient.map(lambda s: next(iter(s))).value_counts().to_dict() == {"train": 21, "val": 3, "test": 6}
    # Seeded: the same seed draws the same split, another seed another one.
    assert load_dataset(tmp_path / "ds", split="patient").table["split"].tolist() == resplit.table["split"].tolist()
    assert load_dataset(tmp_path / "ds", split="patient", seed=1).table["split"].tolist() != resplit.table["split"].tolist()


def test_split_patient_draws_what_the_adapter_draws_without_a_split(tmp_path):
    build_shared_patient_folders(tmp_path / "ds")
    flat = tmp_path / "flat"  # the same images without split folders: the adapter draws the split
    for image in (tmp_path / "ds").rglob("*.png"):
        target = flat / image.parent.name / image.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, target)

    def by_patient(dataset):
        return dataset.table.groupby("patient")["split"].first().to_dict()

    drawn = load_dataset(flat, seed=3)
    assert drawn.split_source == "seeded"
    assert by_patient(load_dataset(tmp_path / "ds", split="patient", seed=3)) == by_patient(drawn)
    # Data that came without a split is already split by patient: --split patient changes nothing.
    assert load_dataset(flat, seed=3, split="patient").table.equals(drawn.table)


def test_cli_warns_once_and_split_patient_removes_the_overlap(tmp_path, ocl):
    build_shared_patient_folders(tmp_path / "ds")

    given = ocl("data", "info", "--data", tmp_path / "ds", "--format", "json")
    assert given.returncode == 0, given.stderr
    warning = one_line(given.stderr)
    assert warning.startswith("warning: 10 patients appear in more than one split (train/val 4, train/test 5, val/test 3)")
    assert json.loads(given.stdout)["cross_split_patients"] == 10

    resplit = ocl("data", "info", "--data", tmp_path / "ds", "--split", "patient", "--format", "json")
    assert resplit.returncode == 0, resplit.stderr
    assert resplit.stderr == ""
    summary = json.loads(resplit.stdout)
    assert summary["cross_split_patients"] == 0 and summary["patient_overlap"]["any"] == 0
    assert summary["split_source"] == "re-split by patient"
    assert summary["images"] == json.loads(given.stdout)["images"] == sum(len(s) for s in PLANTED)

    table = ocl("data", "info", "--data", tmp_path / "ds", "--split", "patient")
    assert table.returncode == 0, table.stderr
    assert (
        "(re-split by patient)" in table.stdout
        and "patients in more than one split: 0 (train/val 0, train/test 0, val/test 0)" in table.stdout
    )


def test_cli_rejects_an_unknown_split_mode(tmp_path, ocl, cache_files):
    result = ocl("data", "info", "--split", "random")
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("error: ") and "random" in result.stderr
    assert cache_files() == []


def test_load_dataset_rejects_an_unknown_split_mode():
    with pytest.raises(ValueError, match="given, patient"):
        load_dataset(split="random")


def test_a_csv_split_column_that_shares_patients_warns_and_re_splits(tmp_path):
    images = real_images(12)
    rows = ["path,label,patient,split"]
    splits = ["train"] * 6 + ["val"] * 2 + ["test"] * 4
    for index, (image, split) in enumerate(zip(images, splits, strict=True)):
        patient = "P0" if index in (0, 10) else f"P{index}"  # P0: one image in train, one in test
        rows.append(f"{image},{'normal' if index % 2 else 'nodule'},{patient},{split}")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join(rows) + "\n")

    given = load_dataset(csv_path)
    (warning,) = given.warnings
    assert warning.startswith("1 patient appears in more than one split (train/val 0, train/test 1, val/test 0)")
    assert "their test scores are optimistic" in warning

    resplit = load_dataset(csv_path, split="patient")
    assert resplit.cross_split_patients == 0 and len(resplit) == 12 and resplit.split_source == RESPLIT


def test_nih_lists_that_share_a_patient_warn_and_re_split(nih_folder):
    root = nih_folder(lists=True)
    train_val = (root / "train_val_list.txt").read_text().split()
    test = (root / "test_list.txt").read_text().split()
    # A patient with several images, all in train_val: move one of them to the test list.
    by_patient = pd.Series(train_val).groupby(pd.Series(train_val).str[:8]).agg(list)
    moved = by_patient[by_patient.map(len) > 1].iloc[0][0]
    (root / "train_val_list.txt").write_text("\n".join(n for n in train_val if n != moved) + "\n")
    (root / "test_list.txt").write_text("\n".join([*test, moved]) + "\n")

    official = load_dataset(root)
    assert official.split_source == "official"
    assert official.cross_split_patients == 1
    (warning,) = [w for w in official.warnings if "more than one split" in w]
    assert warning.startswith("1 patient appears in more than one split") and "test 1" in warning
    assert str(root) in warning and warning.endswith("pass --split patient to re-split by patient")

    resplit = load_dataset(root, split="patient")
    assert resplit.split_source == RESPLIT and resplit.cross_split_patients == 0
    assert sorted(resplit.table["image"]) == sorted(official.table["image"])
    assert not any("more than one split" in w for w in resplit.warnings)


def test_the_official_sample_split_has_no_shared_patients_and_no_warning():
    dataset = load_dataset()
    assert dataset.split_source == "official"
    assert dataset.cross_split_patients == 0 and dataset.warnings == () and dataset.notes == ()
    assert dataset.default_task == "any"


# --- data without patient IDs -------------------------------------------------------------------


def test_data_without_patient_ids_warns_that_splits_are_per_image(tmp_path, ocl):
    build_class_folders_without_patients(tmp_path / "ds")

    dataset = load_dataset(tmp_path / "ds")

    assert not dataset.has_patient_ids and dataset.table["patient"].isna().all()
    (warning,) = dataset.warnings
    assert warning.startswith(f"{tmp_path / 'ds'} has no patient IDs, so its splits are per image")
    assert "optimistic" in warning and "patient column" in warning and "\n" not in warning

    result = ocl("data", "info", "--data", tmp_path / "ds")
    assert result.returncode == 0, result.stderr
    assert " ".join(result.stderr.split()).startswith("warning: ") and "splits are per image" in " ".join(result.stderr.split())
    assert "no patient IDs: each image counts as its own patient, so the splits are per image" in result.stdout


def test_given_split_folders_without_patient_ids_warn_too(tmp_path):
    images = iter(real_images(12))
    for split in ("train", "val", "test"):
        for label in ("normal", "nodule"):
            (tmp_path / "ds" / split / label).mkdir(parents=True)
            for index in range(2):
                shutil.copyfile(next(images), tmp_path / "ds" / split / label / f"scan{index}.png")
    (warning,) = load_dataset(tmp_path / "ds").warnings
    assert "no patient IDs, so its splits are per image: the given splits cannot be checked" in warning


def test_nih_style_file_names_are_patient_ids(tmp_path):
    # The sample's own file names carry the patient: no warning, and --split patient works.
    for label, names in (("normal", sample_names_with("No Finding")[:10]), ("nodule", sample_names_with("Nodule")[:6])):
        (tmp_path / "ds" / label).mkdir(parents=True)
        for name in names:
            shutil.copyfile(SAMPLE_IMAGES / name, tmp_path / "ds" / label / name)
    dataset = load_dataset(tmp_path / "ds", split="patient")
    assert dataset.has_patient_ids and dataset.warnings == ()


@pytest.mark.parametrize("command", ["info", "prepare"])
def test_split_patient_without_patient_ids_is_one_error_line(tmp_path, ocl, cache_files, command):
    build_class_folders_without_patients(tmp_path / "ds")
    extra = ["--image-size", "32"] if command == "prepare" else []

    result = ocl("data", command, "--data", tmp_path / "ds", "--split", "patient", *extra)

    assert result.returncode == 2, (result.stdout, result.stderr)
    line = one_line(result.stderr)
    assert line.startswith(f"error: --split patient: {tmp_path / 'ds'} has no patient IDs")
    assert "add a patient column" in line
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert cache_files() == []


def test_split_patient_without_patient_ids_raises_ocl_error(tmp_path):
    build_class_folders_without_patients(tmp_path / "ds")
    with pytest.raises(OCLError, match="no patient IDs"):
        load_dataset(tmp_path / "ds", split="patient")


# --- the positive class of a two-class folder -----------------------------------------------------


def test_two_class_folder_predicts_the_finding_not_normal(tmp_path):
    build_class_folders_without_patients(tmp_path / "ds", classes=("normal", "nodule"))

    dataset = load_dataset(tmp_path / "ds")

    assert dataset.classes == ("nodule", "normal")  # "normal" sorts last, and still is not positive
    assert dataset.default_task == "binary:nodule"
    assert dataset.notes == ("positive class: nodule (negative: normal); pass --positive to choose",)
    task = dataset.task()
    is_nodule = [labels == ("nodule",) for labels in dataset.table["labels"]]
    assert dataset.targets(task)[:, 0].tolist() == [float(x) for x in is_nodule]

    flipped = load_dataset(tmp_path / "ds", positive="normal")
    assert flipped.default_task == "binary:normal"
    assert flipped.notes == ("positive class: normal (negative: nodule), as --positive asks",)
    # --task still chooses outright.
    assert dataset.task("binary:normal").outputs == ("normal",)


@pytest.mark.parametrize(
    ("classes", "positive"),
    [
        (("0_normal", "1_pneumonia"), "1_pneumonia"),
        (("No_Finding", "Effusion"), "Effusion"),
        (("effusion", "no finding"), "effusion"),
        (("Healthy", "Tuberculosis"), "Tuberculosis"),
        (("NEGATIVE", "POSITIVE"), "POSITIVE"),
    ],
)
def test_negative_class_names_are_recognised(tmp_path, classes, positive):
    build_class_folders_without_patients(tmp_path / "ds", classes=classes, per_class=3)
    dataset = load_dataset(tmp_path / "ds")
    assert dataset.default_task == f"binary:{positive}"
    assert dataset.notes[0].startswith(f"positive class: {positive} (negative: ")


def test_benign_is_not_a_negative_so_the_choice_is_named_and_explained(tmp_path):
    assert not looks_negative("benign") and looks_negative("0_Normal") and looks_negative("no-finding")
    build_class_folders_without_patients(tmp_path / "ds", classes=("benign", "malignant"), per_class=3)

    dataset = load_dataset(tmp_path / "ds")

    assert dataset.default_task == "binary:malignant"  # deterministic: the last in name order
    (note,) = dataset.notes
    assert note.startswith("positive class: malignant (negative: benign), picked as the last in name order")
    assert "neither class looks like a negative" in note and "pass --positive CLASS" in note
    assert load_dataset(tmp_path / "ds", positive="benign").default_task == "binary:benign"


def test_cli_prints_the_positive_class_and_flips_it(tmp_path, ocl):
    build_class_folders_without_patients(tmp_path / "ds")

    default = ocl("data", "info", "--data", tmp_path / "ds")
    assert default.returncode == 0, default.stderr
    assert "note: positive class: nodule (negative: normal); pass --positive to choose" in default.stdout
    assert "task binary:nodule" in " ".join(default.stdout.split())

    flipped = ocl("data", "info", "--data", tmp_path / "ds", "--positive", "normal", "--format", "json")
    assert flipped.returncode == 0, flipped.stderr
    summary = json.loads(flipped.stdout)
    assert summary["task"] == "binary:normal"
    assert summary["notes"] == ["positive class: normal (negative: nodule), as --positive asks"]


@pytest.mark.parametrize("command", ["info", "prepare"])
def test_unknown_positive_class_is_one_error_line(tmp_path, ocl, cache_files, command):
    build_class_folders_without_patients(tmp_path / "ds")
    extra = ["--image-size", "32"] if command == "prepare" else []

    result = ocl("data", command, "--data", tmp_path / "ds", "--positive", "nosuch", *extra)

    assert result.returncode == 2, (result.stdout, result.stderr)
    line = one_line(result.stderr)
    assert line == f"error: --positive nosuch: {tmp_path / 'ds'} has no class 'nosuch'; classes: nodule, normal"
    assert cache_files() == []


def test_positive_on_nih_makes_the_default_task_binary():
    dataset = load_dataset(positive="Pneumonia")
    assert dataset.default_task == "binary:Pneumonia" and summarize(dataset)["task"] == "binary:Pneumonia"
    with pytest.raises(OCLError, match=r"--positive pneumonia: .* has no class 'pneumonia'; did you mean Pneumonia\?"):
        load_dataset(positive="pneumonia")
