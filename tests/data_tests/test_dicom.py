"""DICOM files become the same uint8 image the cache stores for the PNG they were made from.

The tests write DICOM files with pydicom from the embedded NIH PNGs, in every photometric
interpretation and bit depth OCL handles (8, 12 and 16 bits; rescale slope/intercept; window,
VOI LUT or neither; MONOCHROME1 stored inverted; RGB; RLE, JPEG 2000 and JPEG compressed), and
compare the decoded and cached pixels with the PNG's. The real files that pydicom ships
(``pydicom.data``) are read too, where this pydicom installation has them offline.

:func:`write_dicom` lives in ``tests/dicom_files.py``, shared with the dictionary tests.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_files import as_12_bit, png, write_dicom
from helpers import SAMPLE_IMAGES, files_under, pseudonyms, sample_names_with
from PIL import Image
from pydicom.dataset import Dataset as DicomDataset
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    BasicTextSRStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    generate_uid,
)

from sweep.caches import load_image_cache
from sweep.data import decode_image, has_dicom_marker, is_dicom, load_dataset
from sweep.errors import OCLError

NAMES = ["00000003_000.png", "00000001_000.png", "00000013_003.png"]  # full 0..255 range, 0..254, 0..211


def full_range(v: np.ndarray) -> np.ndarray:
    """The image stretched to 0..255 by its own minimum and maximum (what a file without a window gets)."""
    v = v.astype(np.float64)
    return np.rint((v - v.min()) * 255.0 / (v.max() - v.min())).astype(np.uint8)


def lut_16_bit() -> list[int]:
    """A VOI LUT from 12-bit stored values (v * 16) to 16-bit output (v * 257)."""
    return [min(i // 16, 255) * 257 for i in range(4096)]


def jpeg_bytes(v: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(v).save(out, format="JPEG", quality=90)
    return out.getvalue()


# name -> (builder(path, png pixels) -> path, expected(png pixels) -> uint8, tolerance in gray levels)
VARIANTS = {
    "8 bit, window 128/256": (
        lambda p, v: write_dicom(p, v, WindowCenter=128, WindowWidth=256),
        lambda v: v,
        0,
    ),
    "8 bit, no window: own range": (lambda p, v: write_dicom(p, v), full_range, 0),
    "12 bit, window 2048/4096": (
        lambda p, v: write_dicom(p, as_12_bit(v), bits_stored=12, WindowCenter=2048, WindowWidth=4096),
        lambda v: v,
        1,
    ),
    "12 bit MONOCHROME1 (stored inverted)": (
        lambda p, v: write_dicom(
            p, as_12_bit(255 - v), photometric="MONOCHROME1", bits_stored=12, WindowCenter=2048, WindowWidth=4096
        ),
        lambda v: v,
        1,
    ),
    "16 bit, no window: own range": (lambda p, v: write_dicom(p, v.astype(np.uint16) * 257), full_range, 0),
    "16 bit, rescale slope 0.5 intercept -1024, LINEAR_EXACT window": (
        lambda p, v: write_dicom(
            p,
            (v.astype(np.uint16) * 16 + 1024) * 2,
            RescaleSlope=0.5,
            RescaleIntercept=-1024,
            WindowCenter=2040,
            WindowWidth=4080,
            VOILUTFunction="LINEAR_EXACT",
        ),
        lambda v: v,
        0,
    ),
    "16 bit signed, rescale intercept, no window": (
        lambda p, v: write_dicom(p, v.astype(np.int16) * 16 - 2040, RescaleSlope=1, RescaleIntercept=2040),
        full_range,
        0,
    ),
    "12 bit, VOI LUT (preferred to a window)": (
        lambda p, v: write_dicom(
            p,
            v.astype(np.uint16) * 16,
            bits_stored=12,
            WindowCenter=100,  # a window that would black the image out: the LUT wins
            WindowWidth=10,
            VOILUTSequence=[_lut_item()],
        ),
        lambda v: v,
        0,
    ),
    "8 bit RGB": (lambda p, v: write_dicom(p, np.repeat(v[..., None], 3, axis=2), photometric="RGB"), lambda v: v, 0),
    "12 bit RLE Lossless": (
        lambda p, v: write_dicom(p, as_12_bit(v), bits_stored=12, WindowCenter=2048, WindowWidth=4096, compress=RLELossless),
        lambda v: v,
        1,
    ),
    "16 bit rescaled, JPEG 2000 Lossless": (
        lambda p, v: write_dicom(
            p,
            (v.astype(np.uint16) * 16 + 1024) * 2,
            RescaleSlope=0.5,
            RescaleIntercept=-1024,
            WindowCenter=2040,
            WindowWidth=4080,
            VOILUTFunction="LINEAR_EXACT",
            compress=JPEG2000Lossless,
        ),
        lambda v: v,
        0,
    ),
    "two frames: the first is used": (
        lambda p, v: write_dicom(p, np.stack([v, 255 - v]), WindowCenter=128, WindowWidth=256),
        lambda v: v,
        0,
    ),
}


def _lut_item() -> DicomDataset:
    item = DicomDataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.add_new("LUTData", "US", lut_16_bit())
    return item


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_dicom_made_from_a_png_decodes_to_the_png(tmp_path, variant):
    build, expected, tolerance = VARIANTS[variant]
    for name in NAMES:
        v = png(name)
        path = build(tmp_path / f"{Path(name).stem}.dcm", v)

        pixels = decode_image(path, 256)

        assert pixels.dtype == np.uint8 and pixels.shape == (256, 256)
        difference = np.abs(pixels.astype(int) - expected(v).astype(int))
        assert difference.max() <= tolerance, f"{variant}, {name}: off by up to {difference.max()}"


def test_the_cache_of_dicoms_equals_the_cache_of_their_pngs(tmp_path, cache_dir):
    """Through the cache at 256 px (no resize) and 64 px (Lanczos): DICOM rows equal PNG rows."""
    names = sorted(p.name for p in SAMPLE_IMAGES.glob("*.png"))[:12]
    dicoms = []
    for index, name in enumerate(names):
        v = png(name)
        if index % 3 == 0:
            dicoms.append(write_dicom(tmp_path / f"{index}.dcm", v, WindowCenter=128, WindowWidth=256))
        elif index % 3 == 1:  # the pixels stored inverted, and 16 bits wide
            dicoms.append(
                write_dicom(
                    tmp_path / f"{index}.dcm",
                    (255 - v.astype(np.uint16)) * 16,
                    photometric="MONOCHROME1",
                    WindowCenter=2040,
                    WindowWidth=4080,
                    VOILUTFunction="LINEAR_EXACT",
                )  # fmt: skip
            )
        else:
            dicoms.append(
                write_dicom(tmp_path / f"{index}", v, WindowCenter=128, WindowWidth=256)  # no suffix: the DICM marker says
            )
    pngs = [str(SAMPLE_IMAGES / name) for name in names]
    for size in (256, 64):
        from_dicom = load_image_cache([str(p) for p in dicoms], size)
        from_png = load_image_cache(pngs, size)
        np.testing.assert_array_equal(np.asarray(from_dicom.images), np.asarray(from_png.images), err_msg=f"{size} px")


def test_jpeg_baseline_dicom_decodes_like_the_jpeg(tmp_path):
    """A JPEG-compressed DICOM (pylibjpeg) against Pillow's decode of the same JPEG bytes."""
    v = png(NAMES[0])
    data = jpeg_bytes(v)
    path = write_dicom(tmp_path / "jpeg.dcm", v, WindowCenter=128, WindowWidth=256)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([data])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)
    reference = np.asarray(Image.open(io.BytesIO(data)))

    pixels = decode_image(path, 256)

    difference = np.abs(pixels.astype(int) - reference.astype(int))
    assert difference.max() <= 3 and difference.mean() < 0.5  # two JPEG decoders, the same bytes
    assert np.abs(pixels.astype(int) - v.astype(int)).mean() < 3  # and close to the original PNG


