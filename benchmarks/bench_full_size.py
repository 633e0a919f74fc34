"""What each OCL stage costs at ChestX-ray14 size: wall time, images/s, peak memory and disk, through the CLI.

For each ``--images N`` (default 10,000 and 112,120, so the scaling is measured in one run), a
dataset in NIH's layout is generated (``make_chestxray14.py``, 32 px), plus a second one of other
patients for ``--external``, and every stage runs as a user runs it, in a fresh cache and storage:

1. ``ocl data info``;
2. ``ocl data prepare --image-size 32``;
3. ``ocl sweep --task multilabel --strategy feature_extraction --trials 200 --workers W`` (``--weights none``;
   W is one worker per core, since a feature-extraction trial trains its head on one core);
4. ``ocl sweep --strategy fine_tuning`` with ``--ft-trials`` trials, under the default ``OCL_CACHE_MAX_GB``;
5. ``ocl evaluate --external OTHER --saliency 2``;
6. ``ocl report``;
7. ``ocl dictionary build``.

Per stage: wall time, images/s (the dataset's images over the wall time), the peak resident memory of
the whole process tree and of its largest single process, and that process's anonymous part
(heap and arrays, without the memory-mapped bank's cached pages; sampled from /proc every 0.2 s), and the
disk the stage added to the cache, storage and reports. Then, from the smallest N to the largest,
the growth of time per image and of peak memory. Goals (issue 26): at 112,120 images, prepare plus
the 200-trial sweep under 60 min; any one process at most 6 GB; time per image grows at most 1.5x
and peak memory at most 3x.

Run: .venv/bin/python benchmarks/bench_full_size.py [--images 10000 112120] [--trials 200] [--ft-trials 3]
[--workers W] [--stages "data info" "data prepare" "sweep fe"] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from _smoke import parse_args as parse_with_smoke
from make_chestxray14 import generate

from sweep.study import usable_cores

GB = 1e9
STAGES = ["data info", "data prepare", "sweep fe", "sweep ft", "evaluate", "report", "dictionary build"]


@dataclass(frozen=True)
class StageCost:
    stage: str
    seconds: float
    images: int
    tree_peak: float  # bytes: the process tree's summed RSS at its peak
    process_peak: float  # bytes: the largest single process's RSS
    anonymous_peak: float  # bytes: the largest single process's anonymous RSS (heap, not mapped files)
    disk: float  # bytes added under the work folder

    def line(self) -> str:
        return (
            f"{self.stage:<22} {self.seconds:8.1f} s {self.images / self.seconds:9,.0f} img/s "
            f"peak {self.tree_peak / GB:5.2f} GB tree, {self.process_peak / GB:5.2f} GB one process "
            f"({self.anonymous_peak / GB:5.2f} GB anonymous); "
            f"disk +{self.disk / 1e6:,.0f} MB"
        )


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(parent, []).append(int(entry))
    return tree


def _rss(pid: int) -> tuple[int, int]:
    """A process's resident memory and the anonymous part of it, in bytes.

    Resident memory counts the pages of memory-mapped files (the feature bank) that the kernel
    keeps while there is room and drops under pressure; the anonymous part (heap, arrays) is what
    the process cannot give back, so both are reported.
    """
    fields = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                fields[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return fields.get("VmRSS", 0), fields.get("RssAnon", 0)


class TreeMemory(threading.Thread):
    """Samples a process and its descendants' resident memory until stopped: summed and largest."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every, self.tree_peak, self.process_peak, self.anonymous_peak = pid, every, 0, 0, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            tree, pids, seen = _children(), [self.pid], []
            while pids:
                pid = pids.pop()
                seen.append(pid)
                pids.extend(tree.get(pid, []))
            sizes = [_rss(pid) for pid in seen]
            self.tree_peak = max(self.tree_peak, sum(resident for resident, _ in sizes))
            self.process_peak = max(self.process_peak, max(resident for resident, _ in sizes))
            self.anonymous_peak = max(self.anonymous_peak, max(anonymous for _, anonymous in sizes))
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def disk_used(folder: Path) -> int:
    """Bytes on disk under ``folder``, as du counts them."""
    return sum((Path(root) / name).stat().st_blocks * 512 for root, _, files in os.walk(folder) for name in files)


def run_stage(stage: str, args: list[str], work: Path, images: int) -> StageCost:
    """One ``ocl`` command in the work folder, watched; exits the benchmark with its stderr if it fails."""
    env = dict(os.environ, OCL_CACHE_DIR=str(work / "cache"), COLUMNS="200")
    env.pop("OCL_CACHE_MAX_GB", None)  # the default disk budget, as a user gets it
    before = disk_used(work)
    log = work / f"{stage.replace(' ', '-')}.log"
    start = time.perf_counter()
    with log.open("w") as out:
        command = [sys.executable, "-m", "sweep", *args]
        process = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
        watcher = TreeMemory(process.pid)
        watcher.start()
        code = process.wait()
        watcher.stop()
    seconds = time.perf_counter() - start
    if code != 0:
        sys.exit(f"error: {stage} (ocl {' '.join(args)}) exited {code}:\n{log.read_text()[-3000:]}")
    peaks = watcher.tree_peak, watcher.process_peak, watcher.anonymous_peak
    return StageCost(stage, seconds, images, *peaks, disk_used(work) - before)


