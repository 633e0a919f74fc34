"""GPUs for real, checked where a GPU-less machine can: a worker given a GPU its backend cannot see
refuses instead of training on the CPU, and ``ocl devices`` says what the backend sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import files_under


@pytest.mark.slow
def test_a_gpu_worker_whose_backend_sees_no_gpu_refuses_before_anything_is_written(ocl, tmp_path, cache_dir, monkeypatch):
    """The case issue 17 reproduced: CUDA_VISIBLE_DEVICES=0 on a machine whose TensorFlow sees no GPU
    used to print `1 worker(s) on gpu:0`, train both trials on the CPU and label them gpu:0."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    database = tmp_path / "ocl.db"
    args = ["--trials", "2", "--weights", "none", "--image-size", "32", "--strategy", "feature_extraction"]
    done = ocl("sweep", "--devices", "0", *args, "--storage", f"sqlite:///{database}", timeout=300)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("error: --devices 0: the tensorflow backend sees no GPU in the worker for gpu:0")
    assert "pip install -e '.[gpu]'" in lines[0] and "--devices cpu" in lines[0]
    assert not database.exists()  # no study, no half-written storage
    assert not [p for p in files_under(cache_dir) if p.suffix in (".npy", ".json")]  # no cache built


def test_ocl_devices_says_that_the_backend_sees_no_gpu_here(ocl, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    done = ocl("devices", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["backend"] == "tensorflow" and report["backend_gpus"] == []
    table = ocl("devices")
    assert table.returncode == 0 and "tensorflow backend sees none" in table.stdout


def test_the_gpu_check_dry_run_lists_its_commands_and_its_size_and_every_command_parses():
    """benchmarks/gpu_check.sh --dry-run, here: the commands it would run on the GPU machine, the wheels
    and the size they travel at; each ``ocl`` command in it is one the CLI accepts as written."""
    import shlex
    import subprocess

    import typer

    from sweep.cli import app

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry-run"], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("--workers-per-gpu 4 --trials 40 --strategy both" in line for line in lines)
    assert "(limit 64 MiB): fits" in lines[-1] and "wheels (11 packages" in done.stdout
    command = typer.main.get_command(app)
    for line in lines:
        words = shlex.split(line)
        if "-m" in words and words[words.index("-m") + 1] == "sweep":
            name, *args = words[words.index("-m") + 2 :]
            with command.make_context("ocl", [name]) as group:
                command.get_command(group, name).make_context(name, args, parent=group)  # raises on an unknown flag