def test_dicom_is_recognised_by_suffix_or_marker(tmp_path):
    v = png(NAMES[0])
    plain = write_dicom(tmp_path / "IM000001", v)
    assert has_dicom_marker(plain) and is_dicom(plain)
    assert is_dicom(tmp_path / "missing.DCM")  # the suffix is enough
    assert not is_dicom(SAMPLE_IMAGES / NAMES[0])
    # A PACS export: files named by UID or without suffix, and a DICOMDIR index that is no image.
    for label, names in (("normal", sample_names_with("No Finding")[:3]), ("effusion", sample_names_with("Effusion")[:3])):
        for index, name in enumerate(names):
            file_name = f"1.2.840.113619.2.55.{index}" if index % 2 else f"IM{index:06d}"
            (tmp_path / "export" / label).mkdir(parents=True, exist_ok=True)
            write_dicom(tmp_path / "export" / label / file_name, png(name), patient_id=name[:8])
    shutil.copyfile(plain, tmp_path / "export" / "normal" / "DICOMDIR")
    dataset = load_dataset(tmp_path / "export")
    assert len(dataset) == 6 and not any(p.endswith("DICOMDIR") for p in dataset.paths)
    assert load_image_cache(dataset.paths, 32).images.shape == (6, 32, 32)


# --- real files that pydicom ships ----------------------------------------------------------------


