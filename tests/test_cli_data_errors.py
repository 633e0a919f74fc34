"""``ocl data`` through the real CLI: every bad input gets exit code 2, one ``error:`` line on
stderr that says what and where, no traceback, and no file in the cache; good input works."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import SAMPLE_IMAGES, sample_names_with

SIZE = "32"


# Each builder gets (tmp_path, nih_folder) and returns (CLI arguments, fragments the message must contain).


def missing_directory(tmp, nih):
    return ["data", "prepare", "--data", tmp / "no-such-folder", "--image-size", SIZE], [
        "no-such-folder",
        "no such file or directory",
    ]


def images_without_label_csv(tmp, nih):
    root = nih()
    (root / "Data_Entry_2017.csv").unlink()
    # Without the CSV the folder could be read as one class called "images"; the user must instead
    # be told that NIH's label file is missing.
    return ["data", "prepare", "--data", root, "--image-size", SIZE], ["no label file", "Data_Entry_2017"]


def garbage_label_csv(tmp, nih):
    root = nih()
    (root / "Data_Entry_2017.csv").write_bytes(bytes(range(256)) * 20)
    return ["data", "prepare", "--data", root, "--image-size", SIZE], ["Data_Entry_2017.csv", "cannot be read"]


def unparseable_label_csv(tmp, nih):
    root = nih()
    (root / "Data_Entry_2017.csv").write_text('"Image Index,Finding Labels\n00000001_000.png,Hernia\n')
    return ["data", "prepare", "--data", root, "--image-size", SIZE], ["Data_Entry_2017.csv", "cannot be read"]


def empty_label_csv(tmp, nih):
    root = nih()
    (root / "Data_Entry_2017.csv").write_text("")
    return ["data", "prepare", "--data", root, "--image-size", SIZE], ["Data_Entry_2017.csv", "cannot be read"]


def label_csv_missing_columns(tmp, nih):
    root = nih()
    (root / "Data_Entry_2017.csv").write_text("Image Index,Finding Labels\n00000001_000.png,Cardiomegaly\n")
    return ["data", "prepare", "--data", root, "--image-size", SIZE], ["lacks the column", "'Patient ID'"]


def unknown_finding_in_label_csv(tmp, nih):
    root = nih()
    path = root / "Data_Entry_2017.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[1], "Covid|Pneumonia", 1)
    path.write_text("\n".join(lines) + "\n")
    return ["data", "prepare", "--data", root, "--image-size", SIZE], ["row 4", "unknown finding 'Covid'"]


def images_missing_on_disk(tmp, nih):
    root = nih()
    listed = [line.split(",")[0] for line in (root / "Data_Entry_2017.csv").read_text().splitlines()[1:]]
    for name in (listed[5], listed[2], listed[9]):
        (root / "images" / name).unlink()
    return ["data", "prepare", "--data", root, "--image-size", SIZE], ["3 image(s)", f"first: {listed[2]}"]


def csv_images_missing_on_disk(tmp, nih):
    rows = ["path,label"] + [f"pics/{n},normal" for n in sample_names_with("No Finding")[:3]]
    rows += ["pics/gone_1.png,sick", "pics/gone_2.png,sick"]
    (tmp / "pics").mkdir()
    for name in sample_names_with("No Finding")[:3]:
        (tmp / "pics" / name).symlink_to(SAMPLE_IMAGES / name)
    (tmp / "labels.csv").write_text("\n".join(rows) + "\n")
    return ["data", "prepare", "--data", tmp / "labels.csv", "--image-size", SIZE], ["2 image(s)", "gone_1.png"]


def generic_csv_missing_columns(tmp, nih):
    (tmp / "labels.csv").write_text("file,class\na.png,x\n")
    return ["data", "prepare", "--data", tmp / "labels.csv", "--image-size", SIZE], ["lacks the column", "path"]


def damaged_image(content):
    def build(tmp, nih):
        root = nih()
        victim = sorted((root / "images").iterdir())[6]
        victim.write_bytes(content(victim.read_bytes()))
        return ["data", "prepare", "--data", root, "--image-size", SIZE], [victim.name, "cannot be decoded"]

    return build


def unknown_task(tmp, nih):
    return ["data", "info", "--task", "pneumonia"], ["--task pneumonia", "unknown task", "binary:<class>"]


def unknown_finding_in_task(tmp, nih):
    return ["data", "info", "--task", "binary:Pneumonai"], ["unknown finding 'Pneumonai'", "binary:Pneumonia"]


def image_size_too_small(tmp, nih):
    return ["data", "prepare", "--image-size", "16"], ["--image-size 16", "32"]


def unknown_resize_method(tmp, nih):
    return ["data", "prepare", "--image-size", SIZE, "--resize", "bicubic"], ["--resize bicubic", "lanczos"]


def class_folders_without_patient_ids(tmp):
    """ROOT/normal and ROOT/nodule with real images under names that carry no patient."""
    for label, names in (("normal", sample_names_with("No Finding")[:4]), ("nodule", sample_names_with("Nodule")[:4])):
        (tmp / "ds" / label).mkdir(parents=True)
        for index, name in enumerate(names):
            shutil.copyfile(SAMPLE_IMAGES / name, tmp / "ds" / label / f"scan{index}.png")  # a link keeps the NIH name
    return tmp / "ds"


def split_patient_without_patient_ids(tmp, nih):
    root = class_folders_without_patient_ids(tmp)
    return ["data", "prepare", "--data", root, "--image-size", SIZE, "--split", "patient"], [
        "--split patient",
        "no patient IDs",
        "add a patient column",
    ]


def unknown_positive_class(tmp, nih):
    root = class_folders_without_patient_ids(tmp)
    return ["data", "prepare", "--data", root, "--image-size", SIZE, "--positive", "nosuch"], [
        "--positive nosuch",
        "classes: nodule, normal",
    ]


def unknown_positive_finding(tmp, nih):
    return ["data", "info", "--positive", "Pneumonai"], ["--positive Pneumonai", "no class 'Pneumonai'", "Pneumonia"]


CASES = {
    "missing directory": missing_directory,
    "images/ without label CSV": images_without_label_csv,
    "garbage label CSV": garbage_label_csv,
    "unparseable label CSV": unparseable_label_csv,
    "empty label CSV": empty_label_csv,
    "label CSV missing columns": label_csv_missing_columns,
    "unknown finding in label CSV": unknown_finding_in_label_csv,
    "images missing on disk": images_missing_on_disk,
    "CSV images missing on disk": csv_images_missing_on_disk,
    "generic CSV missing columns": generic_csv_missing_columns,
    "truncated PNG": damaged_image(lambda data: data[: len(data) // 3]),
    "zero-byte PNG": damaged_image(lambda data: b""),
    "text file named .png": damaged_image(lambda data: b"this is a radiology report, not an image\n"),
    "unknown task": unknown_task,
    "unknown finding in binary task": unknown_finding_in_task,
    "--image-size 16": image_size_too_small,
    "unknown resize method": unknown_resize_method,
    "--split patient without patient IDs": split_patient_without_patient_ids,
    "unknown --positive class": unknown_positive_class,
    "unknown --positive finding": unknown_positive_finding,
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_error_line(case, tmp_path, nih_folder, ocl, cache_files):
    args, fragments = CASES[case](tmp_path, nih_folder)

    result = ocl(*args)

    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert cache_files() == []


def test_zero_byte_png_says_empty_file(tmp_path, nih_folder, ocl, cache_files):
    root = nih_folder()
    victim = sorted((root / "images").iterdir())[0]
    victim.write_bytes(b"")
    result = ocl("data", "prepare", "--data", root, "--image-size", SIZE)
    assert result.returncode == 2
    assert "empty file" in result.stderr
    assert cache_files() == []


def test_debug_shows_the_traceback(ocl):
    result = ocl("--debug", "data", "info", "--task", "nope")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "OCLError" in result.stderr


def test_prepare_and_info_on_the_embedded_sample(ocl, cache_dir, cache_files):
    prepared = ocl("data", "prepare", "--image-size", "64")

    assert prepared.returncode == 0, prepared.stderr
    assert "Traceback" not in prepared.stderr
    assert "638 images at 64 px" in " ".join(prepared.stdout.split())
    files = cache_files()
    assert sorted(p.suffix for p in files) == [".json", ".npy"]
    array_path = next(p for p in files if p.suffix == ".npy")
    assert array_path.parent == cache_dir / "images"
    pixels = np.load(array_path, mmap_mode="r")
    assert pixels.shape == (638, 64, 64) and pixels.dtype == np.uint8
    assert 20 < float(pixels[:50].mean()) < 235  # real radiographs, not zeros
    before = array_path.stat().st_mtime_ns

    again = ocl("data", "prepare", "--image-size", "64")
    assert again.returncode == 0
    assert array_path.stat().st_mtime_ns == before and cache_files() == files

    info = ocl("data", "info", "--format", "json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    for key in ("images", "patients", "splits", "patient_overlap", "prevalence", "majority_accuracy"):
        assert key in summary
    assert summary["images"] == 638
    assert set(summary["splits"]) == {"train", "val", "test"}
    for counts in summary["splits"].values():
        assert set(counts) == {"images", "patients"} and counts["images"] > 0
    assert sum(s["images"] for s in summary["splits"].values()) == summary["images"]
    assert summary["patient_overlap"]["any"] == 0


def test_nothing_is_written_under_the_working_directory(tmp_path, ocl):
    before = set(os.listdir(tmp_path))
    assert ocl("data", "prepare", "--image-size", "32").returncode == 0
    assert set(os.listdir(tmp_path)) == before
    assert not Path(tmp_path / "studies").exists()
