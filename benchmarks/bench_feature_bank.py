"""What does the feature bank cost to build and save per trial, and what does a fine-tuning step cost?

Three timings at realistic size (224 px, embedded NIH sample, random init):

1. Feature bank build (pooled outputs of all 63 candidate layers in one pass) vs one plain
   DenseNet-121 forward pass over the same images. Goal: at most 1.25x.
2. A feature-extraction trial on the bank vs the same trial in plain Keras computing features
   from images every epoch (truncated backbone + head, ``model.fit``). Goal: at least 50x faster.
3. Fine-tuning step throughput (batch 16): only conv5 trainable vs the whole network.

Run: .venv/bin/python benchmarks/bench_feature_bank.py [--images 638] [--size 224] [--smoke]
CPU time / wall time is printed beside each timing: about 2.0 means both cores were busy.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _smoke import parse_args as parse_with_smoke


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=638, help="images from the embedded sample (all 638 by default)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the two feature-extraction trials")
    parser.add_argument("--steps", type=int, default=6, help="fine-tuning steps timed per variant")
    args = parse_with_smoke(parser, images=40, size=32, epochs=2, steps=1)
    os.environ["OCL_CACHE_DIR"] = tempfile.mkdtemp(prefix="ocl-bench-")
    from sweep._progress import configure as configure_progress

    configure_progress(enabled=False)

    from sweep._keras import keras_module
    from sweep.caches import load_feature_bank, load_image_cache
    from sweep.data import load_dataset
    from sweep.model import Weights, build_backbone, candidate_names
    from sweep.training import TrialConfig, TrialData, run_trial
    from sweep.training._keras_models import WeightedBinaryCrossentropy, fine_tuning_model, make_optimizer

    keras = keras_module()
    dataset = load_dataset()
    cache = load_image_cache(dataset.paths, args.size)
    n = min(args.images, len(dataset))
    images = np.asarray(cache.images[:n], np.float32)[..., None]
    weights = Weights("none")
    backbone = build_backbone(args.size, weights)
    print(f"{n} images at {args.size} px, {os.cpu_count()} CPU(s), Keras {keras.__version__} on {keras.backend.backend()}")

    def plain_forward():
        for lo in range(0, n, 32):
            backbone.predict_on_batch(images[lo : lo + 32])

    # Both passes start cold (their first batch traces the model), as they do in a real run.
    _, plain_wall, plain_cpu = timed(plain_forward)

    from sweep.caches import ImageCache

    subset = ImageCache(cache.key + f"-first{n}", cache.size, cache.method, cache.path, cache.images[:n])
    layers = candidate_names(backbone)
    bank, bank_wall, bank_cpu = timed(lambda: load_feature_bank(subset, weights, layers, backbone=backbone))
    print(f"plain forward:        {n / plain_wall:6.1f} img/s  ({plain_wall:6.1f} s, cpu/wall {plain_cpu / plain_wall:.2f})")
    print(
        f"bank, 63 layers:      {n / bank_wall:6.1f} img/s  ({bank_wall:6.1f} s, cpu/wall {bank_cpu / bank_wall:.2f}, "
        f"includes compiling the 63-output model and writing {len(layers)} arrays)"
    )
    print(f"bank / plain forward: {bank_wall / plain_wall:.2f}x  (goal <= 1.25x)")

    # 2. feature-extraction trial: bank vs features recomputed from images every epoch
    task = dataset.task("any")
    table = dataset.table.iloc[:n]
    train = np.flatnonzero(table["split"].to_numpy() != "test")[: int(0.8 * n)]
    val = np.setdiff1d(np.arange(n), train)
    targets = dataset.targets(task)[:n]
    data = TrialData(cache.images[:n], targets, task.outputs, train, val, np.array([], dtype=int))
    layer = "conv4_block24_concat"
    config = TrialConfig(
        "feature_extraction", layer, head_units=256, dropout=0.2, epochs=args.epochs, patience=args.epochs, batch_size=32
    )
    result, bank_trial, _ = timed(lambda: run_trial(config, data, bank=bank, backbone_factory=lambda: backbone))

    def naive_trial():
        base = keras.Model(backbone.inputs, backbone.get_layer(layer).output)
        base.trainable = False
        inputs = keras.Input((args.size, args.size, 1))
        x = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
        x = keras.layers.Dropout(0.2)(keras.layers.Dense(256, activation="relu")(x))
        model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(
            images[train],
            targets[train],
            validation_data=(images[val], targets[val]),
            epochs=args.epochs,
            batch_size=32,
            verbose=0,
        )

    _, naive_wall, naive_cpu = timed(naive_trial)
    print(
        f"feature-extraction trial, {args.epochs} epochs on {len(train)} images: bank {bank_trial:.2f} s, "
        f"plain Keras from images {naive_wall:.1f} s (cpu/wall {naive_cpu / naive_wall:.2f}) -> "
        f"{naive_wall / bank_trial:.0f}x faster (goal >= 50x); val AUROC on the bank {result.val.mean_auroc:.3f}"
    )

    # 3. fine-tuning step throughput
    for label, unfreeze in (("only conv5 trainable", "pool4_pool"), ("whole network trainable", "conv1_conv")):
        ft = TrialConfig("fine_tuning", "relu", unfreeze_from=unfreeze, batch_size=16)
        model = fine_tuning_model(build_backbone(args.size, weights), ft, 1)
        model.compile(optimizer=make_optimizer("adam", 1e-4), loss=WeightedBinaryCrossentropy([1.0]))
        batch, y = images[:16], targets[:16]
        model.train_on_batch(batch, y)  # compile the step
        _, wall, cpu = timed(lambda m=model, b=batch, t=y: [m.train_on_batch(b, t) for _ in range(args.steps)])
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        print(
            f"fine-tuning, {label:24s}: {16 * args.steps / wall:5.1f} img/s (cpu/wall {cpu / wall:.2f}, "
            f"{trainable / 1e6:.2f} M trainable parameters)"
        )
    print(f"cache dir (delete when done): {Path(os.environ['OCL_CACHE_DIR'])}")


if __name__ == "__main__":
    main()