def shipped(name: str) -> Path:
    from pydicom.data import get_testdata_file

    try:
        path = get_testdata_file(name, download=False)
    except Exception as exc:  # noqa: BLE001 - any failure means: not available offline
        pytest.skip(f"pydicom's test file {name} is not available offline ({exc})")
    if path is None:
        pytest.skip(f"pydicom's test file {name} is not shipped with this pydicom and downloads are off")
    return Path(path)


def reference_by_pydicom(path: Path) -> np.ndarray:
    """pydicom's own modality + VOI transforms, mapped from the stored type's range to 0..255."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path)
    values = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds, prefer_lut=True)
    bits, signed = ds.BitsStored, ds.PixelRepresentation == 1
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return np.rint((values.astype(np.float64) - low) * 255.0 / (high - low)).astype(np.uint8)


def test_real_mr_with_a_window_matches_pydicoms_own_windowing():
    path = shipped("MR_small.dcm")
    pixels = decode_image(path, 64)
    assert np.abs(pixels.astype(int) - reference_by_pydicom(path).astype(int)).max() <= 1


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_expb.dcm",
        "MR_small_padded.dcm",
    ],
)
@pytest.mark.filterwarnings("ignore:The pixel data is .* excess padding")  # MR_small_padded: pydicom says so, OCL reads on
def test_real_encodings_of_one_mr_decode_to_the_same_image(name):
    """pydicom ships one MR image in several transfer syntaxes: every one caches the same pixels."""
    np.testing.assert_array_equal(decode_image(shipped(name), 64), decode_image(shipped("MR_small.dcm"), 64))


def test_real_ct_without_a_window_spans_its_own_range():
    path = shipped("CT_small.dcm")
    ds = pydicom.dcmread(path)
    assert "WindowCenter" not in ds and ds.RescaleIntercept == -1024
    hounsfield = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(decode_image(path, 128), full_range(hounsfield))


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "693_J2KI.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle.dcm"])
def test_real_compressed_files_decode(name):
    pixels = decode_image(shipped(name), 64)
    assert pixels.shape == (64, 64) and pixels.dtype == np.uint8 and pixels.std() > 5


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [
        ("SC_rgb_rle_16bit.dcm", 0),
        ("SC_rgb_rle_32bit.dcm", 0),
        ("SC_rgb_jpeg_gdcm.dcm", 0),
        ("SC_ybr_full_422_uncompressed.dcm", 2),  # YBR with halved chroma: luma kept, within rounding
        ("SC_rgb_dcmtk_+eb+cr.dcm", 1),
    ],
)
def test_real_colour_files_of_one_picture_give_one_luma(name, tolerance):
    """pydicom ships one colour test picture as 8, 16 and 32-bit RGB, YBR and JPEG: one gray image."""
    reference = decode_image(shipped("SC_rgb_rle_2frame.dcm"), 100).astype(int)
    assert np.abs(decode_image(shipped(name), 100).astype(int) - reference).max() <= tolerance


def test_real_truncated_and_pixelless_files_are_named():
    with pytest.raises(OCLError, match=r"MR_truncated\.dcm is a truncated DICOM file"):
        decode_image(shipped("MR_truncated.dcm"), 64)
    with pytest.raises(OCLError, match=r"rtplan\.dcm is a DICOM file without pixel data \(SOP class RT Plan Storage\)"):
        decode_image(shipped("rtplan.dcm"), 64)


def test_a_file_no_installed_decoder_can_read_is_one_line():
    """pydicom's JPEG-lossy.dcm (12-bit extended JPEG) defeats pylibjpeg; its several plugin errors become one line."""
    path = shipped("JPEG-lossy.dcm")
    try:
        decode_image(path, 64)
    except OCLError as failure:
        message = str(failure)
        assert message.startswith(f"image {path} cannot be decoded (DICOM ") and "\n" not in message
    else:
        pytest.skip("this pylibjpeg decodes JPEG-lossy.dcm")


