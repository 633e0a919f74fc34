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


def dicom_folders(tmp):
    """ROOT/normal and ROOT/effusion of DICOMs written from sample PNGs (PatientID = NIH patient)."""
    from test_dicom import dicom_class_folders

    dicom_class_folders(tmp / "dicoms", per_class=6)
    return tmp / "dicoms"


def dicom_without_pixel_data(command):
    def build(tmp, nih):
        from test_dicom import no_pixel_data

        root = dicom_folders(tmp)
        victim = no_pixel_data(root / "normal" / "report.dcm")
        extra = ["--image-size", SIZE] if command == "prepare" else []
        return ["data", command, "--data", root, *extra], [str(victim), "without pixel data", "not an image"]

    return build


def truncated_dicom(command):
    def build(tmp, nih):
        root = dicom_folders(tmp)
        victim = root / "effusion" / "scan2.dcm"
        victim.write_bytes(victim.read_bytes()[:-20_000])
        extra = ["--image-size", SIZE] if command == "prepare" else []
        return ["data", command, "--data", root, *extra], [str(victim), "truncated DICOM file"]

    return build


def chexpert_csv(tmp):
    from test_chexpert import chexpert_rows, write_chexpert

    rows = chexpert_rows(24)
    return write_chexpert(tmp, rows), rows


def unknown_uncertain_policy(command):
    def build(tmp, nih):
        csv_path, _ = chexpert_csv(tmp)
        extra = ["--image-size", SIZE] if command == "prepare" else []
        return ["data", command, "--data", csv_path, "--uncertain", "maybe", *extra], [
            "--uncertain maybe",
            str(csv_path),
            "ones (U-Ones: positive), zeros (U-Zeros: negative) or ignore (U-Ignore: left out)",
        ]

    return build


def label_value_outside_the_four(command):
    def build(tmp, nih):
        from test_chexpert import write_chexpert

        _, rows = chexpert_csv(tmp)
        rows[4]["Pleural Effusion"] = "2"
        csv_path = write_chexpert(tmp, rows, name="edited.csv")
        extra = ["--image-size", SIZE] if command == "prepare" else []
        return ["data", command, "--data", csv_path, *extra], [
            f"label file {csv_path}, row 6, column 'Pleural Effusion': value '2' is not 1, 0, -1 or blank"
        ]

    return build


def uncertain_on_data_without_uncertain_labels(tmp, nih):
    root = nih()
    return ["data", "info", "--data", root, "--uncertain", "zeros"], [f"--uncertain zeros: {root} has no uncertain"]


def no_images_in_folders(tmp, nih):
    (tmp / "scans" / "a").mkdir(parents=True)
    (tmp / "scans" / "a" / "volume.nii.gz").write_bytes(b"\0" * 100)
    return ["data", "prepare", "--data", tmp / "scans", "--image-size", SIZE], [
        "no images found",
        "PNG (.png), JPEG (.jpg .jpeg), BMP (.bmp), TIFF (.tif .tiff), GIF (.gif), WebP (.webp), "
        "DICOM (.dcm .dicom, or no suffix)",
    ]


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
    "DICOM without pixel data (prepare)": dicom_without_pixel_data("prepare"),
    "DICOM without pixel data (info)": dicom_without_pixel_data("info"),
    "truncated DICOM (prepare)": truncated_dicom("prepare"),
    "truncated DICOM (info)": truncated_dicom("info"),
    "CSV with unknown --uncertain (prepare)": unknown_uncertain_policy("prepare"),
    "CSV with unknown --uncertain (info)": unknown_uncertain_policy("info"),
    "label value outside 1, 0, -1, blank (prepare)": label_value_outside_the_four("prepare"),
    "label value outside 1, 0, -1, blank (info)": label_value_outside_the_four("info"),
    "--uncertain on NIH data": uncertain_on_data_without_uncertain_labels,
    "no images: every format named": no_images_in_folders,
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
    # Only the pseudonym key, beside this test's cache folder (OCL_CACHE_DIR is tmp_path/ocl-cache).
    assert set(os.listdir(tmp_path)) == before | {"pseudonym.key"}
    assert not Path(tmp_path / "studies").exists()


def test_info_and_prepare_on_a_folder_of_dicoms(tmp_path, ocl, cache_dir, cache_files):
    root = dicom_folders(tmp_path)

    info = ocl("data", "info", "--data", root, "--format", "json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["images"] == 12 and summary["task"] == "binary:effusion"
    assert summary["patient_ids"] and summary["patient_overlap"]["any"] == 0
    assert any(note.startswith("patients: the PatientID of 12 of 12 DICOM file(s)") for note in summary["notes"])
    assert cache_files() == []  # info reads headers only

    prepared = ocl("data", "prepare", "--data", root, "--image-size", "64")
    assert prepared.returncode == 0, prepared.stderr
    assert "Warning" not in prepared.stderr and "Traceback" not in prepared.stderr
    assert "12 images at 64 px" in " ".join(prepared.stdout.split())
    array_path = next(p for p in cache_files() if p.suffix == ".npy")
    pixels = np.load(array_path, mmap_mode="r")
    assert pixels.shape == (12, 64, 64) and 20 < float(pixels.mean()) < 235
