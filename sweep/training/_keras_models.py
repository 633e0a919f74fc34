"""Keras classifiers built on a truncated backbone (Keras 3 API only: runs on any backend)."""

from __future__ import annotations

from typing import Any

import numpy as np

from sweep._keras import keras_module
from sweep.model import build_augmentation
from sweep.training._config import TrialConfig
from sweep.training._head import SGD_MOMENTUM

keras = keras_module()


@keras.saving.register_keras_serializable(package="ocl")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy with positives weighted per output (negatives / positives on train).

    A NaN target is an unknown label (U-Ignore): that cell has weight 0, as in the numpy head.
    """

    def __init__(self, pos_weight: list[float], name: str = "weighted_bce", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.pos_weight = [float(w) for w in pos_weight]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ops = keras.ops
        y_true = ops.cast(y_true, y_pred.dtype)
        known = ops.logical_not(ops.isnan(y_true))
        y_true = ops.where(known, y_true, 0.0)
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        weight = ops.where(y_true > 0, ops.convert_to_tensor(self.pos_weight, dtype=y_pred.dtype), 1.0)
        weight = ops.where(known, weight, 0.0)
        return -ops.mean(weight * (y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p)), axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pos_weight": self.pos_weight}


def truncated(backbone: Any, cut_layer: str) -> Any:
    """The backbone up to and including ``cut_layer`` (weights shared with ``backbone``)."""
    return keras.Model(backbone.input, backbone.get_layer(cut_layer).output, name=f"densenet121_to_{cut_layer}")


def _head(x: Any, n_outputs: int, units: int, dropout: float) -> Any:
    if units:
        x = keras.layers.Dense(units, activation="relu", name="head_dense")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    # float32 whatever the precision: the sigmoid and the loss of a mixed-precision model stay exact
    return keras.layers.Dense(n_outputs, activation="sigmoid", name="head_output", dtype="float32")(x)


def fine_tuning_model(backbone: Any, config: TrialConfig, n_outputs: int) -> Any:
    """Input -> [augmentation] -> truncated backbone (BN in inference mode) -> pool -> head."""
    base = truncated(backbone, config.cut_layer)
    inputs = keras.Input(backbone.inputs[0].shape[1:], name="xray")
    x = build_augmentation(config.augmentation, seed=config.seed)(inputs) if config.augment else inputs
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, _head(x, n_outputs, config.head_units, config.dropout), name="ocl_fine_tuned")
    boundary = [layer.name for layer in base.layers].index(config.unfreeze_from or config.cut_layer)
    for index, layer in enumerate(base.layers):
        layer.trainable = index >= boundary and not isinstance(layer, keras.layers.BatchNormalization)
    return model


def suffix_model(full: Any, config: TrialConfig, entry: str | None = None) -> tuple[Any, int]:
    """The part of a :func:`fine_tuning_model` after the layer ``entry``, and ``entry``'s channels.

    Its input is ``entry``'s output (a banked prefix tensor; default: the unfreeze boundary). The
    layers are the full model's own, trainable or frozen as there (BatchNormalization run in
    inference mode), so training it trains ``full``, which stays the model to export. An ``entry``
    before the boundary (a transition's input) recomputes the frozen layers between them.
    """
    base = full.get_layer(f"densenet121_to_{config.cut_layer}")
    entry = entry or config.unfreeze_from or config.cut_layer
    shape = tuple(base.get_layer(entry).output.shape[1:])
    inputs = keras.Input(shape, name="prefix")
    x = inputs
    if entry != config.cut_layer:
        name = f"{entry}_to_{config.cut_layer}"
        part = keras.Model(base.get_layer(entry).output, base.get_layer(config.cut_layer).output, name=name)
        x = part(x, training=False)
    x = full.get_layer("pool")(x)
    if config.head_units:
        x = full.get_layer("head_dense")(x)
        if config.dropout:
            x = full.get_layer("head_dropout")(x)
    return keras.Model(inputs, full.get_layer("head_output")(x), name="ocl_fine_tuned_suffix"), int(shape[-1])


def feature_extraction_model(backbone: Any, config: TrialConfig, head: Any, n_outputs: int) -> Any:
    """The Keras twin of a numpy-trained head on top of the frozen truncated backbone."""
    base = truncated(backbone, config.cut_layer)
    base.trainable = False
    inputs = keras.Input(backbone.inputs[0].shape[1:], name="xray")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(base(inputs, training=False))
    norm = keras.layers.Normalization(mean=head.mean, variance=np.square(head.std), name="standardize")
    x = norm(x)
    model = keras.Model(inputs, _head(x, n_outputs, config.head_units, config.dropout), name="ocl_feature_extraction")
    dense = [model.get_layer("head_dense")] if config.head_units else []
    for layer, (w, b) in zip(dense + [model.get_layer("head_output")], zip(head.params[::2], head.params[1::2])):
        layer.set_weights([w, b])
    return model


def make_optimizer(name: str, learning_rate: float) -> Any:
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=SGD_MOMENTUM)
    return {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "rmsprop": keras.optimizers.RMSprop}[name](
        learning_rate
    )
