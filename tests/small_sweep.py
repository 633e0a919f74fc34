"""One real small sweep (12 trials at 32 px, two worker processes) shared by every test that reads
a swept study: the CLI's, the report's and the browser's. Made once per session by the
``small_sweep`` fixture (tests/conftest.py); a test that writes to it works on :func:`own_copy`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SMALL_STUDY = """
[space]
cut_layers = ["conv2_block6_concat", "pool3_pool", "conv4_block24_concat", "relu"]
head_units = [0, 128]
epochs = 4
patience = 2
bank_views = 1
"""
STUDY = "small"
TRIALS = 12
SWEEP_ARGS = ("--image-size", "32", "--weights", "none", "--config", "small.toml", "--study", STUDY)


@dataclass(frozen=True)
class Swept:
    """A finished 12-trial study made by two worker processes, and the command's output."""

    root: Path
    env: dict
    storage: str
    result: subprocess.CompletedProcess


def run_ocl(workdir: Path, env: dict, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweep", *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )


def make_small_sweep(root: Path) -> Swept:
    (root / "small.toml").write_text(SMALL_STUDY)
    env = dict(os.environ, OCL_CACHE_DIR=str(root / "cache"), COLUMNS="200")
    storage = f"sqlite:///{root / 'ocl.db'}"
    result = run_ocl(root, env, "sweep", "--trials", str(TRIALS), "--workers", "2", "--storage", storage, *SWEEP_ARGS)
    assert result.returncode == 0, result.stderr
    return Swept(root, env, storage, result)


def own_copy(swept: Swept, tmp_path: Path) -> tuple[Path, dict, str]:
    """This test's own copy of the swept study (same caches), so tests never see each other's writes."""
    for path in swept.root.glob("ocl.db*"):
        shutil.copyfile(path, tmp_path / path.name)
    shutil.copyfile(swept.root / "small.toml", tmp_path / "small.toml")
    return tmp_path, swept.env, f"sqlite:///{tmp_path / 'ocl.db'}"
