"""The spatial bank: the frozen prefix of fine-tuning trials, computed once per image and view.

OCL fine-tunes with BatchNormalization frozen (inference mode), so everything before a trial's
unfreeze boundary is a fixed function of the image: recomputing it in every epoch of every trial
is most of a fine-tuning trial's time. This bank stores, once, the LAST concatenation of each
dense block (``conv3_block12_concat``...) for every image and for the K augmented views of the
training images the feature bank already uses (the same :class:`~sweep.caches._feature_bank.ViewSpec`).

Why the last concat is enough: inside a DenseNet dense block every ``convK_blockJ_concat`` is the
concatenation of the block input with the new channels of each layer, so ``convK_blockJ_concat``
is exactly the first channels of the block's last concat. A boundary anywhere inside block K is a
channel slice of one banked tensor.

The rule a trial follows (see :meth:`SpatialBank.source`): when its boundary (``unfreeze_from``,
or the cut layer when that is None) is a ``convK_blockJ_concat`` of a banked block K, it trains
only the layers from the boundary to the cut (BatchNormalization still frozen, in inference mode)
and the head, on the first channels of block K's banked tensor. When the boundary is the output of
the transition after a banked block (``pool3_pool``, ``pool4_pool``), the trainer starts from the
block's whole banked tensor and recomputes the frozen transition (BN, ReLU, 1x1 conv, pooling: a
small share of the prefix). Any other boundary (a layer inside a dense layer or a transition, the
stem, dense block 1) trains the whole truncated network on images, as without the bank.

What is banked: block 1 (``conv2_block6_concat``) never. Its tensor is the largest (56x56x256
values per image at 224 px, 1.6 MB in float16, more than the three deeper blocks together), and it
would not pay: a trial unfrozen inside block 1 trains the rest of block 1 at 56x56, the network's
most expensive resolution, so the few frozen layers it could skip are a small part of its epoch.
Only a boundary at the transition after it (``pool2_pool``: about 1 fine-tuning trial in 60 when
sampled uniformly) would gain much. The deeper blocks are banked deepest first (smallest and most used), each block's
clean tensors before its augmented views, while they fit the disk budget (``OCL_CACHE_MAX_GB``, read
by :func:`sweep._env.cache_max_bytes`, and the free disk space; see :func:`bank_plan`); a block
no cut layer of the sweep reaches is not banked. What is left out is computed on the fly: at full
ChestX-ray14 size and 224 px the default 20 GB holds dense block 4's clean tensors (11 GB), so
trials without augmentation read it and augmented ones train on images.

On disk (``<cache>/spatial/<weights>/<image cache key>/``): one float16 ``.npy`` per block,
``(images, h, w, channels)``, and per view set ``(views, training images, h, w, channels)``,
memory-mapped both when written and when read, so the bank is never held in memory. Files are
written under temporary names, preallocated (a full disk fails at once, with ENOSPC, instead of
later inside a memory map), renamed into place and recorded in a checksummed manifest (see
:mod:`sweep.caches._artifacts`); a file lock makes concurrent workers wait for one build. A killed build
leaves only temporary files, which nothing reads. When the disk is full, the partial files are
removed and the bank opens without those blocks (:attr:`SpatialBank.notes` says so): the sweep
goes on uncached.
"""

from __future__ import annotations

import errno
import math
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sweep._env import cache_dir as default_cache_dir
from sweep.caches import _artifacts as _artifacts
from sweep.caches._disk import FREE_DISK_MARGIN
from sweep.caches._feature_bank import BATCH_SIZE, ViewSpec, batch_outputs
from sweep.caches._image_cache import ImageCache

__all__ = ["BLOCKS", "BankPlan", "SpatialBank", "bank_plan", "entry_layer", "load_spatial_bank"]

