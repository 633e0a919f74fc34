"""Every benchmark runs: ``--smoke`` (tiny sizes, seconds) through ``benchmarks/run_all.py``, exit 0,
and the lines the README's figures are read from are printed with numbers in them.

A benchmark nobody runs rots: ``bench_fine_tuning.py`` crashed for a whole turn when the trainer's
``on_epoch`` hook gained an argument. The numbers of a smoke run mean nothing and are not checked;
that each line is there, with a finite number where the README reads one, is.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
NUMBER = r"([0-9][0-9,]*(?:\.[0-9]+)?)"

POWER_RULES = ("every", "fixed", "tied", "single", "oracle")  # bench_power's validation-split rules
CV_ROWS = ("", ", pooled")  # and its --cv 5 rows: fold by fold (OCL now), one pooled AUROC (before)

# Per benchmark: the lines its README figures come from, each a regex whose groups are numbers.
EXPECTED: dict[str, list[str]] = {
    "bench_image_cache": [
        rf"^PNG decode \+ resize +{NUMBER} +{NUMBER}",
        rf"^DICOM JPEG 2000 Lossless decode \+ resize +{NUMBER}",
        rf"^cache build from PNG \(\d+ threads\) +{NUMBER}",
        rf"^cache read / decode = {NUMBER}x",
    ],
    "bench_feature_bank": [
        rf"^bank / plain forward: {NUMBER}x",
        rf"^feature-extraction trial, 2 epochs on \d+ images: bank {NUMBER} s, .* -> {NUMBER}x faster",
        rf"^fine-tuning, only conv5 trainable +: +{NUMBER} img/s",
        rf"^fine-tuning, whole network trainable +: +{NUMBER} img/s",
    ],
    "bench_fine_tuning": [
        rf"spatial bank build / plain forward {NUMBER}x$",
        *[
            rf"^block-{block} cut \(.*, unfreeze_back {back}\): .* epoch speed-up {NUMBER}x$"
            for block, back in ((4, 1), (4, 4), (3, 1), (3, 3))
        ],
        rf"^ocl sweep --trials 1 --strategy both --image-size 32 --weights none: {NUMBER} min",
    ],
    "bench_spatial_bank": [rf"^48 images at 32 px: {NUMBER} bytes per image .* peak memory {NUMBER} MB"],
    "bench_dictionary_build": [
        rf"second build, bank cached: +{NUMBER} s wall, .*, 63 layers",
        rf"Kendall tau [+-]{NUMBER} \(p .*\), Spearman rho [+-]{NUMBER}",
        r"top 5 by LogME: ",
    ],
    "bench_sweep": [rf"^{label} *: 2 trials in +{NUMBER} min = +{NUMBER} trials/min" for label in ("cold", "warm")],
    "bench_uncertainty": [
        rf"^bootstrap: 1000 resamples x 11,000 images x 14 outputs in {NUMBER} s",
        rf"answer again \(goal <= 15 s\): {NUMBER} s, \d+ candidates",
        rf"one dictionary-callback update for a new trial \(goal < 1 s\): {NUMBER} s",
        rf"^validation split: \d+ images \(\d+ patients\) behind each comparison; best .* \(width {NUMBER}\)",
        rf"^--cv 5: \d+ images \(\d+ patients\) behind each comparison; best .* \(width {NUMBER}\)",
    ],
    "bench_full_size": [
        *[
            rf"^{stage} +{NUMBER} s +{NUMBER} img/s peak +{NUMBER} GB tree, +{NUMBER} GB one process "
            rf"\( *{NUMBER} GB anonymous\); disk \+{NUMBER} MB$"
            for stage in ("data info", "data prepare", "sweep fe", "sweep ft", "evaluate", "report", "dictionary build")
        ],
        rf"^\| `sweep fe` \| {NUMBER} s \| {NUMBER} \| {NUMBER} GB \({NUMBER} GB\) \| {NUMBER} MB \|$",
    ],
    "bench_power": [
        rf"^\| {design} \| 150 \| {scored_on} \| {rule} \| {NUMBER}% \| {NUMBER}% \| {NUMBER}% "
        rf"\| {NUMBER}% / {NUMBER}% \| {NUMBER}% / {NUMBER}% \|$"
        for design in ("independent", "correlated")
        for scored_on, rule in [*(("validation", r) for r in POWER_RULES), *((f"train\\+val, cv 5{p}", "tied") for p in CV_ROWS)]
    ],
}


def _run(script: str, *args: str, cwd: Path, timeout: float = 600) -> str:
    env = dict(os.environ, COLUMNS="200", OCL_CACHE_DIR=str(cwd / "cache"), TMPDIR=str(cwd))  # their temp folders too
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{script} {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def _assert_lines(output: str, patterns: list[str]) -> None:
    lines = output.splitlines()
    for pattern in patterns:
        matches = [m for m in map(re.compile(pattern).search, lines) if m]
        assert matches, f"no line matches {pattern!r} in:\n{output}"
        for number in matches[0].groups():
            assert math.isfinite(float(number.replace(",", ""))), (pattern, matches[0].group(0))


def test_every_benchmark_script_is_run_by_run_all_and_smoke_tested_here():
    """A new benchmark cannot be added without ``make bench`` running it and this file checking it."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCHMARKS))
    scripts = {p.stem for p in BENCHMARKS.glob("bench_*.py")}
    assert scripts == set(run_all.BENCHMARKS) == set(EXPECTED)
    others = {p.name for p in BENCHMARKS.iterdir() if p.suffix in (".py", ".sh") and not p.stem.startswith(("bench_", "_"))}
    # each tested below (make_chestxray14.py through bench_full_size) or in tests/cli_tests/test_devices.py
    assert others == {"run_all.py", "sweep_timings.py", "gpu_throughput.py", "gpu_check.sh", "make_chestxray14.py"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(EXPECTED) - {"bench_sweep"}))  # bench_sweep: with sweep_timings below
