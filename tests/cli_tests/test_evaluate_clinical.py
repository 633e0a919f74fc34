"""``ocl evaluate`` as a reportable model needs it: external validation on a DICOM folder, Grad-CAM
saliency with its sanity check, and the model card, from one real run at 64 px on the embedded
sample (tests/evaluated_study.py); and each bad input refused with one line, nothing written."""

from __future__ import annotations

import json
import re
import sqlite3

import optuna
import pytest
from evaluated_study import EXTERNAL_IDS, OWN_IMAGES, write_hospital
from small_sweep import STUDY as SMALL_STUDY
from small_sweep import own_copy, run_ocl

from sweep.results import KINDS

pytestmark = pytest.mark.slow


def test_the_exported_model_is_scored_on_an_external_dicom_folder_beside_the_internal_test(evaluated_64px):
    summary = evaluated_64px.summary
    (external,) = summary["external"]
    assert external["name"] == "hospital"
    assert external["left_out"] == OWN_IMAGES  # the study's own patients never count as external
    assert external["images"] == len(EXTERNAL_IDS) and external["patients"] == len(EXTERNAL_IDS)
    facts = external["outputs"]["Any finding"]
    assert facts["counterpart"] == "any class but No Finding" and facts["positives"] == len(EXTERNAL_IDS) // 2
    for value in (facts["auroc"], facts["ece"], *facts["rates"].values(), external["mean_auroc"]):
        assert value["low"] <= value["estimate"] <= value["high"]
    internal = summary["test"]["auroc_intervals"]["Any finding"]
    assert internal["estimate"] == pytest.approx(summary["test"]["mean_auroc"])
    table = evaluated_64px.stdout
    assert '"external"' in table  # the JSON carries it; the table view is checked below
    shown = run_ocl(
        evaluated_64px.root, evaluated_64px.env, "report", "--storage", evaluated_64px.storage, "--output", "again.html"
    )
    assert shown.returncode == 0, shown.stderr
    page = (evaluated_64px.root / "again.html").read_text()
    assert "External validation" in page and "hospital" in page  # rewritten from the stored evaluation too
    examples = evaluated_64px.summary["saliency"]["examples"]
    assert page.count("src='data:image/jpeg;base64,") == len(examples)  # the pictures stay where evaluate put them


def test_saliency_maps_of_each_kind_are_written_embedded_and_sanity_checked(evaluated_64px):
    saliency = evaluated_64px.summary["saliency"]
    examples = saliency["examples"]
    assert examples and {e["kind"] for e in examples} <= set(KINDS)
    assert len([e for e in examples if e["kind"] == "true positive"]) <= 1  # --saliency 1
    folder = evaluated_64px.path(evaluated_64px.summary["report"]).with_suffix(".saliency")
    for example in examples:
        picture = (folder / example["file"]).read_bytes()
        assert picture[:3] == b"\xff\xd8\xff"  # a JPEG
        called = example["score"] >= example["threshold"]
        assert called == (example["kind"] != "false negative")
    sanity = saliency["sanity"]
    assert sanity["images"] == len(examples) and sanity["low"] <= sanity["mean"] <= sanity["high"]
    assert sanity["passed"] == (sanity["high"] < sanity["limit"])
    page = evaluated_64px.path(evaluated_64px.summary["report"]).read_text()
    assert page.count("src='data:image/jpeg;base64,") == len(examples)
    assert ("Sanity check passed" in page) == sanity["passed"] and "Saliency (Grad-CAM at the cut-off layer)" in page


def test_the_model_card_carries_external_results_and_the_subgroups_of_the_real_nih_table(evaluated_64px):
    folder = evaluated_64px.path(evaluated_64px.summary["model_dir"])
    card = json.loads((folder / "model_card.json").read_text())
    assert card["results"]["external"][0]["name"] == "hospital"
    assert card["results"]["saliency_check"] == evaluated_64px.summary["saliency"]["sanity"]
    markdown = (folder / "MODEL_CARD.md").read_text()
    assert "## External validation (AUROC, 95% patient-level bootstrap)" in markdown
    assert re.search(r"\| Any finding \| 0\.\d{3} \[0\.\d{3}, [01]\.\d{3}\] \| 0\.\d{3} \[", markdown)
    groupings = evaluated_64px.summary["subgroups"]["Any finding"]
    assert set(groupings) == {"sex", "age", "position"}


def test_no_external_patient_id_reaches_the_storage_report_or_model_card(evaluated_64px):
    database = evaluated_64px.root / "ocl.db"
    with sqlite3.connect(database) as connection:
        stored = "\n".join(str(row) for table in ("trial_user_attributes", "study_user_attributes")
                           for row in connection.execute(f"SELECT * FROM {table}"))  # fmt: skip
    stored += database.read_bytes().decode("latin-1")
    folder = evaluated_64px.path(evaluated_64px.summary["model_dir"])
    shared = [
        evaluated_64px.path(evaluated_64px.summary["report"]).read_text(),
        (folder / "model_card.json").read_text(),
        (folder / "MODEL_CARD.md").read_text(),
        evaluated_64px.stdout,
    ]
    for text in (stored, *shared):
        assert not [i for i in EXTERNAL_IDS if i in text]
    for text in shared[:3]:
        assert str(evaluated_64px.root) not in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--external", "pets"], r"--external pets: no finding in common with the study: neither its classes \(cat, dog\)"),
        (["--external", "hospital", "--map", "map.csv"], r"--map map.csv: 'Pleural Effusions' \(for No Finding\) is a finding "),
        (["--subgroup", "site"], r"--subgroup site: the embedded NIH sample has no column 'site'"),
        (["--external", "own"], r"--external own: every image is of a patient \(or is a file\) in the study's own data"),
        (["--map", "map.csv"], r"--map map.csv: a label map is for --external data"),
    ],
)
def test_bad_clinical_inputs_are_one_line_exit_2_and_write_nothing(small_sweep, tmp_path, args, message):
    from helpers import SAMPLE_IMAGES, sample_names_with

    root, env, storage = own_copy(small_sweep, tmp_path)
    write_hospital(root / "hospital")
    for name, folder in ((sample_names_with("Effusion")[0], "cat"), (sample_names_with("No Finding")[0], "dog")):
        (root / "pets" / folder).mkdir(parents=True, exist_ok=True)
        (root / "pets" / folder / name).write_bytes((SAMPLE_IMAGES / name).read_bytes())
    for name, folder in ((sample_names_with("Effusion")[1], "Effusion"), (sample_names_with("No Finding")[1], "No Finding")):
        (root / "own" / folder).mkdir(parents=True, exist_ok=True)
        (root / "own" / folder / name).write_bytes((SAMPLE_IMAGES / name).read_bytes())
    (root / "map.csv").write_text("study,external\nNo Finding,Pleural Effusions\n")
    done = run_ocl(root, env, "evaluate", "--storage", storage, "--output-dir", "out", *args)
    assert done.returncode == 2, done.stderr[-2000:]
    line = done.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and re.search(message, line), line
    assert not (root / "out").exists()
    assert "ocl:evaluation" not in optuna.load_study(study_name=SMALL_STUDY, storage=storage).user_attrs