BLOCKS = ("conv2_block6_concat", "conv3_block12_concat", "conv4_block24_concat", "conv5_block16_concat")
CHANNELS = {"conv2_block6_concat": 256, "conv3_block12_concat": 512, "conv4_block24_concat": 1024, "conv5_block16_concat": 1024}
NO_PAYOFF = {"conv2_block6_concat": "dense block 1: the largest tensor, for trials that mostly train at its resolution anyway"}
DTYPE = "float16"
REOPEN_BATCHES = 16  # rewritten pages are let go every this many batches: memory stays flat as the bank grows

_CONCAT = re.compile(r"^conv(\d)_block(\d+)_concat$")
_TRANSITION = re.compile(r"^pool(\d)_pool$")  # the transition after dense block convK: its input is the block's last concat


def entry_layer(boundary: str, block: str) -> str:
    """The layer whose output a banked trial's trainer takes as input.

    A ``convK_blockJ_concat`` boundary is its own entry (the first channels of ``block``). A
    transition's output (``poolK_pool``) is entered at ``block``, the transition's input, so the
    frozen transition is recomputed from the whole banked tensor.
    """
    return block if _TRANSITION.match(boundary) else boundary


def _stage(layer: str) -> float:
    """Where a layer sits, as a number: the stem 1, dense block ``convK`` K, its transition K.5, the end 6."""
    match = re.match(r"^(conv|pool)(\d)_", layer)
    if match:
        return int(match.group(2)) + (0.5 if match.group(1) == "pool" and match.group(2) != "1" else 0)
    return 6.0 if layer in ("bn", "relu") else 1.0


def block_shape(image_size: int, block: str) -> tuple[int, int, int]:
    """``(h, w, channels)`` of a block's last concat at ``image_size`` (DenseNet-121's paddings and strides)."""
    side = math.ceil(math.ceil(image_size / 2) / 2)  # conv1 then pool1: stride 2, padded
    for _ in range(int(block[4]) - 2):
        side //= 2  # each transition's 2x2 average pooling, unpadded
    return side, side, CHANNELS[block]


@dataclass(frozen=True)
class BankPlan:
    """What to bank: blocks for the clean images, blocks whose augmented views too, why not the rest."""

    clean: tuple[str, ...]
    views: tuple[str, ...]  # a subset of ``clean``
    why_not: dict[str, str]  # "BLOCK" or "BLOCK views" -> why it is computed on the fly


def bank_plan(image_size: int, images: int, view_rows: int, cut_layers: Sequence[str] | None, budget: int, free: int) -> BankPlan:
    """Which blocks to bank, deepest first (smallest, most used), each block's clean tensors before its
    augmented views, while they fit ``min(budget, free)``; and why each other piece is not banked.

    Clean tensors and views are separate pieces because at full ChestX-ray14 size a budget that
    cannot hold a block's views can still hold its clean tensors: trials without augmentation
    (half of them) then read the bank, augmented ones train on images.
    """
    clean: list[str] = []
    views: list[str] = []
    why_not: dict[str, str] = {}
    total = 0
    limit, limit_name = min(budget, free), ("OCL_CACHE_MAX_GB" if budget <= free else "the free disk space")
    deepest = max((_stage(c) for c in cut_layers), default=6.0) if cut_layers is not None else 6.0
    for block in reversed(BLOCKS):
        if block in NO_PAYOFF:
            why_not[block] = NO_PAYOFF[block]
            continue
        k = int(block[4])
        if deepest < k:
            why_not[block] = f"dense block {k - 1}: no cut layer of the sweep reaches it"
            continue
        per_row = int(np.prod(block_shape(image_size, block))) * 2
        size = per_row * images
        if total + size > limit:
            why_not[block] = f"dense block {k - 1}: {size / 1e9:.1f} GB would pass {limit_name}; computed on the fly"
            continue
        clean.append(block)
        total += size
        if view_rows:
            size = per_row * view_rows
            if total + size > limit:
                why_not[f"{block} views"] = (
                    f"dense block {k - 1}'s augmented views: {size / 1e9:.1f} GB more would pass {limit_name}; "
                    "augmented trials compute it on the fly"
                )
                continue
            views.append(block)
            total += size
    ordered = lambda blocks: tuple(b for b in BLOCKS if b in blocks)  # noqa: E731
    return BankPlan(ordered(clean), ordered(views), why_not)


