"""DICOM files: their pixels as the same 8-bit grayscale image the cache stores for a PNG, and their patient.

pydicom reads the file; pylibjpeg (with pylibjpeg-libjpeg and pylibjpeg-openjpeg) decodes JPEG,
JPEG-LS and JPEG 2000 pixel data, pydicom itself uncompressed, deflated and RLE data.

Pixels to 8 bits, in the order the DICOM standard displays them (PS3.3 C.11):

1. the first frame of a multi-frame image;
2. the modality transformation: Rescale Slope and Intercept, or the Modality LUT Sequence;
3. the VOI transformation to 0..255: the file's own VOI LUT Sequence (scaled by the range of its
   LUT data), else its first Window Center/Width (VOI LUT Function LINEAR, LINEAR_EXACT or
   SIGMOID), else the image's own minimum..maximum (also when the window is unusable, width < 1);
4. MONOCHROME1 (white is 0) is inverted, so bone is bright as in every PNG.

Colour images (RGB, YBR, which pydicom converts to RGB, and PALETTE COLOR) go through the same
ITU-R 601 luma as a colour PNG, scaled from their bit depth.

``PatientID`` gives the patient of a DICOM when no label table does. Files that cannot be used,
with one line that names the file: not DICOM at all, no pixel data (a structured report, an RT
plan), truncated, or a transfer syntax no installed decoder handles.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from sweep.errors import OCLError

__all__ = [
    "DICOM_SUFFIXES",
    "dicom_gray",
    "dicom_patient",
    "dicom_facts",
    "dicom_patients",
    "has_dicom_marker",
    "is_dicom",
    "min_max",
    "read_dicom_header",
    "window",
]

DICOM_SUFFIXES = (".dcm", ".dicom")
"""File suffixes read as DICOM; a file without a suffix is DICOM when it carries the ``DICM`` marker."""

_MARKER_OFFSET = 128
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_UNDEFINED_LENGTH = 0xFFFFFFFF
_FIX = "replace the file or remove it (or its row) from the dataset"

# pydicom reports oddities it reads around (a wrong VR, a missing delimiter) as Python warnings;
# OCL says what matters itself, and a sweep over thousands of files must not print each one.
warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")


def has_dicom_marker(path: str | Path) -> bool:
    """Whether the file carries DICOM's ``DICM`` marker after the 128-byte preamble."""
    try:
        with open(path, "rb") as handle:
            handle.seek(_MARKER_OFFSET)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def is_dicom(path: str | Path) -> bool:
    """Whether OCL reads ``path`` as DICOM: a ``.dcm``/``.dicom`` suffix, or no suffix and the DICM marker."""
    suffix = Path(path).suffix.lower()
    if suffix in DICOM_SUFFIXES:
        return True
    return (suffix == "" or not suffix[1:].isalpha()) and has_dicom_marker(path)


def _import_pydicom():
    try:
        import pydicom
    except ImportError:  # pragma: no cover - pydicom is a dependency
        raise OCLError("reading DICOM needs pydicom; install it with `pip install pydicom pylibjpeg pylibjpeg-libjpeg`") from None
    return pydicom


def _read(path: str | Path, *, pixels: bool):
    """The parsed file (large values deferred unless ``pixels``), with the problems found on the way."""
    pydicom = _import_pydicom()
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise OCLError(f"image {path} is missing; restore it or remove its row from the labels") from None
    if size == 0:
        raise OCLError(f"image {path} cannot be decoded (empty file); {_FIX}")
    marker = has_dicom_marker(path)
    try:
        ds = pydicom.dcmread(path, defer_size=None if pixels else 4096, force=not marker)
    except InvalidDicomError:
        raise OCLError(f"image {path} is not a DICOM file (no DICM marker); {_FIX}") from None
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError, NotImplementedError) as exc:
        raise OCLError(f"image {path} cannot be read as DICOM ({_first_line(exc)}); {_FIX}") from None
    if not marker and not any(tag.group in (0x0008, 0x0010, 0x0020, 0x0028) for tag in ds.keys()):
        raise OCLError(f"image {path} is not a DICOM file (no DICM marker and no DICOM elements); {_FIX}")
    _check_complete(ds, path, size)
    return ds


