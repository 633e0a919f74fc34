"""How much faster than decoding PNGs is reading the image cache, and is either a bottleneck?

Measures, on the full-size (1024x1024) NIH originals in tests/data/nih-full:

1. decode: open each PNG, convert to grayscale and Lanczos-resize to --size, one thread
   (what a data loader without a cache does for every image of every epoch);
2. cache build: ``load_image_cache`` from scratch (decodes once, all cores);
3. cache read: random batches of --batch rows from the memory-mapped cache, converted to float32
   (``cache.images[idx].astype(np.float32)``), as a training loop feeds the model. The built cache
   is tiled to --read-images rows first so the reads do not fit in the CPU caches.

and compares each rate with decode and with --model-rate (default 20 img/s: a DenseNet-121
forward pass at 224 px on this machine's CPU).

Usage: python benchmarks/bench_image_cache.py [--size 224] [--batch 32] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from sweep._progress import configure as configure_progress  # noqa: E402

configure_progress(enabled=False)

from sweep.image_cache import decode_image, load_image_cache  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--images",
        type=Path,
        default=REPO / "tests" / "data" / "nih-full",
        help="folder of PNGs to decode (default: the 40 NIH originals in tests/data/nih-full)",
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
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


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
    paths = sorted(str(p) for p in args.images.glob("*.png"))
    if not paths:
        raise SystemExit(f"no PNG files in {args.images}")
    work = Path(tempfile.mkdtemp(prefix="ocl-bench-"))
    try:
        decode_rate, decoded = time_decode(paths, args.size, args.seconds)
        build_rate, cache = time_build(paths, args.size, work / "cache")
        images = tiled(np.asarray(cache.images), args.read_images, work)
        read_rate, read = time_reads(images, args.batch, args.seconds, args.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"{len(paths)} PNGs from {args.images} at {args.size} px; {os.cpu_count()} CPU(s); "
        f"model reference {args.model_rate:g} img/s"
    )
    rows = [
        ("decode + resize (1 thread)", decode_rate, f"{decoded} img"),
        (f"cache build ({os.cpu_count()} threads)", build_rate, f"{len(paths)} img"),
        (f"cache read, batch {args.batch}, float32", read_rate, f"{read} img, {args.read_images}-row cache"),
    ]
    header = f"{'path':<34} {'img/s':>10} {'x decode':>9} {'x model':>9}  measured"
    print(header)
    print("-" * len(header))
    for name, rate, note in rows:
        print(f"{name:<34} {rate:>10,.0f} {rate / decode_rate:>9.1f} {rate / args.model_rate:>9.1f}  {note}")
    print(
        f"cache read / decode = {read_rate / decode_rate:,.0f}x; "
        f"decode alone is {decode_rate / args.model_rate:.1f}x the model's {args.model_rate:g} img/s, "
        f"cache reads {read_rate / args.model_rate:,.0f}x"
    )


if __name__ == "__main__":
    main()
