"""How much faster is a fine-tuning epoch from the spatial bank than from images?

Both paths in one run, at 224 px on the embedded NIH sample (random init, no augmentation):

Dense blocks are counted as in the DenseNet paper: dense block 1 is Keras' ``conv2_*``, dense block 4
is ``conv5_*``.

1. A block-4 cut (``conv5_block16_concat``) with unfreeze_back 1 and 4 (``conv5_block15_concat`` or
   ``conv5_block12_concat`` on): one epoch (training + validation scoring) from images vs from the
   bank. Goal: at least 10x.
2. A block-3 cut (``conv4_block24_concat``) with unfreeze_back 1 and 3 (``conv4_block23_concat`` or
   ``conv4_block21_concat`` on). Goal: at least 3x.
3. Building the spatial bank (every banked block, clean images) vs one plain forward pass of
   DenseNet-121 over the same images. Goal: at most 1.3x.
4. Unless ``--no-sweep``: the wall time of ``ocl sweep --trials 200 --strategy both --image-size 224
   --weights none`` on the embedded sample, in a fresh cache and storage. Goal: at most 90 min.

The bound: the bank saves the frozen forward pass, not the trained layers' forward and backward
passes, nor the per-batch cost of a Keras training step.

An epoch's time is the time between the ends of the trial's last two epochs (steady state: no
model building or first-step compilation in it).

Run: .venv/bin/python benchmarks/bench_fine_tuning.py [--no-sweep] [--size 224] [--epochs 3] [--sweep-trials 200] [--smoke]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _smoke import parse_args as parse_with_smoke


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed trial (the last one is timed)")
    parser.add_argument("--no-sweep", action="store_true", help="print only the three ratios (under 15 minutes)")
    parser.add_argument("--sweep-trials", type=int, default=200, help="trials of the timed sweep (default 200)")
    parser.add_argument("--images", type=int, default=None, help="time epochs on the first N sample images (default: all 638)")
    args = parse_with_smoke(parser, size=32, sweep_trials=1, images=96)
    root = Path(tempfile.mkdtemp(prefix="ocl-bench-ft-"))
    os.environ["OCL_CACHE_DIR"] = str(root / "cache")
    from sweep._progress import configure as configure_progress

    configure_progress(enabled=False)

    from sweep._keras import keras_module
    from sweep.caches import ImageCache, load_image_cache, load_spatial_bank
    from sweep.data import load_dataset
    from sweep.model import Weights, build_backbone
    from sweep.training import TrialConfig, TrialData, run_trial

    keras = keras_module()
    dataset = load_dataset()
    cache = load_image_cache(dataset.paths, args.size)
    data = TrialData.from_dataset(dataset, dataset.task("any"), cache)
    if args.images is not None:  # the first N images, with their splits
        n = min(args.images, len(cache.images))
        cache = ImageCache(cache.key + f"-first{n}", cache.size, cache.method, cache.path, cache.images[:n])
        rows = {split: getattr(data, split)[getattr(data, split) < n] for split in ("train", "val", "test")}
        data = dataclasses.replace(data, images=cache.images, targets=data.targets[:n], **rows)
    weights = Weights("none")
    backbone = build_backbone(args.size, weights)
    n = len(cache.images)
    print(
        f"{n} images ({len(data.train)} train, {len(data.val)} val) at {args.size} px, {os.cpu_count()} CPU(s), "
        f"Keras {keras.__version__} on {keras.backend.backend()}",
        flush=True,
    )

    start = time.perf_counter()
    for lo in range(0, n, 32):
        backbone.predict_on_batch(np.asarray(cache.images[lo : lo + 32], np.float32)[..., None])
    forward = time.perf_counter() - start
    start = time.perf_counter()
    bank = load_spatial_bank(cache, weights, cache_dir=root / "spatial", backbone=backbone)
    build = time.perf_counter() - start
    print(bank.summary(), flush=True)
    print(
        f"spatial bank build {build:.1f} s, plain forward {forward:.1f} s, {n} images (goal <= 1.3x): "
        f"spatial bank build / plain forward {build / forward:.2f}x",
        flush=True,
    )

    def epoch_seconds(config: TrialConfig, **options) -> float:
        ends: list[float] = []
        run_trial(
            config,
            data,
            backbone_factory=lambda: build_backbone(args.size, weights),
            on_epoch=lambda epoch, value, *_: ends.append(time.perf_counter()),
            **options,
        )
        keras.backend.clear_session(free_memory=True)
        return ends[-1] - ends[-2]

    ratios = []
    for label, cut, boundary, goal in (
        ("block-4 cut (conv5_block16_concat, unfreeze_back 1)", "conv5_block16_concat", "conv5_block15_concat", 10),
        ("block-4 cut (conv5_block16_concat, unfreeze_back 4)", "conv5_block16_concat", "conv5_block12_concat", 10),
        ("block-3 cut (conv4_block24_concat, unfreeze_back 1)", "conv4_block24_concat", "conv4_block23_concat", 3),
        ("block-3 cut (conv4_block24_concat, unfreeze_back 3)", "conv4_block24_concat", "conv4_block21_concat", 3),
    ):
        config = TrialConfig("fine_tuning", cut, unfreeze_from=boundary, epochs=args.epochs, batch_size=32, patience=99)
        plain = epoch_seconds(config)
        banked = epoch_seconds(config, spatial_bank=bank)
        line = f"{label}: epoch {plain:.1f} s from images, {banked:.2f} s from the bank (goal >= {goal}x): "
        ratios.append(f"{line}epoch speed-up {plain / banked:.1f}x")
        print(ratios[-1], flush=True)
    if args.no_sweep:
        return
    env = {**os.environ, "OCL_CACHE_DIR": str(root / "sweep-cache")}
    command = [sys.executable, "-m", "sweep", "sweep", "--trials", str(args.sweep_trials), "--strategy", "both", "--image-size"]
    command += [str(args.size), "--weights", "none", "--storage", f"sqlite:///{root / 'bench.db'}", "--log-dir", str(root)]
    start = time.perf_counter()
    code = subprocess.call(command, env=env, cwd=root)
    minutes = (time.perf_counter() - start) / 60
    if code:
        sys.exit(f"ocl sweep exited with {code}")
    # The wall time depends on the mix the sampler chose: say it, with each strategy's mean trial time.
    import optuna

    storage = f"sqlite:///{root / 'bench.db'}"
    (name,) = optuna.get_all_study_names(storage)
    trials = [t for t in optuna.load_study(study_name=name, storage=storage).trials if t.datetime_complete]
    for strategy in ("feature_extraction", "fine_tuning"):
        seconds = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials if t.params["strategy"] == strategy]
        if seconds:
            print(f"  {len(seconds)} {strategy} trials (finished or pruned), {np.mean(seconds):.1f} s each on average")
    print(
        f"ocl sweep --trials {args.sweep_trials} --strategy both --image-size {args.size} --weights none: "
        f"{minutes:.1f} min (goal <= 90 min at 200 trials, 224 px)"
    )


if __name__ == "__main__":
    main()
