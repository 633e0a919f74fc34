"""Patient IDs become keyed pseudonyms when a dataset is read: nothing stored or shared names a patient."""

from __future__ import annotations

import io
import json
import re
import socket
import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from dicom_files import effusion_dicoms
from helpers import sample_rows

from sweep.data import key_fingerprint, load_dataset, pseudonym_key, pseudonym_key_path, pseudonymise
from sweep.errors import OCLError
from sweep.study import check_pseudonym_key


def test_a_pseudonym_is_stable_under_one_key_and_unknown_patients_stay_unknown():
    ids = pd.Series(["00012", "00012", None, "MRN-7", float("nan")])
    first, again = pseudonymise(ids, b"k" * 32), pseudonymise(ids, b"k" * 32)
    other = pseudonymise(ids, b"j" * 32)
    assert first.tolist() == again.tolist() and first[0] == first[1] and first[0] != first[3]
    assert first[2] is None and first[4] is None
    assert other[0] != first[0]  # without the key a pseudonym cannot be matched to a guessed ID
    assert all(p.startswith("p") and len(p) == 17 and "00012" not in p for p in first.dropna())


def test_the_key_is_made_once_beside_the_caches_readable_by_its_owner_only(cache_dir):
    path = pseudonym_key_path()
    assert path == cache_dir.absolute().parent / "pseudonym.key" and not path.exists()
    key = pseudonym_key()
    assert len(key) == 32 and path.read_bytes() == key and (path.stat().st_mode & 0o777) == 0o600
    assert pseudonym_key() == key  # made once
    path.write_bytes(b"short")
    with pytest.raises(OCLError, match="not a pseudonym key .5 bytes, expected 32.; restore it"):
        pseudonym_key()


def test_the_embedded_sample_is_read_with_pseudonyms_and_the_same_split(cache_dir):
    dataset = load_dataset()
    raw = {row[3] for row in sample_rows()[1]}  # the NIH patient IDs of the label table
    assert not set(dataset.table["patient"]) & raw
    assert dataset.table["patient"].nunique() == len(raw)
    per_patient = dataset.table.groupby("patient")["split"].nunique()
    assert (per_patient == 1).all()  # the official split still keeps each patient in one split


def test_a_study_refuses_a_machine_with_another_key(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    study = optuna.create_study(storage=url, study_name="s")
    check_pseudonym_key(study)
    assert study.user_attrs["ocl:pseudonym_key"] == key_fingerprint(pseudonym_key())
    monkeypatch.setenv("OCL_PSEUDONYM_KEY_FILE", str(tmp_path / "other.key"))
    with pytest.raises(OCLError, match="pseudonymised with another key .* copy the key file"):
        check_pseudonym_key(optuna.load_study(study_name="s", storage=url))


def _hospital_dicoms(root: Path) -> list[str]:
    """The sample's Effusion and No Finding images as DICOM class folders whose PatientIDs are
    record-number-like strings; returns the IDs."""
    return sorted(set(effusion_dicoms(root, patient_id=lambda patient: f"MRN{int(patient):07d}X")))


def _stored_text(database: Path) -> str:
    """Everything in the SQLite file as text: its raw bytes, and every compressed array decompressed."""
    parts = [database.read_bytes().decode("latin-1")]
    with sqlite3.connect(database) as connection:
        for table in ("ocl_validation", "ocl_predictions", "ocl_resamples"):
            column = {"ocl_validation": "arrays", "ocl_predictions": "scores", "ocl_resamples": "`values`"}[table]
            for (blob,) in connection.execute(f"SELECT {column} FROM {table}"):
                with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
                    parts += [" ".join(map(str, archive[name].ravel().tolist())) for name in archive.files]
    return "\n".join(parts)


@pytest.mark.slow
def test_no_patient_id_file_path_or_host_name_reaches_the_storage_report_or_dictionary(tmp_path, ocl):
    """A sweep of a DICOM folder whose PatientIDs are known strings, then its report and dictionary:
    none of the IDs is in the storage (compressed arrays included), and the report and the dictionary
    show name no folder of this machine and not its host."""
    ids = _hospital_dicoms(tmp_path / "hospital" / "dicoms")
    database = tmp_path / "ocl.db"
    storage = f"sqlite:///{database}"
    swept = ocl(
        "sweep", "--data", tmp_path / "hospital" / "dicoms", "--trials", "3", "--weights", "none", "--image-size", "32",
        "--strategy", "feature_extraction", "--storage", storage, "--format", "json", timeout=900,
    )  # fmt: skip
    assert swept.returncode == 0, swept.stderr[-2000:]
    assert len(ids) > 20
    stored = _stored_text(database)
    assert "ocl_validation" in stored and not [i for i in ids if i in stored]
    report = ocl("report", "--storage", storage, "--output", "shared/report.html")
    assert report.returncode == 0, report.stderr
    shown = ocl("dictionary", "show", "--storage", storage, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    page = (tmp_path / "shared" / "report.html").read_text()
    words = re.sub(r"<script.*?</script>|<style.*?</style>", " ", page, flags=re.S)  # what the page says, not its plotly code
    for text in (page, shown.stdout):
        assert not [i for i in ids if i in text]
        assert str(tmp_path) not in text and str(Path.home()) + "/" not in text
    for text in (words, shown.stdout):
        assert not re.search(rf"\b{re.escape(socket.gethostname())}\b", text), socket.gethostname()
    assert "sqlite:///ocl.db" in page and "--data dicoms" in page  # names, not paths
    assert json.loads(shown.stdout)  # the dictionary has rows, just no identifying ones
