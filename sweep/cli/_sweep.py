"""``ocl sweep`` and ``ocl worker``: run a study, or join one."""

from __future__ import annotations

import os
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from sweep._keras import BACKENDS
from sweep.cli._common import (
    DataOption,
    FormatOption,
    ImageSizeOption,
    LabelsOption,
    OutputFormat,
    PositiveOption,
    SeedOption,
    SplitMode,
    SplitOption,
    TaskOption,
    UncertainOption,
    ViewOption,
    console,
    data_options,
    err_console,
    new_table,
    print_json,
    warn,
)
from sweep.model import PRECISIONS
from sweep.training import FEATURE_EXTRACTION, FINE_TUNING, STRATEGIES, STRATEGY_CHOICES

STORAGE_HELP = "Optuna storage URL: sqlite:///PATH for one machine, postgresql://user@host/db for several."


Strategy = Enum("Strategy", {name: name for name in STRATEGY_CHOICES}, type=str)


def _option(flag: str, help: str, panel: str, **kwargs) -> typer.models.OptionInfo:
    """A ``--flag`` whose default is explained in ``help`` (so Typer shows no ``None``)."""
    return typer.Option(flag, help=help, show_default=False, rich_help_panel=panel, **kwargs)


TrialsOption = Annotated[
    int, typer.Option("--trials", min=1, help="Finished trials wanted in total; a rerun adds only what is missing.")
]
WeightsOption = Annotated[
    str | None,
    _option(
        "--weights", "imagenet, none (random init) or PATH to a weights file. Default: the study file's (imagenet).", "Search"
    ),
]
StrategyOption = Annotated[
    Strategy | None,
    _option("--strategy", "feature_extraction, fine_tuning or both. Default: both (feature_extraction with --cv).", "Search"),
]
DevicesOption = Annotated[
    str | None,
    _option(
        "--devices",
        "GPU indices (0,1) or cpu,cpu; one worker per entry. Default: every visible GPU, else one CPU worker.",
        "Devices",
    ),
]
WorkersOption = Annotated[int | None, _option("--workers", "Number of CPU workers (same as --devices cpu,...).", "Devices")]
WorkersPerGpuOption = Annotated[
    int,
    typer.Option(
        "--workers-per-gpu",
        min=1,
        help="Workers on each GPU, each capped to its share of the GPU's memory (small feature-extraction trials "
        "leave a large GPU idle).",
        rich_help_panel="Devices",
    ),
]
StorageOption = Annotated[str | None, _option("--storage", STORAGE_HELP + " Default: sqlite:///studies/ocl.db", "Storage")]
StudyOption = Annotated[
    str | None,
    _option(
        "--study",
        "Study name. Default: DATASET-TASK-SIZEpx-STRATEGIES-WEIGHTS (e.g. nih-cxr14-sample-any-224px-fe-imagenet), "
        "plus a short hash when other settings differ from the defaults, so settings that cannot share a study "
        "never collide.",
        "Storage",
    ),
]
ConfigOption = Annotated[
    Path | None, _option("--config", "Study file (TOML) with a \\[space] table; see studies/default.toml.", "Search")
]
WarmStartOption = Annotated[
    bool,
    typer.Option(
        "--warm-start", help="First try the best layers the OCL dictionary knows for this dataset.", rich_help_panel="Search"
    ),
]
CvOption = Annotated[
    int | None,
    _option(
        "--cv",
        "K: score trials by patient-wise K-fold cross-validation over train+val (e.g. 5): every train+val "
        "patient is scored once, so layers are compared on about 8x the patients; each trial trains K times. "
        "Feature extraction only unless --strategy says otherwise. Default: the validation split.",
        "Search",
    ),
]
Backend = Enum("Backend", {name: name for name in BACKENDS}, type=str)
BackendOption = Annotated[
    Backend | None,
    _option(
        "--backend",
        "Keras backend of every worker: tensorflow, jax or torch. Default: KERAS_BACKEND, else tensorflow. "
        "Recorded on the study.",
        "Devices",
    ),
]
AllowBackendChangeOption = Annotated[
    bool,
    _option("--allow-backend-change", "Resume a study on another backend than its trials ran on.", "Devices"),
]
PrefixCacheOption = Annotated[
    bool,
    typer.Option(
        "--prefix-cache/--no-prefix-cache",
        help="Fine-tuning trials read the frozen layers before their unfreeze boundary from a one-pass bank "
        "(disk budget OCL_CACHE_MAX_GB, default 20) instead of recomputing them every epoch; augmented trials then "
        "train on the bank's augmented views. --no-prefix-cache trains on images.",
        rich_help_panel="Search",
    ),
]
WarmStartFromOption = Annotated[
    str | None,
    _option(
        "--warm-start-from",
        "Warm-start from another dataset of the OCL dictionary (its name as `ocl dictionary show` lists it). "
        "--warm-start alone uses only this dataset's own entries (same split, task, weights and size).",
        "Search",
    ),
]


