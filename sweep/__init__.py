"""OCL: optimal cut-off layer sweeps for transfer learning on medical images.

``sweep`` is the engine: datasets, the image cache, DenseNet-121 and its cut-off layers, the
feature bank, the two training strategies, the search space, the Optuna objective, the worker
processes and the ``ocl`` command line. Its sister package :mod:`layers_index` is the OCL
dictionary that the sweep feeds.

From Python, the same things the ``ocl`` commands do::

    from sweep import run_sweep
    result = run_sweep(trials=16, image_size=64, weights="none")
    print(result.answer.sentence())

The package is imported by every command, so importing it loads nothing heavy: the library
functions below load on first use, and TensorFlow and Keras only in the modules that build models.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["evaluate_study", "execute_sweep", "plan_sweep", "run_sweep", "run_worker"]


def __getattr__(name: str) -> Any:
    """The library API (:mod:`sweep.api`), imported when first asked for."""
    if name in __all__:
        from sweep import api

        return getattr(api, name)
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")
