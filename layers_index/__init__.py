"""The OCL dictionary: an index of how good each layer's features are, per dataset, task and weights.

Three names, one thing: users say "the OCL dictionary" (``ocl dictionary build/show/plot/compare``),
the code calls its package ``layers_index`` (an index keyed by layer), and the database holds it in
the tables prefixed ``ocl_`` (``ocl_datasets``, ``ocl_layers``, ``ocl_layer_scores``, and the
version row in ``ocl_schema_version``). Its sister package :mod:`sweep` runs the studies that feed
it; only sweep's edges (``sweep.api``, the CLI and the report: the workers' callback, warm start, the profile plot) import it,
never the engine modules.

It lives in the same database as the Optuna storage (tables prefixed ``ocl_``), so one SQLite
file or one PostgreSQL database holds a sweep's whole story. Sweeps feed it through
:func:`dictionary_callback`; ``ocl dictionary build`` (:func:`build_dictionary`) scores every
candidate layer at once with a linear probe (:mod:`layers_index._probe`) and LogME
(:mod:`layers_index._logme`). :func:`dictionary_frame` reads it back, one row per layer;
``plot``, ``compare`` and ``warm_start`` build on that frame.

Importing this package imports nothing: each name below loads its module on first use, so the
CLI can read :data:`SCORE_KINDS` at start-up for free, and ``ocl dictionary show`` loads only what
showing needs. Nothing here imports Keras at import time.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

SCORE_KINDS = (
    "probe_auroc",
    "logme",
    "sweep_auroc",
    "sweep_best_auroc",
    "sweep_mean_auroc",
    "ft_sweep_auroc",
    "ft_sweep_best_auroc",
    "ft_sweep_mean_auroc",
)
"""The kinds of score the dictionary stores, declared once: the ``kind`` column's values, the score
columns of :func:`dictionary_frame` and the CLI's ``--metric`` choices all come from here.

``sweep_*`` are a sweep's feature-extraction trials at the layer, ``ft_sweep_*`` its fine-tuning
trials, kept apart because the two strategies answer different questions. ``*_auroc`` is the
candidate's cross-fitted validation AUROC with its 95% interval (``low``/``high``,
:mod:`sweep.results._answer`): the comparable sweep score. ``*_best_auroc`` (the maximum over trials, biased
upward) and ``*_mean_auroc`` are kept for reference, never ranked on."""

PROBE_IMAGES = 10_000
"""Training images the probe is fitted on, at most (whole patients, drawn once for every layer).

The probe's cost is rows x channels x 31 fits per output and layer: at NIH's full size (78,000
training images) the build would take hours on two cores, where 10,000 images keep it at the cost
of a 10,000-image dataset (``benchmarks/bench_full_size.py`` measures both). Its AUROC is still
scored on every validation image, and LogME, which is cheap, uses every training image."""

_EXPORTS = {
    "_schema": ["SCHEMA_VERSION"],
    "_store": ["DatasetKey", "LayerKey", "Score", "engine_for", "read_scores", "upsert_scores"],
    "_build": ["LayerScores", "build_dictionary", "probe_subsample"],
    "_callback": ["dictionary_callback", "sweep_scores"],
    "_compare": ["Comparison", "Disagreement", "compare_profiles"],
    "_logme": ["Evidence", "logme", "logme_fit"],
    "_plot": ["BlockSpan", "Curve", "PlotData", "draw", "plot_data", "write_html"],
    "_probe": ["ProbeResult", "linear_probe"],
    "_views": ["dictionary_frame", "format_csv", "format_json", "format_tables", "top_layers"],
    "_warm_start": ["check_source", "enqueue_top_layers"],
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(["PROBE_IMAGES", "SCORE_KINDS", *_HOME])


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """Keeps ``layers_index._logme`` the function, as the export list says, not the submodule.

    Importing a submodule makes it an attribute of its package; for ``logme`` that would replace
    the function of the same name, and ``from layers_index import _logme as logme`` would then give the module
    or the function depending on what happened to be imported first.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _HOME:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