Precision = Enum("Precision", {name: name for name in PRECISIONS}, type=str)
Selection = Enum("Selection", {name: name for name in ("halves", "inner")}, type=str)
SelectionOption = Annotated[
    Selection,
    _option(
        "--selection",
        "Where each trial's epoch and each candidate's trial are chosen. halves: on one half of the validation "
        "patients, scored on the other (cross-fitted). inner: on an inner split of train as large as validation, so "
        "validation scores one model per candidate on all its patients (more power; trials fit on less of train). "
        "Default: halves. A study keeps its selection.",
        "Search",
    ),
]


PrecisionOption = Annotated[
    Precision,
    typer.Option(
        "--precision",
        help="float32, or mixed: banking and fine-tuning compute in bfloat16 (float16 on GPUs before compute "
        "capability 8.0) with float32 weights and output (for GPUs; float32 is the CPU default). A study keeps its precision.",
        rich_help_panel="Devices",
    ),
]
LogDirOption = Annotated[Path, typer.Option("--log-dir", help="Folder for the workers' logs.", rich_help_panel="Storage")]


def sweep(
    trials: TrialsOption = 200,
    data: DataOption = None,
    task: TaskOption = None,
    image_size: ImageSizeOption = 224,
    weights: WeightsOption = None,
    strategy: StrategyOption = None,
    devices: DevicesOption = None,
    workers: WorkersOption = None,
    workers_per_gpu: WorkersPerGpuOption = 1,
    storage: StorageOption = None,
    study: StudyOption = None,
    config: ConfigOption = None,
    warm_start: WarmStartOption = False,
    log_dir: LogDirOption = Path("studies/logs"),
    seed: SeedOption = 0,
    split: SplitOption = SplitMode.given,
    positive: PositiveOption = None,
    cv: CvOption = None,
    warm_start_from: WarmStartFromOption = None,
    labels: LabelsOption = None,
    uncertain: UncertainOption = None,
    view: ViewOption = None,
    prefix_cache: PrefixCacheOption = True,
    backend: BackendOption = None,
    allow_backend_change: AllowBackendChangeOption = False,
    precision: PrecisionOption = Precision.float32,
    selection: SelectionOption = Selection.halves,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Run (or resume) a study over cut-off layer, strategy, optimizer, learning rate and augmentation.

    Stopping: a trial keeps its best epoch, stops after `patience` epochs without a better AUROC (a
    feature-extraction epoch: at most `epoch_rows` rows, see --config), and is pruned below the median
    of 5+ finished trials of its strategy and budget (not in its first quarter, nor after its last
    epoch). Then each (strategy, layer)'s score, 95% interval, the tied set. Example: ocl sweep --trials 200
    """
    from sweep.api import plan_sweep

    plan = plan_sweep(
        trials,
        data=data_options(data, task, seed, split, positive, labels, uncertain, view),
        image_size=image_size,
        weights=weights,
        strategy=strategy.value if strategy else None,
        devices=devices,
        workers=workers,
        workers_per_gpu=workers_per_gpu,
        storage=storage,
        study=study,
        config=config,
        cv=cv,
        warm_start_from=warm_start_from,
        prefix_cache=prefix_cache,
        backend=backend.value if backend else None,
        allow_backend_change=allow_backend_change,
        precision=precision.value,
        selection=selection.value,
    )
    _print_result(_run(plan, warm_start or warm_start_from is not None, log_dir, format), format)


def _print_result(result, format: OutputFormat) -> None:
    """Workers that exited early, then the answer as JSON or as the table, sentence and next steps."""
    for index, code, log in result.worker_exits:
        err_console.print(f"note: worker {index} exited with code {code}; its trial was retried (log: {log})")
    if format is OutputFormat.json:
        print_json(_result_json(result))
        return
    _print_summary(result)
    _print_next_steps(result)


def _run(plan, warm_start: bool, log_dir: Path, format: OutputFormat):
    """Execute the plan with a progress bar; the plan is printed once the caches are built."""
    from sweep.api import execute_sweep

    progress = _ProgressBar(plan.finished_before or 0)
    try:
        return execute_sweep(
            plan,
            warm_start=warm_start,
            log_dir=log_dir,
            on_ready=lambda: _print_plan(plan, err_console if format is OutputFormat.json else console),
            on_cache_notes=_print_cache_notes,
            on_progress=progress.update,
            on_warm_start=_print_warm_start,
        )
    except KeyboardInterrupt:
        progress.close()
        err_console.print("interrupted: workers stopped; finished trials stay in the storage; rerun the same command to resume")
        raise typer.Exit(130) from None
    finally:
        progress.close()


def _print_next_steps(result) -> None:
    """Where the answer is written, and what to run next."""
    from sweep._env import DEFAULT_STORAGE

    flags = f"--study {result.study_name}" + ("" if result.storage_url == DEFAULT_STORAGE else f" --storage {result.storage_url}")
    console.print(
        f"report: {result.report}\n"
        f"next:   ocl evaluate {flags}   (the answer's configuration, once, on the held-out test split)\n"
        f"        ocl report {flags}     (rewrite the report)\n"
        f"        ocl dashboard{'' if result.storage_url == DEFAULT_STORAGE else ' --storage ' + result.storage_url}"
        "   (browse every trial in optuna-dashboard)",
        highlight=False,
    )


def _result_json(result) -> dict:
    return {
        "study": result.study_name,
        "storage": result.storage_url,
        "finished": result.finished,
        "failed": result.failed,
        "best_trial": result.best_trial,
        "best_trial_value": result.best_value,
        "report": str(result.report) if result.report else None,
        **(result.answer.to_dict() if result.answer else {}),
    }


def _print_plan(plan, out) -> None:
    """What will run; on stderr when stdout carries JSON."""
    space, settings = plan.settings.space, plan.settings
    out.print(
        f"study [bold]{plan.study_name}[/] in {plan.storage_url}\n"
        f"  data {settings.dataset} ({plan.dataset_info.images:,} images, task {settings.task}, {settings.image_size} px); "
        f"strategies {'+'.join(space.strategies)}; weights {'+'.join(space.weights)}; "
        f"{len(plan.devices)} worker(s) on {', '.join(d.label for d in plan.devices)} ({plan.backend})"
    )
    for note in plan.dataset_notes:
        err_console.print(f"note: {note}", highlight=False)
    for warning in plan.dataset_warnings:
        warn(warning)
    if plan.idle_cores:
        cores = plan.idle_cores + 1
        err_console.print(
            f"note: 1 CPU worker on {cores} cores: a feature-extraction trial trains on one core, "
            f"so --workers {cores} runs {cores} trials at once",
            highlight=False,
        )
    if plan.fine_tuning_on_cpu:
        slower = "" if settings.prefix_cache else " (with --no-prefix-cache, epochs 8-30x slower)"
        err_console.print(f"note: {_cpu_fine_tuning_note(plan)}{slower}", highlight=False)
    if plan.finished_before is not None and plan.finished_before >= plan.trials:
        out.print(f"{plan.finished_before} trials already finished (target {plan.trials}); nothing to run")
    elif plan.finished_before is not None:
        out.print(f"resuming study {plan.study_name} at {plan.finished_before}/{plan.trials} finished trials")


def _cpu_fine_tuning_note(plan) -> str:
    """What fine-tuning on the CPU costs: what this study measured so far, else where measured figures are."""
    measured = plan.measured_seconds()
    if FINE_TUNING in measured:
        n, seconds = measured[FINE_TUNING]
        other = measured.get(FEATURE_EXTRACTION)
        versus = f" against {other[1]:.1f} s for its {other[0]} feature-extraction trial(s)" if other else ""
        cost = f"so far this study's {n} fine-tuning trial(s) took {seconds:.0f} s on average{versus}"
    else:
        cost = "each takes many times a feature-extraction trial (measured on 2 cores: README, benchmarks/bench_fine_tuning.py)"
    return (
        f"no GPU visible: fine-tuning trials run on the CPU, their frozen prefix read from the spatial bank; {cost}; "
        "--strategy feature_extraction leaves fine-tuning out"
    )


def _print_cache_notes(lines: list[str]) -> None:
    """What the caches have to say (which blocks are banked, a full disk), after the plan."""
    for line in lines:
        err_console.print(line, highlight=False)


def _print_warm_start(enqueued: list[str]) -> None:
    layers = ", ".join(enqueued) or "none known yet"
    err_console.print(f"warm start: enqueued {len(enqueued)} trial(s) at the dictionary's best layers: {layers}")


class _ProgressBar:
    """One progress bar for the whole sweep, drawn from the storage once the workers run."""

    def __init__(self, already: int) -> None:
        self.already, self.bar, self.task = already, None, None
        self.start = time.perf_counter()

    def update(self, snapshot) -> None:
        if self.bar is None:  # start only now: the caches were built (with their own bars) before
            from sweep._progress import rate_progress

            self.bar = rate_progress()
            self.bar.__enter__()
            self.task = self.bar.add_task("trials", total=snapshot.target, completed=self.already, rate="")
            self.start = time.perf_counter()
        minutes = (time.perf_counter() - self.start) / 60
        rate = (snapshot.finished - self.already) / minutes if minutes > 0 else 0.0
        best = f" · best {snapshot.best_value:.3f} @ {snapshot.best_layer}" if snapshot.best_value is not None else ""
        failed = f" · {snapshot.failed} failed" if snapshot.failed else ""
        self.bar.update(self.task, completed=snapshot.finished, rate=f"{rate:.1f}/min{best}{failed}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _print_summary(result) -> None:
    """The answer first (a sentence), then the candidates side by side per strategy, with intervals."""
    if result.best is None:
        console.print("no completed trial yet")
        return
    best, value_name = result.best, "validation mean AUROC" if result.answer is None else result.answer.value_name
    console.print(
        f"best trial #{result.best_trial}: {value_name} {result.best_value:.4f} "
        f"with {best.strategy} at "
        f"{best.cut_layer} (the highest single trial; the answer below corrects for picking it)",
        highlight=False,
    )
    answer = result.answer
    if answer is None or not answer.candidates:
        return
    for warning in answer.warnings:
        warn(warning)
    from rich.measure import Measurement

    table = answer_table(answer)
    if Measurement.get(console, console.options.update(max_width=1000), table).maximum > console.width:
        table = answer_table(answer, compact=True)  # e.g. 80 columns with both strategies: one line per layer
    console.print(table)
    console.print(f"[bold]answer:[/] {answer.sentence()}", highlight=False)


def answer_table(answer, rows: int = 12, compact: bool = False):
    """Candidates by layer, one column per strategy: cross-fitted validation AUROC [95% CI] and trials.

    ``compact`` fits a narrow terminal (80 columns with both strategies) without wrapping a score
    over two lines: no depth column, no vertical rules.
    """
    strategies = [s for s in STRATEGIES if any(c.strategy == s for c in answer.candidates)]
    by_layer: dict[tuple[str, str], dict[str, object]] = {}
    for candidate in answer.candidates:  # best first, so layers come in order of their best candidate
        by_layer.setdefault((candidate.layer, candidate.weights), {})[candidate.strategy] = candidate
    several_weights = len({weights for _, weights in by_layer}) > 1
    depth = [] if compact else ["depth"]
    columns = ["", "layer", *(["weights"] if several_weights else []), *depth, *(s.replace("_", " ") for s in strategies)]
    table = new_table(
        f"Layers of {answer.study} ({answer.score_name.replace(' AUROC', ' mean AUROC')}, {answer.method}, "
        f"[{answer.level:.0%} CI], trials)",
        *columns,
        text=("layer", "weights"),
    )
    table.caption = (
        f"★ best   = not significantly worse than the best ({answer.level:.0%} simultaneous)   "
        f"○ fewer than {answer.min_trials} trials: not judged"
    )
    for (layer, weights), cells in list(by_layer.items())[:rows]:
        first = next(iter(cells.values()))
        mark = "★" if any(c is answer.best for c in cells.values()) else ""
        row = [mark, layer, *([weights] if several_weights else [])]
        row += [] if compact else ["-" if first.depth is None else str(first.depth)]
        row += [_cell(cells.get(s), answer) for s in strategies]
        table.add_row(*row)
    if compact:
        from rich import box

        table.box, table.show_edge = box.SIMPLE_HEAD, False
    return table


def _cell(candidate, answer) -> str:
    if candidate is None:
        return ""
    mark = "○" if not candidate.judged else ("★" if candidate is answer.best else "=" if candidate.in_set else " ")
    return f"{mark} {candidate.score:.3f} [{candidate.low:.2f}, {candidate.high:.2f}] ×{candidate.n_trials}"


def worker(
    study: Annotated[str, typer.Option("--study", help="Name of the study to join.")],
    storage: Annotated[str, typer.Option("--storage", help=STORAGE_HELP)],
    device: Annotated[
        str | None,
        typer.Option("--device", help="GPU index (e.g. 0) or cpu. Default: as the environment sets it.", show_default=False),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials", min=1, help="Stop at this many finished trials. Default: the study's target.", show_default=False
        ),
    ] = None,
    worker_index: Annotated[int, typer.Option("--worker-index", help="Distinct per worker: seeds its sampler.")] = 0,
    threads: Annotated[
        int, typer.Option("--threads", min=0, help="CPU threads for TensorFlow (0: all cores; ocl sweep shares them out).")
    ] = 0,
) -> None:
    """Join a running study from another shell or machine; runs until the study has its trials.

    Example: ocl worker --study nih-cxr14-sample-any-224px-fe+ft-imagenet --storage postgresql://ocl@db/ocl --device 0
    """
    from sweep._keras import configure
    from sweep.api import check_gpu, run_worker
    from sweep.study import Device

    chosen = Device.from_flag(device)
    if device is not None:  # else the environment says which GPU this process sees
        os.environ["CUDA_VISIBLE_DEVICES"] = chosen.environment(cpu_workers=1)["CUDA_VISIBLE_DEVICES"]
    configure(threads=threads)
    if chosen.kind == "gpu":
        check_gpu(chosen.index)
    run_worker(storage, study, device=chosen.worker_label(worker_index), worker_index=worker_index, target=trials)
