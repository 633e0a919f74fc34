"""The OCL dictionary: an index of how good each layer's features are, per dataset, task and weights.

It lives in the same database as the Optuna storage (tables prefixed ``ocl_``), so one SQLite
file or one PostgreSQL database holds a sweep's whole story. Sweeps feed it through
:func:`dictionary_callback`; ``ocl dictionary build`` scores every candidate layer at once.
"""

from layers_index._schema import SCHEMA_VERSION, SCORE_KINDS
from layers_index._store import DatasetKey, LayerKey, Score, engine_for, upsert_scores
from layers_index.callback import dictionary_callback, sweep_scores

__all__ = [
    "SCHEMA_VERSION",
    "SCORE_KINDS",
    "DatasetKey",
    "LayerKey",
    "Score",
    "dictionary_callback",
    "engine_for",
    "sweep_scores",
    "upsert_scores",
]
