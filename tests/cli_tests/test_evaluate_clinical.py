"""``ocl evaluate`` as a reportable model needs it: external validation on a DICOM folder, Grad-CAM
saliency with its sanity check, and the model card, from one real run at 64 px on the embedded
sample (tests/evaluated_study.py); and each bad input refused with one line, nothing written."""

from __future__ import annotations

import json
import re
import sqlite3

import optuna
import pytest
from evaluated_study import EXTERNAL_IDS, OWN_IMAGES, STUDY, write_hospital
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


def _bad_inputs(root) -> None:
    """Beside hospital/: pets/ (classes no finding maps to), own/ (only the study's own patients), map.csv."""
    from helpers import SAMPLE_IMAGES, sample_names_with

    write_hospital(root / "hospital")
    for folder, names in (("pets", ("cat", "dog")), ("own", ("Effusion", "No Finding"))):
        for name, label in zip((sample_names_with("Effusion"), sample_names_with("No Finding")), names):
            (root / folder / label).mkdir(parents=True, exist_ok=True)
            picked = name[0 if folder == "pets" else 1]
            (root / folder / label / picked).write_bytes((SAMPLE_IMAGES / picked).read_bytes())
    (root / "map.csv").write_text("study,external\nNo Finding,Pleural Effusions\n")


def test_external_data_with_no_finding_in_common_is_one_line_exit_2_and_writes_nothing(small_sweep, tmp_path):
    root, env, storage = own_copy(small_sweep, tmp_path)
    _bad_inputs(root)
    done = run_ocl(root, env, "evaluate", "--storage", storage, "--output-dir", "out", "--external", "pets")
    assert done.returncode == 2, done.stderr[-2000:]
    line = done.stderr.strip()
    assert line.startswith("error: --external pets: no finding in common with the study: neither its classes (cat, dog)")
    assert "\n" not in line and not (root / "out").exists()
    assert "ocl:evaluation" not in optuna.load_study(study_name=SMALL_STUDY, storage=storage).user_attrs


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            {"external": ["hospital"], "label_map": "map.csv"},
            r"--map .*map.csv: 'Pleural Effusions' \(for No Finding\) is a finding ",
        ),
        ({"subgroups": ["site"]}, r"--subgroup site: the embedded NIH sample has no column 'site'"),
        ({"external": ["own"]}, r"--external .*own: every image is of a patient \(or is a file\) in the study's own data"),
        ({"label_map": "map.csv"}, r"--map .*map.csv: a label map is for --external data"),
    ],
)
def test_bad_clinical_inputs_are_refused_before_anything_is_trained_or_written(
    small_sweep, tmp_path, monkeypatch, flags, message
):
    """The same refusals in process (the CLI prints each as its one error: line, exit 2, as above)."""
    from sweep.api import evaluate_study
    from sweep.errors import OCLError

    root, env, storage = own_copy(small_sweep, tmp_path)
    _bad_inputs(root)
    monkeypatch.setenv("OCL_CACHE_DIR", env["OCL_CACHE_DIR"])
    flags = {k: [str(root / p) for p in v] if isinstance(v, list) and k == "external" else v for k, v in flags.items()}
    if "label_map" in flags:
        flags["label_map"] = str(root / flags["label_map"])
    trained = []
    monkeypatch.setattr("sweep.results._evaluate.run_trial", lambda *a, **k: trained.append(1))
    with pytest.raises(OCLError, match=message):
        evaluate_study(storage=storage, output_dir=root / "out", **flags)
    assert not trained and not (root / "out").exists()
    assert "ocl:evaluation" not in optuna.load_study(study_name=SMALL_STUDY, storage=storage).user_attrs