def stages(data: Path, external: Path, storage: str, args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    size = ["--image-size", str(args.size)]
    common = ["--data", str(data), *size, "--weights", "none", "--storage", storage, "--task", "multilabel"]
    fe_workers = ["--workers", str(args.workers)]
    every = [
        ("data info", ["data", "info", "--data", str(data)]),
        ("data prepare", ["data", "prepare", "--data", str(data), *size]),
        (
            "sweep fe",
            ["sweep", *common, "--strategy", "feature_extraction", "--trials", str(args.trials), *fe_workers, "--study", "fe"],
        ),
        ("sweep ft", ["sweep", *common, "--strategy", "fine_tuning", "--trials", str(args.ft_trials), "--study", "ft"]),
        ("evaluate", ["evaluate", "--study", "fe", "--storage", storage, "--external", str(external), "--saliency", "2"]),
        ("report", ["report", "--study", "fe", "--storage", storage, "--output", "report.html"]),
        ("dictionary build", ["dictionary", "build", *common]),
    ]
    return [(stage, command) for stage, command in every if stage in args.stages]


def measure(images: int, args: argparse.Namespace, root: Path) -> list[StageCost]:
    data, external, work = root / f"nih-{images}", root / f"external-{images}", root / f"work-{images}"
    start = time.perf_counter()
    table = generate(data, images, args.size, seed=0)
    generate(external, max(200, images // 20), args.size, seed=1, patient_offset=40_000)  # other people
    print(f"\n{len(table):,} images generated at {args.size} px in {time.perf_counter() - start:.0f} s ({data})", flush=True)
    work.mkdir()
    costs = []
    for stage, command in stages(data, external, f"sqlite:///{work / 'ocl.db'}", args):
        costs.append(run_stage(stage, command, work, len(table)))
        print(costs[-1].line(), flush=True)
    if not args.keep:
        shutil.rmtree(data), shutil.rmtree(external), shutil.rmtree(work)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[10_000, 112_120], help="dataset sizes (default 10000 112120)")
    parser.add_argument("--size", type=int, default=32, help="image size in pixels (default 32)")
    parser.add_argument("--trials", type=int, default=200, help="trials of the feature-extraction sweep (default 200)")
    parser.add_argument("--ft-trials", type=int, default=3, help="trials of the fine-tuning sweep (default 3)")
    parser.add_argument(
        "--workers",
        type=int,
        default=usable_cores(),
        help="workers of the feature-extraction sweep (default: one per core)",
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=STAGES,
        default=STAGES,
        metavar="STAGE",
        help=f"stages to run, in order (default: all of {STAGES})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated data and work folders")
    parser.add_argument("--root", type=Path, default=None, help="where to write (default: a new temporary folder)")
    args = parse_with_smoke(parser, images=[300], trials=2, ft_trials=1)
    root = args.root or Path(tempfile.mkdtemp(prefix="ocl-full-size-"))
    print(f"{os.cpu_count()} CPU(s); the feature-extraction sweep on {args.workers} worker(s); work in {root}")
    runs = {images: measure(images, args, root) for images in sorted(args.images)}
    first, last = list(runs.values())[0], list(runs.values())[-1]
    if len(runs) > 1:
        print(f"\nfrom {first[0].images:,} to {last[0].images:,} images:")
        for a, b in zip(first, last):
            per_image = (b.seconds / b.images) / (a.seconds / a.images)
            memory, anonymous = b.process_peak / a.process_peak, b.anonymous_peak / a.anonymous_peak
            print(
                f"{a.stage:<22} time per image x{per_image:.2f} (goal <= 1.5), "
                f"peak memory x{memory:.2f}, anonymous x{anonymous:.2f} (goal <= 3)"
            )
    print(f"\n{last[0].images:,} images, {args.size} px, {os.cpu_count()} CPU(s):")
    print("| stage | time | images/s | peak memory, one process (anonymous) | disk |\n|---|---|---|---|---|")
    for cost in last:
        rate, memory, anonymous = cost.images / cost.seconds, cost.process_peak / GB, cost.anonymous_peak / GB
        print(
            f"| `{cost.stage}` | {cost.seconds:,.0f} s | {rate:,.0f} | {memory:.2f} GB ({anonymous:.2f} GB) "
            f"| {cost.disk / 1e6:,.0f} MB |"
        )


if __name__ == "__main__":
    main()
