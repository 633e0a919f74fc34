"""Feature-bank throughput at 224 px on this machine's device, beside published DenseNet-121 figures.

Banks all 63 candidate layers of the embedded sample (the real ``load_feature_bank`` path, a
fresh cache) and times one plain forward pass (batch 32) of the same network, in float32 and in
``--precision mixed``. Printed next to Keras' published figure (A100, batch 32: 5.4 ms per step,
about 5,900 img/s) and timm's RTX 4090 AMP figure (3,615 img/s). Part of benchmarks/gpu_check.sh.

Run: KERAS_BACKEND=jax python benchmarks/gpu_throughput.py [--size 224] [--repeats 20] [--images N] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from _smoke import parse_args as parse_with_smoke

PUBLISHED = "published: Keras DenseNet121 on A100, batch 32: 5.4 ms/step (~5,900 img/s); timm RTX 4090 AMP: 3,615 img/s"


def measure(precision: str, size: int, repeats: int, images: int | None) -> None:
    from sweep._keras import device_in_use
    from sweep.caches import load_feature_bank, load_image_cache
    from sweep.data import load_dataset
    from sweep.model import CANDIDATES, Weights, build_backbone, use_precision

    policy = use_precision(precision)
    os.environ["OCL_CACHE_DIR"] = tempfile.mkdtemp(prefix=f"ocl-gpu-{policy}-")
    cache = load_image_cache(load_dataset().paths[:images], size)
    backbone = build_backbone(size, Weights("none"))
    batch = np.asarray(cache.images[:32], np.float32)[..., None]
    backbone.predict_on_batch(batch)  # compile
    start = time.perf_counter()
    for _ in range(repeats):
        np.asarray(backbone.predict_on_batch(batch))
    forward = 32 * repeats / (time.perf_counter() - start)
    start = time.perf_counter()
    load_feature_bank(cache, Weights("none"), list(CANDIDATES), backbone=backbone, dtype_policy=policy)
    banked = len(cache.images) / (time.perf_counter() - start)
    print(
        f"{os.environ.get('KERAS_BACKEND', 'tensorflow')} {policy} on {device_in_use()}: forward pass {forward:,.0f} img/s "
        f"(batch 32, {size} px); feature bank of all 63 layers {banked:,.0f} img/s ({len(cache.images)} images, "
        f"compilation included)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--precision", default="both", choices=["float32", "mixed", "both"])
    parser.add_argument("--images", type=int, default=None, help="bank only the first N sample images (default: all 638)")
    args = parse_with_smoke(parser, size=32, repeats=1, images=32)
    print(PUBLISHED)
    for precision in ("float32", "mixed") if args.precision == "both" else (args.precision,):
        measure(precision, args.size, args.repeats, args.images)


if __name__ == "__main__":
    main()
