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
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep._env import DEFAULT_STORAGE
from sweep.data import DataOptions, load_dataset
from sweep.errors import OCLError
from sweep.model import parse_precision
from sweep.results import (
    EVALUATE_CONFIGS,
    LayerSummary,
    StudyAnswer,
    completed_trials,
    default_study_name,
    report_path,
    study_answer,
    summarize_layers,
)
from sweep.stats import OPERATING_POINTS
from sweep.storage import check_storage, open_storage, sqlite_path
from sweep.study import (
    FINISHED,
    DatasetInfo,
    Device,
    SearchSpace,
    StudyResources,
    SweepSettings,
    TrialRecord,
    WorkerPool,
    check_backend,
    check_resumable,
    count_states,
    create_or_resume,
    fail_trials_of,
    load_search_space,
    load_settings,
    load_study,
    open_study,
    parse_devices,
    records,
    visible_gpus,
)
from sweep.training import FEATURE_EXTRACTION, FINE_TUNING, STRATEGY_CHOICES

__all__ = [
    "SweepPlan",
    "SweepSnapshot",
    "SweepResult",
    "default_study_name",
    "evaluate_study",
    "open_study",
    "report_path",
    "execute_sweep",
    "plan_sweep",
    "run_sweep",
    "check_gpu",
    "run_worker",
    "sweep_result",
]


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep, before anything is written: what will run, where, and on what."""

    settings: SweepSettings
    study_name: str
    storage_url: str
    devices: tuple[Device, ...]
    trials: int
    dataset_info: DatasetInfo
    finished_before: int | None  # finished trials of the study being resumed; None for a new study
    dataset_warnings: tuple[str, ...]  # one line each: patients across splits, per-image splits, empty splits
    dataset_notes: tuple[str, ...]  # one line each: e.g. which class is positive
    warm_start_from: str | None  # another dataset of the dictionary to warm-start from
    backend: str = "tensorflow"  # the Keras backend every worker runs (KERAS_BACKEND); recorded on the study

    @property
    def fine_tuning_on_cpu(self) -> bool:
        """Fine-tuning trials will run on CPU workers (no GPU visible): the CLI says what they cost."""
        return not any(d.kind == "gpu" for d in self.devices) and FINE_TUNING in self.settings.space.strategies

    def measured_seconds(self) -> dict[str, tuple[int, float]]:
        """Per strategy, from the study being resumed: how many trials finished and their mean wall
        time in seconds, as the workers recorded it (``ocl:wall_seconds``); empty for a new study."""
        if not self.finished_before:
            return {}
        study = load_study(open_storage(self.storage_url, heartbeat=False), self.study_name)
        times: dict[str, list[float]] = {}
        for trial in study.get_trials(deepcopy=False, states=FINISHED):
            attrs = trial.user_attrs
            strategy, seconds = attrs.get(records.key_of("strategy")), attrs.get(records.key_of("wall_seconds"))
            if strategy is not None and seconds is not None:
                times.setdefault(str(strategy), []).append(float(seconds))
        return {strategy: (len(values), sum(values) / len(values)) for strategy, values in times.items()}


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


def plan_sweep(
    trials: int = 200,
    *,
    data: DataOptions | str | Path | None = None,
    image_size: int = 224,
    weights: str | None = None,
    strategy: str | None = None,
    devices: str | None = None,
    workers: int | None = None,
    workers_per_gpu: int = 1,
    storage: str | None = None,
    study: str | None = None,
    config: str | Path | None = None,
    cv: int | None = None,
    warm_start_from: str | None = None,
    prefix_cache: bool = True,
    backend: str | None = None,
    allow_backend_change: bool = False,
    precision: str = "float32",
    **data_options: Any,
) -> SweepPlan:
    """Check a sweep and say what it will run, writing nothing.

    Args:
        trials: finished trials wanted in total; a rerun adds only what is missing.
        data: a :class:`~sweep.data.DataOptions`, or a dataset folder or CSV (default: the embedded
            NIH sample) with ``data_options`` (``task``, ``seed``, ``split``, ``positive``, ...).
        image_size, weights: input size in pixels; ``imagenet``, ``none`` or a weights file (default: the study file's).
        strategy: ``feature_extraction``, ``fine_tuning`` or ``both`` (default: the study file's; only the first with cv).
        devices, workers, workers_per_gpu: GPU indices (``"0,1"``) or ``"cpu,cpu"``; CPU workers; workers per GPU.
        storage, study: Optuna storage URL (default ``sqlite:///studies/ocl.db``) and study name.
        config, cv: a study file (TOML) with a ``[space]`` table; patient-wise K-fold CV of feature extraction (K >= 2).
        warm_start_from, prefix_cache: a dictionary dataset to warm-start from; fine-tuning reads the spatial bank.
        backend, allow_backend_change, precision: the Keras backend (default ``KERAS_BACKEND``, else tensorflow;
            a study resumes on another only when allowed); ``float32`` or ``mixed``.

    Raises:
        OCLError: for anything the user can fix, with one line saying what, where and how.
    """
    backend = _check_flags(trials, strategy, image_size, backend)
    storage_url = storage or DEFAULT_STORAGE
    device_list = parse_devices(devices, workers, visible_gpus(), per_gpu=workers_per_gpu)
    options = DataOptions.of(data, **data_options).check()
    space, notes = _search_space(config, strategy, weights, cv, seed=options.seed)
    settings, dataset = _study_settings(options, image_size, space, cv, prefix_cache, precision)
    name = study or default_study_name(settings)
    _check_storage(storage_url, warm_start_from)
    return SweepPlan(
        settings=settings,
        study_name=name,
        storage_url=storage_url,
        devices=tuple(device_list),
        trials=trials,
        dataset_info=DatasetInfo.of(dataset),
        finished_before=_finished_before(storage_url, name, settings, backend, allow_backend_change),
        dataset_warnings=tuple(dataset.warnings),
        dataset_notes=(*dataset.notes, *notes),
        warm_start_from=warm_start_from,
        backend=backend,
    )


def _study_settings(
    options: DataOptions, image_size: int, space: SearchSpace, cv: int | None, prefix_cache: bool, precision: str
) -> tuple[SweepSettings, Any]:
    """Load the dataset the options describe (once the spatial bank's disk budget is known to fit); the
    settings its study is stored under (the task as the dataset names it)."""
    _check_cache_budget(space, prefix_cache)
    dataset = load_dataset(options)
    options = dataclasses.replace(options, task=dataset.task(options.task).name)
    settings = SweepSettings(options, dataset.name, image_size, space, cv=cv, prefix_cache=prefix_cache)
    return dataclasses.replace(settings, precision=parse_precision(precision)), dataset


def _check_storage(storage_url: str, warm_start_from: str | None) -> None:
    """The storage must be usable, and a warm-start source must be in its dictionary."""
    check_storage(storage_url)
    if warm_start_from is not None:
        from layers_index import check_source

        check_source(storage_url, warm_start_from)


def _check_flags(trials: int, strategy: str | None, image_size: int, backend: str | None) -> str:
    """Refuse a bad flag before anything is loaded; returns the backend the sweep runs on."""
    from sweep.caches import check_image_size

    if trials < 1:
        raise OCLError(f"--trials {trials}: pass 1 or more")
    if strategy is not None and strategy not in STRATEGY_CHOICES:
        raise OCLError(f"--strategy {strategy}: pass one of {', '.join(STRATEGY_CHOICES)}")
    check_image_size(image_size)
    return _check_backend_flag(backend)


def _check_cache_budget(space: SearchSpace, prefix_cache: bool) -> None:
    """A bad ``OCL_CACHE_MAX_GB`` is a user mistake, found before anything is written."""
    if prefix_cache and FINE_TUNING in space.strategies:
        from sweep._env import cache_max_bytes

        cache_max_bytes()


def _search_space(
    config: str | Path | None, strategy: str | None, weights: str | None, cv: int | None, *, seed: int
) -> tuple[SearchSpace, list[str]]:
    """The study file's search space with the flags applied, and notes on what the flags changed.

    Both strategies run by default, on GPUs and CPUs alike: with the spatial bank, 200 trials of
    both at 224 px take minutes on 2 CPU cores (``benchmarks/bench_fine_tuning.py``). ``--cv``
    scores feature-extraction trials only, on clean banked features (augmented views exist for
    train only), so with ``--cv`` and no ``--strategy`` only feature extraction runs.
    """
    from sweep.model import parse_weights, weights_label

    if cv is not None and cv < 2:
        raise OCLError(
            f"--cv {cv}: K-fold cross-validation needs 2 or more folds (e.g. --cv 5); leave --cv out to use the validation split"
        )
    weights_choice = None
    if weights is not None:
        parse_weights(weights, seed=seed)  # a missing or wrong file fails here, before anything runs
        weights_choice = [weights_label(weights)]
    space = load_search_space(
        Path(config) if config else None,
        fallbacks={"strategies": [FEATURE_EXTRACTION.value]} if cv is not None else {},
        strategies=STRATEGY_CHOICES[strategy] if strategy is not None else None,
        weights=weights_choice,
    )
    notes: list[str] = []
    if cv is not None:
        if FINE_TUNING in space.strategies:
            raise OCLError(
                f"--cv {cv}: cross-validation scores feature-extraction trials only, and fine-tuning trials would then be "
                "scored on other images; pass --strategy feature_extraction"
            )
        if strategy is None and space.strategies == (FEATURE_EXTRACTION,):
            notes.append(f"--cv {cv}: feature extraction only (cross-validation scores feature-extraction trials)")
        if True in space.augment:
            space = dataclasses.replace(space, augment=(False,))
            notes.append(f"--cv {cv}: trials train on clean banked features only (augmented views are banked for train only)")
    return space, notes


def _check_backend_flag(backend: str | None) -> str:
    from sweep._keras import BACKENDS, backend_name

    chosen = (backend or backend_name()).strip().lower()
    if chosen not in BACKENDS:
        where = "--backend" if backend else "KERAS_BACKEND"
        raise OCLError(f"{where} {chosen}: pass one of {', '.join(BACKENDS)}")
    return chosen


def _finished_before(storage_url: str, name: str, settings: SweepSettings, backend: str, allow_change: bool) -> int | None:
    """Finished trials of the study being resumed (refusing one run with other settings); None for a
    new study. A SQLite file not there yet holds no study: nothing is created to find that out."""
    database = sqlite_path(storage_url)
    if database is not None and not database.exists():
        return None
    opened = open_storage(storage_url, heartbeat=False)
    if not check_resumable(opened, name, settings):
        return None
    check_backend(opened, name, backend, allow_change=allow_change)
    return count_states(load_study(opened, name))["finished"]


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


def run_worker(
    storage_url: str, study_name: str, *, device: str = "cpu", worker_index: int = 0, target: int | None = None
) -> int:
    """Join a running study from this process (it loads TensorFlow); returns trials finished here.

    Every finished trial also updates the OCL dictionary. For GPU work, start one process per
    GPU with ``CUDA_VISIBLE_DEVICES`` set before the import, as ``ocl worker --device N`` does.
    """
    from layers_index import dictionary_callback
    from sweep.study import run_worker as _run_worker

    _adopt_study_backend(storage_url, study_name)
    return _run_worker(
        storage_url,
        study_name,
        device=device,
        worker_index=worker_index,
        target=target,
        callbacks=[dictionary_callback(storage_url)],
    )


def _adopt_study_backend(storage_url: str, study_name: str) -> None:
    """A worker that joins without ``KERAS_BACKEND`` runs the backend the study records (before Keras loads)."""
    import os

    if "KERAS_BACKEND" in os.environ or "keras" in sys.modules:
        return
    backend = load_study(open_storage(storage_url, heartbeat=False), study_name).user_attrs.get(records.BACKEND)
    if backend:
        os.environ["KERAS_BACKEND"] = backend


def worker_process(
    storage_url: str,
    study_name: str,
    *,
    device: str,
    worker_index: int,
    threads: int,
    gpu: int | None = None,
    gpu_share: float = 1.0,
) -> int:
    """One worker process as :class:`~sweep.study.WorkerPool` starts it; returns its exit code.

    Keras is configured (``threads`` CPU threads) before it loads; a user mistake is one
    ``error:`` line on stderr (the worker's log) and exit code 2, Ctrl-C exit code 130.
    """
    from sweep._keras import configure

    configure(threads=threads, gpu_share=gpu_share)
    try:
        check_gpu(gpu)
        run_worker(storage_url, study_name, device=device, worker_index=worker_index)
    except OCLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def check_gpu(gpu: int | None) -> None:
    """In a process given GPU ``gpu`` (None: a CPU worker), refuse unless its Keras backend sees
    exactly that one GPU: never train on the CPU while the study says ``gpu:N``.

    Raises:
        OCLError: which GPU, which backend, and how to fix it.
    """
    if gpu is None:
        return
    from sweep._keras import backend_gpus, backend_name

    Device("gpu", gpu).check_backend_sees_it(backend_name(), backend_gpus())


def prepare_process(settings_json: str, error_file: str, notes_file: str, gpu: int | None = None) -> int:
    """Build a sweep's caches in a child process (the parent never loads TensorFlow); returns its exit code.

    A user mistake's one line goes to ``error_file`` for the parent to report once (exit code 2);
    the caches' lines for the user go to ``notes_file``, printed by the parent after its plan.
    """
    from sweep.study import prepare

    try:
        check_gpu(gpu)  # before any cache or study is written: a GPU the backend cannot see is refused here
        lines = prepare(SweepSettings.from_json(settings_json))
    except OCLError as exc:
        Path(error_file).write_text(str(exc))
        return 2
    Path(notes_file).write_text("".join(f"{line}\n" for line in lines))
    return 0


def evaluate_study(
    study_name: str | None = None,
    *,
    storage: str | None = None,
    output_dir: str | Path = "studies/reports",
    config: str = "best",
    operating_point: str = "youden",
    external: Sequence[str | Path] = (),
    label_map: str | Path | None = None,
    saliency: int = 2,
    subgroups: Sequence[str] = (),
) -> Any:
    """Retrain the answer's configuration, score it once on the test split, and write the study's
    report (with a test section) and the model folder ``STUDY.model/`` (``model.keras``, its model
    card as JSON and Markdown); the summary is stored on the study (``ocl:evaluation``).
    ``study_name`` defaults to the only study in the storage.

    ``config`` is ``best`` (the answer's best candidate) or ``cheapest`` (the cheapest candidate as
    good as it); ``operating_point`` names the threshold the summary leads with
    (:data:`sweep.stats.OPERATING_POINTS`). Either way the candidate's trial is retrained
    (:attr:`sweep.results.Candidate.trial`); the exported model returns calibrated scores, and its
    inference throughput is measured beside the full network's. ``external``, ``label_map``,
    ``saliency`` and ``subgroups`` are ``--external``, ``--map``, ``--saliency`` and
    ``--subgroup`` (:func:`sweep.results.evaluate_best`); the pictures go to ``STUDY.saliency/``.

    Returns:
        ``(evaluation, summary)``: the :class:`sweep.results.Evaluation` and the stored summary dict.
    """
    from sweep.data import read_label_map
    from sweep.results import MODEL_FILE, evaluate_best, evaluation_summary, model_card, write_model_card

    _check_evaluate_flags(config, operating_point, external, label_map, saliency)
    rows = read_label_map(label_map) if label_map is not None else {}
    the_study, storage_url = open_study(study_name, storage=storage)
    answer = study_answer(the_study, storage_url)
    candidate = _candidate_to_evaluate(answer, config)
    # The chosen candidate's configuration; the single best trial when nothing is judged yet.
    evaluation = evaluate_best(
        the_study,
        candidate.trial if candidate else None,
        operating_point=operating_point,
        external=external,
        label_map=rows,
        map_source=f"--map {label_map}",
        saliency=saliency,
        subgroups=subgroups,
    )
    report, folder = _write_evaluation(the_study, storage_url, evaluation, output_dir)
    summary = {
        **evaluation_summary(evaluation, str(report), str(folder / MODEL_FILE)),
        "model_dir": str(folder),
        "config": config,
        "candidate": candidate.name if candidate else None,
        "inference": _inference_cost(the_study, evaluation.model, candidate),
        "answer": answer.sentence(),
    }
    card = model_card(summary, load_settings(the_study), DatasetInfo.from_study(the_study), evaluation.config)
    write_model_card(folder, card)
    the_study.set_user_attr(records.EVALUATION, summary)
    return evaluation, summary


def _write_evaluation(study: Any, storage_url: str, evaluation: Any, output_dir: str | Path) -> tuple[Path, Path]:
    """The saliency pictures, the report (which embeds them) and the model folder's ``model.keras``."""
    from sweep.report import write_study_report
    from sweep.results import MODEL_FILE

    report = report_path(study.study_name, folder=output_dir)
    if evaluation.saliency is not None:  # the pictures first: the report embeds them from there
        evaluation.saliency.write(report.with_suffix(".saliency"))
    write_study_report(study, storage_url, report, evaluation=evaluation)
    folder = report.with_suffix(".model")  # model.keras, model_card.json, MODEL_CARD.md: the export stands alone
    folder.mkdir(parents=True, exist_ok=True)
    evaluation.model.save(folder / MODEL_FILE)
    return report, folder


def _check_evaluate_flags(
    config: str, operating_point: str, external: Sequence[str | Path], label_map: str | Path | None, saliency: int
) -> None:
    if config not in EVALUATE_CONFIGS:
        raise OCLError(f"--config {config}: expected one of {', '.join(EVALUATE_CONFIGS)}")
    if operating_point not in OPERATING_POINTS:
        raise OCLError(f"--operating-point {operating_point}: expected one of {', '.join(OPERATING_POINTS)}")
    if label_map is not None and not external:
        raise OCLError(f"--map {label_map}: a label map is for --external data; add --external DATA or drop --map")
    if saliency < 0:
        raise OCLError(f"--saliency {saliency}: expected 0 (no maps) or more images per output and kind")


def _candidate_to_evaluate(answer: Any, config: str) -> Any:
    """The answer's best candidate, or its cheapest as good one; ``cheapest`` needs a judged set."""
    if config == "best":
        return answer.best
    if answer.cheapest is None:
        raise OCLError(
            f"--config cheapest: study {answer.study} has no judged candidate with a recorded cost yet "
            f"(each needs {answer.min_trials}+ completed trials); run more trials or use --config best"
        )
    return answer.cheapest


def _inference_cost(study: Any, model: Any, candidate: Any) -> dict[str, Any]:
    """The exported model's measured throughput on test images beside the full DenseNet-121's, on
    this machine's device, with the candidate's FLOPs and parameters against the full network."""
    from sweep._keras import device_in_use
    from sweep.results import images_per_second

    context = StudyResources.from_settings(load_settings(study))
    images = context.data.images[context.data.test[:32]]
    full = context.backbone("none")
    cut, whole = images_per_second(model, images), images_per_second(full, images)
    return {
        "images_per_second": round(cut, 1),
        "full_network_images_per_second": round(whole, 1),
        "speedup": round(cut / whole, 2),
        "flops_fraction": candidate.flops_fraction if candidate else None,
        "params": candidate.params if candidate else None,
        "full_network_params": int(full.count_params()),
        "device": device_in_use(),
        "image_size": int(images.shape[1]),
    }


def predict_images(model_dir: str | Path, images: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Score image files (PNG, JPEG, DICOM, ...) with an exported model folder (``ocl evaluate``'s
    ``STUDY.model/``), as ``ocl predict`` does: per image and output, the calibrated probability and
    the call at the model card's operating point. Every file is decoded before the model loads, so
    a bad one stops the command before anything else.

    Raises:
        OCLError: for a folder that is no exported model, or a file that is not a readable image.
    """
    import numpy as np

    from sweep.data import decode_image
    from sweep.results import MODEL_FILE, load_model_card

    card = load_model_card(model_dir)
    size = int(card["input"]["image_size"])
    if not images:
        raise OCLError("ocl predict: no image given; pass one or more image files after --model DIR")
    fix = "pass PNG, JPEG, TIFF, BMP, WebP or DICOM image files"
    try:
        pixels = np.stack([decode_image(path, size, fix=fix) for path in images]).astype(np.float32)[..., None]
    except OCLError as exc:
        raise OCLError(f"ocl predict: {exc}") from None
    from sweep._keras import keras_module
    from sweep.model import TemperatureScaling  # noqa: F401 (registers OCL's layers for loading)

    model = keras_module().saving.load_model(Path(model_dir) / MODEL_FILE, compile=False)
    scores = np.asarray(model.predict_on_batch(pixels), np.float64)
    thresholds = card.get("thresholds") or {}
    return [
        {
            "image": Path(path).name,
            "scores": {output: float(scores[i, k]) for k, output in enumerate(card["outputs"])},
            "calls": {
                output: bool(scores[i, k] >= thresholds[output])
                for k, output in enumerate(card["outputs"])
                if output in thresholds
            },
            "operating_point": card.get("operating_point"),
        }
        for i, path in enumerate(images)
    ]