@dataclass
class SpatialBank:
    """Read access to the banked blocks; ``banked`` is empty when nothing could be banked.

    ``banked`` holds the blocks banked for the clean images, ``banked_views`` those whose augmented
    views are banked too (a subset: a tight budget banks a block's clean tensors only).
    """

    directory: Path
    manifest: dict[str, Any]
    views: ViewSpec | None
    banked: tuple[str, ...]
    banked_views: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _open: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def source(self, boundary: str) -> str | None:
        """The banked block a trial unfrozen from ``boundary`` trains from, or None (see :func:`entry_layer`)."""
        match = _CONCAT.match(boundary) or _TRANSITION.match(boundary)
        if not match:
            return None
        block = BLOCKS[int(match.group(1)) - 2] if 2 <= int(match.group(1)) <= 5 else None
        return block if block in self.banked else None

    def clean(self, block: str) -> np.ndarray:
        """``(images, h, w, channels)`` float16, memory-mapped."""
        return self._load(f"blocks/{block}", self.manifest["blocks"][block])

    def view_tensors(self, block: str) -> np.ndarray | None:
        """``(views, training images, h, w, channels)`` float16, or None when this block's views are not banked."""
        if self.views is None or block not in self.banked_views:
            return None
        return self._load(f"views-{self.views.key}/{block}", self.manifest["views"][self.views.key][block])

    def summary(self) -> str:
        """One line: which blocks are banked and which are computed on the fly."""
        banked = ", ".join(self.banked) or "none"
        line = f"prefix cache: banked {banked}"
        if self.views is not None and self.banked_views:
            line += f" (+{self.views.count} augmented views of {len(self.views.indices)} training images"
            line += ")" if self.banked_views == self.banked else f" for {', '.join(self.banked_views)})"
        others = "; ".join(f"{block} not banked ({why})" for block, why in sorted(self.skipped.items()))
        return f"{line}; {others}" if others else line

    def _load(self, relative: str, entry: dict[str, Any]) -> np.ndarray:
        if relative not in self._open:
            array = _artifacts.open_checked(self.directory / f"{relative}.npy", entry, verify_checksum=False)
            if array is None:
                raise RuntimeError(f"spatial bank file {self.directory / relative}.npy changed on disk; rerun to rebuild it")
            self._open[relative] = array
        return self._open[relative]


def _valid(directory: Path, relative: str, entry: dict[str, Any] | None, shape: tuple[int, ...], verify: bool) -> bool:
    if entry is None:
        return False
    array = _artifacts.open_checked(directory / f"{relative}.npy", entry, verify_checksum=verify)
    return array is not None and tuple(array.shape) == shape


def _has_clean(directory: Path, manifest: dict[str, Any], images: int, size: int, block: str, verify: bool) -> bool:
    """Whether ``block``'s clean tensors are banked already, whole and of the expected shape."""
    shape = (images, *block_shape(size, block))
    return _valid(directory, f"blocks/{block}", manifest["blocks"].get(block), shape, verify)


def _has_views(directory: Path, entries: dict[str, Any], views: ViewSpec | None, size: int, block: str, verify: bool) -> bool:
    """Whether ``block``'s augmented views are banked already, whole and of the expected shape."""
    if views is None:
        return False
    shape = (views.count, len(views.indices), *block_shape(size, block))
    return _valid(directory, f"views-{views.key}/{block}", entries.get(block), shape, verify)


