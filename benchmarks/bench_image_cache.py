"""How much faster than decoding PNGs (or DICOMs) is reading the image cache, and is either a bottleneck?

Measures, on the full-size (1024x1024) NIH originals in tests/fixtures/nih-full:

1. decode: open each PNG, convert to grayscale and Lanczos-resize to --size, one thread
   (what a data loader without a cache does for every image of every epoch);
2. DICOM decode, the same images written as DICOM the way X-ray archives store them (12-bit
   MONOCHROME2 with a window; uncompressed, RLE Lossless and JPEG 2000 Lossless), decoded by
   pydicom/pylibjpeg through the same ``decode_image``, one thread; the DICOMs are written to a
   temporary folder first (not timed);
3. cache build: ``load_image_cache`` from scratch (decodes once, all cores), from PNG and from the
   uncompressed DICOMs;
4. cache read: random batches of --batch rows from the memory-mapped cache, converted to float32
   (``cache.images[idx].astype(np.float32)``), as a training loop feeds the model. The built cache
   is tiled to --read-images rows first so the reads do not fit in the CPU caches.

and compares each rate with PNG decode and with --model-rate (default 20 img/s: a DenseNet-121
forward pass at 224 px on this machine's CPU).

Usage: python benchmarks/bench_image_cache.py [--size 224] [--batch 32] [--seconds 3] [--images-limit N] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _smoke import parse_args as parse_with_smoke

from sweep._progress import configure as configure_progress  # noqa: E402

configure_progress(enabled=False)

from sweep.caches._image_cache import decode_image, load_image_cache  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--images",
        type=Path,
        default=REPO / "tests" / "fixtures" / "nih-full",
        help="folder of PNGs to decode (default: the 40 NIH originals in tests/fixtures/nih-full)",
    )
    parser.add_argument("--size", type=int, default=224, help="output size in pixels (default 224)")
    parser.add_argument("--batch", type=int, default=32, help="batch size for cache reads (default 32)")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per measurement (default 3)")
    parser.add_argument(
        "--read-images", type=int, default=4096, help="rows in the tiled cache used for read timing (default 4096)"
    )
    parser.add_argument(
        "--model-rate",
        type=float,
        default=20.0,
        help="model throughput to compare with, img/s (default 20: DenseNet-121 forward at 224)",
    )
    parser.add_argument("--images-limit", type=int, default=None, help="use only the first N images (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    return parse_with_smoke(parser, size=32, images_limit=3, seconds=0.05, read_images=64)


DICOM_ENCODINGS = ("uncompressed", "RLE Lossless", "JPEG 2000 Lossless")


def write_dicoms(paths: list[str], folder: Path, encoding: str) -> list[str]:
    """Each PNG as a 12-bit MONOCHROME2 DICOM with a full-range window, stored with ``encoding``."""
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        DigitalXRayImageStorageForPresentation,
        ExplicitVRLittleEndian,
        JPEG2000Lossless,
        RLELossless,
        generate_uid,
    )

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for index, path in enumerate(paths):
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"))
        stored = np.rint(gray.astype(np.float64) * 4095 / 255).astype(np.uint16)
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
        meta.MediaStorageSOPInstanceUID = generate_uid()
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID = "DX", str(index)
        ds.Rows, ds.Columns = stored.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth = 2048, 4096
        if encoding == "uncompressed":
            ds.PixelData = stored.tobytes()
        else:
            ds.compress({"RLE Lossless": RLELossless, "JPEG 2000 Lossless": JPEG2000Lossless}[encoding], stored)
        target = folder / f"{index:03d}.dcm"
        ds.save_as(target, enforce_file_format=True)
        out.append(str(target))
    return out


def time_decode(paths: list[str], size: int, seconds: float) -> tuple[float, int]:
    """Images per second for decode + grayscale + resize, one thread, repeated for >= seconds."""
    done, start = 0, time.perf_counter()
    while True:
        for path in paths:
            decode_image(path, size)
        done += len(paths)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed, done


def time_build(paths: list[str], size: int, cache_dir: Path) -> tuple[float, object]:
    start = time.perf_counter()
    cache = load_image_cache(paths, size, cache_dir=cache_dir)
    return len(paths) / (time.perf_counter() - start), cache


def tiled(cache_images: np.ndarray, rows: int, folder: Path) -> np.ndarray:
    """A read-only memory-mapped .npy with ``rows`` rows cycling through the cache's images."""
    path = folder / "tiled.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(rows, *cache_images.shape[1:]))
    for start in range(0, rows, len(cache_images)):
        stop = min(rows, start + len(cache_images))
        out[start:stop] = cache_images[: stop - start]
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def time_reads(images: np.ndarray, batch: int, seconds: float, seed: int) -> tuple[float, int]:
    """Images per second reading random batches as float32, whole epochs, for >= seconds."""
    rng = np.random.default_rng(seed)
    done, checksum, start = 0, 0.0, time.perf_counter()
    while True:
        order = rng.permutation(len(images))
        for first in range(0, len(order), batch):
            idx = order[first : first + batch]
            x = images[idx].astype(np.float32)
            checksum += float(x[0, 0, 0])
            done += len(idx)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed, done


