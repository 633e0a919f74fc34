"""The study machinery: what a study stores, what a trial samples and does, and the processes
that run trials.

- settings and records: :class:`SweepSettings` (stored on the study as flat JSON), the ``ocl:``
  attribute keys (:mod:`records <sweep.study._records>`), :class:`TrialRecord`, :class:`DatasetInfo`;
- the search space (:class:`SearchSpace`, from a study file) and the study lifecycle
  (:func:`create_or_resume`, :func:`load_study`, samplers and per-strategy pruners);
- :class:`StudyResources`: the dataset, caches and layers every trial of a study shares;
- :class:`Objective`: one trial, from sampled configuration to stored predictions;
- :func:`run_worker` (one worker process) and :class:`WorkerPool` (one per device).
"""

from sweep.study import _records as records
from sweep.study._finding import ocl_studies, open_study
from sweep.study._lifecycle import (
    FINISHED,
    METRIC_NAME,
    SELECTIONS,
    SweepSettings,
    check_backend,
    check_pseudonym_key,
    check_resumable,
    count_states,
    create_or_resume,
    fail_trials_of,
    load_settings,
    load_study,
    make_pruner,
    make_sampler,
    target_of,
)
from sweep.study._objective import Objective, OutOfMemory, SurplusTrial, with_outcome
from sweep.study._pruning import PerStrategyPruner, may_prune
from sweep.study._records import DatasetInfo, TrialRecord, key_of
from sweep.study._resources import StudyResources, layer_catalog
from sweep.study._scheduler import Device, GpuInfo, WorkerPool, driver_gpus, parse_devices, usable_cores, visible_gpus
from sweep.study._search_space import PRUNERS, SearchSpace, is_glob, load_search_space
from sweep.study._worker import prepare, run_worker

__all__ = [
    "FINISHED",
    "METRIC_NAME",
    "SELECTIONS",
    "PRUNERS",
    "DatasetInfo",
    "Device",
    "GpuInfo",
    "Objective",
    "OutOfMemory",
    "PerStrategyPruner",
    "SearchSpace",
    "StudyResources",
    "SurplusTrial",
    "SweepSettings",
    "TrialRecord",
    "WorkerPool",
    "check_backend",
    "check_pseudonym_key",
    "check_resumable",
    "count_states",
    "fail_trials_of",
    "create_or_resume",
    "driver_gpus",
    "is_glob",
    "key_of",
    "layer_catalog",
    "load_search_space",
    "load_settings",
    "load_study",
    "make_pruner",
    "make_sampler",
    "ocl_studies",
    "open_study",
    "may_prune",
    "parse_devices",
    "prepare",
    "records",
    "run_worker",
    "target_of",
    "usable_cores",
    "visible_gpus",
    "with_outcome",
]
