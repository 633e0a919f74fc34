"""How long does a 200-trial feature-extraction sweep take, cold and warm, and how much of it is not training?

Runs ``ocl sweep --trials 200 --strategy feature_extraction --weights none`` on the embedded
sample at 224 px, cold (empty caches: decode + feature bank included) and warm (caches kept,
new study). Goals on a 2-core machine: cold <= 6 min, warm <= 3 min.

Reports trials/min and the share of the sweep's wall time spent outside training (process
start-up, storage, sampling, pruning), where training time is the sum of the trials'
``ocl:wall_seconds``.

Run: .venv/bin/python benchmarks/bench_sweep.py [--trials 200] [--workers 1] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _smoke import parse_args as parse_with_smoke


def sweep(workdir: Path, storage: str, study: str, args: argparse.Namespace, env: dict) -> float:
    command = [
        sys.executable,
        "-m",
        "sweep",
        "sweep",
        "--trials",
        str(args.trials),
        "--strategy",
        "feature_extraction",
        "--weights",
        "none",
        "--image-size",
        str(args.size),
        "--workers",
        str(args.workers),
        "--storage",
        storage,
        "--study",
        study,
    ]
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def report(label: str, seconds: float, storage: str, study: str, workers: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=study, storage=storage).trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    training = sum(t.user_attrs.get("ocl:wall_seconds", 0.0) for t in trials)
    outside = 1 - training / (seconds * workers)
    best = max((t.value for t in trials if t.state.name == "COMPLETE"), default=float("nan"))
    print(
        f"{label:5s}: {len(finished)} trials in {seconds / 60:5.2f} min = {len(finished) / (seconds / 60):6.1f} trials/min; "
        f"training {training:6.1f} s, outside training {outside:.0%} of worker time; best val AUROC {best:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=1)
    args = parse_with_smoke(parser, trials=2, size=32)
    workdir = Path(tempfile.mkdtemp(prefix="ocl-bench-sweep-"))
    env = dict(os.environ, OCL_CACHE_DIR=str(workdir / "cache"))
    print(
        f"ocl sweep --trials {args.trials} --strategy feature_extraction --weights none --image-size {args.size} "
        f"--workers {args.workers}, embedded sample, {os.cpu_count()} CPU(s); work dir {workdir}"
    )
    for label in ("cold", "warm"):
        storage = f"sqlite:///{workdir / (label + '.db')}"
        seconds = sweep(workdir, storage, label, args, env)
        report(label, seconds, storage, label, args.workers)


if __name__ == "__main__":
    main()