def _free_bytes(
    directory: Path,
    manifest: dict[str, Any],
    entries: dict[str, Any],
    views: ViewSpec | None,
    images: int,
    size: int,
    verify: bool,
) -> int:
    """The disk the bank may fill: the free space less the margin, plus what its valid files already hold."""
    clean = [b for b in BLOCKS if _has_clean(directory, manifest, images, size, b, verify)]
    present = sum((directory / "blocks" / f"{b}.npy").stat().st_size for b in clean)
    banked_views = [b for b in BLOCKS if _has_views(directory, entries, views, size, b, verify)]
    present += sum((directory / f"views-{views.key}" / f"{b}.npy").stat().st_size for b in banked_views)
    return shutil.disk_usage(directory).free - FREE_DISK_MARGIN + present


def _without_unbuilt(
    clean: tuple[str, ...],
    banked_views: tuple[str, ...],
    missing_clean: list[str],
    missing_views: list[str],
    skipped: dict[str, str],
    directory: Path,
) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """After a full disk: the blocks still banked, each unbuilt one recorded in ``skipped``, and a note saying so."""
    missing = [block for block in BLOCKS if block in missing_clean or block in missing_views]
    for block in missing:
        skipped[block if block in missing_clean else f"{block} views"] = (
            "the disk filled up while banking it; computed on the fly"
        )
    clean = tuple(block for block in clean if block not in missing_clean)
    banked_views = tuple(block for block in banked_views if block in clean and block not in missing_views)
    note = (
        f"disk full while banking {', '.join(missing)} under {directory}: the partial files were removed and "
        "fine-tuning trials compute that prefix on the fly (uncached); free some space or lower OCL_CACHE_MAX_GB"
    )
    return clean, banked_views, note


