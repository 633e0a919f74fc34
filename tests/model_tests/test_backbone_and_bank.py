"""Backbone weights, cut-off layers and the feature bank, on real sample images at 32-64 px."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras.applications.densenet import preprocess_input

from sweep.caches import ViewSpec, feature_bank_bytes, load_feature_bank, load_image_cache
from sweep.data import load_dataset
from sweep.errors import OCLError
from sweep.model import (
    IMAGENET_FILE,
    Weights,
    build_backbone,
    candidate_layers,
    candidate_names,
    parse_weights,
    preprocessing_layer,
    resolve_layer,
)

SIZE = 32


@pytest.fixture(scope="module")
def backbone():
    return build_backbone(SIZE, Weights("none"))


@pytest.fixture(scope="module")
def images():
    dataset = load_dataset()
    return load_image_cache(dataset.paths[:48], SIZE, cache_dir=None)


def pooled(model, layer, x):
    truncated = keras.Model(model.inputs, keras.layers.GlobalAveragePooling2D()(model.get_layer(layer).output))
    return np.asarray(truncated.predict_on_batch(x))


def test_the_63_candidates_are_keras_names_in_depth_order(backbone):
    infos = candidate_layers(backbone)
    names = [i.name for i in infos]
    assert len(infos) == 63
    assert names[0] == "conv1_relu" and names[-2:] == ["conv5_block16_concat", "relu"]
    assert sum(n.endswith("_concat") for n in names) == 58
    assert {"pool2_pool", "pool3_pool", "pool4_pool"} <= set(names)
    assert [i.depth for i in infos] == list(range(63))
    fractions = [i.flops_fraction for i in infos]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert infos[-1].channels == 1024 and infos[0].channels == 64


def test_each_candidate_knows_the_parameters_of_the_network_truncated_there(backbone):
    """What the answer's cheapest layer reports: the weights a model cut at the layer carries."""
    infos = {i.name: i for i in candidate_layers(backbone)}
    assert infos["relu"].params == backbone.count_params()  # DenseNet-121 without its top: 7.04 M
    for name in ("conv1_relu", "pool3_pool", "conv4_block12_concat"):
        truncated = keras.Model(backbone.inputs, backbone.get_layer(name).output)
        assert infos[name].params == truncated.count_params(), name
    params = [i.params for i in infos.values()]
    assert params == sorted(params) and params[0] > 0


def test_unknown_layer_names_get_suggestions_and_the_posters_layer_is_accepted(backbone):
    names = [layer.name for layer in backbone.layers]
    assert resolve_layer("conv5_block16_2_conv", names) == "conv5_block16_2_conv"
    with pytest.raises(
        OCLError, match=r"--layer conv5_block16_2_cnov: DenseNet-121 has no such layer; did you mean conv5_block16_2_conv"
    ):
        resolve_layer("conv5_block16_2_cnov", names)


def test_preprocessing_is_exactly_keras_densenet_preprocess_input():
    gray = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 1)).astype("float32")
    ours = np.asarray(preprocessing_layer()(gray))
    theirs = preprocess_input(np.repeat(gray, 3, axis=-1))
    np.testing.assert_array_equal(ours, theirs)


def test_bank_features_equal_the_pooled_output_of_a_truncated_model(backbone, images, cache_dir):
    layers = candidate_names(backbone)
    bank = load_feature_bank(images, Weights("none"), layers, backbone=backbone)
    x = np.asarray(images.images[:40], np.float32)[..., None]
    for layer in ("conv1_relu", "pool3_pool", "conv4_block24_concat", "relu"):
        np.testing.assert_allclose(bank.features(layer)[:40], pooled(backbone, layer, x), rtol=1e-4, atol=1e-5)


def test_a_bank_of_one_layer_holds_every_images_own_features(backbone, images, cache_dir):
    bank = load_feature_bank(images, Weights("none"), ["conv5_block16_2_conv"], backbone=backbone)
    x = np.asarray(images.images[:40], np.float32)[..., None]
    features = np.asarray(bank.features("conv5_block16_2_conv"))
    np.testing.assert_allclose(features[:40], pooled(backbone, "conv5_block16_2_conv", x), rtol=1e-4, atol=1e-5)
    assert not np.allclose(features[0], features[1])


def test_augmented_views_are_banked_per_training_image(backbone, images, cache_dir):
    views = ViewSpec(2, tuple(range(10)), seed=3)
    bank = load_feature_bank(images, Weights("none"), ["relu"], views=views, backbone=backbone)
    stacked = bank.view_features("relu")
    assert stacked.shape == (2, 10, 1024)
    assert not np.allclose(stacked[0], stacked[1])  # two different random views
    assert not np.allclose(stacked[0], bank.features("relu")[:10])
    # A trial fitting on part of train (--selection inner) gets its rows' views, paired in its order.
    np.testing.assert_array_equal(bank.view_features("relu", np.array([7, 2])), stacked[:, [7, 2]])
    with pytest.raises(ValueError, match="not among the banked training images"):
        bank.view_features("relu", np.array([3, 12]))


