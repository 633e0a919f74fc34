"""The feature bank: pooled features of every candidate layer from ONE forward pass.

A cut-off-layer sweep that ran DenseNet-121 in every trial would spend nearly all its time
recomputing the same features (about 20 img/s at 224 px on two CPU cores). A multi-output model
gives the globally average-pooled output of all candidate layers for about the cost of one plain
forward pass; after that a feature-extraction trial is a head fit of a fraction of a second.

On disk, one folder per (weights identity, image-cache key) holds one ``(images, channels)``
float32 array per layer, plus optional augmented views of the training images (``views``: K
random augmentations each, so frozen-feature trials can still train with augmentation). Arrays
are written under temporary names and recorded in a checksummed manifest (see ``_artifacts``);
a file lock makes concurrent workers wait for one build instead of racing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sweep._env import cache_dir as default_cache_dir
from sweep._progress import rate_progress, rate_text
from sweep.caches import _artifacts as _artifacts
from sweep.caches._disk import array_bytes, present
from sweep.caches._image_cache import ImageCache
from sweep.model import Augmentation

__all__ = ["FeatureBank", "ViewSpec", "load_feature_bank"]

BATCH_SIZE = 32


@dataclass(frozen=True)
class ViewSpec:
    """K augmented views of the images at ``indices`` (the training split)."""

    count: int
    indices: tuple[int, ...]
    augmentation: Augmentation = Augmentation()
    seed: int = 0

    @property
    def key(self) -> str:
        # "seeds-per-layer": views drawn since each augmentation layer got its own seed; the tag keeps
        # views banked under the earlier shared seed from being reused as if they were the same.
        payload = json.dumps(
            [self.count, self.augmentation.as_dict(), self.seed, "seeds-per-layer", [int(i) for i in self.indices]]
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


class FeatureBank:
    """Read access to banked features. ``features(layer)`` is ``(images, channels)`` float32."""

    def __init__(self, directory: Path, manifest: dict[str, Any], views: ViewSpec | None) -> None:
        self.directory = directory
        self._manifest = manifest
        self._views = views

    @property
    def layers(self) -> list[str]:
        return list(self._manifest["layers"])

    def features(self, layer: str) -> np.ndarray:
        return self._load(f"layers/{layer}", self._manifest["layers"][layer])

    def view_features(self, layer: str, rows: np.ndarray | None = None) -> np.ndarray | None:
        """``(views, training images, channels)``, or None when no views were banked.

        With ``rows`` (image rows, each one of the banked training images): only theirs, in that
        order, so a trial fitting on part of train (``--selection inner``) pairs every view with its
        image's targets.
        """
        if not self._views:
            return None
        entry = self._manifest["views"][self._views.key][layer]
        views = self._load(f"views-{self._views.key}/{layer}", entry)
        indices = np.asarray(self._views.indices)
        if rows is None or np.array_equal(rows, indices):  # the whole training split: the map itself, no copy
            return views
        position = np.full(int(max(indices.max(), np.max(rows))) + 1, -1)
        position[indices] = np.arange(len(indices))
        wanted = position[np.asarray(rows)]
        if (wanted < 0).any():
            raise ValueError("view_features: some rows are not among the banked training images")
        return np.asarray(views[:, wanted])

    def _load(self, relative: str, entry: dict[str, Any]) -> np.ndarray:
        """A fresh read-only map of one file, unmapped when the caller lets go of it (after its
        trial). Kept open for a worker's life, the pages of every layer its trials had read stayed
        in its RSS, growing towards the whole bank (37 GB at full ChestX-ray14 size)."""
        array = _artifacts.open_checked(self.directory / f"{relative}.npy", entry, verify_checksum=False)
        if array is None:
            raise RuntimeError(f"feature bank file {self.directory / relative}.npy changed on disk; rerun to rebuild it")
        return array


def _valid(directory: Path, relative: str, entry: dict[str, Any] | None, rows: int) -> bool:
    if entry is None:
        return False
    array = _artifacts.open_checked(directory / f"{relative}.npy", entry)
    return array is not None and array.shape[-2] == rows


def bank_directory(cache_key: str, weights: Any, dtype_policy: str = "float32", cache_dir: Path | None = None) -> Path:
    """Where the bank of one image cache and one weights choice lives."""
    precision = "" if dtype_policy == "float32" else f"-{dtype_policy}"  # other numbers: other files
    return Path(cache_dir or default_cache_dir()) / "bank" / f"{weights.identity}{precision}" / cache_key


def feature_bank_bytes(
    cache_key: str,
    images: int,
    weights: Any,
    channels: Mapping[str, int],
    *,
    views: ViewSpec | None = None,
    cache_dir: Path | None = None,
    dtype_policy: str = "float32",
) -> int:
    """The bytes :func:`load_feature_bank` would still write for these layers (``channels``: each
    layer's width) and views, before the images are even decoded: 0 for what is already banked."""
    directory = bank_directory(cache_key, weights, dtype_policy, cache_dir)
    manifest = _artifacts.read_manifest(directory, "layers", "views")
    layers, banked_views = manifest["layers"], manifest["views"].get(views.key, {}) if views else {}
    total = 0
    for layer, width in channels.items():
        if not present(directory / "layers" / f"{layer}.npy", layers.get(layer)):
            total += array_bytes((images, width), 4)
        if views and not present(directory / f"views-{views.key}" / f"{layer}.npy", banked_views.get(layer)):
            total += array_bytes((views.count, len(views.indices), width), 4)
    return total


def load_feature_bank(
    cache: ImageCache,
    weights: Any,
    layers: Sequence[str],
    *,
    views: ViewSpec | None = None,
    cache_dir: Path | None = None,
    batch_size: int = BATCH_SIZE,
    backbone: Any = None,
    dtype_policy: str = "float32",
) -> FeatureBank:
    """Open the bank for these images and weights, computing whatever layers or views are missing.

    Args:
        cache: the image cache the features are computed from.
        weights: a :class:`sweep.model._backbone.Weights`.
        layers: layer names to make available (any layer of the network, not only candidates).
        views: augmented views of the training images to bank as well.
        backbone: an already built backbone to reuse (else built here only if something is missing).
    """
    directory = bank_directory(cache.key, weights, dtype_policy, cache_dir)
    n = len(cache.images)
    with _artifacts.locked(directory):
        manifest = _artifacts.read_manifest(directory, "layers", "views")
        missing = [name for name in layers if not _valid(directory, f"layers/{name}", manifest["layers"].get(name), n)]
        view_entries = manifest["views"].get(views.key, {}) if views else {}
        missing_views = [
            name
            for name in layers
            if views and not _valid(directory, f"views-{views.key}/{name}", view_entries.get(name), len(views.indices))
        ]
        if missing or missing_views:
            from sweep.model import build_backbone

            model = backbone or build_backbone(cache.size, weights)
            if missing:
                _compute(model, cache.images, None, missing, directory / "layers", batch_size, "banking features")
                for layer in missing:
                    manifest["layers"][layer] = _artifacts.describe(directory / "layers" / f"{layer}.npy")
            if missing_views:
                assert views is not None
                folder = directory / f"views-{views.key}"
                _compute(model, cache.images, views, missing_views, folder, batch_size, f"banking {views.count} augmented views")
                entries = manifest["views"].setdefault(views.key, {})
                for layer in missing_views:
                    entries[layer] = _artifacts.describe(folder / f"{layer}.npy")
            _artifacts.write_json_atomic(directory / "manifest.json", manifest)
    return FeatureBank(directory, manifest, views)


def pooled_model(backbone: Any, layers: Sequence[str]) -> Any:
    """One model whose outputs are the global-average-pooled outputs of ``layers``."""
    from sweep._keras import keras_module

    keras = keras_module()
    outputs = [keras.layers.GlobalAveragePooling2D(name=f"pooled_{name}")(backbone.get_layer(name).output) for name in layers]
    return keras.Model(backbone.input, outputs, name="feature_bank")


def batch_outputs(
    model: Any, images: np.ndarray, views: ViewSpec | None, batch_size: int, description: str
) -> Iterator[tuple[int | None, int, list[np.ndarray]]]:
    """Run ``model`` over the images, or over the K augmented copies of ``views``' training images,
    batch by batch under a progress bar.

    Yields ``(view, first row, one array per model output)``; ``view`` is None for the clean images.
    The feature bank and the spatial bank both read their views through this one loop (the same
    augmentation, seed and batches), so their K augmented views are the same images.
    """
    if views is None:
        rows, passes, indices = len(images), 1, np.arange(len(images))
    else:
        from sweep.model import build_augmentation

        rows, passes, indices = len(views.indices), views.count, np.asarray(views.indices)
        augment = build_augmentation(views.augmentation, seed=views.seed)
    with rate_progress() as bar:
        task = bar.add_task(description, total=rows * passes, rate="")
        start, done = time.perf_counter(), 0
        for view in range(passes):
            for lo in range(0, rows, batch_size):
                batch = np.asarray(images[indices[lo : lo + batch_size]], dtype=np.float32)[..., None]
                if views is not None:
                    batch = np.asarray(augment(batch, training=True))
                result = model.predict_on_batch(batch)
                if not isinstance(result, list | tuple):  # a one-output model returns the array itself
                    result = [result]
                yield (None if views is None else view), lo, [np.asarray(r) for r in result]
                done += len(batch)
                bar.update(task, advance=len(batch), rate=rate_text(done, time.perf_counter() - start, "img"))


def _compute(
    backbone: Any,
    images: np.ndarray,
    views: ViewSpec | None,
    layers: Sequence[str],
    folder: Path,
    batch_size: int,
    description: str,
) -> None:
    """Run the pooled multi-output model over the images (or K augmented copies) and write each layer."""
    model = pooled_model(backbone, layers)
    widths = [int(model.outputs[i].shape[-1]) for i in range(len(layers))]
    lead = (len(images),) if views is None else (views.count, len(views.indices))
    with _open_all(folder, layers, [(*lead, w) for w in widths]) as outputs:
        for view, lo, result in batch_outputs(model, images, views, batch_size, description):
            for out, value in zip(outputs, result):
                out.write(() if view is None else (view,), lo, value)


@contextmanager
def _open_all(folder: Path, layers: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> Iterator[list[_artifacts.RowWriter]]:
    """Open one temporary array per layer; all are moved into place only if every one succeeded."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        arrays = [
            stack.enter_context(_artifacts.new_array_rows(folder / f"{layer}.npy", shape, "float32"))
            for layer, shape in zip(layers, shapes)
        ]
        yield arrays
