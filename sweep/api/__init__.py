"""OCL as a library: run a sweep, join one, evaluate it, from Python as from the shell.

The ``ocl`` commands are a thin shell over these functions: they parse flags, call them and
print what they return. A notebook gets the same behaviour without shelling out.

A sweep runs in two steps. :func:`plan_sweep` checks everything a user can get wrong (data,
task, weights, search space, devices, storage, a study run with other settings) without writing
anything, and says what will run; :func:`execute_sweep` builds the caches, creates or resumes the
study and runs one worker process per device until the study has exactly ``trials`` finished
trials. :func:`run_sweep` does both. This process never loads TensorFlow: the caches are built
in a child process, and trials run in worker processes that see one device each.

Example:
    >>> from sweep.api import run_sweep
    >>> result = run_sweep(trials=16, image_size=64, weights="none", storage="sqlite:///ocl.db")
    >>> print(result.answer.sentence())        # the answer, with what the data can and cannot tell apart
    >>> best = result.answer.best               # cross-fitted score and interval; best.trial is what ocl evaluate reuses
    >>> best.layer, best.strategy, (best.low, best.score, best.high)
    >>> result.best_value                       # the single highest trial: biased upward, shown, never ranked on

The folder's modules follow those steps: ``_plan`` (checks and the plan), ``_execute`` (caches,
study, workers, the result), ``_processes`` (what the worker and cache-builder processes run) and
``_evaluate`` (``ocl evaluate`` and ``ocl predict``).
"""

from __future__ import annotations

from sweep.api._evaluate import evaluate_study, predict_images
from sweep.api._execute import SweepResult, SweepSnapshot, execute_sweep, run_sweep, sweep_result
from sweep.api._plan import SweepPlan, plan_sweep
from sweep.api._processes import check_gpu, prepare_process, run_worker, worker_process
from sweep.results import default_study_name, report_path
from sweep.study import open_study

__all__ = [
    "SweepPlan",
    "SweepSnapshot",
    "SweepResult",
    "default_study_name",
    "evaluate_study",
    "open_study",
    "predict_images",
    "report_path",
    "execute_sweep",
    "plan_sweep",
    "run_sweep",
    "check_gpu",
    "prepare_process",
    "run_worker",
    "sweep_result",
    "worker_process",
]
