"""The OCL dictionary: an index of how good each layer's features are, per dataset, task and weights.

It lives in the same database as the Optuna storage (tables prefixed ``ocl_``), so one SQLite
file or one PostgreSQL database holds a sweep's whole story. Sweeps feed it through
:func:`dictionary_callback`; ``ocl dictionary build`` (:func:`build_dictionary`) scores every
candidate layer at once with a linear probe (:mod:`layers_index.probe`) and LogME
(:mod:`layers_index.logme`). :func:`dictionary_frame` reads it back, one row per layer;
``plot``, ``compare`` and ``warm_start`` build on that frame.

Nothing here imports Keras at import time: ``ocl dictionary show`` stays fast.
"""

from layers_index._schema import SCHEMA_VERSION, SCORE_KINDS
from layers_index._store import DatasetKey, LayerKey, Score, engine_for, read_scores, upsert_scores, weights_label
from layers_index.build import LayerScores, build_dictionary
from layers_index.callback import dictionary_callback, sweep_scores
from layers_index.compare import Comparison, Disagreement, compare_profiles
from layers_index.logme import Evidence, logme, logme_fit
from layers_index.plot import BlockSpan, Curve, PlotData, draw, plot_data, write_html
from layers_index.probe import ProbeResult, linear_probe
from layers_index.views import dictionary_frame, format_csv, format_json, format_tables, top_layers
from layers_index.warm_start import enqueue_top_layers

__all__ = [
    "SCHEMA_VERSION",
    "SCORE_KINDS",
    "BlockSpan",
    "Comparison",
    "Curve",
    "DatasetKey",
    "Disagreement",
    "Evidence",
    "LayerKey",
    "LayerScores",
    "PlotData",
    "ProbeResult",
    "Score",
    "build_dictionary",
    "compare_profiles",
    "dictionary_callback",
    "dictionary_frame",
    "draw",
    "engine_for",
    "enqueue_top_layers",
    "format_csv",
    "format_json",
    "format_tables",
    "linear_probe",
    "logme",
    "logme_fit",
    "plot_data",
    "read_scores",
    "sweep_scores",
    "top_layers",
    "upsert_scores",
    "weights_label",
    "write_html",
]
