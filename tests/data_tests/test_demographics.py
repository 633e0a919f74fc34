"""Sex, age and view position: read from every format, normalised alike, kept beside the labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from chexpert_tables import chexpert_rows, write_chexpert
from dicom_files import png, write_dicom
from helpers import sample_rows

from sweep.data import age_band, load_dataset
from sweep.data._demographics import dicom_age


def test_the_nih_table_gives_sex_age_and_view_position():
    dataset = load_dataset()
    header, rows = sample_rows()
    by_image = {row[0]: row for row in rows}
    column = {name: header.index(name) for name in ("Patient Gender", "Patient Age", "View Position")}
    for image, sex, age, position in dataset.table[["image", "sex", "age", "position"]].itertuples(index=False):
        row = by_image[image]
        assert sex == row[column["Patient Gender"]] and position == row[column["View Position"]]
        assert age == float(row[column["Patient Age"]])


def test_dicom_tags_give_sex_age_in_years_and_view_position(tmp_path):
    names = [row[0] for row in sample_rows()[1][:6]]
    tags = [
        ("F", "045Y", "PA"),
        ("M", "006M", "AP"),
        ("O", "", "LL"),
        ("F", "080Y", "PA"),
        ("M", "030Y", "AP"),
        ("F", "002Y", ""),
    ]
    for index, (name, (sex, age, view)) in enumerate(zip(names, tags)):
        folder = tmp_path / "ds" / ("a" if index % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        write_dicom(
            folder / f"s{index}.dcm", png(name), patient_id=f"P{index}", PatientSex=sex, PatientAge=age, ViewPosition=view
        )
    table = load_dataset(tmp_path / "ds").table.sort_values("image")
    found = dict(zip(table["image"], zip(table["sex"], table["age"], table["position"])))
    assert found["b/s0.dcm"] == ("F", 45.0, "PA")
    assert found["a/s1.dcm"][0] == "M" and found["a/s1.dcm"][1] == pytest.approx(0.5) and found["a/s1.dcm"][2] == "AP"
    sex, age, view = found["b/s2.dcm"]
    assert pd.isna(sex) and np.isnan(age) and pd.isna(view)  # other sex, no age, a lateral view: unknown here
    assert found["a/s5.dcm"][1] == 2.0 and pd.isna(found["a/s5.dcm"][2])  # 002Y: two years; no view given


def test_chexpert_columns_give_sex_age_and_ap_pa(tmp_path):
    rows = chexpert_rows(20)
    table = load_dataset(write_chexpert(tmp_path, rows)).table
    assert table["sex"].tolist() == [{"Male": "M", "Female": "F"}[r["Sex"]] for r in rows]
    assert table["age"].tolist() == [float(r["Age"]) for r in rows]
    assert [None if pd.isna(v) else v for v in table["position"]] == [r["AP/PA"] or None for r in rows]


def test_ages_fall_in_the_bands_of_the_subgroup_analysis():
    assert [age_band(a) for a in (0, 17.9, 18, 39, 40, 59.5, 60, 79, 80, 105, float("nan"))] == [
        "0-17", "0-17", "18-39", "18-39", "40-59", "40-59", "60-79", "60-79", "80+", "80+", None,
    ]  # fmt: skip
    assert dicom_age("010W") == pytest.approx(10 / 52.18) and dicom_age("003D") == pytest.approx(3 / 365.25)
    assert np.isnan(dicom_age("abc")) and np.isnan(dicom_age(None)) and np.isnan(dicom_age("999Y"))
