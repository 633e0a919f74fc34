"""External validation's label map and scores, and saliency's maps and sanity check, on data
where the truth is known: generated labels, a closed-form map, identical and independent maps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from sweep.data import FINDINGS, NIH_CHEXPERT, Dataset, LabelMap, custom_groupings, parse_task, read_label_map
from sweep.errors import OCLError
from sweep.results import SIMILARITY_LIMIT, auroc_with_intervals, choose_examples, map_similarity
from sweep.stats import bootstrap_weights


def _dataset(classes, labels, *, negative=False, ignored=None) -> Dataset:
    table = pd.DataFrame(
        {
            "image": [f"{i}.png" for i in range(len(labels))],
            "path": [f"/x/{i}.png" for i in range(len(labels))],
            "patient": [f"p{i}" for i in range(len(labels))],
            "labels": [tuple(lab) for lab in labels],
            "split": ["test"] * len(labels),
        }
    )
    if ignored is not None:
        table["ignored"] = [tuple(i) for i in ignored]
    return Dataset("ext", Path("/x"), table, tuple(classes), "seeded", has_negative_class=negative)


CHEXPERT = ("No Finding", "Cardiomegaly", "Pleural Effusion", "Lung Lesion", "Fracture")


def test_nih_findings_meet_chexpert_observations_through_the_built_in_map():
    task = parse_task("multilabel", FINDINGS)
    external = _dataset(CHEXPERT, [("Pleural Effusion",), ("No Finding",), ("Cardiomegaly", "Pleural Effusion"), ()])
    y, mapped = LabelMap(task, {}).targets(external)
    assert mapped["Effusion"] == "Pleural Effusion" and mapped["Cardiomegaly"] == "Cardiomegaly"
    assert mapped["Mass"] is None and mapped["Nodule"] is None  # Lung Lesion is broader: never guessed
    k = task.outputs.index("Effusion")
    assert y[:, k].tolist() == [1, 0, 1, 0]
    assert np.isnan(y[:, task.outputs.index("Mass")]).all()  # unmapped: unknown, not negative
    # the other way round: a CheXpert study scored on NIH data
    back = LabelMap(parse_task("binary:Pleural Effusion", CHEXPERT, has_negative_class=False), {})
    nih = _dataset(FINDINGS, [("Effusion",), (), ("Mass",)], negative=True)
    assert back.targets(nih)[1] == {"Pleural Effusion": "Effusion"}
    assert NIH_CHEXPERT["Effusion"] == "Pleural Effusion"


def test_the_any_task_maps_onto_data_that_says_which_images_show_nothing():
    task = parse_task("any", FINDINGS)
    folders = _dataset(("normal", "pneumonia"), [("normal",), ("pneumonia",), ("normal",)])
    y, mapped = LabelMap(task, {}).targets(folders)
    assert y[:, 0].tolist() == [0, 1, 0] and "normal" in mapped["Any finding"]
    chexpert = _dataset(CHEXPERT, [("No Finding",), ("Fracture",), ()], ignored=[(), (), ("Cardiomegaly",)])
    y, _ = LabelMap(task, {}).targets(chexpert)
    assert y[0, 0] == 0 and y[1, 0] == 1 and np.isnan(y[2, 0])  # nothing positive, one finding unknown
    pets = _dataset(("cat", "dog"), [("cat",), ("dog",)])
    assert LabelMap(task, {}).targets(pets)[1] == {"Any finding": None}
    assert LabelMap(task, {"No Finding": "dog"}).targets(pets)[0][:, 0].tolist() == [1, 0]  # --map names the negative


def test_a_map_file_overrides_the_built_in_map_and_refuses_unknown_names(tmp_path):
    path = tmp_path / "map.csv"
    path.write_text("study,external\nMass,Lung Lesion\n")
    task = parse_task("multilabel", FINDINGS)
    external = _dataset(CHEXPERT, [("Lung Lesion",), ()])
    rows = read_label_map(path)
    assert LabelMap(task, rows).targets(external)[1]["Mass"] == "Lung Lesion"
    LabelMap(task, rows).check([external])
    with pytest.raises(OCLError, match=r"'Mas' is not an output of the study"):
        LabelMap(task, {"Mas": "Lung Lesion"}).check([external])
    with pytest.raises(OCLError, match=r"'Lung Lesions' \(for Mass\) is a finding of none of the --external datasets"):
        LabelMap(task, {"Mass": "Lung Lesions"}).check([external])
    for text, message in (
        ("a,b\nMass,Lung Lesion\n", "the first line must be the header study,external"),
        ("study,external\nMass\n", "line 2 is not two names"),
        ("study,external\nMass,Lung Lesion\nMass,Nodule\n", "line 3 maps 'Mass' a second time"),
    ):
        path.write_text(text)
        with pytest.raises(OCLError, match=message):
            read_label_map(path)
    with pytest.raises(OCLError, match="cannot be read"):
        read_label_map(tmp_path / "missing.csv")


def test_external_datasets_of_one_name_are_told_apart(tmp_path):
    from helpers import SAMPLE_IMAGES, sample_names_with

    from sweep.results import prepare_external

    paths = []
    for site, names in (("a", sample_names_with("No Finding")[:2]), ("b", sample_names_with("No Finding")[2:4])):
        for label, name in zip(("normal", "effusion"), names):
            (tmp_path / site / "images" / label).mkdir(parents=True, exist_ok=True)
            (tmp_path / site / "images" / label / f"x{label}.png").write_bytes((SAMPLE_IMAGES / name).read_bytes())
        paths.append(tmp_path / site / "images")
    study = _dataset(FINDINGS, [()], negative=True)
    found = prepare_external(paths, study, LabelMap(parse_task("any", FINDINGS), {}))
    assert [e.dataset.name for e in found] == ["images", "images-2"]


def test_per_output_auroc_with_intervals_matches_sklearn_and_covers_it():
    rng = np.random.default_rng(0)
    y = (rng.random((400, 2)) < 0.3).astype(np.float64)
    p = y * 0.8 + rng.normal(0, 1, y.shape)
    y[:, 1] = 0  # an output with no positive: undefined, left out of the mean
    found = auroc_with_intervals(y, p, bootstrap_weights(np.arange(400).astype(str), 300), ("a", "b"))
    a = found["auroc"]["a"]
    assert a["estimate"] == pytest.approx(roc_auc_score(y[:, 0], p[:, 0]))
    assert a["low"] < a["estimate"] < a["high"] and found["auroc"]["b"] is None
    assert found["mean_auroc"]["estimate"] == pytest.approx(a["estimate"])


def test_examples_are_the_most_confident_of_each_kind_at_the_threshold():
    y = np.asarray([1, 1, 1, 0, 0, 0, 1, 0], np.float64)
    p = np.asarray([0.9, 0.6, 0.2, 0.8, 0.1, 0.55, 0.45, np.nan])
    chosen = choose_examples(y, p, 0.5, per_kind=1)
    assert chosen == [("true positive", 0), ("false negative", 2), ("false positive", 3)]
    assert [row for _, row in choose_examples(y, p, 0.5, per_kind=2)] == [0, 1, 2, 6, 3, 5]


def test_the_randomisation_check_fails_maps_that_ignore_the_model_and_passes_independent_ones():
    """Known truth: a "saliency" that is the image itself is the same for any model (correlation 1:
    fails); maps drawn independently of each other pass; a map that keeps most of its ranking
    (0.9 of the signal) fails."""
    rng = np.random.default_rng(1)
    images = rng.random((8, 16, 16))
    same = map_similarity(images, images.copy())
    assert same["mean"] == pytest.approx(1.0) and same["passed"] is False
    independent = map_similarity(rng.random((8, 16, 16)), rng.random((8, 16, 16)))
    assert abs(independent["mean"]) < 0.15 and independent["passed"] is True
    close = map_similarity(images, 0.9 * images + 0.1 * rng.random((8, 16, 16)))
    assert close["mean"] > SIMILARITY_LIMIT and close["passed"] is False
    flat = map_similarity(np.zeros((3, 4, 4)), rng.random((3, 4, 4)))
    assert flat["images"] == 0 and flat["passed"] is None  # nothing to rank: not checked, never "passed"
    gone = map_similarity(images[:4], np.zeros((4, 16, 16)))  # the twin finds no evidence anywhere: nothing shared
    assert gone["images"] == 4 and gone["mean"] == 0 and gone["passed"] is True


def test_csv_columns_become_subgroups_and_a_missing_column_is_refused():
    table = pd.DataFrame({"csv:gender": ["female", "M", ""], "csv:site": ["A", "B", ""], "csv:years": ["34", "81", "x"]})
    found = custom_groupings(table, ["sex=gender", "site", "age=years"], "labels.csv")
    assert found["sex"] == ["F", "M", None] and found["site"] == ["A", "B", None]
    assert found["age"][:2] == [34.0, 81.0] and np.isnan(found["age"][2])
    with pytest.raises(
        OCLError, match=r"--subgroup scanner: labels.csv has no column 'scanner' \(its other columns: gender, site"
    ):
        custom_groupings(table, ["scanner"], "labels.csv")
    assert custom_groupings(pd.DataFrame({"sex": ["F"]}), ["sex"], "NIH") == {}  # already read from the data


def _feature_extraction_model(head_units: int):
    """A DenseNet-121 cut at conv3_block4_concat (64 px, random weights) with a numpy head of known weights."""
    from sweep.model import Weights, build_backbone, with_temperature
    from sweep.training import TrialConfig
    from sweep.training._head import NumpyHead
    from sweep.training._keras_models import feature_extraction_model

    backbone = build_backbone(64, Weights("none"))
    channels = backbone.get_layer("conv3_block4_concat").output.shape[-1]
    head = NumpyHead(channels, 2, head_units, 0.0, "adam", 1e-3, seed=0)
    head.mean[:] = 0.1
    head.std[:] = np.linspace(0.5, 2.0, channels)
    config = TrialConfig("feature_extraction", "conv3_block4_concat", head_units=head_units)
    return with_temperature(feature_extraction_model(backbone, config, head, 2), [1.5, 0.7]), head


def _sample_images(count: int = 4) -> np.ndarray:
    from helpers import SAMPLE_IMAGES

    from sweep.data import decode_image

    return np.stack([decode_image(p, 64) for p in sorted(SAMPLE_IMAGES.iterdir())[:count]])


def test_grad_cam_of_a_linear_head_is_the_class_activation_map():
    """With no hidden layer the logit is linear in the pooled features, so Grad-CAM has a closed
    form: ReLU(sum_c w_c / std_c * A_c), the class activation map (Zhou et al., 2016)."""
    from sweep.model import cut_layer_of, grad_cam
    from sweep.model._saliency import _upsample

    model, head = _feature_extraction_model(head_units=0)
    images = _sample_images()
    maps = grad_cam(model, images, output=1)
    assert cut_layer_of(model) == "conv3_block4_concat" and maps.shape == (4, 64, 64)
    features = np.asarray(model.get_layer("densenet121_to_conv3_block4_concat").predict_on_batch(images[..., None] / 1.0))
    cam = _upsample(np.maximum(np.einsum("nhwc,c->nhw", features, head.params[0][:, 1] / head.std), 0), 64)
    cam /= cam.reshape(4, -1).max(axis=1)[:, None, None]
    np.testing.assert_allclose(maps, cam, atol=1e-5)
    assert maps.max() == pytest.approx(1.0) and maps.min() >= 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_grad_cam_is_the_same_on_another_backend_with_tensorflow_unimportable(tmp_path, backend):
    """The saved model's maps, computed again in a JAX (or PyTorch) process that cannot import
    TensorFlow. The dev extra installs JAX; PyTorch is checked where it is installed."""
    pytest.importorskip(backend, reason=f"{backend} is not installed here (the dev extra installs jax)")
    from sweep.model import grad_cam

    model, _ = _feature_extraction_model(head_units=16)
    model.save(tmp_path / "model.keras")
    images = _sample_images()
    np.save(tmp_path / "images.npy", images)
    expected = grad_cam(model, images, output=0)
    shim = tmp_path / "no-tensorflow" / "tensorflow"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("TensorFlow is made unimportable for this test")\n')
    script = (
        "import json, sys, numpy as np\n"
        "from sweep._keras import keras_module\n"
        "keras = keras_module()\n"
        "from sweep.model import TemperatureScaling, grad_cam\n"
        f"model = keras.saving.load_model({str(tmp_path / 'model.keras')!r}, compile=False)\n"
        f"maps = grad_cam(model, np.load({str(tmp_path / 'images.npy')!r}), output=0)\n"
        f"np.save({str(tmp_path / 'maps.npy')!r}, maps)\n"
        "print(json.dumps(keras.backend.backend()))\n"
    )
    root = Path(__file__).resolve().parents[2]
    paths = [str(shim.parent), str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=os.pathsep.join(paths))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == backend
    np.testing.assert_allclose(np.load(tmp_path / "maps.npy"), expected, atol=1e-4)
