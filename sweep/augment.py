"""On-the-fly augmentation with Keras preprocessing layers, like the poster's ImageDataGenerator.

The poster trained with ``ImageDataGenerator`` (flips, rotations, zooms, shifts, brightness);
these are its Keras 3 equivalents, which run on any backend and only while training.
Horizontal flips are off by default: a flipped chest X-ray puts the heart on the wrong side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Augmentation", "build_augmentation"]


@dataclass(frozen=True)
class Augmentation:
    """Strengths of each transform; 0 turns it off."""

    rotation_degrees: float = 10.0
    zoom: float = 0.1
    shift: float = 0.05
    contrast: float = 0.1
    brightness: float = 0.1
    horizontal_flip: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_augmentation(aug: Augmentation, seed: int = 0) -> Any:
    """A ``keras.Sequential`` of random layers; identity when called with ``training=False``."""
    from sweep._keras import keras_module

    keras = keras_module()
    layers: list[Any] = []
    if aug.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if aug.rotation_degrees > 0:
        layers.append(keras.layers.RandomRotation(aug.rotation_degrees / 360.0, fill_mode="constant", seed=seed))
    if aug.zoom > 0:
        layers.append(keras.layers.RandomZoom(aug.zoom, fill_mode="constant", seed=seed))
    if aug.shift > 0:
        layers.append(keras.layers.RandomTranslation(aug.shift, aug.shift, fill_mode="constant", seed=seed))
    if aug.contrast > 0:
        layers.append(keras.layers.RandomContrast(aug.contrast, value_range=(0, 255), seed=seed))
    if aug.brightness > 0:
        layers.append(keras.layers.RandomBrightness(aug.brightness, value_range=(0, 255), seed=seed))
    return keras.Sequential(layers, name="augmentation")
