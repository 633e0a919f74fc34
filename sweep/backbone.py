"""DenseNet-121 with the weights the user asked for, fed grayscale X-rays.

Weights are ``imagenet`` (Keras' published file, downloaded once into ``~/.keras/models``), a
local file (``.weights.h5``, Keras' ``.h5`` or a whole ``.keras`` model, for machines without
internet) or ``none`` (random initialisation, seeded, so every process builds the same network
and the feature bank stays valid). If ImageNet weights cannot be had, this stops and says how to
fix it: a sweep that silently trained on random features would answer the wrong question.

The model's input is the cached grayscale image, ``(size, size, 1)`` in 0..255; a preprocessing
layer repeats it to three channels and applies exactly
``keras.applications.densenet.preprocess_input``, so a saved model takes raw X-rays.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep._keras import keras_module
from sweep.errors import OCLError

keras = keras_module()
from keras.applications.densenet import preprocess_input  # noqa: E402  (after the quiet import)

__all__ = ["IMAGENET_FILE", "Weights", "XrayPreprocessing", "build_backbone", "parse_weights", "preprocessing_layer"]

IMAGENET_FILE = "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/densenet/" + IMAGENET_FILE
IMAGENET_MD5 = "30ee3e1110167f948a6b9946edeeb738"
WEIGHT_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".keras")


@dataclass(frozen=True)
class Weights:
    """Which weights to load: ``kind`` is ``imagenet``, ``none`` or ``file``.

    ``identity`` names the exact weights in cache keys and the OCL dictionary: the ImageNet file's
    hash, the seed of a random initialisation, or a hash of a local file's bytes.
    """

    kind: str
    path: Path | None = None
    seed: int = 0

    @property
    def label(self) -> str:
        """What users see and filter by: ``imagenet``, ``none`` or the file name."""
        return self.path.name if self.kind == "file" and self.path else self.kind

    @property
    def identity(self) -> str:
        if self.kind == "imagenet":
            return f"imagenet-{IMAGENET_MD5[:12]}"
        if self.kind == "none":
            return f"none-seed{self.seed}"
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:  # type: ignore[arg-type]
            while block := handle.read(1 << 22):
                digest.update(block)
        return f"file-{digest.hexdigest()[:12]}"


def parse_weights(text: str, *, seed: int = 0) -> Weights:
    """Parse ``--weights``: ``imagenet``, ``none`` or a path to a weights file."""
    lowered = text.strip().lower()
    if lowered == "imagenet":
        return Weights("imagenet", seed=seed)
    if lowered in ("none", "random"):
        return Weights("none", seed=seed)
    path = Path(text).expanduser()
    if not path.is_file():
        raise OCLError(f"--weights {text}: no such file; pass imagenet, none, or the path to a DenseNet-121 weights file")
    if not path.name.lower().endswith(WEIGHT_SUFFIXES):
        raise OCLError(f"--weights {text}: not a Keras weights file; expected one of {', '.join(WEIGHT_SUFFIXES)}")
    return Weights("file", path=path.resolve(), seed=seed)


@keras.saving.register_keras_serializable(package="ocl")
class XrayPreprocessing(keras.layers.Layer):
    """Grayscale 0..255 to 3 channels, then exactly ``keras.applications.densenet.preprocess_input``."""

    def call(self, inputs):
        images = keras.ops.cast(inputs, "float32")
        if images.shape[-1] == 1:
            images = keras.ops.repeat(images, 3, axis=-1)
        return preprocess_input(images)


def preprocessing_layer() -> XrayPreprocessing:
    return XrayPreprocessing(name="xray_preprocessing")


def _imagenet_file() -> str:
    try:
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
