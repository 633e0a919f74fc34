"""Grad-CAM at the cut-off layer, and the randomised twin its sanity check compares against.

Grad-CAM (Selvaraju et al., ICCV 2017) weighs each channel of a convolutional feature map by the
mean gradient of a class score with respect to it, sums the weighted channels and keeps the
positive part: where in the image the evidence for that score lies. An OCL model's last
convolutional map *is* the cut-off layer (the head pools it), so that is where the maps are
taken. The score differentiated is the output's logit, not its probability: a confident
sigmoid (or the temperature layer's clip) would flatten the gradient to zero.

The model-randomisation check of Adebayo et al. (NeurIPS 2018) asks whether a map depends on
what the model learnt: maps of a twin with every weight re-initialised must differ.
:func:`randomised_twin` builds that twin (same architecture, fresh seeded weights).

The gradient comes from :func:`sweep._keras.input_gradient`, so this runs on every Keras backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sweep._keras import input_gradient, keras_module

keras = keras_module()

_HEAD_LAYERS = ("pool", "standardize", "head_dense", "head_dropout")
"""The layers between the cut-off layer and the output layer of an OCL model, in order (those present)."""


def _base_name(model: Any) -> str:
    names = [layer.name for layer in model.layers if layer.name.startswith("densenet121_to_")]
    if len(names) != 1:
        raise ValueError(f"model {model.name}: not an OCL export (no single densenet121_to_<layer> part)")
    return names[0]


def cut_layer_of(model: Any) -> str:
    """The cut-off layer an exported OCL model ends its backbone at."""
    return _base_name(model).removeprefix("densenet121_to_")


def _logit_parts(model: Any) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """The truncated backbone, the head up to its last hidden layer, and the output layer's weights."""
    base = model.get_layer(_base_name(model))
    features = keras.Input(tuple(base.output.shape[1:]), name="cut_features")
    x = features
    present = {layer.name for layer in model.layers}
    for name in _HEAD_LAYERS:
        if name in present:
            x = model.get_layer(name)(x)
    kernel, bias = model.get_layer("head_output").get_weights()
    return base, keras.Model(features, x, name="head_to_last_hidden"), np.asarray(kernel), np.asarray(bias)


def grad_cam(model: Any, images: np.ndarray, output: int, batch_size: int = 16) -> np.ndarray:
    """Grad-CAM maps of one output for grayscale images ``(n, size, size)``: ``(n, size, size)``
    in [0, 1] (each map divided by its maximum; all zeros where no evidence is positive)."""
    base, head, kernel, _ = _logit_parts(model)
    size = images.shape[1]
    maps = []
    for lo in range(0, len(images), batch_size):
        batch = np.asarray(images[lo : lo + batch_size], np.float32)[..., None]
        features = np.asarray(base.predict_on_batch(batch), np.float32)  # (n, h, w, channels)
        gradient = input_gradient(head, features, kernel[:, output])  # d logit / d features
        weights = gradient.mean(axis=(1, 2))  # Grad-CAM: each channel's mean gradient
        cam = np.maximum(np.einsum("nhwc,nc->nhw", features, weights), 0.0)
        maps.append(_upsample(cam, size))
    found = np.concatenate(maps) if maps else np.zeros((0, size, size), np.float32)
    peak = found.reshape(len(found), -1).max(axis=1, initial=0.0)
    return np.where(peak[:, None, None] > 0, found / np.maximum(peak, 1e-12)[:, None, None], 0.0).astype(np.float32)


def _upsample(cam: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of ``(n, h, w)`` maps to ``(n, size, size)``, cell centres aligned (as Grad-CAM shows them)."""
    from PIL import Image

    return np.stack(
        [np.asarray(Image.fromarray(c.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR)) for c in cam]
    )


def randomised_twin(model: Any, seed: int) -> Any:
    """The same architecture with every weight re-initialised (seeded): Adebayo et al.'s full
    model-parameter randomisation. The temperature and the head's standardisation are kept;
    they are fixed per output, not learnt features, and leave a map's shape unchanged."""
    keras.utils.set_random_seed(seed)
    twin = keras.models.clone_model(model)
    twin.build(model.inputs[0].shape)
    return twin
