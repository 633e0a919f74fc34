"""The generic adapter: class folders, split folders with a patient planted in two splits, and a
``path,label,patient`` CSV."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import SAMPLE_IMAGES, pseudonyms, sample_names_with

from sweep.data import SPLITS, load_dataset, summarize


def put(names: list[str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(SAMPLE_IMAGES / name, folder / name)


def test_class_folders(tmp_path):
    normal = sample_names_with("No Finding")[:20]
    effusion = sample_names_with("Effusion")[:10] + sample_names_with("Cardiomegaly|Effusion")[:5]
    put(normal, tmp_path / "xrays" / "normal")
    put(effusion, tmp_path / "xrays" / "effusion")

    dataset = load_dataset(tmp_path / "xrays")

    assert len(dataset) == len(normal) + len(effusion)
    assert dataset.classes == ("effusion", "normal")
    by_image = dict(zip(dataset.table["image"], dataset.table["labels"], strict=True))
    assert all(by_image[f"normal/{n}"] == ("normal",) for n in normal)
    assert all(by_image[f"effusion/{n}"] == ("effusion",) for n in effusion)
    assert all(Path(p).is_file() for p in dataset.paths)
    assert dataset.split_source == "seeded" and dataset.warnings == ()
    assert dataset.default_task == "binary:effusion"  # "normal" is the negative, whatever the name order
    assert set(dataset.table["split"]) == set(SPLITS)
    summary = summarize(dataset)
    assert summary["patient_overlap"]["any"] == 0
    assert summary["prevalence"] == pytest.approx({"effusion": 15 / 35, "normal": 20 / 35})
    # The split is drawn by seed: the same seed gives the same split.
    assert load_dataset(tmp_path / "xrays").table["split"].tolist() == dataset.table["split"].tolist()


def build_split_folders(root: Path, *, planted: bool) -> None:
    """ROOT/<split>/<class>/ with distinct patients; ``planted`` adds two patients seen twice."""
    normal = sample_names_with("No Finding")
    sick = sample_names_with("Infiltration") + sample_names_with("Emphysema")
    # One image per patient, so that only the planted images can share a patient.
    seen: set[str] = {"00000001", "00000013"}

    def distinct(names: list[str]) -> list[str]:
        out = []
        for name in names:
            if name[:8] not in seen:
                seen.add(name[:8])
                out.append(name)
        return out

    normal, sick = distinct(normal), distinct(sick)
    for split, (start, stop) in {"train": (0, 8), "valid": (8, 11), "test": (11, 15)}.items():
        put(normal[start:stop], root / split / "normal")
        put(sick[start:stop], root / split / "sick")
    if planted:
        # Patient 1 in train and test, patient 13 in train and val (NIH names PPPPPPPP_FFF.png).
        put(["00000001_000.png"], root / "train" / "sick")
        put(["00000001_002.png"], root / "test" / "sick")
        put(["00000013_003.png"], root / "train" / "normal")
        put(["00000013_009.png"], root / "valid" / "sick")


def test_given_split_with_planted_patients_warns(tmp_path):
    build_split_folders(tmp_path / "ds", planted=True)

    dataset = load_dataset(tmp_path / "ds")

    assert dataset.split_source == "given"
    assert len(dataset.warnings) == 1
    warning = dataset.warnings[0]
    assert warning.startswith("2 patients appear in more than one split (train/val 1, train/test 1, val/test 0)")
    assert warning.endswith("pass --split patient to re-split by patient") and "\n" not in warning
    table = dataset.table
    assert set(table.loc[table["image"].str.startswith("valid/"), "split"]) == {"val"}
    assert summarize(dataset)["patient_overlap"] == {"train/val": 1, "train/test": 1, "val/test": 0, "any": 2}
    assert dataset.cross_split_patients == summarize(dataset)["cross_split_patients"] == 2


def test_given_split_without_shared_patients_does_not_warn(tmp_path):
    build_split_folders(tmp_path / "ds", planted=False)
    dataset = load_dataset(tmp_path / "ds")
    assert dataset.warnings == ()
    assert summarize(dataset)["patient_overlap"]["any"] == 0


def test_cli_info_prints_the_overlap_warning(tmp_path, ocl):
    build_split_folders(tmp_path / "ds", planted=True)

    result = ocl("data", "info", "--data", tmp_path / "ds")

    assert result.returncode == 0, result.stderr
    stderr = " ".join(result.stderr.split())  # rich may wrap long lines
    assert stderr.startswith("warning: 2 patients appear in more than one split")
    assert "train/val 1, train/test 1, val/test 0" in stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "warning" not in result.stdout

    as_json = ocl("data", "info", "--data", tmp_path / "ds", "--format", "json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["patient_overlap"]["any"] == 2
    assert json.loads(as_json.stdout)["cross_split_patients"] == 2
    assert "2 patients appear" in " ".join(as_json.stderr.split())


def test_cli_info_is_quiet_without_shared_patients(tmp_path, ocl):
    build_split_folders(tmp_path / "ds", planted=False)
    result = ocl("data", "info", "--data", tmp_path / "ds")
    assert result.returncode == 0
    assert result.stderr == ""


def test_csv_with_path_label_patient(tmp_path):
    names = sample_names_with("No Finding")[:12] + sample_names_with("Effusion|Pleural_Thickening")[:4]
    put(names, tmp_path / "pics")
    absolute = tmp_path / "elsewhere" / "extra.png"
    put([sample_names_with("Mass")[0]], absolute.parent)
    (absolute.parent / sample_names_with("Mass")[0]).rename(absolute)
    rows = ["path,label,patient"]
    for position, name in enumerate(names):
        label = "normal" if position < 12 else "effusion|thickening"
        rows.append(f"pics/{name},{label},P{position // 2}")  # two images per patient
    rows.append(f"{absolute},mass,")  # absolute path, patient unknown
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join(rows) + "\n")

    dataset = load_dataset(csv_path)

    assert len(dataset) == 17
    assert dataset.classes == ("effusion", "mass", "normal", "thickening")
    table = dataset.table
    assert table["labels"].iloc[12] == ("effusion", "thickening")
    assert table["path"].iloc[0] == str((tmp_path / "pics" / names[0]).resolve())
    assert table["path"].iloc[16] == str(absolute)
    # Patients come from the column, not from the NIH-style file names.
    assert table["patient"].iloc[:16].tolist() == pseudonyms(f"P{i // 2}" for i in range(16))
    assert table["patient"].iloc[16] is None or table["patient"].isna().iloc[16]
    # Both images of a patient land in the same split.
    assert table.iloc[:16].groupby("patient")["split"].nunique().max() == 1
    assert dataset.default_task == "multilabel"
    assert summarize(dataset)["patients"] == 9  # 8 known patients + the image whose patient is unknown
    (warning,) = dataset.warnings  # the one image without a patient is split on its own
    assert warning.startswith(f"1 of 17 images of {csv_path} have no patient ID, so their splits are per image")


def test_csv_with_split_column(tmp_path, ocl):
    normal, sick = sample_names_with("No Finding")[:6], sample_names_with("Nodule")[:6]
    put(normal + sick, tmp_path / "pics")
    splits = ["train", "train", "train", "val", "test", "test"]
    rows = ["path,label,patient,split"]
    rows += [f"pics/{n},normal,N{i},{splits[i]}" for i, n in enumerate(normal)]
    rows += [f"pics/{n},nodule,S{i},{splits[i]}" for i, n in enumerate(sick)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")

    result = ocl("data", "info", "--data", tmp_path / "labels.csv", "--format", "json")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["images"] == 12 and summary["split_source"] == "given"
    assert {s: v["images"] for s, v in summary["splits"].items()} == {"train": 6, "val": 2, "test": 4}
    assert summary["task"] == "binary:nodule"  # two classes: the finding is predicted against normal
    assert summary["notes"] == ["positive class: nodule (negative: normal); pass --positive to choose"]
    assert summary["prevalence"] == {"normal": 0.5, "nodule": 0.5}


def test_images_without_known_patients_count_as_their_own_patients(tmp_path):
    names = sample_names_with("No Finding")[:12] + sample_names_with("Effusion")[:6]
    root = tmp_path / "renamed"
    for index, name in enumerate(names):
        label = "normal" if index < 12 else "effusion"
        (root / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE_IMAGES / name, root / label / f"image{index}.png")  # no NIH-style name
    dataset = load_dataset(root)
    summary = summarize(dataset)
    assert summary["patients"] == len(names) == dataset.patient_count
    assert sum(split["patients"] for split in summary["splits"].values()) == len(names)
    assert not dataset.has_patient_ids and summary["patient_ids"] is False
    (warning,) = dataset.warnings
    assert warning.startswith(f"{root} has no patient IDs, so its splits are per image")


def test_a_given_split_without_val_is_described_with_a_warning_and_refused_by_a_sweep(tmp_path, ocl):
    # The same rule as the NIH adapter: ``ocl data info`` shows the dataset and warns; the sweep,
    # which selects on validation AUROC, refuses it before training.
    from sweep.data import check_scorable
    from sweep.errors import OCLError

    build_split_folders(tmp_path / "ds", planted=False)
    shutil.rmtree(tmp_path / "ds" / "valid")

    dataset = load_dataset(tmp_path / "ds")
    (warning,) = dataset.warnings
    assert warning.startswith(f"the val split(s) of {tmp_path / 'ds'} have no images")
    assert "drop the split folders" in warning and "\n" not in warning
    with pytest.raises(OCLError, match="validation split has no images"):
        task = dataset.task()
        check_scorable(dataset.targets(task), dataset.split_indices("train"), dataset.split_indices("val"), task)

    result = ocl("data", "info", "--data", tmp_path / "ds", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["splits"]["val"] == {"images": 0, "patients": 0}
    assert "the val split(s)" in " ".join(result.stderr.split())


def test_a_csvs_other_columns_are_kept_for_subgroups_and_never_reach_a_model(tmp_path):
    """``sex``/``age``/``position`` columns are read as demographics; any other column is kept as
    ``csv:NAME`` for ``ocl evaluate --subgroup`` (which the fingerprint, and so every cache, ignores)."""
    from sweep.data import custom_groupings
    from sweep.results import subgroups_of

    names = sample_names_with("No Finding")[:6]
    put(names, tmp_path / "pics")
    rows = ["path,label,patient,sex,age,site,gender"]
    for i, name in enumerate(names):
        label, gender = ("normal" if i % 2 else "effusion"), ("female" if i < 3 else "male")
        rows.append(f"pics/{name},{label},P{i},{'FM'[i % 2]},{30 + 10 * i},site-{i % 3},{gender}")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(line.rsplit(",", 4)[0] for line in rows) + "\n")

    dataset = load_dataset(csv_path)
    table = dataset.table
    assert table["sex"].tolist() == ["F", "M"] * 3 and table["age"].tolist() == [30.0, 40.0, 50.0, 60.0, 70.0, 80.0]
    assert table["csv:site"].tolist() == [f"site-{i % 3}" for i in range(6)]
    assert dataset.fingerprint() == load_dataset(plain).fingerprint()  # subgroup columns change no cache key
    custom = custom_groupings(table, ["site", "sex=gender"], csv_path)
    groups = subgroups_of(table.assign(**custom), ("site",))
    assert groups["sex"].tolist() == ["F"] * 3 + ["M"] * 3  # --subgroup sex=gender replaces the sex column
    assert groups["site"].tolist() == [f"site-{i % 3}" for i in range(6)]
    assert groups["age"].tolist() == ["18-39", "40-59", "40-59", "60-79", "60-79", "80+"]
