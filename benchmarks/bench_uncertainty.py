"""How fast is the patient-level bootstrap, and how much does --cv narrow the confidence set?

1. Times 1,000 patient-level bootstrap resamples of the mean AUROC for 11,000 predictions x 14
   outputs (the full NIH validation split; ~3.1 images per patient). Goal: under 2 s on 2 cores.
2. Runs the same feature-extraction sweep on the embedded sample twice, scored on the validation
   split and with ``--cv 5``, and prints for each: images behind every comparison, the best
   candidate's 95% interval and its width, and how many judged candidates the confidence set
   keeps (fewer = the data can tell more layers apart).

Run: .venv/bin/python benchmarks/bench_uncertainty.py [--trials 60] [--image-size 64] [--skip-sweeps]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def time_bootstrap(images: int = 11_000, outputs: int = 14, resamples: int = 1_000) -> None:
    from sweep.stats import bootstrap_weights, mean_auroc_resampled

    rng = np.random.default_rng(0)
    patients = rng.integers(0, images // 3.1, images)
    y = (rng.random((images, outputs)) < 0.1).astype(np.uint8)
    scores = (rng.random((images, outputs)) + 0.3 * y).astype(np.float32)
    start = time.perf_counter()
    weights = bootstrap_weights(patients, resamples, seed=0)
    resampled = mean_auroc_resampled(y, scores, weights)
    seconds = time.perf_counter() - start
    cpu = time.process_time()
    print(
        f"bootstrap: {resamples} resamples x {images:,} images x {outputs} outputs in {seconds:.2f} s "
        f"(goal < 2 s; process CPU so far {cpu:.1f} s); mean AUROC 95% interval "
        f"[{np.percentile(resampled, 2.5):.3f}, {np.percentile(resampled, 97.5):.3f}]"
    )


SPACE = """
[space]
strategies = ["feature_extraction"]
cut_layers = ["pool2_pool", "pool3_pool", "conv4_block12_concat", "pool4_pool", "conv5_block8_concat", "relu"]
"""


def sweep_widths(trials: int, image_size: int) -> None:
    from sweep.api import run_sweep

    workdir = Path(tempfile.mkdtemp(prefix="ocl-bench-uncertainty-"))
    os.environ["OCL_CACHE_DIR"] = str(workdir / "cache")
    (workdir / "space.toml").write_text(SPACE)
    for label, cv in (("validation split", None), ("--cv 5", 5)):
        start = time.perf_counter()
        result = run_sweep(
            trials,
            image_size=image_size,
            weights="none",
            config=workdir / "space.toml",
            storage=f"sqlite:///{workdir / 'bench.db'}",
            study=f"bench-{'cv' if cv else 'holdout'}",
            cv=cv,
            log_dir=workdir / "logs",
        )
        answer = result.answer
        best = answer.best or (answer.candidates[0] if answer.candidates else None)
        if best is None:
            print(f"{label}: no candidate scored")
            continue
        print(
            f"{label}: {answer.validation['images']} images ({answer.validation['patients']} patients) behind each "
            f"comparison; best {best.layer} {best.score:.3f} [{best.low:.3f}, {best.high:.3f}] "
            f"(width {best.high - best.low:.3f}); confidence set {len(answer.confidence_set)} of {len(answer.judged)} "
            f"judged candidates; {trials} trials in {time.perf_counter() - start:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--skip-sweeps", action="store_true", help="only time the bootstrap")
    args = parser.parse_args()
    time_bootstrap()
    if not args.skip_sweeps:
        sweep_widths(args.trials, args.image_size)


if __name__ == "__main__":
    main()