def main() -> None:
    args = parse_args()
    paths = sorted(str(p) for p in args.images.glob("*.png"))[: args.images_limit]
    if not paths:
        raise SystemExit(f"no PNG files in {args.images}")
    work = Path(tempfile.mkdtemp(prefix="ocl-bench-"))
    try:
        decode_rate, decoded = time_decode(paths, args.size, args.seconds)
        dicom_rows = []
        dicoms = {}
        for encoding in DICOM_ENCODINGS:
            dicoms[encoding] = write_dicoms(paths, work / encoding.replace(" ", "-"), encoding)
            rate, done = time_decode(dicoms[encoding], args.size, args.seconds)
            size = sum(os.path.getsize(p) for p in dicoms[encoding]) / len(paths) / 2**20
            dicom_rows.append((f"DICOM {encoding} decode + resize", rate, f"{done} img, {size:.2f} MiB/file"))
        build_rate, cache = time_build(paths, args.size, work / "cache")
        dicom_build_rate, _ = time_build(dicoms["uncompressed"], args.size, work / "cache")
        images = tiled(np.asarray(cache.images), args.read_images, work)
        read_rate, read = time_reads(images, args.batch, args.seconds, args.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"{len(paths)} PNGs from {args.images} at {args.size} px, and the same images as 12-bit DICOM; "
        f"{os.cpu_count()} CPU(s); model reference {args.model_rate:g} img/s"
    )
    threads = os.cpu_count()
    rows = [
        ("PNG decode + resize", decode_rate, f"{decoded} img, 1 thread"),
        *[(name, rate, f"{note}, 1 thread") for name, rate, note in dicom_rows],
        (f"cache build from PNG ({threads} threads)", build_rate, f"{len(paths)} img"),
        (f"cache build from DICOM ({threads} threads)", dicom_build_rate, f"{len(paths)} img, uncompressed"),
        (f"cache read, batch {args.batch}, float32", read_rate, f"{read} img, {args.read_images}-row cache"),
    ]
    width = max(len(name) for name, _, _ in rows) + 2
    header = f"{'path':<{width}} {'img/s':>10} {'x PNG':>9} {'x model':>9}  measured"
    print(header)
    print("-" * len(header))
    for name, rate, note in rows:
        print(f"{name:<{width}} {rate:>10,.0f} {rate / decode_rate:>9.1f} {rate / args.model_rate:>9.1f}  {note}")
    print(
        f"cache read / decode = {read_rate / decode_rate:,.0f}x; "
        f"decode alone is {decode_rate / args.model_rate:.1f}x the model's {args.model_rate:g} img/s, "
        f"cache reads {read_rate / args.model_rate:,.0f}x"
    )


if __name__ == "__main__":
    main()
