"""CheXpert-style label tables on real sample images laid out as CheXpert publishes them.

The tests copy sample PNGs to ``CheXpert-v1.0-small/train/patientNNNNN/studyK/viewV_{frontal,lateral}.png``
and write ``train.csv`` in CheXpert's column layout, with the NIH findings mapped to CheXpert's
and some labels made uncertain (-1), negative (0) or blank.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from chexpert_tables import HEADER, ROOT_NAME, chexpert_rows, write_chexpert
from helpers import SAMPLE_IMAGES, pseudonyms

from sweep.caches import load_image_cache
from sweep.data import CHEXPERT_FINDINGS, SPLITS, load_dataset, summarize
from sweep.errors import OCLError


@pytest.fixture
def chexpert(tmp_path) -> tuple[Path, list[dict[str, str]]]:
    rows = chexpert_rows()
    return write_chexpert(tmp_path, rows), rows


def cells_of(rows, value: str) -> set[tuple[str, str]]:
    """(path, finding) pairs whose cell holds ``value``."""
    return {(row["Path"], f) for row in rows for f in CHEXPERT_FINDINGS if row[f] == value}


def test_detected_from_the_header_and_says_so(chexpert):
    csv_path, rows = chexpert

    dataset = load_dataset(csv_path)

    assert dataset.notes[0].startswith("label table read as CheXpert-style (a Path column and 14 finding columns")
    assert "detected from its header; pass --labels chexpert" in dataset.notes[0]
    assert dataset.classes == CHEXPERT_FINDINGS
    assert dataset.name == "CheXpert-v1.0-small-train"
    assert dataset.default_task == "multilabel" and not dataset.has_negative_class
    assert len(dataset) == len(rows)
    assert dataset.table["image"].tolist() == [row["Path"] for row in rows]
    # Paths start with CheXpert-v1.0-small/, so they are relative to the folder above the CSV.
    assert all(Path(p).is_file() and Path(p).is_relative_to(csv_path.parent) for p in dataset.paths)
    # The patient is the patientNNNNN folder, and the split is drawn by patient.
    assert dataset.table["patient"].tolist() == pseudonyms(row["Path"].split("/")[2] for row in rows)
    assert dataset.split_source == "seeded" and set(dataset.table["split"]) == set(SPLITS)
    assert dataset.cross_split_patients == 0
    assert dataset.warnings == ()

    named = load_dataset(csv_path, labels="chexpert")
    assert not any(note.startswith("label table read as") for note in named.notes)
    assert named.fingerprint() == dataset.fingerprint()


def test_uncertain_policies_give_ones_zeros_or_nan(chexpert):
    csv_path, rows = chexpert
    uncertain, positive = cells_of(rows, "-1.0"), cells_of(rows, "1.0")
    assert len(uncertain) > 20

    ones = load_dataset(csv_path)  # U-Ones is the default
    zeros = load_dataset(csv_path, uncertain="zeros")
    ignore = load_dataset(csv_path, uncertain="ignore")

    index = {finding: j for j, finding in enumerate(CHEXPERT_FINDINGS)}
    paths = [row["Path"] for row in rows]
    targets = {name: d.targets(d.task("multilabel")) for name, d in (("ones", ones), ("zeros", zeros), ("ignore", ignore))}
    for y in targets.values():
        assert y.dtype == np.float32 and y.shape == (len(rows), 14)
    for i, path in enumerate(paths):
        for finding, j in index.items():
            if (path, finding) in uncertain:
                expected = {"ones": 1.0, "zeros": 0.0, "ignore": np.nan}
            else:
                value = 1.0 if (path, finding) in positive else 0.0  # 0 and blank are both negative
                expected = dict.fromkeys(targets, value)
            for name, y in targets.items():
                np.testing.assert_equal(y[i, j], expected[name], err_msg=f"{name} {path} {finding}")
    assert int(np.isnan(targets["ignore"]).sum()) == len(uncertain)
    assert not np.isnan(targets["ones"]).any() and not np.isnan(targets["zeros"]).any()
    # One output: NaN where that finding is uncertain, the other cells as usual.
    atelectasis = ignore.targets(ignore.task("binary:Atelectasis"))[:, 0]
    hedged = [(path, "Atelectasis") in uncertain for path in paths]
    assert np.isnan(atelectasis).tolist() == hedged
    # The three policies are three datasets: their fingerprints (which name study data) differ.
    assert len({ones.fingerprint(), zeros.fingerprint(), ignore.fingerprint()}) == 3
    assert ones.table["split"].tolist() == ignore.table["split"].tolist()  # the split does not depend on labels
    assert "U-Ones: uncertain counts as positive (ones, the default" in ones.notes[1]
    assert f"{len(uncertain)} (image, finding) pair(s)" in ones.notes[1]
    assert "U-Zeros" in zeros.notes[1] and "as --uncertain asks" in zeros.notes[1]
    assert "NaN target" in ignore.notes[1]


def test_summary_leaves_unknown_labels_out(chexpert):
    csv_path, rows = chexpert
    dataset = load_dataset(csv_path, uncertain="ignore")

    summary = summarize(dataset, "binary:Atelectasis")

    hedged = sum(row["Atelectasis"] == "-1.0" for row in rows)
    assert summary["unknown_labels"]["Atelectasis"] == hedged and summary["unknown_labels"]["Fracture"] == 0
    known = [row["Atelectasis"] for row in rows if row["Atelectasis"] != "-1.0"]
    share = sum(v == "1.0" for v in known) / len(known)
    assert summary["majority_accuracy"]["binary:Atelectasis"] == pytest.approx(max(share, 1 - share))
    assert all(np.isfinite(v) for v in summary["majority_accuracy"].values())
    assert summarize(load_dataset(csv_path))["unknown_labels"] == {}


@pytest.mark.parametrize("view", ["frontal", "lateral", "all"])
def test_view_keeps_frontal_lateral_or_all(chexpert, view):
    csv_path, rows = chexpert
    expected = [row["Path"] for row in rows if view == "all" or row["Frontal/Lateral"].lower() == view]

    dataset = load_dataset(csv_path, view=view)

    assert dataset.table["image"].tolist() == expected
    assert set(dataset.table["view"]) == ({"frontal", "lateral"} if view == "all" else {view})
    frontal = sum(row["Frontal/Lateral"] == "Frontal" for row in rows)
    note = next(n for n in dataset.notes if n.startswith("views"))
    assert f"{frontal} frontal, {len(rows) - frontal} lateral" in note
    assert dataset.cross_split_patients == 0


def test_patient_column_and_split_column(tmp_path):
    rows = chexpert_rows(40)
    for position, row in enumerate(rows):
        row["Path"] = row["Path"].replace(f"{ROOT_NAME}/train/", f"{ROOT_NAME}/flat/").replace("/study", "_study")
        row["Patient ID"] = row["Path"].split("/")[2].split("_")[0].upper()
        row["split"] = ("train", "valid", "test")[position % 3]  # per image: patients cross splits
    csv_path = write_chexpert(tmp_path, rows, header=[*HEADER, "Patient ID", "split"])

    given = load_dataset(csv_path)
    assert given.table["patient"].tolist() == pseudonyms(row["Patient ID"] for row in rows)
    assert given.split_source == "given" and given.table["split"].tolist()[:3] == ["train", "val", "test"]
    assert given.cross_split_patients > 0
    assert given.warnings[0].endswith("pass --split patient to re-split by patient")

    resplit = load_dataset(csv_path, split="patient")
    assert resplit.split_source == "re-split by patient" and resplit.cross_split_patients == 0
    assert resplit.warnings == ()


def test_paths_relative_to_the_csv_folder(tmp_path):
    rows = chexpert_rows(30)
    for row in rows:
        row["Path"] = row["Path"].removeprefix(f"{ROOT_NAME}/")
    (tmp_path / ROOT_NAME).mkdir()
    for row in rows:
        target = tmp_path / ROOT_NAME / row["Path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE_IMAGES / row["_source"], target)
    csv_path = tmp_path / ROOT_NAME / "labels.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    dataset = load_dataset(csv_path, labels="chexpert")

    assert all(Path(p).is_file() for p in dataset.paths) and len(dataset) == 30


def test_images_are_cached_like_pngs(chexpert):
    csv_path, rows = chexpert
    dataset = load_dataset(csv_path, view="frontal")
    cache = load_image_cache(dataset.paths, 32)
    assert cache.images.shape == (len(dataset), 32, 32)
    assert 20 < float(np.asarray(cache.images).mean()) < 235


@pytest.mark.parametrize(
    ("value", "shown"),
    [("2", "'2'"), ("yes", "'yes'"), ("0.5", "'0.5'"), ("nan", "'nan'")],
)
def test_a_value_outside_1_0_minus1_blank_is_refused(tmp_path, value, shown):
    rows = chexpert_rows(20)
    rows[6]["Edema"] = value
    csv_path = write_chexpert(tmp_path, rows)
    with pytest.raises(OCLError) as failure:
        load_dataset(csv_path)
    message = str(failure.value)
    assert message.startswith(f"label file {csv_path}, row 8, column 'Edema': value {shown} is not 1, 0, -1 or blank")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"uncertain": "maybe"}, "--uncertain maybe: unknown policy for the uncertain (-1) labels for {csv}; use ones (U-Ones"),
        ({"view": "oblique"}, "--view oblique: unknown view for {csv}; use frontal, lateral or all"),
        ({"labels": "mimic"}, "--labels mimic: unknown label format for {csv}; use chexpert (Path and finding columns)"),
        ({"labels": "generic"}, "label file {csv} lacks the column(s) label"),
    ],
)
def test_bad_options_name_the_file(chexpert, options, fragment):
    csv_path, _ = chexpert
    with pytest.raises(OCLError) as failure:
        load_dataset(csv_path, **options)
    assert fragment.format(csv=csv_path) in str(failure.value)


def test_chexpert_options_are_refused_for_other_data(tmp_path, nih_folder):
    with pytest.raises(OCLError, match=r"--uncertain ignore: the embedded NIH sample has no uncertain \(-1\) labels"):
        load_dataset(uncertain="ignore")
    root = nih_folder()
    with pytest.raises(OCLError, match="--view frontal: .* has no view column"):
        load_dataset(root, view="frontal")
    assert len(load_dataset(root, view="all")) == 40
    with pytest.raises(OCLError, match="--labels chexpert: .* is not a CSV"):
        load_dataset(root, labels="chexpert")


def test_view_without_any_view_information_is_refused(tmp_path):
    rows = chexpert_rows(20)
    for row in rows:
        row["Path"] = row["Path"].replace("view1_frontal", "image").replace("view2_lateral", "image2")
    csv_path = write_chexpert(tmp_path, rows, header=[h for h in HEADER if h not in ("Frontal/Lateral", "AP/PA")])
    assert len(load_dataset(csv_path)) == 20
    with pytest.raises(OCLError, match="--view lateral: .* says no image's view"):
        load_dataset(csv_path, view="lateral")


def test_the_download_folder_points_to_its_table(chexpert):
    csv_path, _ = chexpert
    with pytest.raises(OCLError, match=f"pass the table itself, --data {csv_path}"):
        load_dataset(csv_path.parent)


def test_cli_info_and_prepare(chexpert, ocl, cache_files):
    csv_path, rows = chexpert

    info = ocl("data", "info", "--data", csv_path, "--uncertain", "ignore", "--view", "frontal")
    assert info.returncode == 0, info.stderr
    text = " ".join(info.stdout.split())
    assert "note: label table read as CheXpert-style" in text
    assert "note: uncertain labels (-1):" in text and "U-Ignore" in text
    assert "unknown (--uncertain ignore)" in text
    kept = [row for row in rows if row["Frontal/Lateral"] == "Frontal"]
    hedged = sum(row[f] == "-1.0" for row in kept for f in CHEXPERT_FINDINGS)
    assert f"uncertain labels (-1): {hedged} (image, finding) pair(s)" in text  # of the frontal images kept
    assert "task multilabel" in text

    as_json = json.loads(ocl("data", "info", "--data", csv_path, "--labels", "chexpert", "--format", "json").stdout)
    assert as_json["images"] == len(rows) and as_json["task"] == "multilabel"
    assert not any(note.startswith("label table read as") for note in as_json["notes"])

    prepared = ocl("data", "prepare", "--data", csv_path, "--view", "frontal", "--image-size", "32")
    assert prepared.returncode == 0, prepared.stderr
    frontal = sum(row["Frontal/Lateral"] == "Frontal" for row in rows)
    assert f"{frontal} images at 32 px" in " ".join(prepared.stdout.split())
    assert "note: label table read as CheXpert-style" in " ".join(prepared.stdout.split())
    assert len(cache_files()) == 2
