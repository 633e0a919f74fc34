"""Run every benchmark in this folder, one after another (they must not share the CPU).

Run: make bench   (or .venv/bin/python benchmarks/run_all.py [--only NAME ...] [--smoke])
Each benchmark prints its own goal beside its numbers; this script only runs them in order.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCHMARKS = (
    "bench_image_cache",
    "bench_feature_bank",
    "bench_fine_tuning",
    "bench_spatial_bank",
    "bench_dictionary_build",
    "bench_sweep",
    "bench_uncertainty",
    "bench_power",
    "bench_full_size",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run just these")
    parser.add_argument("--smoke", action="store_true", help="each at tiny sizes, in seconds (what make test checks)")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    failed = []
    for name in args.only or BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        if subprocess.call([sys.executable, str(here / f"{name}.py"), *(["--smoke"] if args.smoke else [])]) != 0:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
