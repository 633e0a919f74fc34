"""Before the first byte: the caches' disk cost is stated, and a disk that cannot hold it is refused
with one line; nothing is written to the caches or the storage."""

from __future__ import annotations

import re
import sqlite3

import pytest

from sweep.caches import FREE_DISK_MARGIN, DiskPlan
from sweep.errors import OCLError

GB = 1_000_000_000


def test_the_plan_adds_up_what_each_cache_writes_and_says_the_spatial_bounds(tmp_path):
    plan = DiskPlan(tmp_path, (("image cache", 115 * 10**6), ("feature bank", 38 * GB)), free=70 * GB, spatial_budget=20 * GB)
    assert plan.total == 38 * GB + 115 * 10**6
    line = plan.line()
    assert line.startswith(f"disk: the caches write 38.1 GB under {tmp_path} (image cache 115 MB, feature bank 38.0 GB)")
    assert "then a spatial bank of at most 20.0 GB (OCL_CACHE_MAX_GB" in line and line.endswith("; 70.0 GB free")
    plan.check()  # fits
    built = DiskPlan(tmp_path, (("image cache", 0),), free=5 * GB)
    assert built.line() == f"disk: the caches under {tmp_path} are built (nothing to write); 5.0 GB free"


def test_a_plan_that_does_not_fit_beside_the_margin_is_one_line_naming_the_folder_and_the_fix(tmp_path):
    need = 3 * GB
    DiskPlan(tmp_path, (("feature bank", need),), free=need + FREE_DISK_MARGIN).check()  # exactly fits
    tight = DiskPlan(tmp_path, (("feature bank", need),), free=need + FREE_DISK_MARGIN - 1)
    with pytest.raises(OCLError) as refused:
        tight.check()
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"not enough free disk under {tmp_path}: the caches need 3.0 GB (feature bank 3.0 GB)")
    assert "OCL_CACHE_DIR" in message


def test_a_cache_folder_not_made_yet_is_measured_on_the_disk_it_will_be_on(tmp_path):
    plan = DiskPlan.of(tmp_path / "not" / "yet", {"image cache": 1})
    assert plan.free > 0 and plan.directory == tmp_path / "not" / "yet"
    assert not (tmp_path / "not").exists()


@pytest.mark.slow
def test_a_sweep_on_too_small_a_disk_is_refused_before_anything_is_written(ocl, tmp_path, monkeypatch):
    # Every process the sweep starts sees a disk with 1 MB beyond the margin (sitecustomize): the
    # feature bank of the embedded sample at 32 px (about 90 MB) cannot fit.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import shutil\n"
        "_real = shutil.disk_usage\n"
        f"shutil.disk_usage = lambda path: _real(path)._replace(free={FREE_DISK_MARGIN + 10**6})\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(hook))
    cache = tmp_path / "cache"
    monkeypatch.setenv("OCL_CACHE_DIR", str(cache))
    storage = tmp_path / "ocl.db"
    result = ocl(
        *("sweep", "--trials", "2", "--strategy", "feature_extraction", "--image-size", "32", "--weights", "none"),
        *("--storage", f"sqlite:///{storage}"),
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert re.match(rf"error: not enough free disk under {re.escape(str(cache))}: the caches need", errors[0])
    assert "feature bank" in errors[0] and "Traceback" not in result.stderr
    written = [p for p in cache.rglob("*") if p.is_file() and p.suffix in (".npy", ".json")] if cache.exists() else []
    assert written == []
    if storage.exists():
        with sqlite3.connect(storage) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            studies = connection.execute("SELECT COUNT(*) FROM studies").fetchone()[0] if "studies" in tables else 0
        assert studies == 0


# That a sweep states the cost before banking, that it is what it wrote and that a rerun writes
# nothing: tests/cli_tests/test_sweep.py, on the session's small sweep.
