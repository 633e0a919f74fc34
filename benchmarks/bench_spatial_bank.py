"""Does the spatial bank scale to all of ChestX-ray14 (112,120 images) with flat memory?

Generated images (smooth noise, written to a memory-mapped file in chunks) at 64 px stand in for
the dataset; the bank is built for them (every banked block, clean images) with a random-init
DenseNet-121. Printed: bytes per image on disk, build time per 1,000 images and the process's peak
resident memory, which must not grow with ``--images`` (the bank is written through memory maps
that are let go every few batches, and never held in memory). Compare two runs, e.g. 2000 and 8000.

Run: .venv/bin/python benchmarks/bench_spatial_bank.py --images 2000 [--size 64] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _smoke import parse_args as parse_with_smoke


@dataclass
class GeneratedCache:
    """What the bank needs of an image cache: images, size, key."""

    images: np.ndarray
    size: int
    key: str


def generate(path: Path, count: int, size: int, chunk: int = 1024) -> np.ndarray:
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, size, size))
    rng = np.random.default_rng(0)
    for lo in range(0, count, chunk):
        n = min(chunk, count - lo)
        coarse = rng.integers(0, 256, (n, size // 8, size // 8), dtype=np.uint8)
        images[lo : lo + n] = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
        images.flush()
    del images
    return np.load(path, mmap_mode="r")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="generated images (ChestX-ray14 has 112,120)")
    parser.add_argument("--size", type=int, default=64)
    args = parse_with_smoke(parser, images=48, size=32)
    root = Path(tempfile.mkdtemp(prefix="ocl-bench-spatial-"))
    os.environ["OCL_CACHE_DIR"] = str(root / "cache")
    from sweep._progress import configure as configure_progress

    configure_progress(enabled=False)
    from sweep.caches import load_spatial_bank
    from sweep.model import Weights, build_backbone

    images = generate(root / "images.npy", args.images, args.size)
    cache = GeneratedCache(images, args.size, f"generated-{args.images}-{args.size}")
    weights = Weights("none")
    backbone = build_backbone(args.size, weights)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    bank = load_spatial_bank(cache, weights, cache_dir=root / "spatial", backbone=backbone)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    on_disk = sum(p.stat().st_size for p in bank.directory.rglob("*.npy"))
    print(bank.summary())
    print(
        f"{args.images} images at {args.size} px: {on_disk / args.images:,.0f} bytes per image "
        f"({on_disk / args.images * 112_120 / 1e9:.1f} GB for 112,120 images), "
        f"build {seconds / args.images * 1000:.1f} s per 1,000 images, "
        f"peak memory {peak:,.0f} MB ({before:,.0f} MB before the build; must stay flat as --images grows)"
    )


if __name__ == "__main__":
    main()
