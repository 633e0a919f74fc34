"""On-the-fly augmentation with Keras preprocessing layers, like the poster's ImageDataGenerator.

The poster trained with ``ImageDataGenerator`` (flips, rotations, zooms, shifts, brightness);
these are its Keras 3 equivalents, which run on any backend and only while training.
Horizontal flips are off by default: a flipped chest X-ray puts the heart on the wrong side.

Every random layer gets its own seed (:func:`layer_seeds`). Keras layers given the same integer
seed draw the same random stream, so a shared seed would tie the transforms together: the image
rotated furthest would also be zoomed, shifted and brightened the most. The per-layer seeds are
derived from the one seed by ``numpy.random.SeedSequence`` keyed by the transform's name, so they
are reproducible, distinct, and a transform keeps its seed when another one is turned off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["TRANSFORMS", "Augmentation", "build_augmentation", "layer_seeds"]

TRANSFORMS = ("horizontal_flip", "rotation", "zoom", "shift", "contrast", "brightness")
"""The random layers, in the order they are applied; each gets its own seed."""


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


def layer_seeds(seed: int) -> dict[str, int]:
    """One seed per transform in :data:`TRANSFORMS`, derived deterministically from ``seed``.

    Each is the first word of ``SeedSequence([seed, i])`` (``i`` the transform's place in
    ``TRANSFORMS``), kept below 2**31 so every Keras backend takes it as an integer seed.

    Raises:
        ValueError: when ``seed`` is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed={seed!r}: expected a non-negative integer")
    seeds = {
        name: int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0] & 0x7FFFFFFF) for i, name in enumerate(TRANSFORMS)
    }
    if len(set(seeds.values())) != len(seeds):  # 1 in ~10^8 seeds; never silently correlate two layers
        used: set[int] = set()
        for name in TRANSFORMS:
            while seeds[name] in used:
                seeds[name] = (seeds[name] + 1) & 0x7FFFFFFF
            used.add(seeds[name])
    return seeds


def build_augmentation(aug: Augmentation, seed: int = 0) -> Any:
    """A ``keras.Sequential`` of random layers; identity when called with ``training=False``.

    Each layer is seeded with its own entry of :func:`layer_seeds` (``seed``), so the random draws
    of the transforms are independent of each other and the whole pipeline is reproducible.
    """
    from sweep._keras import keras_module

    keras = keras_module()
    seeds = layer_seeds(seed)
    layers: list[Any] = []
    if aug.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seeds["horizontal_flip"]))
    if aug.rotation_degrees > 0:
        layers.append(keras.layers.RandomRotation(aug.rotation_degrees / 360.0, fill_mode="constant", seed=seeds["rotation"]))
    if aug.zoom > 0:
        layers.append(keras.layers.RandomZoom(aug.zoom, fill_mode="constant", seed=seeds["zoom"]))
    if aug.shift > 0:
        layers.append(keras.layers.RandomTranslation(aug.shift, aug.shift, fill_mode="constant", seed=seeds["shift"]))
    if aug.contrast > 0:
        layers.append(keras.layers.RandomContrast(aug.contrast, value_range=(0, 255), seed=seeds["contrast"]))
    if aug.brightness > 0:
        layers.append(keras.layers.RandomBrightness(aug.brightness, value_range=(0, 255), seed=seeds["brightness"]))
    return keras.Sequential(layers, name="augmentation")
