"""Array files written row block by row block: where the rows land, and what stays in memory."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from sweep.caches import _artifacts


def _resident_mb(kind: str) -> float:
    """This process's ``RssFile`` or ``RssShmem`` (resident pages of mapped files) from /proc, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(kind + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"{kind} not in /proc/self/status")


def test_rows_written_by_views_and_blocks_read_back_as_one_array(tmp_path):
    rng = np.random.default_rng(0)
    expected = rng.normal(size=(2, 50, 7)).astype(np.float32)  # (views, images, channels)
    path = tmp_path / "bank" / "layer.npy"
    with _artifacts.new_array_rows(path, expected.shape, "float32") as out:
        for view in (1, 0):
            for lo in range(0, 50, 16):  # blocks of 16 rows, the last one short
                out.write((view,), lo, expected[view, lo : lo + 16])
        assert not path.exists()  # in place only once every row is written
    np.testing.assert_array_equal(np.load(path), expected)
    assert [p.name for p in path.parent.iterdir()] == ["layer.npy"]  # no temporary file left


def test_rows_that_do_not_fit_are_refused_and_a_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "bank" / "layer.npy"
    with pytest.raises(ValueError, match="do not fit"):
        with _artifacts.new_array_rows(path, (10, 4), "float32") as out:
            out.write((), 0, np.zeros((8, 4), np.float32))
            out.write((), 8, np.zeros((3, 4), np.float32))  # rows 8:11 of 10
    assert not path.exists() and not list(path.parent.iterdir())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_writing_a_large_array_keeps_its_pages_out_of_the_writers_memory(tmp_path):
    """Banking wrote through writable memory maps, and every page it wrote stayed resident in the
    banking process (10.7 GB RSS at full ChestX-ray14 size): written with pwrite, none stays."""
    rows = np.ones((4096, 1024), np.float32)  # 16 MB a block, 256 MB in all
    before = _resident_mb("RssFile") + _resident_mb("RssShmem")
    with _artifacts.new_array_rows(tmp_path / "big.npy", (16 * 4096, 1024), "float32") as out:
        for block in range(16):
            out.write((), block * 4096, rows)
        grown = _resident_mb("RssFile") + _resident_mb("RssShmem") - before
    assert grown < 64, f"{grown:.0f} MB of the 256 MB written stayed resident in the writer"
    assert np.load(tmp_path / "big.npy", mmap_mode="r")[-1, -1] == 1.0
