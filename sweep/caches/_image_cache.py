"""The image cache: every image decoded once, resized, and kept as uint8 in a memory-mapped array.

Decoding a 1024x1024 PNG costs more than a DenseNet-121 forward pass needs per image on a small
machine, and a sweep reads each image hundreds of times. So images are decoded once into one
``(images, size, size)`` uint8 array on disk; trials and worker processes memory-map it.

The cache key hashes the files (path, byte size, modification time), the size and the resize
method: touching an image, or asking for another size, builds a new cache. X-rays are grayscale,
so every image is stored as one channel; the model repeats it to three channels.

What each file becomes is :func:`sweep.data.decode_image`'s job (the data folder owns decoding).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep._env import cache_dir as default_cache_dir
from sweep._progress import rate_progress, rate_text
from sweep.caches import _artifacts as _artifacts
from sweep.caches._disk import array_bytes, present
from sweep.data import RESIZE_METHODS, decode_image
from sweep.errors import OCLError

__all__ = ["MIN_IMAGE_SIZE", "ImageCache", "cache_key", "check_image_size", "load_image_cache"]

MIN_IMAGE_SIZE = 32
FORMAT_VERSION = 2  # 2: 16-bit images by their own range (was 65535 -> 255); DICOM


def cache_key(paths: Sequence[str], size: int, method: str) -> str:
    """A hash of the files (path, byte size, mtime), the output size and the resize method."""
    digest = hashlib.sha256(json.dumps([FORMAT_VERSION, size, method]).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ImageCache:
    """A built cache: ``images[i]`` is the i-th path's pixels, shape ``(size, size)``, uint8."""

    key: str
    size: int
    method: str
    path: Path
    images: np.ndarray


def check_image_size(size: int) -> None:
    if size < MIN_IMAGE_SIZE:
        raise OCLError(f"--image-size {size}: DenseNet-121 needs at least {MIN_IMAGE_SIZE} px; pass 32 or more (224 is standard)")


def load_image_cache(
    paths: Sequence[str],
    size: int,
    *,
    method: str = "lanczos",
    cache_dir: Path | None = None,
) -> ImageCache:
    """Open the cache for these images at this size, building it first when absent or damaged."""
    check_image_size(size)
    if method not in RESIZE_METHODS:
        raise ValueError(f"method={method!r}: expected one of {sorted(RESIZE_METHODS)}")
    root = Path(cache_dir or default_cache_dir()) / "images"
    key = _checked_key(paths, size, method)
    array_path = root / f"{key}.npy"
    manifest_path = root / f"{key}.json"
    if manifest_path.is_file():
        try:
            entry = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            entry = None
        images = _artifacts.open_checked(array_path, entry) if entry else None
        if images is not None and images.shape == (len(paths), size, size):
            return ImageCache(key, size, method, array_path, images)
    _build(paths, size, method, array_path)
    manifest = _artifacts.describe(array_path)
    _artifacts.write_json_atomic(manifest_path, manifest)
    return ImageCache(key, size, method, array_path, np.load(array_path, mmap_mode="r"))


def _checked_key(paths: Sequence[str], size: int, method: str) -> str:
    """:func:`cache_key`, with a missing image as the user's one-line error."""
    try:
        return cache_key(paths, size, method)
    except FileNotFoundError as exc:
        raise OCLError(f"image {exc.filename} is missing; restore it or remove its row from the labels") from None


def image_cache_bytes(
    paths: Sequence[str], size: int, *, method: str = "lanczos", cache_dir: Path | None = None
) -> tuple[str, int]:
    """The cache key of these images at this size, and the bytes its build would still write (0 when built)."""
    root = Path(cache_dir or default_cache_dir()) / "images"
    key = _checked_key(paths, size, method)
    try:
        entry = json.loads((root / f"{key}.json").read_text())
    except (OSError, ValueError):
        entry = None
    built = present(root / f"{key}.npy", entry) and entry.get("shape") == [len(paths), size, size]
    return key, 0 if built else array_bytes((len(paths), size, size), 1)


def _build(paths: Sequence[str], size: int, method: str, array_path: Path) -> None:
    errors: list[tuple[int, OCLError]] = []

    def decode(index: int) -> tuple[int, np.ndarray | None]:
        try:
            return index, decode_image(paths[index], size, method)
        except OCLError as exc:
            errors.append((index, exc))
            return index, None

    with _artifacts.new_array(array_path, (len(paths), size, size), "uint8") as out, rate_progress() as bar:
        task = bar.add_task(f"decoding images to {size} px", total=len(paths), rate="")
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for done, (index, pixels) in enumerate(pool.map(decode, range(len(paths))), start=1):
                if pixels is not None:
                    out[index] = pixels
                bar.update(task, advance=1, rate=rate_text(done, time.perf_counter() - start, "img"))
        if errors:
            first = str(min(errors, key=lambda pair: pair[0])[1])  # the first bad image in table order
            more = f" ({len(errors) - 1} more image(s) failed too)" if len(errors) > 1 else ""
            raise OCLError(first + more)