def test_evaluate_writes_report_and_model_and_test_split_stays_out_of_selection(evaluated_64px):
    """The only study in the storage (no --study): its answer's best candidate retrained identically,
    scored once on test with intervals, calibrated and exported; no trial stores anything of test."""
    import keras

    from sweep.data import load_dataset
    from sweep.model import TemperatureScaling  # registers OCL's layers for loading
    from sweep.results import study_answer

    summary, storage = evaluated_64px.summary, evaluated_64px.storage
    assert evaluated_64px.path(summary["report"]).exists()
    model = evaluated_64px.path(summary["model"])
    assert model.stat().st_size > 0 and evaluated_64px.path(summary["model_dir"]).name == f"{STUDY}.model"
    study = optuna.load_study(study_name=STUDY, storage=storage)
    answer = study_answer(study, storage)
    best = study.trials[answer.best.best_trial] if answer.best else study.best_trial
    assert summary["trial"] == best.number and summary["answer"] == answer.sentence()
    assert summary["test"]["mean_auroc_low"] <= summary["test"]["mean_auroc"] <= summary["test"]["mean_auroc_high"]
    assert summary["val_mean_auroc"] == pytest.approx(best.value, abs=1e-6)  # retrained identically
    for trial in study.trials:  # selection only ever saw validation numbers
        assert not [k for k in trial.user_attrs if "test" in k.lower()], trial.number
    assert study.user_attrs["ocl:evaluation"]["trial"] == best.number
    assert summary["operating_point"] == "youden"
    for output, calibration in summary["calibration"].items():
        assert calibration["temperature"] == summary["temperatures"][output] > 0
        for key in ("ece_before", "ece_after"):
            assert calibration[key]["low"] <= calibration[key]["high"]
        assert set(summary["operating_points"][output]["youden"]["test"]) == {"sensitivity", "specificity", "ppv", "npv"}
    # Subgroups from the real NIH table (Patient Gender, Patient Age, View Position): counted, never model inputs.
    (output,) = summary["subgroups"]
    groupings = summary["subgroups"][output]
    assert set(groupings) == {"sex", "age", "position"} and set(groupings["sex"]["subgroups"]) == {"F", "M"}
    assert set(groupings["position"]["subgroups"]) <= {"PA", "AP"}
    assert sum(f["images"] for f in groupings["sex"]["subgroups"].values()) == len(load_dataset().split_indices("test"))
    layer = keras.saving.load_model(model, compile=False).get_layer("temperature_scaling")
    assert isinstance(layer, TemperatureScaling) and layer.temperatures == pytest.approx(list(summary["temperatures"].values()))
    cost = summary["inference"]  # measured now, on this machine, beside the full network
    assert cost["images_per_second"] > 0 and cost["full_network_images_per_second"] > 0 and cost["device"] == "cpu"
    assert cost["speedup"] == pytest.approx(cost["images_per_second"] / cost["full_network_images_per_second"], rel=0.01)
    assert cost["image_size"] == 64


def test_ocl_predict_scores_new_images_with_the_exported_model_folder_alone(evaluated_64px, tmp_path):
    """The folder ocl evaluate writes stands alone: ocl predict reads its card and model, decodes three
    sample PNGs and a DICOM made from one of them, and prints calibrated scores and calls."""
    from dicom_files import png, write_dicom
    from helpers import SAMPLE_IMAGES

    folder = evaluated_64px.path(evaluated_64px.summary["model_dir"])
    card = json.loads((folder / "model_card.json").read_text())
    assert (folder / "MODEL_CARD.md").read_text().startswith("# Model card: DenseNet-121 cut at")
    assert card["reporting"]["author_must_fill"] and card["temperatures"] and card["thresholds"]
    names = sorted(p.name for p in SAMPLE_IMAGES.iterdir())[:3]
    write_dicom(tmp_path / "scan.dcm", png(names[0]), patient_id="MRN-42")
    images = [str(SAMPLE_IMAGES / n) for n in names] + [str(tmp_path / "scan.dcm")]
    env = evaluated_64px.env
    predicted = run_ocl(tmp_path, env, "predict", "--model", str(folder), *images, "--format", "json")
    assert predicted.returncode == 0, predicted.stderr
    rows = json.loads(predicted.stdout)
    assert [r["image"] for r in rows] == [*names, "scan.dcm"]
    for row in rows:
        for output, score in row["scores"].items():
            assert 0 < score < 1 and row["calls"][output] == (score >= card["thresholds"][output])
    assert abs(rows[0]["scores"][card["outputs"][0]] - rows[-1]["scores"][card["outputs"][0]]) < 0.05  # same pixels
    (tmp_path / "notes.txt").write_text("not an image")
    bad = run_ocl(tmp_path, env, "predict", "--model", str(folder), str(tmp_path / "notes.txt"))
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: ocl predict: image") and "\n" not in bad.stderr.strip()
