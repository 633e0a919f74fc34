"""The image cache: every image decoded once, resized, and kept as uint8 in a memory-mapped array.

Decoding a 1024x1024 PNG costs more than a DenseNet-121 forward pass needs per image on a small
machine, and a sweep reads each image hundreds of times. So images are decoded once into one
``(images, size, size)`` uint8 array on disk; trials and worker processes memory-map it.

The cache key hashes the files (path, byte size, modification time), the size and the resize
method: touching an image, or asking for another size, builds a new cache. X-rays are grayscale,
so every image is stored as one channel; the model repeats it to three channels.

What each file becomes (:data:`IMAGE_FORMATS` lists the formats):

- 8-bit grayscale (PNG, JPEG, BMP, TIFF, GIF, WebP): its pixels as they are;
- colour and palette images: ITU-R 601 luma (PIL's ``convert("L")``);
- 16-bit and 32-bit integer or float images (16-bit PNG, TIFF): the image's own range, its darkest
  pixel to 0 and its brightest to 255, linearly. An X-ray saved as 16-bit often uses only 10-14 of
  the bits, and a fixed 65535-to-255 scale would store it nearly black;
- DICOM: rescale slope/intercept, then the file's VOI LUT or window (else its own range), then
  MONOCHROME1 inverted (see :mod:`sweep.data._dicom`).
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
from PIL import Image, UnidentifiedImageError

from sweep._env import cache_dir as default_cache_dir
from sweep._progress import rate_progress, rate_text
from sweep.caches import _artifacts as _artifacts
from sweep.errors import OCLError

__all__ = [
    "IMAGE_FORMATS",
    "IMAGE_SUFFIXES",
    "MIN_IMAGE_SIZE",
    "check_image_size",
    "RESIZE_METHODS",
    "ImageCache",
    "cache_key",
    "decode_image",
    "load_image_cache",
]

MIN_IMAGE_SIZE = 32
RESIZE_METHODS = {"lanczos": Image.Resampling.LANCZOS, "area": Image.Resampling.BOX}
FORMAT_VERSION = 2  # 2: 16-bit images by their own range (was 65535 -> 255); DICOM

IMAGE_FORMATS: dict[str, tuple[str, ...]] = {
    "PNG": (".png",),
    "JPEG": (".jpg", ".jpeg"),
    "BMP": (".bmp",),
    "TIFF": (".tif", ".tiff"),
    "GIF": (".gif",),
    "WebP": (".webp",),
    "DICOM": (".dcm", ".dicom"),
}
"""Every format OCL reads, with its file suffixes (a DICOM file may also have no suffix)."""

IMAGE_SUFFIXES: frozenset[str] = frozenset(s for suffixes in IMAGE_FORMATS.values() for s in suffixes)
_RASTER_SUFFIXES = IMAGE_SUFFIXES - set(IMAGE_FORMATS["DICOM"])


def formats_text() -> str:
    """``PNG (.png), JPEG (.jpg .jpeg), ..., DICOM (.dcm .dicom, or no suffix)``, for messages."""
    parts = [f"{name} ({' '.join(suffixes)})" for name, suffixes in IMAGE_FORMATS.items()]
    parts[-1] = parts[-1][:-1] + ", or no suffix)"
    return ", ".join(parts)


def _to_grayscale(image: Image.Image) -> np.ndarray:
    """Any PIL mode to 8-bit grayscale; 16-bit, 32-bit and float data by the image's own range."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        from sweep.data._dicom import min_max

        wide = np.asarray(image, dtype=np.float64)
        return np.clip(np.rint(min_max(wide)), 0, 255).astype(np.uint8)
    if image.mode != "L":
        image = image.convert("RGBA").convert("L") if image.mode == "P" else image.convert("L")
    return np.asarray(image, dtype=np.uint8)


def decode_image(path: str | Path, size: int, method: str = "lanczos") -> np.ndarray:
    """Decode one image file to a ``(size, size)`` uint8 grayscale array.

    Raises:
        OCLError: when the file is empty, truncated or not an image; for DICOM also when it has no
            pixel data or a transfer syntax no installed decoder handles.
    """
    if Path(path).suffix.lower() not in _RASTER_SUFFIXES:
        from sweep.data._dicom import dicom_gray, is_dicom

        if is_dicom(path):
            return _resize(dicom_gray(path), size, method)
    try:
        with Image.open(path) as image:
            image.load()
            gray = _to_grayscale(image)
    except FileNotFoundError:
        raise OCLError(f"image {path} is missing; restore it or remove its row from the labels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = "empty file" if Path(path).stat().st_size == 0 else str(exc).splitlines()[0] or type(exc).__name__
        raise OCLError(f"image {path} cannot be decoded ({reason}); replace the file or remove its row from the labels") from None
    return _resize(gray, size, method)


def _resize(gray: np.ndarray, size: int, method: str) -> np.ndarray:
    if gray.shape != (size, size):
        gray = np.asarray(Image.fromarray(gray).resize((size, size), RESIZE_METHODS[method]))
    return gray


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
    try:
        key = cache_key(paths, size, method)
    except FileNotFoundError as exc:
        raise OCLError(f"image {exc.filename} is missing; restore it or remove its row from the labels") from None
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
