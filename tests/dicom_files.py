"""DICOM test files written with pydicom from the embedded NIH PNGs (shared by the data and dictionary tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import SAMPLE_IMAGES
from PIL import Image
from pydicom.dataset import Dataset as DicomDataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid


def png(name: str) -> np.ndarray:
    return np.asarray(Image.open(SAMPLE_IMAGES / name))


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    patient_id: str | None = "1",
    sop_class: str = DigitalXRayImageStorageForPresentation,
    compress: str | None = None,
    **elements,
) -> Path:
    """Write ``pixels`` (rows x columns, rows x columns x 3 for RGB, or frames x rows x columns) as a
    DICOM file; ``elements`` are extra attributes by keyword (WindowCenter=..., RescaleSlope=...)."""
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = DicomDataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    if patient_id is not None:
        ds.PatientID = patient_id
    rgb = photometric == "RGB"
    frames = pixels.shape[0] if pixels.ndim == 3 and not rgb else 1
    ds.Rows, ds.Columns = pixels.shape[-3:-1] if rgb else pixels.shape[-2:]
    ds.SamplesPerPixel = 3 if rgb else 1
    if rgb:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(np.issubdtype(pixels.dtype, np.signedinteger))
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    if compress is None:
        ds.PixelData = pixels.tobytes()
    else:
        ds.compress(compress, pixels)
    ds.save_as(path, enforce_file_format=True)
    return path


def as_12_bit(v: np.ndarray) -> np.ndarray:
    return np.rint(v.astype(np.float64) * 4095 / 255).astype(np.uint16)


def effusion_dicoms(root: Path, patient_id=str, **write_options) -> list[str]:
    """The sample's Effusion and No Finding images as DICOM class folders (``effusion/``, ``normal/``);
    ``patient_id`` maps the NIH patient to the file's PatientID. Returns the PatientIDs written, one per file."""
    from helpers import sample_rows

    written = []
    for name, labels, _, patient, *_ in sample_rows()[1]:
        found = labels.split("|")
        label = "effusion" if "Effusion" in found else "normal" if found == ["No Finding"] else None
        if label is None:
            continue
        (root / label).mkdir(parents=True, exist_ok=True)
        written.append(patient_id(patient))
        write_dicom(
            root / label / f"{Path(name).stem}.dcm", pixels_of(name, write_options), patient_id=written[-1], **write_options
        )
    return written


def pixels_of(name: str, write_options: dict) -> np.ndarray:
    """The sample PNG's pixels, stretched to 12 bits when the file is to store 12."""
    return as_12_bit(png(name)) if write_options.get("bits_stored") == 12 else png(name)
