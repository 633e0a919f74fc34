"""``ocl sweep`` and ``ocl worker``: run a study, or join one."""

from __future__ import annotations

import os
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from sweep.cli._common import DataOption, ImageSizeOption, SeedOption, TaskOption, console, err_console, new_table

STORAGE_HELP = "Optuna storage URL: sqlite:///PATH for one machine, postgresql://user@host/db for several."


class Strategy(str, Enum):
    feature_extraction = "feature_extraction"
    fine_tuning = "fine_tuning"
    both = "both"


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
    _option(
        "--strategy", "feature_extraction, fine_tuning or both. Default: both on GPUs, feature_extraction on CPU only.", "Search"
    ),
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
StorageOption = Annotated[str | None, _option("--storage", STORAGE_HELP + " Default: sqlite:///studies/ocl.db", "Storage")]
StudyOption = Annotated[str | None, _option("--study", "Study name. Default: DATASET-TASK-SIZEpx.", "Storage")]
ConfigOption = Annotated[
    Path | None, _option("--config", "Study file (TOML) with a \\[space] table; see studies/default.toml.", "Search")
]
WarmStartOption = Annotated[
    bool,
    typer.Option(
        "--warm-start", help="First try the best layers the OCL dictionary knows for this dataset.", rich_help_panel="Search"
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
    storage: StorageOption = None,
    study: StudyOption = None,
    config: ConfigOption = None,
    warm_start: WarmStartOption = False,
    log_dir: LogDirOption = Path("studies/logs"),
    seed: SeedOption = 0,
) -> None:
    """Run (or resume) a study over cut-off layer, strategy, optimizer, learning rate and augmentation.

    Example: ocl sweep --trials 200 --devices 0,1
    """
    from sweep.api import execute_sweep, plan_sweep

    plan = plan_sweep(
        trials,
        data=data,
        task=task,
        image_size=image_size,
        weights=weights,
        strategy=strategy.value if strategy else None,
        devices=devices,
        workers=workers,
        storage=storage,
        study=study,
        config=config,
        seed=seed,
    )
    progress = _SweepProgress(plan.finished_before or 0)
    try:
        result = execute_sweep(
            plan,
            warm_start=warm_start,
            log_dir=log_dir,
            on_ready=lambda: _print_plan(plan),
            on_progress=progress.update,
            on_warm_start=_print_warm_start,
        )
    except KeyboardInterrupt:
        progress.close()
        err_console.print("interrupted: workers stopped; finished trials stay in the storage; rerun the same command to resume")
        raise typer.Exit(130) from None
    finally:
        progress.close()
    for index, code, log in result.worker_exits:
        err_console.print(f"note: worker {index} exited with code {code}; its trial was retried (log: {log})")
    _print_summary(result)


def _print_plan(plan) -> None:
    space, settings = plan.settings.space, plan.settings
    console.print(
        f"study [bold]{plan.study_name}[/] in {plan.storage_url}\n"
        f"  data {settings.dataset} ({plan.dataset_info.images:,} images, task {settings.task}, {settings.image_size} px); "
        f"strategies {'+'.join(space.strategies)}; weights {'+'.join(space.weights)}; "
        f"{len(plan.devices)} worker(s) on {', '.join(d.label for d in plan.devices)}"
    )
    if plan.cpu_default_strategies:
        err_console.print(
            "note: no GPU visible, so only feature extraction runs (fine-tuning 200 trials on a CPU "
            "takes hours); pass --strategy both to include it",
            highlight=False,
        )
    if plan.finished_before is not None and plan.finished_before >= plan.trials:
        console.print(f"{plan.finished_before} trials already finished (target {plan.trials}); nothing to run")


def _print_warm_start(enqueued: list[str]) -> None:
    layers = ", ".join(enqueued) or "none known yet"
    console.print(f"warm start: enqueued {len(enqueued)} trial(s) at the dictionary's best layers: {layers}")


class _SweepProgress:
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
        best = f"best {snapshot.best_value:.4f} @ {snapshot.best_layer}" if snapshot.best_value is not None else ""
        self.bar.update(self.task, completed=snapshot.finished, rate=f"{rate:.1f} trials/min  {best}  failed {snapshot.failed}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _print_summary(result) -> None:
    """The best trial and the best layers, as tables."""
    if result.best is None:
        console.print("no completed trial yet")
        return
    best = result.best
    console.print(
        f"best trial #{result.best_trial}: validation mean AUROC [bold]{result.best_value:.4f}[/] with {best.strategy} at "
        f"[bold]{best.cut_layer}[/] ({best.block}, {best.channels} channels), weights {best.weights}, "
        f"{result.best_params.get('optimizer', '')} lr {result.best_params.get('learning_rate', float('nan')):.2g}"
    )
    table = new_table("Top layers (validation mean AUROC)", "layer", "block", "depth", "best", "mean", "trials", text=("block",))
    for layer in result.layers[:10]:
        table.add_row(
            layer.layer, str(layer.block), str(layer.depth), f"{layer.best:.4f}", f"{layer.mean:.4f}", str(layer.n_trials)
        )
    console.print(table)


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

    Example: ocl worker --study nih-cxr14-sample-any-224px --storage postgresql://ocl@db/ocl --device 0
    """
    label = f"cpu:{worker_index}"
    if device is not None and device.lower() not in ("cpu",):
        index = device.split(":")[-1]
        if not index.isdigit():
            from sweep.errors import OCLError

            raise OCLError(f"--device {device}: pass a GPU index such as 0, or cpu")
        if "CUDA_VISIBLE_DEVICES" not in os.environ or device.isdigit():
            os.environ["CUDA_VISIBLE_DEVICES"] = index
        label = f"gpu:{index}"
    elif device is not None:
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    from sweep._keras import configure
    from sweep.api import run_worker

    configure(threads=threads)
    run_worker(storage, study, device=label, worker_index=worker_index, target=trials)


def prepare_sweep(
    settings: Annotated[str, typer.Option("--settings", help="SweepSettings as JSON.")],
    error_file: Annotated[Path | None, typer.Option("--error-file", help="Write a user mistake's message here.")] = None,
) -> None:
    """Check a sweep's settings and build its caches (run by `ocl sweep` before any worker starts)."""
    from sweep.errors import OCLError
    from sweep.study import SweepSettings
    from sweep.worker import prepare

    try:
        prepare(SweepSettings.from_json(settings))
    except OCLError as exc:
        if error_file is None:
            raise
        error_file.write_text(str(exc))  # the parent reports it, once
        raise typer.Exit(2) from None
