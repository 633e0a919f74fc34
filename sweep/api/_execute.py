"""Running a planned sweep: caches in a child process, the study created or resumed, one worker per device.

The parent never loads TensorFlow; it watches the storage for progress and, at the end, reads the
study back as a :class:`SweepResult` with its answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep.api._plan import SweepPlan, plan_sweep
from sweep.api._processes import prepare_process, worker_process
from sweep.errors import OCLError
from sweep.results import (
    LayerSummary,
    StudyAnswer,
    completed_trials,
    report_path,
    study_answer,
    summarize_layers,
)
from sweep.storage import open_storage
from sweep.study import (
    TrialRecord,
    WorkerPool,
    count_states,
    create_or_resume,
    fail_trials_of,
    load_study,
    records,
)


@dataclass(frozen=True)
class SweepSnapshot:
    """A snapshot of a running sweep, read from the storage (for progress bars)."""

    finished: int
    failed: int
    target: int
    best_value: float | None
    best_layer: str | None


@dataclass(frozen=True)
class SweepResult:
    """A study after a sweep: counts, the answer, and the per-layer summaries.

    ``answer`` is what to report (its ``best`` carries the cross-fitted score with its interval and
    the trial ``ocl evaluate`` reuses). ``best``, ``best_value`` and ``best_trial`` are the single
    highest trial: biased upward by the choice, kept for the dashboard's view, never the answer.
    """

    study_name: str
    storage_url: str
    finished: int
    failed: int
    best: TrialRecord | None
    best_value: float | None
    best_trial: int | None
    best_params: dict[str, Any] = field(default_factory=dict)
    layers: list[LayerSummary] = field(default_factory=list)  # best first
    answer: StudyAnswer | None = None  # the optimal layer with its uncertainty (None when not asked for)
    report: Path | None = None  # the study's HTML report, written at the end of the sweep
    worker_exits: list[tuple[int, int, Path]] = field(default_factory=list)  # (worker, non-zero exit code, its log)


def execute_sweep(
    plan: SweepPlan,
    *,
    warm_start: bool = False,
    log_dir: str | Path = "studies/logs",
    report_dir: str | Path | None = "studies/reports",
    on_ready: Callable[[], None] | None = None,
    on_cache_notes: Callable[[list[str]], None] | None = None,
    on_progress: Callable[[SweepSnapshot], None] | None = None,
    on_warm_start: Callable[[list[str]], None] | None = None,
) -> SweepResult:
    """Build the caches, create or resume the study, and run workers until it has its trials.

    Args:
        plan: from :func:`plan_sweep`.
        warm_start: first try the layers the OCL dictionary ranks best for this dataset.
        log_dir: where each worker's log goes.
        report_dir: where the study's HTML report (``ocl report``) is written at the end; None: no report.
        on_ready: called once the caches are built and the study is open, before any trial runs
            (or at once when the study already has its trials).
        on_cache_notes: called right after ``on_ready`` with the caches' lines for the user: which
            blocks the spatial bank holds and why the others are not, a full disk's note.
        on_progress: called about once a second with a :class:`SweepSnapshot`.
        on_warm_start: called with the layers enqueued by the warm start.

    Raises:
        OCLError: when the caches cannot be built (the child's one-line error is passed on) or
            the workers stop before the study has its trials.
        KeyboardInterrupt: after Ctrl-C, once the workers have stopped; finished trials stay.
    """
    if plan.finished_before is not None and plan.finished_before >= plan.trials:
        if on_ready is not None:
            on_ready()
        study = load_study(open_storage(plan.storage_url, heartbeat=False), plan.study_name)
        return _with_report(sweep_result(study, plan.storage_url), study, report_dir)
    pool = WorkerPool(
        plan.storage_url,
        plan.study_name,
        list(plan.devices),
        Path(log_dir),
        worker_entry=worker_process,
        prepare_entry=prepare_process,
        environment={"KERAS_BACKEND": plan.backend},
    )
    study, cache_notes = _prepare_and_open(plan, pool)
    if on_ready is not None:
        on_ready()
    if on_cache_notes is not None and cache_notes:
        on_cache_notes(cache_notes)
    if warm_start:
        _warm_start(study, plan, on_warm_start)
    exits = _run_workers(pool, study, plan, on_progress)
    return _with_report(sweep_result(study, plan.storage_url, worker_exits=exits), study, report_dir)


def _prepare_and_open(plan: SweepPlan, pool: WorkerPool) -> tuple[Any, list[str]]:
    """Build the caches in a child process, then create or resume the study: a cache that cannot be
    built leaves the storage untouched. Returns the study and the caches' lines for the user."""
    code, error, cache_notes = pool.prepare(plan.settings.to_json())
    if code != 0:
        raise OCLError(error or f"preparing the caches failed with exit code {code}")
    study = create_or_resume(open_storage(plan.storage_url), plan.study_name, plan.settings, plan.trials)
    study.set_user_attr(records.BACKEND, plan.backend)
    for key, value in plan.dataset_info.to_user_attrs().items():
        study.set_user_attr(key, value)
    return study, cache_notes


def _warm_start(study: Any, plan: SweepPlan, on_warm_start: Callable[[list[str]], None] | None) -> None:
    """Enqueue the layers the OCL dictionary ranks best for this dataset (or ``--warm-start-from``'s)."""
    from layers_index import enqueue_top_layers

    enqueued = enqueue_top_layers(
        study, plan.storage_url, plan.settings, fingerprint=plan.dataset_info.fingerprint, source=plan.warm_start_from
    )
    if on_warm_start is not None:
        on_warm_start(enqueued)


def _run_workers(
    pool: WorkerPool, study: Any, plan: SweepPlan, on_progress: Callable[[SweepSnapshot], None] | None
) -> list[tuple[int, int, Path]]:
    """Run the workers until they end; returns (worker, non-zero exit code, log) of those that failed.

    Raises:
        OCLError: when they stopped before the study has its trials (with the first failed log's tail).
    """
    pool.start()
    tick = (lambda: on_progress(_progress(study, plan.trials))) if on_progress else (lambda: None)
    try:
        codes = pool.wait(tick)
    except KeyboardInterrupt:
        fail_trials_of(study, pool.interrupt())  # a worker terminated mid-trial leaves it RUNNING otherwise
        raise
    finished = count_states(study)["finished"]
    if finished < plan.trials:
        raise OCLError(
            f"--study {plan.study_name}: the workers stopped after {finished} of {plan.trials} finished trials "
            f"(exit codes {codes}); rerun to resume\n{pool.failure_tail()}"
        )
    return [(index, code, log) for index, (code, log) in enumerate(zip(codes, pool.logs)) if code != 0]


def _with_report(result: SweepResult, study: Any, report_dir: str | Path | None) -> SweepResult:
    if report_dir is None:
        return result
    from sweep.report import write_study_report

    path = write_study_report(study, result.storage_url, report_path(result.study_name, folder=report_dir))
    return dataclasses.replace(result, report=path)


def run_sweep(
    trials: int = 200, *, warm_start: bool = False, log_dir: str | Path = "studies/logs", **options: Any
) -> SweepResult:
    """Plan and run a sweep: :func:`plan_sweep` with ``options``, then :func:`execute_sweep`."""
    return execute_sweep(plan_sweep(trials, **options), warm_start=warm_start, log_dir=log_dir)


def _progress(study: Any, target: int) -> SweepSnapshot:
    counts = count_states(study)
    best_value = best_layer = None
    pairs = completed_trials(study)
    if pairs:
        trial, record = max(pairs, key=lambda pair: pair[0].value)
        best_value, best_layer = float(trial.value), record.cut_layer
    return SweepSnapshot(counts["finished"], counts["fail"], target, best_value, best_layer)


def sweep_result(study: Any, storage_url: str, *, worker_exits: Sequence[tuple[int, int, Path]] = ()) -> SweepResult:
    """What a study holds now: counts, best trial, per-layer summaries and the answer."""
    counts = count_states(study)
    pairs = completed_trials(study)
    best = max(pairs, key=lambda pair: pair[0].value) if pairs else None
    return SweepResult(
        study_name=study.study_name,
        storage_url=storage_url,
        finished=counts["finished"],
        failed=counts["fail"],
        best=best[1] if best else None,
        best_value=float(best[0].value) if best else None,
        best_trial=best[0].number if best else None,
        best_params=dict(best[0].params) if best else {},
        layers=summarize_layers(study),
        worker_exits=list(worker_exits),
        answer=study_answer(study, storage_url),
    )