def load_spatial_bank(
    cache: ImageCache,
    weights: Any,
    *,
    views: ViewSpec | None = None,
    cut_layers: Sequence[str] | None = None,
    max_bytes: int | None = None,
    cache_dir: Path | None = None,
    batch_size: int = BATCH_SIZE,
    backbone: Any = None,
    verify_checksum: bool = True,
    dtype_policy: str = "float32",
) -> SpatialBank:
    """Open the spatial bank for these images and weights, banking whatever blocks are missing.

    Args:
        cache: the image cache the tensors are computed from.
        weights: a :class:`sweep.model._backbone.Weights`.
        views: augmented views of the training images to bank as well (the feature bank's).
        cut_layers: the sweep's cut layers; blocks none of them reaches are not banked (None: all).
        max_bytes: disk budget of this bank (default: ``OCL_CACHE_MAX_GB``).
        backbone: an already built backbone to reuse (else built here only if something is missing).
        verify_checksum: check every file's checksum (the prepare step does; workers trust it).
        dtype_policy: the Keras dtype policy the tensors are computed in (:func:`sweep.model.dtype_policy`);
            another policy's bank is another folder.
    """
    from sweep._env import cache_max_bytes

    budget = cache_max_bytes() if max_bytes is None else max_bytes
    precision = "" if dtype_policy == "float32" else f"-{dtype_policy}"  # other numbers: other files
    directory = Path(cache_dir or default_cache_dir()) / "spatial" / f"{weights.identity}{precision}" / cache.key
    n, size = len(cache.images), int(cache.images.shape[1])
    view_rows = views.count * len(views.indices) if views else 0
    with _artifacts.locked(directory):
        manifest = _artifacts.read_manifest(directory, "blocks", "views")
        entries = manifest["views"].get(views.key, {}) if views else {}
        free = _free_bytes(directory, manifest, entries, views, n, size, verify_checksum)
        plan = bank_plan(size, n, view_rows, cut_layers, budget, max(free, 0))
        clean, banked_views, skipped = plan.clean, plan.views, dict(plan.why_not)
        missing_clean = [block for block in clean if not _has_clean(directory, manifest, n, size, block, verify_checksum)]
        missing_views = [
            block for block in banked_views if not _has_views(directory, entries, views, size, block, verify_checksum)
        ]
        notes: list[str] = []
        if missing_clean or missing_views:
            try:
                _build(cache, weights, backbone, views, missing_clean, missing_views, directory, manifest, batch_size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                clean, banked_views, note = _without_unbuilt(
                    clean, banked_views, missing_clean, missing_views, skipped, directory
                )
                notes.append(note)
    return SpatialBank(directory, manifest, views, clean, banked_views, skipped, notes)


def _build(
    cache: ImageCache,
    weights: Any,
    backbone: Any,
    views: ViewSpec | None,
    clean_blocks: Sequence[str],
    view_blocks: Sequence[str],
    directory: Path,
    manifest: dict[str, Any],
    batch_size: int,
) -> None:
    """Bank ``clean_blocks`` for the clean images and ``view_blocks`` for the augmented views: every
    file lands, or none of this call's does."""
    from sweep._keras import keras_module
    from sweep.model import build_backbone

    keras = keras_module()
    model = backbone or build_backbone(cache.size, weights)
    for block in {*clean_blocks, *view_blocks}:
        expected, actual = block_shape(cache.size, block), tuple(model.get_layer(block).output.shape[1:])
        if actual != expected:
            raise RuntimeError(f"{block}: the network gives {actual}, the bank expected {expected}")
    targets = [("blocks", None, clean_blocks)] if clean_blocks else []
    targets += [(f"views-{views.key}", views, view_blocks)] if view_blocks else []
    with ExitStack() as stack:
        finished = []
        for folder, spec, blocks in targets:
            multi = keras.Model(model.input, [model.get_layer(block).output for block in blocks], name="spatial_bank")
            lead = (len(cache.images),) if spec is None else (spec.count, len(spec.indices))
            paths = [directory / folder / f"{block}.npy" for block in blocks]
            writer = stack.enter_context(_new_arrays(paths, [(*lead, *block_shape(cache.size, b)) for b in blocks]))
            what = "banking the frozen prefix" if spec is None else f"banking the prefix of {spec.count} augmented views"
            for view, lo, result in batch_outputs(multi, cache.images, spec, batch_size, what):
                writer.write(view, lo, [r.astype(DTYPE) for r in result])
            finished.append((spec, blocks, paths))
        # Every file is complete: move them all into place, then record them (manifest written last).
        stack.close()
    for spec, blocks, paths in finished:
        entries = manifest["blocks"] if spec is None else manifest["views"].setdefault(spec.key, {})
        for block, path in zip(blocks, paths):
            entries[block] = _artifacts.describe(path)
    _artifacts.write_json_atomic(directory / "manifest.json", manifest)


class _Writer:
    """Memory-mapped temporary arrays, reopened every few batches so written pages leave memory."""

    def __init__(self, temps: list[Path]) -> None:
        self.temps, self.arrays, self.writes = temps, [], 0
        self.reopen()

    def reopen(self) -> None:
        for array in self.arrays:
            array.flush()
        self.arrays = [np.load(path, mmap_mode="r+") for path in self.temps]

    def write(self, view: int | None, lo: int, values: Sequence[np.ndarray]) -> None:
        for array, value in zip(self.arrays, values):
            target = array if view is None else array[view]
            target[lo : lo + len(value)] = value
        self.writes += 1
        if self.writes % REOPEN_BATCHES == 0:
            self.reopen()

    def close(self) -> None:
        for array in self.arrays:
            array.flush()
        self.arrays = []


@contextmanager
def _new_arrays(paths: Sequence[Path], shapes: Sequence[tuple[int, ...]]) -> Iterator[_Writer]:
    """Preallocated temporary ``.npy`` files, renamed into place only if the block exits cleanly."""
    temps = [_artifacts.temp_name(path) for path in paths]
    try:
        for path, temp, shape in zip(paths, temps, shapes):
            path.parent.mkdir(parents=True, exist_ok=True)
            _artifacts.remove_stale_temps(path)
            header = np.lib.format.open_memmap(temp, mode="w+", dtype=DTYPE, shape=shape)
            del header
            with open(temp, "r+b") as handle:  # reserve the blocks now: a full disk is ENOSPC here, not SIGBUS later
                os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
        writer = _Writer(temps)
        yield writer
        writer.close()
        for path, temp in zip(paths, temps):
            os.replace(temp, path)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
