"""DenseNet-121 with the weights the user asked for, fed grayscale X-rays.

Which weights, and the name each is stored under, is :mod:`sweep.model._weights` (Keras-free; ``Weights``
and ``parse_weights`` are re-exported here for existing callers). This module loads them:
``imagenet`` is Keras' published file, downloaded once into ``~/.keras/models``; a local file is
``.weights.h5``, Keras' ``.h5`` or a whole ``.keras`` model; ``none`` is a random initialisation,
seeded, so every process builds the same network and the feature bank stays valid. If ImageNet
weights cannot be had, this stops and says how to fix it: a sweep that silently trained on random
features would answer the wrong question.

The model's input is the cached grayscale image, ``(size, size, 1)`` in 0..255; a preprocessing
layer repeats it to three channels and applies exactly
``keras.applications.densenet.preprocess_input``, so a saved model takes raw X-rays.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

from sweep._keras import keras_module
from sweep.errors import OCLError
from sweep.model._weights import IMAGENET_FILE, IMAGENET_MD5, Weights, parse_weights

keras = keras_module()

__all__ = ["IMAGENET_FILE", "Weights", "XrayPreprocessing", "build_backbone", "parse_weights", "preprocessing_layer"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""The per-channel statistics ``preprocess_input`` uses for DenseNet (``mode="torch"``)."""

IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/densenet/" + IMAGENET_FILE


@keras.saving.register_keras_serializable(package="ocl")
class XrayPreprocessing(keras.layers.Layer):
    """Grayscale 0..255 to 3 channels, then ``keras.applications.densenet.preprocess_input``'s
    arithmetic (``torch`` mode: divide by 255, subtract the ImageNet mean, divide by its standard
    deviation, per channel), written in ``keras.ops``: Keras' own function updates channels in
    place, which the PyTorch backend refuses on a repeated tensor. Same operations in the same
    order, so the values are bit-identical (a test holds them to ``preprocess_input``)."""

    def call(self, inputs):
        ops = keras.ops
        images = ops.cast(inputs, "float32")
        if images.shape[-1] == 1:
            images = ops.concatenate([images, images, images], axis=-1)
        mean = ops.convert_to_tensor(IMAGENET_MEAN, dtype="float32")
        std = ops.convert_to_tensor(IMAGENET_STD, dtype="float32")
        return (images / 255.0 - mean) / std


@keras.saving.register_keras_serializable(package="ocl")
class TemperatureScaling(keras.layers.Layer):
    """Sigmoid scores recalibrated per output: ``sigmoid(logit(p) / T)``, with each output's T fitted
    on validation by ``ocl evaluate`` (:func:`sweep.stats.fit_temperature`). Monotone: the ranking
    and every threshold's calls are unchanged; the scores now read as risks."""

    def __init__(self, temperatures: list[float], **kwargs) -> None:
        super().__init__(**kwargs)
        self.temperatures = [float(t) for t in temperatures]

    def call(self, inputs):
        ops = keras.ops
        p = ops.clip(ops.cast(inputs, "float32"), 1e-6, 1 - 1e-6)
        logits = ops.log(p) - ops.log(1 - p)
        return ops.sigmoid(logits / ops.convert_to_tensor(self.temperatures, dtype="float32"))

    def get_config(self) -> dict:
        return {**super().get_config(), "temperatures": self.temperatures}


def with_temperature(model, temperatures: list[float]):
    """``model`` (raw X-ray to sigmoid scores) followed by its outputs' temperatures, as one model.

    Built on the model's own graph (its layers, not the model as a nested layer), so the export
    carries no training state: loading it needs no loss or optimizer of OCL's."""
    outputs = TemperatureScaling(temperatures, name="temperature_scaling", dtype="float32")(model.outputs[0])
    return keras.Model(model.inputs, outputs, name=f"{model.name}_calibrated")


def preprocessing_layer() -> XrayPreprocessing:
    return XrayPreprocessing(name="xray_preprocessing")


def _imagenet_file() -> str:
    """Keras' cached ImageNet file, downloaded once. Keras prints "Downloading data from URL" and a
    progress bar on stdout; that line read as a stray message right before our offline error (and
    stdout may carry JSON), so it is kept off stdout."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return keras.utils.get_file(IMAGENET_FILE, IMAGENET_URL, cache_subdir="models", file_hash=IMAGENET_MD5)
    except Exception as exc:  # get_file wraps every network failure in a plain Exception
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        reason = reason.split(" -- ", 1)[-1][:120]  # keep "[Errno -3] Temporary failure in name resolution"
        raise OCLError(
            f"--weights imagenet: could not download {IMAGENET_FILE} ({reason}); "
            f"copy that file into ~/.keras/models/, pass --weights PATH to a local DenseNet-121 weights file, "
            "or pass --weights none to train from random initialisation"
        ) from None


def build_backbone(image_size: int, weights: Weights) -> Any:
    """DenseNet-121 without its top, input ``(image_size, image_size, 1)``, with the given weights.

    Layer names are Keras' own (``conv5_block16_2_conv``...): they are OCL's names for cut points.
    """
    keras.utils.set_random_seed(weights.seed)
    inputs = keras.Input((image_size, image_size, 1), name="xray")
    features = preprocessing_layer()(inputs)
    model = keras.applications.DenseNet121(include_top=False, weights=None, input_tensor=features)
    if weights.kind == "imagenet":
        model.load_weights(_imagenet_file())
    elif weights.kind == "file":
        _load_file(model, weights.path)
    return model


def _load_file(model: Any, path: Path) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path.suffix == ".keras":
                source = keras.saving.load_model(path, compile=False)
                model.set_weights(_densenet_weights(source, model, path))
            else:
                model.load_weights(path)
    except OCLError:
        raise
    except Exception as exc:
        reason = str(exc).splitlines()[0][:160]
        if "could not be loaded" in reason or "expected" in reason.lower():
            reason = "its layers do not match DenseNet-121's"
        raise OCLError(
            f"--weights {path}: not DenseNet-121 weights ({reason}); pass a file saved from "
            "keras.applications.DenseNet121(include_top=False), imagenet, or none"
        ) from None


def _densenet_weights(source: Any, target: Any, path: Path) -> list:
    """Weights of a saved model's DenseNet-121 layers, matched to ``target`` by layer name."""
    by_name = {layer.name: layer for layer in _all_layers(source)}
    values = []
    for layer in target.layers:
        if not layer.weights:
            continue
        match = by_name.get(layer.name)
        if match is None or [w.shape for w in match.weights] != [w.shape for w in layer.weights]:
            raise OCLError(
                f"--weights {path}: layer {layer.name!r} is missing or has another shape; "
                "pass a DenseNet-121 (include_top=False) model"
            )
        values.extend(match.get_weights())
    return values


def _all_layers(model: Any) -> list:
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if hasattr(layer, "layers"):
            layers.extend(_all_layers(layer))
    return layers