def test_the_benchmark_runs_in_smoke_mode_and_prints_its_figures(name, tmp_path):
    output = _run("run_all.py", "--smoke", "--only", name, cwd=tmp_path)
    assert f"=== {name} ===" in output
    _assert_lines(output, EXPECTED[name])


def test_smoke_mode_keeps_a_flag_given_on_the_command_line(tmp_path):
    """``--smoke`` only changes defaults: ``--sizes 300`` still wins, and the help names the smoke sizes."""
    output = _run("bench_power.py", "--smoke", "--sizes", "200", cwd=tmp_path)
    _assert_lines(output, [rf"^\| independent \| 200 \| validation \| tied \| {NUMBER}%"])
    assert "| 150 |" not in output
    assert "--repeats 2 --sizes 150" in _run("bench_power.py", "--help", cwd=tmp_path)


def test_bench_power_runs_only_the_rules_asked_for(tmp_path):
    """``--rules single oracle`` (the 1,000-study level run in the README) prints those rows and no others."""
    args = ("--smoke", "--rules", "single", "oracle", "--cv-sizes", "--designs", "correlated")
    output = _run("bench_power.py", *args, cwd=tmp_path)
    _assert_lines(output, [rf"^\| correlated \| 150 \| validation \| {rule} \| {NUMBER}%" for rule in ("single", "oracle")])
    assert not re.search(r"\| (every|fixed|tied) \||cv 5|independent", output)


def test_bench_full_size_runs_only_the_stages_asked_for(tmp_path):
    """``--stages`` measures some stages (the full-size sweep alone takes an hour): only their lines print."""
    output = _run("bench_full_size.py", "--smoke", "--workers", "1", "--stages", "data info", "data prepare", cwd=tmp_path)
    assert "the feature-extraction sweep on 1 worker(s)" in output
    _assert_lines(output, [line for line in EXPECTED["bench_full_size"] if line.startswith(("^data info", "^data prepare"))])
    assert not re.search(r"^(sweep|evaluate|report|dictionary)", output, re.MULTILINE)


@pytest.mark.slow
def test_bench_sweep_runs_and_sweep_timings_reads_the_storage_it_wrote(tmp_path):
    """``bench_sweep.py --smoke``'s figures, then ``sweep_timings.py`` on the storage it wrote: its two trials."""
    output = _run("run_all.py", "--smoke", "--only", "bench_sweep", cwd=tmp_path)
    _assert_lines(output, EXPECTED["bench_sweep"])
    workdir = Path(re.search(r"work dir (\S+)", output).group(1))
    timings = _run("sweep_timings.py", f"sqlite:///{workdir / 'cold.db'}", "--label", "smoke", cwd=tmp_path)
    _assert_lines(
        timings, [rf"^smoke cold: 2 trials in {NUMBER} s \({NUMBER}/min; mean trial feature_extraction {NUMBER} s x2\)"]
    )


@pytest.mark.slow
def test_gpu_throughput_runs_on_this_machines_device(tmp_path):
    """The GPU check's throughput script, here on the CPU: both precisions, the published figures beside them."""
    output = _run("gpu_throughput.py", "--smoke", cwd=tmp_path)
    assert output.startswith("published: Keras DenseNet121 on A100")
    for policy in ("float32", "mixed_bfloat16"):
        line = rf"^\w+ {policy} on cpu.*: forward pass {NUMBER} img/s .* feature bank of all 63 layers {NUMBER} img/s"
        _assert_lines(output, [line])
