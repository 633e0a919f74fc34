"""Image decoding: any file OCL reads becomes one 8-bit grayscale array of a given size.

X-rays are grayscale, so every image is decoded to one channel; the model repeats it to three.
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

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from sweep.data._dicom import dicom_gray, is_dicom, min_max
from sweep.errors import OCLError

__all__ = ["IMAGE_FORMATS", "IMAGE_SUFFIXES", "RESIZE_METHODS", "decode_image", "formats_text"]

RESIZE_METHODS = {"lanczos": Image.Resampling.LANCZOS, "area": Image.Resampling.BOX}

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
        wide = np.asarray(image, dtype=np.float64)
        return np.clip(np.rint(min_max(wide)), 0, 255).astype(np.uint8)
    if image.mode != "L":
        image = image.convert("RGBA").convert("L") if image.mode == "P" else image.convert("L")
    return np.asarray(image, dtype=np.uint8)


DATASET_FIX = "replace the file or remove its row from the labels"


def decode_image(path: str | Path, size: int, method: str = "lanczos", *, fix: str = DATASET_FIX) -> np.ndarray:
    """Decode one image file to a ``(size, size)`` uint8 grayscale array.

    ``fix`` ends the message of a file that is missing or not a raster image: what to do about it
    where the file came from (a dataset's label table by default; ``ocl predict`` says what it takes).

    Raises:
        OCLError: when the file is empty, truncated or not an image; for DICOM also when it has no
            pixel data or a transfer syntax no installed decoder handles.
    """
    if Path(path).suffix.lower() not in _RASTER_SUFFIXES:
        if is_dicom(path):
            return _resize(dicom_gray(path), size, method)
    try:
        with Image.open(path) as image:
            image.load()
            gray = _to_grayscale(image)
    except FileNotFoundError:
        raise OCLError(
            f"image {path} is missing; {'restore it or remove its row from the labels' if fix == DATASET_FIX else fix}"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = "empty file" if Path(path).stat().st_size == 0 else str(exc).splitlines()[0] or type(exc).__name__
        raise OCLError(f"image {path} cannot be decoded ({reason}); {fix}") from None
    return _resize(gray, size, method)


def _resize(gray: np.ndarray, size: int, method: str) -> np.ndarray:
    if gray.shape != (size, size):
        gray = np.asarray(Image.fromarray(gray).resize((size, size), RESIZE_METHODS[method]))
    return gray