def _first_line(exc: BaseException, limit: int = 240) -> str:
    """The exception as one line (pydicom lists each plugin's failure on its own line), shortened."""
    text = " ".join(str(exc).split())
    if not text:
        return type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _check_complete(ds, path: Path, size: int) -> None:
    """Refuse a truncated file, and one without pixel data, each with its own message."""
    end, last_defined = 0, True
    for tag in ds.keys():
        element = ds.get_item(tag, keep_deferred=True)  # reading a deferred value here would defeat deferring it
        tell, length = getattr(element, "value_tell", None), getattr(element, "length", None)
        if tell is not None and length is not None:
            last_defined = length != _UNDEFINED_LENGTH
            if last_defined:
                end = max(end, tell + length)
    again = "copy or download it again, or remove it (or its row) from the dataset"
    if end > size:
        raise OCLError(f"image {path} is a truncated DICOM file ({size:,} bytes, its elements run to byte {end:,}); {again}")
    if last_defined and 0 < size - end < 8:  # pydicom stops quietly at a partial element header
        raise OCLError(f"image {path} is a truncated DICOM file (it ends inside an element, at byte {size:,}); {again}")
    if any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        return
    kind = _sop_class(ds)
    if ("Rows" in ds and "Columns" in ds) or "Image Storage" in kind:
        shape = f"a {ds.Rows}x{ds.Columns} image" if "Rows" in ds and "Columns" in ds else f"an image ({kind})"
        raise OCLError(
            f"image {path} is a truncated DICOM file: it describes {shape} but its pixel data is missing "
            f"({size:,} bytes); {again}"
        )
    raise OCLError(
        f"image {path} is a DICOM file without pixel data ({kind}), not an image; remove it (or its row) from the dataset"
    )


def _sop_class(ds) -> str:
    uid = ds.get("SOPClassUID") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
    if uid is None:
        return "no SOP class"
    name = getattr(uid, "name", str(uid))
    return f"SOP class {name}"


def read_dicom_header(path: str | Path):
    """The file's elements without decoding its pixels (pixel data deferred), after the same checks as
    :func:`dicom_gray` short of decoding: a DICOM file, complete, with pixel data.

    Raises:
        OCLError: for a file that is not DICOM, is truncated or has no pixel data.
    """
    return _read(path, pixels=False)


def dicom_patient(ds) -> str | None:
    """The ``PatientID`` of a read file, or None when it is absent or blank."""
    value = str(ds.get("PatientID", "") or "").strip()
    return value or None


def _check_decodable(ds, path: Path) -> None:
    from pydicom.pixels import get_decoder

    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is None:
        return  # pydicom guesses implicit/explicit little endian for files without meta information
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        decoder = None
    if decoder is None or not decoder.is_available:
        raise OCLError(
            f"image {path} uses the DICOM transfer syntax {syntax.name} ({syntax}), which OCL cannot decode; it decodes "
            "uncompressed, deflated, RLE, JPEG, JPEG-LS and JPEG 2000 pixel data, so convert the file "
            "(e.g. `gdcmconv --raw IN OUT` or `dcmdjpeg IN OUT`) or remove it (or its row) from the dataset"
        )


def dicom_gray(path: str | Path) -> np.ndarray:
    """Decode a DICOM file to a 2-D uint8 grayscale image at its own size (see the module docstring).

    Raises:
        OCLError: for a file that is not DICOM, has no pixel data, is truncated, or whose transfer
            syntax no installed decoder handles; the message names the file.
    """
    path = Path(path)
    ds = _read(path, pixels=True)
    _check_decodable(ds, path)
    from pydicom.pixels import pixel_array

    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        pixels = pixel_array(ds, index=0) if frames > 1 else ds.pixel_array
        return _to_uint8(ds, np.asarray(pixels))  # a malformed LUT or descriptor fails here
    except (ValueError, RuntimeError, NotImplementedError, AttributeError, KeyError, TypeError, IndexError, EOFError) as exc:
        reason = _first_line(exc)
        if "less than expected" in reason or "truncat" in reason.lower():
            raise OCLError(
                f"image {path} is a truncated DICOM file ({reason}); copy or download it again, "
                "or remove it (or its row) from the dataset"
            ) from None
        raise OCLError(f"image {path} cannot be decoded (DICOM {reason}); {_FIX}") from None


def _to_uint8(ds, pixels: np.ndarray) -> np.ndarray:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        rgb = apply_color_lut(pixels, ds)
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        return _luma(rgb, bits)
    if pixels.ndim == 3:  # RGB (pydicom converts YBR to RGB)
        return _luma(pixels, int(ds.get("BitsStored", 8) or 8))
    from pydicom.pixels import apply_modality_lut

    values = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float64)
    gray = _voi(values, ds)
    if photometric == "MONOCHROME1":
        gray = 255.0 - gray
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)


