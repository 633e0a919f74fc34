"""The names a study and its report go by.

A default study name spells the settings trials are comparable on, so a rerun with other
strategies or weights starts its own study instead of being refused; the report of a study is a
file named after it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sweep.study import SearchSpace, SweepSettings
from sweep.training import Strategy

__all__ = ["default_study_name", "report_path"]

_NAMED_SETTINGS = ("data", "dataset", "task", "image_size")  # spelled in the name itself, or not part of it
_NAMED_SPACE = ("strategies", "weights")


def default_study_name(settings: SweepSettings) -> str:
    """``DATASET-TASK-SIZEpx-STRATEGIES-WEIGHTS``, plus a short hash when any other setting differs
    from its default, e.g. ``nih-cxr14-sample-any-224px-fe-imagenet`` or ``...-fe+ft-none-3f9a1c``.

    Trials are comparable only under one set of settings, so settings that cannot share a study
    get different default names. The hash is of the stored flat JSON, so a study written by an
    earlier release keeps its name.
    """
    space = settings.space
    strategies = "+".join(Strategy(s).abbreviation for s in space.strategies)
    weights = "+".join(label if label in ("imagenet", "none") else Path(label).stem for label in space.weights)
    name = f"{settings.dataset}-{settings.task}-{settings.image_size}px-{strategies}-{weights}"
    defaults = SweepSettings.default_for(settings.dataset, settings.task, settings.image_size, SearchSpace())
    rest = _unnamed_settings(settings)
    if rest != _unnamed_settings(defaults):
        name += "-" + hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:6]
    return name


def _unnamed_settings(settings: SweepSettings) -> dict:
    """The stored settings the name does not spell out."""
    values = json.loads(settings.to_json())
    for key in _NAMED_SETTINGS:
        values.pop(key)
    for key in _NAMED_SPACE:
        values["space"].pop(key)
    return values


def report_path(study_name: str, output: str | Path | None = None, *, folder: str | Path = "studies/reports") -> Path:
    """Where a study's report goes: the file ``output`` (an existing folder gets ``STUDY.html``),
    else ``FOLDER/STUDY.html``."""
    stem = study_name.replace("/", "_").replace(":", "_")
    path = Path(output) if output is not None else Path(folder) / f"{stem}.html"
    return path / f"{stem}.html" if path.is_dir() else path