def test_the_disk_a_bank_will_write_is_known_before_and_is_zero_once_built(backbone, images, cache_dir):
    """What ``ocl sweep`` states (and checks against the free space) before it banks anything."""
    views = ViewSpec(2, tuple(range(10)), seed=3)
    widths = {i.name: i.channels for i in candidate_layers(backbone) if i.name in ("pool3_pool", "relu")}
    args = (images.key, len(images.images), Weights("none"), widths)
    before = feature_bank_bytes(*args, views=views)
    load_feature_bank(images, Weights("none"), list(widths), views=views, backbone=backbone)
    files = sorted((cache_dir / "bank").rglob("*.npy"))
    assert len(files) == 4 and before == sum(f.stat().st_size for f in files)  # 2 layers, clean and views
    assert feature_bank_bytes(*args, views=views) == 0
    more = feature_bank_bytes(images.key, len(images.images), Weights("none"), {**widths, "conv1_relu": 64}, views=views)
    assert more == 4 * 64 * (len(images.images) + 2 * 10) + 2 * 128  # only the new layer, float32, two headers


@pytest.mark.slow
def test_a_weights_file_written_here_loads_and_gives_the_same_outputs(tmp_path):
    keras.utils.set_random_seed(7)
    source = keras.applications.DenseNet121(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    x = np.random.default_rng(1).integers(0, 256, (3, SIZE, SIZE, 1)).astype("float32")
    expected = np.asarray(source.predict_on_batch(preprocess_input(np.repeat(x, 3, axis=-1))))
    for name in ("densenet.weights.h5", "densenet.keras"):
        path = tmp_path / name
        source.save_weights(path) if name.endswith(".weights.h5") else source.save(path)
        weights = parse_weights(str(path))
        assert weights.kind == "file" and weights.identity.startswith("file-")
        model = build_backbone(SIZE, weights)
        np.testing.assert_allclose(np.asarray(model.predict_on_batch(x)), expected, rtol=1e-4, atol=1e-5)


def test_a_weights_file_of_another_architecture_is_a_clear_error(tmp_path):
    path = tmp_path / "resnet.weights.h5"
    keras.applications.ResNet50(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)).save_weights(path)
    with pytest.raises(OCLError, match=r"not DenseNet-121 weights \(its layers do not match DenseNet-121's\)"):
        build_backbone(SIZE, parse_weights(str(path)))


def test_offline_imagenet_says_which_file_and_how_to_fix_it(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example/x.h5: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(OCLError) as caught:
        build_backbone(SIZE, Weights("imagenet"))
    message = str(caught.value)
    assert "\n" not in message
    assert IMAGENET_FILE in message and "[Errno -3] Temporary failure in name resolution" in message
    assert "--weights PATH" in message and "--weights none" in message


@pytest.mark.slow
def test_random_initialisation_is_the_same_in_every_process():
    script = (
        "from sweep.model import build_backbone, Weights; import numpy as np; "
        "m = build_backbone(32, Weights('none', seed=5)); "
        "print(float(np.sum(m.get_layer('conv3_block1_1_conv').get_weights()[0])))"
    )
    runs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout for _ in range(2)}
    here = build_backbone(32, Weights("none", seed=5)).get_layer("conv3_block1_1_conv").get_weights()[0].sum()
    assert len(runs) == 1 and float(runs.pop()) == pytest.approx(float(here))


def test_ocl_layers_lists_the_candidates_as_json(ocl):
    result = ocl("layers", "--image-size", "64", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 63 and rows[0]["name"] == "conv1_relu" and rows[0]["height"] == 32
    assert {"depth", "block", "channels", "flops_fraction", "height", "width"} <= set(rows[0])


def test_offline_imagenet_is_one_line_without_keras_download_chatter(monkeypatch, capsys):
    """Keras prints "Downloading data from ..." before it fails; the user sees only OCL's one line."""
    import keras

    from sweep.errors import OCLError
    from sweep.model import _backbone as backbone

    def offline(*args, **kwargs):
        print("Downloading data from https://storage.googleapis.com/...")
        raise Exception("URL fetch failure on https://example/... -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(OCLError) as error:
        backbone._imagenet_file()
    assert "[Errno -3] Temporary failure in name resolution" in str(error.value) and "--weights none" in str(error.value)
    assert capsys.readouterr().out == ""