# --- files OCL cannot use: one line that names the file, and nothing in the cache ----------------


def no_pixel_data(path: Path) -> Path:
    """A basic text structured report: a real kind of DICOM file that holds no image."""
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = BasicTextSRStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = DicomDataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = BasicTextSRStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "SR", "1"
    ds.save_as(path, enforce_file_format=True)
    return path


def truncated_in_pixels(path: Path) -> Path:
    write_dicom(path, as_12_bit(png(NAMES[0])), bits_stored=12)
    path.write_bytes(path.read_bytes()[:-40_000])
    return path


def truncated_in_header(path: Path) -> Path:
    write_dicom(path, png(NAMES[0]))
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"DX") + 5])  # a few bytes into the elements after Modality
    return path


def unsupported_syntax(path: Path) -> Path:
    write_dicom(path, png(NAMES[0]))
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG-2 video
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(200)])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)
    return path


BAD = {
    "no pixel data": (no_pixel_data, "is a DICOM file without pixel data (SOP class Basic Text SR Storage), not an image"),
    "truncated in the pixel data": (truncated_in_pixels, "is a truncated DICOM file"),
    "truncated in the header": (truncated_in_header, "is a truncated DICOM file"),
    "unsupported transfer syntax": (unsupported_syntax, "uses the DICOM transfer syntax MPEG2 Main Profile / Main Level"),
    "text named .dcm": (lambda p: (p.write_text("PatientID: 1\n" * 20), p)[1], "is not a DICOM file"),
    "empty .dcm": (lambda p: (p.write_bytes(b""), p)[1], "cannot be decoded (empty file)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_unusable_dicom_is_one_line_naming_the_file(tmp_path, cache_dir, case):
    build, fragment = BAD[case]
    good = [write_dicom(tmp_path / f"good{i}.dcm", png(name)) for i, name in enumerate(NAMES)]
    bad = build(tmp_path / "bad.dcm")

    with pytest.raises(OCLError) as failure:
        load_image_cache([str(good[0]), str(bad), str(good[1])], 32)

    message = str(failure.value)
    assert message.startswith(f"image {bad} ") and fragment in message, message
    assert "\n" not in message
    assert files_under(cache_dir) == []


# --- patients from PatientID ----------------------------------------------------------------------


def dicom_class_folders(root: Path, per_class: int = 12) -> dict[str, list[str]]:
    """ROOT/normal and ROOT/effusion of DICOMs named scanN.dcm, PatientID = the NIH patient."""
    chosen = {"normal": sample_names_with("No Finding")[:per_class], "effusion": sample_names_with("Effusion")[:per_class]}
    for label, names in chosen.items():
        (root / label).mkdir(parents=True)
        for index, name in enumerate(names):
            write_dicom(root / label / f"scan{index}.dcm", png(name), patient_id=str(int(name[:8])),
                        WindowCenter=128, WindowWidth=256)  # fmt: skip
    return chosen


def test_class_folders_of_dicoms_take_the_patient_from_patient_id(tmp_path):
    chosen = dicom_class_folders(tmp_path / "ds")

    dataset = load_dataset(tmp_path / "ds")

    expected = {f"{label}/scan{i}.dcm": str(int(name[:8])) for label, names in chosen.items() for i, name in enumerate(names)}
    assert dict(zip(dataset.table["image"], dataset.table["patient"])) == dict(zip(expected, pseudonyms(expected.values())))
    assert dataset.classes == ("effusion", "normal") and dataset.default_task == "binary:effusion"
    assert dataset.cross_split_patients == 0 and dataset.warnings == ()
    distinct = len(set(expected.values()))
    assert f"patients: the PatientID of 24 of 24 DICOM file(s), {distinct} distinct" in dataset.notes[0]


def test_a_patient_column_overrides_patient_id(tmp_path):
    dicom_class_folders(tmp_path / "ds", per_class=4)
    rows = ["path,label,patient"] + [f"ds/{p.parent.name}/{p.name},{p.parent.name},P{i}" for i, p in
                                     enumerate(sorted((tmp_path / "ds").rglob("*.dcm")))]  # fmt: skip
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    dataset = load_dataset(tmp_path / "labels.csv")
    assert dataset.table["patient"].tolist() == pseudonyms(f"P{i}" for i in range(8))
    assert not any("PatientID" in note for note in dataset.notes)


def test_blank_patient_id_is_unknown(tmp_path):
    for label in ("normal", "effusion"):
        (tmp_path / "ds" / label).mkdir(parents=True)
        for index, name in enumerate(sample_names_with("No Finding" if label == "normal" else "Effusion")[:3]):
            write_dicom(tmp_path / "ds" / label / f"{index}.dcm", png(name), patient_id=None if index else "")
    dataset = load_dataset(tmp_path / "ds")
    assert dataset.table["patient"].isna().all() and not dataset.has_patient_ids
    assert "has no patient IDs" in dataset.warnings[0]


def test_a_bad_dicom_fails_when_the_dataset_is_read(tmp_path):
    dicom_class_folders(tmp_path / "ds", per_class=3)
    truncated_in_pixels(tmp_path / "ds" / "normal" / "scan1.dcm")
    with pytest.raises(OCLError, match=r"normal/scan1\.dcm is a truncated DICOM file"):
        load_dataset(tmp_path / "ds")


def test_no_images_names_every_format(tmp_path):
    (tmp_path / "ds" / "a").mkdir(parents=True)
    (tmp_path / "ds" / "a" / "scan.nii").write_bytes(b"\0" * 400)
    with pytest.raises(OCLError) as failure:
        load_dataset(tmp_path / "ds")
    message = str(failure.value)
    for fragment in ("PNG (.png)", "JPEG (.jpg .jpeg)", "BMP", "TIFF (.tif .tiff)", "GIF", "WebP", "DICOM (.dcm .dicom"):
        assert fragment in message
    assert "its files are none of these (.nii)" in message

    shutil.rmtree(tmp_path / "ds" / "a")
    write_dicom(tmp_path / "ds" / "loose.dcm", png(NAMES[0]))
    with pytest.raises(OCLError, match=r"the 1 image\(s\) directly in .* need a folder per class"):
        load_dataset(tmp_path / "ds")
