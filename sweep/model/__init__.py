"""The network: DenseNet-121, the weights it starts from, its candidate cut-off layers, and the
augmentation layers fine-tuning trains with, and the precision it computes in.

Keras layer names are the words for cut points (``conv4_block24_concat``); :data:`CANDIDATES`
lists the 63 of them in network order. Building the network needs Keras, so the names that do
(:func:`build_backbone`, :func:`preprocessing_layer`, :class:`XrayPreprocessing`) load their module
on first use: importing this folder, as every command does, loads no TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

from sweep.model._augment import TRANSFORMS, Augmentation, build_augmentation, layer_seeds
from sweep.model._candidates import (
    CANDIDATES,
    BlockSpan,
    LayerCatalog,
    LayerFacts,
    LayerInfo,
    block_of,
    block_spans,
    candidate_layers,
    candidate_names,
    is_candidate,
    resolve_layer,
)
from sweep.model._precision import PRECISIONS, dtype_policy, parse_precision, use_precision
from sweep.model._predict import predict_in_batches
from sweep.model._weights import IMAGENET_FILE, IMAGENET_MD5, Weights, parse_weights, shared_weights_name, weights_label

_NEEDS_KERAS = {
    **dict.fromkeys(
        ("TemperatureScaling", "XrayPreprocessing", "build_backbone", "preprocessing_layer", "with_temperature"), "_backbone"
    ),
    **dict.fromkeys(("cut_layer_of", "grad_cam", "randomised_twin"), "_saliency"),
}

__all__ = [
    "CANDIDATES",
    "IMAGENET_FILE",
    "IMAGENET_MD5",
    "PRECISIONS",
    "TRANSFORMS",
    "Augmentation",
    "BlockSpan",
    "LayerCatalog",
    "LayerFacts",
    "LayerInfo",
    "Weights",
    "block_of",
    "block_spans",
    "build_augmentation",
    "candidate_layers",
    "candidate_names",
    "dtype_policy",
    "is_candidate",
    "layer_seeds",
    "parse_precision",
    "parse_weights",
    "predict_in_batches",
    "resolve_layer",
    "shared_weights_name",
    "use_precision",
    "weights_label",
    *_NEEDS_KERAS,
]


def __getattr__(name: str) -> Any:
    """The Keras-backed names, imported from their module (:mod:`sweep.model._backbone`,
    :mod:`sweep.model._saliency`) when first asked for."""
    if name in _NEEDS_KERAS:
        return getattr(importlib.import_module(f"sweep.model.{_NEEDS_KERAS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
