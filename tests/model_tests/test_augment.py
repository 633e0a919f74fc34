"""Every augmentation layer draws from its own seed, derived reproducibly from the one seed."""

from __future__ import annotations

import numpy as np
import pytest

from sweep.model import TRANSFORMS, Augmentation, build_augmentation, layer_seeds

EVERYTHING = Augmentation(horizontal_flip=True)  # every transform on


def _seeds(model) -> dict[str, int]:
    return {layer.name: layer.seed for layer in model.layers}


@pytest.mark.parametrize("seed", [0, 1, 7, 2**31 + 5])
def test_each_layer_gets_a_distinct_seed(seed):
    seeds = layer_seeds(seed)
    assert list(seeds) == list(TRANSFORMS)
    assert len(set(seeds.values())) == len(TRANSFORMS)
    assert all(isinstance(s, int) and 0 <= s < 2**31 for s in seeds.values())
    model = build_augmentation(EVERYTHING, seed=seed)
    built = [layer.seed for layer in model.layers]
    assert len(built) == len(TRANSFORMS) and len(set(built)) == len(built)
    assert sorted(built) == sorted(seeds.values())


def test_seeds_are_reproducible_and_depend_on_the_seed():
    assert layer_seeds(3) == layer_seeds(3)
    assert _seeds(build_augmentation(EVERYTHING, seed=3)).values() != _seeds(build_augmentation(EVERYTHING, seed=4)).values()
    assert [layer.seed for layer in build_augmentation(EVERYTHING, seed=3).layers] == [
        layer.seed for layer in build_augmentation(EVERYTHING, seed=3).layers
    ]
    assert not set(layer_seeds(3).values()) & set(layer_seeds(4).values())


def test_a_transform_keeps_its_seed_when_another_is_turned_off():
    full = {type(layer).__name__: layer.seed for layer in build_augmentation(EVERYTHING, seed=11).layers}
    fewer = {type(layer).__name__: layer.seed for layer in build_augmentation(Augmentation(zoom=0.0), seed=11).layers}
    assert "RandomZoom" not in fewer and "RandomFlip" not in fewer
    assert all(full[name] == seed for name, seed in fewer.items())


def test_same_seed_same_images_and_identity_when_not_training():
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 1)).astype(np.float32)
    first = np.asarray(build_augmentation(EVERYTHING, seed=5)(images, training=True))
    again = np.asarray(build_augmentation(EVERYTHING, seed=5)(images, training=True))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(np.asarray(build_augmentation(EVERYTHING, seed=5)(images, training=False)), images)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_bad_seeds_are_refused_with_the_argument_named(seed):
    with pytest.raises(ValueError, match="seed="):
        layer_seeds(seed)