def _luma(rgb: np.ndarray, bits: int) -> np.ndarray:
    """ITU-R 601 luma; 8-bit data with PIL's own integer formula, so a DICOM equals the same RGB PNG."""
    if rgb.dtype == np.uint8 or bits <= 8:
        wide = rgb.astype(np.uint32)
        return ((wide[..., 0] * 19595 + wide[..., 1] * 38470 + wide[..., 2] * 7471 + 0x8000) >> 16).astype(np.uint8)
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.clip(np.rint(luma * 255.0 / (2**bits - 1)), 0, 255).astype(np.uint8)


def min_max(values: np.ndarray) -> np.ndarray:
    """The image's own range stretched to 0..255 (a flat image is all 0)."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.float64)
    return (values - low) * (255.0 / (high - low))


def _first(value) -> float:
    """The first of a multi-valued element (Window Center may hold several windows)."""
    if isinstance(value, str | bytes) or not hasattr(value, "__len__"):
        return float(value)
    return float(value[0])


def _voi(values: np.ndarray, ds) -> np.ndarray:
    """VOI LUT, else window, else min-max, to floats in 0..255."""
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence):
        from pydicom.pixels import apply_voi

        item = ds.VOILUTSequence[0]
        lut = np.asarray(item.LUTData, dtype=np.float64).ravel()
        low, high = float(lut.min()), float(lut.max())
        if high > low:  # the LUT is indexed by (integer) modality values
            mapped = np.asarray(apply_voi(np.rint(values).astype(np.int64), ds, index=0), dtype=np.float64)
            return (mapped - low) * (255.0 / (high - low))
    if "WindowCenter" in ds and "WindowWidth" in ds and ds.WindowCenter is not None and ds.WindowWidth is not None:
        center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
        windowed = window(values, center, width, function)
        if windowed is not None:
            return windowed
    return min_max(values)


def window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray | None:
    """DICOM's VOI window (PS3.3 C.11.2.1.2) to 0..255; None for a width the function cannot use."""
    if function == "SIGMOID":
        if width <= 0:
            return None
        return 255.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        if width <= 0:
            return None
        return np.clip(((values - center) / width + 0.5) * 255.0, 0.0, 255.0)
    if width < 1:
        return None
    if width == 1:  # a threshold at the center
        return np.where(values <= center - 0.5, 0.0, 255.0)
    return np.clip(((values - (center - 0.5)) / (width - 1) + 0.5) * 255.0, 0.0, 255.0)


def dicom_patients(paths: Sequence[str]) -> list[str | None]:
    """The ``PatientID`` of each DICOM file (:func:`dicom_facts`)."""
    return [facts["patient"] for facts in dicom_facts(paths)]


def _facts(ds) -> dict:
    from sweep.data._demographics import dicom_age, normal_position, normal_sex

    return {
        "patient": dicom_patient(ds),
        "sex": normal_sex(ds.get("PatientSex", None)),
        "age": dicom_age(ds.get("PatientAge", None)),
        "position": normal_position(ds.get("ViewPosition", None)),
    }


def dicom_facts(paths: Sequence[str]) -> list[dict]:
    """Each DICOM file's ``PatientID`` and demographics (``PatientSex``, ``PatientAge``,
    ``ViewPosition``, normalised as :mod:`sweep.data._demographics` says), reading headers only
    (pixel data is skipped, not decoded).

    Every file gets the checks of :func:`read_dicom_header`, so ``ocl data info`` already refuses a
    truncated file or one without pixel data. A progress bar shows on a terminal.

    Raises:
        OCLError: naming the first bad file in ``paths`` order, and how many more failed.
    """
    from sweep._progress import rate_progress, rate_text

    found: list[dict] = [{}] * len(paths)
    errors: list[tuple[int, OCLError]] = []

    def read(index: int) -> None:
        try:
            found[index] = _facts(read_dicom_header(paths[index]))
        except OCLError as exc:
            errors.append((index, exc))

    with rate_progress() as bar, ThreadPoolExecutor(max_workers=min(8, 2 * (os.cpu_count() or 1))) as pool:
        task = bar.add_task("reading DICOM headers", total=len(paths), rate="")
        start = time.perf_counter()
        for done, _ in enumerate(pool.map(read, range(len(paths))), start=1):
            bar.update(task, advance=1, rate=rate_text(done, time.perf_counter() - start, "file"))
    if errors:
        first = str(min(errors, key=lambda pair: pair[0])[1])
        more = f" ({len(errors) - 1} more file(s) failed too)" if len(errors) > 1 else ""
        raise OCLError(first + more)
    return found
