"""The house rules, checked on the source: imports run one way, folders are used through their
faces, no library function grows past 60 lines and no module past 600.

The layers, lowest first. A module may import from its own layer or a lower one; importing from a
later layer (at module level or inside a function) is a back-arrow and fails here. Between
folders, code goes through the folder's face (``from sweep.caches import ImageCache``), never
into another folder's ``_private`` module.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS: list[tuple[str, ...]] = [
    ("sweep.errors", "sweep._env", "sweep._progress", "sweep._keras"),
    ("sweep.data",),
    ("sweep.model",),
    ("sweep.caches",),
    ("sweep.stats",),
    ("sweep.training",),
    ("sweep.storage",),
    ("sweep.study",),
    ("sweep.results",),
    ("layers_index",),
    ("sweep.report",),
    ("sweep.api",),
    ("sweep.cli", "sweep.__main__"),
]
PACKAGES = [name for layer in LAYERS for name in layer if (ROOT / name.replace(".", "/")).is_dir()]
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 600


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _library_modules() -> list[Path]:
    return sorted(p for folder in ("sweep", "layers_index") for p in (ROOT / folder).rglob("*.py"))


def _layer_of(module: str) -> int | None:
    if module == "sweep":  # the package face, which hands out the API lazily
        return _layer_of("sweep.api")
    for index, layer in enumerate(LAYERS):
        if any(module == name or module.startswith(name + ".") for name in layer):
            return index
    return None


def _package_of(module: str) -> str | None:
    return next((name for name in PACKAGES if module == name or module.startswith(name + ".")), None)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import of OCL's own code in the file, however nested."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            for alias in node.names:  # `from sweep import api` imports the module sweep.api
                candidate = f"{base}.{alias.name}"
                found.append((node.lineno, candidate if _layer_of(candidate) is not None and base == "sweep" else base))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, name) for line, name in found if name.split(".")[0] in ("sweep", "layers_index")]


def test_imports_run_one_way_through_the_layers():
    problems = []
    for path in _library_modules():
        module = _module_name(path)
        own = _layer_of(module)
        assert own is not None, f"{module} belongs to no layer; add it to LAYERS in this test"
        for line, target in _imports(path):
            layer = _layer_of(target)
            if layer is not None and layer > own:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {target} (a later layer)")
    assert not problems, "\n".join(problems)


def test_other_folders_are_used_through_their_faces():
    problems = []
    for path in _library_modules():
        module = _module_name(path)
        for line, target in _imports(path):
            package = _package_of(target)
            if package is None or package == _package_of(module):
                continue
            private = [part for part in target[len(package) :].split(".") if part.startswith("_")]
            if private:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {target}; use `from {package} import ...`")
    assert not problems, "\n".join(problems)


def test_every_folder_has_a_face_listing_its_public_names():
    for package in PACKAGES:
        init = ROOT / package.replace(".", "/") / "__init__.py"
        tree = ast.parse(init.read_text())
        names = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)]
        assert "__all__" in names, f"{init.relative_to(ROOT)} has no __all__"
        assert ast.get_docstring(tree), f"{init.relative_to(ROOT)} has no docstring saying what the folder is for"
    for path in _library_modules():
        if path.name == "__init__.py" or path.parent == ROOT / "sweep":
            continue
        assert path.name.startswith("_"), f"{path.relative_to(ROOT)}: modules inside a folder are private (_name.py)"


def test_every_face_imports_and_lists_only_names_it_has():
    code = "import importlib, sys\n"
    code += f"for name in {PACKAGES!r}:\n"
    code += "    module = importlib.import_module(name)\n"
    code += "    missing = [n for n in module.__all__ if not hasattr(module, n)]\n"
    code += "    assert not missing, (name, missing)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_importing_sweep_loads_no_tensorflow_or_keras():
    code = "import sys, sweep, sweep.api, sweep.cli\n"
    code += "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("folder", ["sweep", "layers_index"])
def test_no_library_function_is_longer_than_60_lines(folder):
    long = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} has {lines} lines")
    assert not long, "split these into smaller functions:\n" + "\n".join(long)


def test_no_module_anywhere_is_longer_than_600_lines():
    """Library, tests, benchmarks and scripts alike: a module past 600 lines holds more than one job."""
    long = []
    for folder in ("sweep", "layers_index", "tests", "benchmarks", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            lines = len(path.read_text().splitlines())
            if lines > MAX_MODULE_LINES:
                long.append(f"{path.relative_to(ROOT)} has {lines} lines")
    assert not long, f"split these along their seams (at most {MAX_MODULE_LINES} lines each):\n" + "\n".join(long)


def test_the_checker_sees_a_back_arrow(tmp_path):
    """The import scan is not vacuous: a data module importing the study layer is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from sweep.study import load_study\n")
    assert _imports(bad) == [(2, "sweep.study")]
    assert _layer_of("sweep.study") > _layer_of("sweep.data._generic")


@pytest.fixture(scope="module")
def built_once_per_file() -> object:
    return object()


def test_under_xdist_a_test_with_a_module_fixture_runs_in_its_files_group(request, built_once_per_file):
    """``make test`` runs ``pytest -n 2 --dist loadgroup``: a file's module fixtures and the shared
    session sweeps are built once only if xdist sees the groups tests/conftest.py gives. When xdist
    cannot write them into the node id (pytest 9.2, pytest-xdist#1386) it spreads every test
    silently; this fails instead. Without ``-n`` there is nothing to check."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        pytest.skip("not running under pytest-xdist")
    assert request.node.nodeid.endswith("@tests/test_architecture.py"), request.node.nodeid
