"""How long does ``ocl dictionary build`` take with the feature bank cached, and does LogME agree with the probe?

Runs the build's work (``build_dictionary``: dataset, image cache, backbone, bank, then the linear
probe and LogME on every candidate layer, then the upsert) on the embedded NIH sample:

1. once to warm up (builds the image cache and the feature bank if they are not cached yet: a few
   minutes at 224 px on two CPU cores);
2. again, timed: the cost of a build whose bank is cached, which is what every later build of the
   same images, size and weights pays. The goal is at most 60 s at 224 px.

Then it reports, honestly, how well LogME's ranking of the layers agrees with the probe's
(Kendall's tau and Spearman's rho over all candidate layers, with p-values), and the top layers
by each. With ``--weights none`` the features are those of a random network, and the probe's
validation AUROC rests on 69 validation images: expect weak agreement, and read it as that.

Usage: python benchmarks/bench_dictionary_build.py [--image-size 224] [--weights none] [--goal 60] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from sweep._progress import configure as configure_progress  # noqa: E402

configure_progress(enabled=False)

from _smoke import parse_args as parse_with_smoke  # noqa: E402
from scipy.stats import kendalltau, spearmanr  # noqa: E402

from layers_index import build_dictionary  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=224, help="input size in pixels (default 224)")
    parser.add_argument("--weights", default="none", help="imagenet, none or a weights file (default none)")
    parser.add_argument("--goal", type=float, default=60.0, help="seconds the cached build may take (default 60)")
    parser.add_argument("--storage", default=None, help="database URL to write to (default: a SQLite file in a temporary folder)")
    parser.add_argument("--top", type=int, default=5, help="how many top layers to list per score (default 5)")
    return parse_with_smoke(parser, image_size=32, goal=600)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_build(storage: str, args: argparse.Namespace) -> tuple[list, float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    rows = build_dictionary(storage, weights=args.weights, image_size=args.image_size)
    return rows, time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        storage = args.storage or f"sqlite:///{Path(folder) / 'ocl.db'}"
        cache = os.environ.get("OCL_CACHE_DIR", "studies/cache")
        print(
            f"ocl dictionary build: embedded NIH sample, {args.image_size} px, weights {args.weights}, "
            f"cache {cache}, {os.cpu_count()} CPU(s)"
        )
        _, warm_wall, _ = timed_build(storage, args)
        print(f"  first build (warm-up; builds the bank if not cached): {warm_wall:7.1f} s")
        rows, wall, cpu = timed_build(storage, args)
        verdict = "meets" if wall <= args.goal else "MISSES"
        print(
            f"  second build, bank cached: {wall:7.1f} s wall, {cpu:.1f} s CPU, {len(rows)} layers "
            f"({wall / len(rows):.2f} s per layer) -> {verdict} the {args.goal:.0f} s goal"
        )

    probe = [r.probe_auroc for r in rows]
    evidence = [r.logme for r in rows]
    tau, rho = kendalltau(probe, evidence), spearmanr(probe, evidence)
    print(
        f"  LogME vs probe AUROC layer rankings over {len(rows)} layers: Kendall tau {tau.statistic:+.3f} "
        f"(p {tau.pvalue:.2g}), Spearman rho {rho.statistic:+.3f} (p {rho.pvalue:.2g})"
    )
    print(f"  probe AUROC range {min(probe):.3f}..{max(probe):.3f}; LogME range {min(evidence):.4f}..{max(evidence):.4f}")
    for name, key in (("probe AUROC", lambda r: r.probe_auroc), ("LogME", lambda r: r.logme)):
        best = sorted(rows, key=key, reverse=True)[: args.top]
        print(f"  top {args.top} by {name}: " + ", ".join(f"{r.layer} ({key(r):.4f})" for r in best))


if __name__ == "__main__":
    main()
