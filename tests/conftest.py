"""Shared fixtures: a private cache directory per test, quiet output, and small NIH-style folders.

Every test gets its own ``OCL_CACHE_DIR``, so nothing is written under the repository;
subprocesses started by :func:`ocl` inherit it and run from the test's tmp folder.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import SAMPLE_DIR, files_under, sample_rows

SHARED_SESSION_FIXTURES = ("small_sweep", "evaluated_64px")


def _shares_a_fixture_with_its_file(item: pytest.Item) -> bool:
    """Whether the test uses a fixture built once per module, class or package (not per test)."""
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    return any(d.scope in ("module", "class", "package") for defs in definitions.values() for d in defs)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """For ``pytest -n 2 --dist loadgroup`` (``make test``), which unit of work goes to one worker:

    - the files whose tests read the session's shared sweeps (``small_sweep``, ``evaluated_64px``)
      together, so each sweep is made once in the run;
    - a file whose tests share a module-scoped fixture, so it is built once;
    - any other test alone (the benchmark smokes, for one, spread over both workers).

    The shared sweeps go first and slow tests next: the longest units start early, so neither
    worker is left with a long one at the end. Without ``-n`` nothing is marked or moved.

    xdist puts the group into the node id, which pytest 9.2 no longer lets it change
    (pytest-xdist#1386): the dev extra keeps pytest below 9.2, and tests/test_architecture.py fails
    if the groups stop reaching the workers."""
    if not hasattr(config, "workerinput"):  # not an xdist worker
        return
    shared = {item.path for item in items if set(SHARED_SESSION_FIXTURES) & set(getattr(item, "fixturenames", ()))}
    for item in items:
        if item.path in shared:
            item.add_marker(pytest.mark.xdist_group("shared-session-sweeps"))
        elif _shares_a_fixture_with_its_file(item):
            item.add_marker(pytest.mark.xdist_group(str(item.path.relative_to(config.rootpath))))
    items.sort(key=lambda item: (item.path not in shared, item.get_closest_marker("slow") is None))


@pytest.fixture(scope="session", autouse=True)
def _session_env(tmp_path_factory: pytest.TempPathFactory):
    """Session-wide defaults, so session-scoped fixtures never write under the repository either."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OCL_CACHE_DIR", str(tmp_path_factory.mktemp("session-cache")))
        yield


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory: pytest.TempPathFactory):
    """The session's one real small sweep (tests/small_sweep.py), made on first use."""
    from small_sweep import make_small_sweep

    return make_small_sweep(tmp_path_factory.mktemp("small-sweep"))


@pytest.fixture(scope="session")
def evaluated_64px(tmp_path_factory: pytest.TempPathFactory):
    """The session's one real ``ocl evaluate --external`` at 64 px (tests/evaluated_study.py), made on first use."""
    from evaluated_study import make_evaluated

    return make_evaluated(tmp_path_factory.mktemp("evaluated-64px"))


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own cache directory (``OCL_CACHE_DIR``), created empty."""
    path = tmp_path / "ocl-cache"
    path.mkdir()
    monkeypatch.setenv("OCL_CACHE_DIR", str(path))
    return path


@pytest.fixture
def cache_files(cache_dir: Path):
    """A function listing the files currently in this test's cache directory."""
    return lambda: files_under(cache_dir)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def ocl(tmp_path: Path):
    """Run the real CLI (``python -m sweep ...``) in a subprocess from the test's tmp folder."""

    def run(*args: str, timeout: float = 120) -> Result:
        env = dict(os.environ, COLUMNS="200")
        done = subprocess.run(
            [sys.executable, "-m", "sweep", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture(scope="session")
def sample_table() -> tuple[list[str], list[list[str]]]:
    return sample_rows()


@pytest.fixture
def nih_folder(tmp_path: Path, sample_table):
    """Build a small NIH ChestX-ray14 folder from sample images.

    ``nih_folder(names, layout="images" | "images_NNN", lists=False)`` copies the named sample
    images (default: the first 40 rows of the sample table, enough for a seeded split to put
    patients in train, val and test) with their label rows.
    """
    header, rows = sample_table
    by_name = {row[0]: row for row in rows}

    def build(names: list[str] | None = None, *, layout: str = "images", lists: bool = False, folder: str = "nih") -> Path:
        names = names or [row[0] for row in rows[:40]]
        root = tmp_path / folder
        root.mkdir()
        for position, name in enumerate(names):
            if layout == "images":
                target = root / "images"
            else:  # NIH's Kaggle-style images_001/images, images_002/images, ...
                target = root / f"images_{position % 2 + 1:03d}" / "images"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SAMPLE_DIR / "images" / name, target / name)
        with open(root / "Data_Entry_2017.csv", "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(by_name[name] for name in names)
        if lists:
            for list_name in ("train_val_list.txt", "test_list.txt"):
                wanted = (SAMPLE_DIR / list_name).read_text().split()
                (root / list_name).write_text("\n".join(n for n in wanted if n in set(names)) + "\n")
        return root

    return build
