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


def sweep(
    trials: Annotated[
        int, typer.Option("--trials", min=1, help="Finished trials wanted in total; a rerun adds only what is missing.")
    ] = 200,
    data: DataOption = None,
    task: TaskOption = None,
    image_size: ImageSizeOption = 224,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            help="imagenet, none (random init) or PATH to a weights file. Default: the study file's weights (imagenet).",
            show_default=False,
            rich_help_panel="Search",
        ),
    ] = None,
    strategy: Annotated[
        Strategy | None,
        typer.Option(
            "--strategy",
            help="feature_extraction, fine_tuning or both. Default: both on GPUs, feature_extraction on CPU only.",
            show_default=False,
            rich_help_panel="Search",
        ),
    ] = None,
    devices: Annotated[
        str | None,
        typer.Option(
            "--devices",
            help="GPU indices (0,1) or cpu,cpu; one worker per entry. Default: every visible GPU, else one CPU worker.",
            show_default=False,
            rich_help_panel="Devices",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", help="Number of CPU workers (same as --devices cpu,...).", show_default=False, rich_help_panel="Devices"
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage", help=STORAGE_HELP + " Default: sqlite:///studies/ocl.db", show_default=False, rich_help_panel="Storage"
        ),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option("--study", help="Study name. Default: DATASET-TASK-SIZEpx.", show_default=False, rich_help_panel="Storage"),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Study file (TOML) with a \\[space] table; see studies/default.toml.",
            show_default=False,
            rich_help_panel="Search",
        ),
    ] = None,
    warm_start: Annotated[
        bool,
        typer.Option(
            "--warm-start", help="First try the best layers the OCL dictionary knows for this dataset.", rich_help_panel="Search"
        ),
    ] = False,
    seed: SeedOption = 0,
) -> None:
    """Run (or resume) a study over cut-off layer, strategy, optimizer, learning rate and augmentation.

    Example: ocl sweep --trials 200 --devices 0,1
    """
    from sweep import _attrs
    from sweep._defaults import DEFAULT_STORAGE
    from sweep.data import load_dataset
    from sweep.image_cache import check_image_size
    from sweep.scheduler import WorkerPool, parse_devices, visible_gpus
    from sweep.search_space import load_search_space
    from sweep.storage import check_storage, open_storage
    from sweep.study import SweepSettings, count_states, create_or_resume

    check_image_size(image_size)
    storage_url = storage or DEFAULT_STORAGE
    device_list = parse_devices(devices, workers, visible_gpus())
    on_gpu = any(d.kind == "gpu" for d in device_list)
    strategies = None
    if strategy is not None:
        strategies = ["feature_extraction", "fine_tuning"] if strategy is Strategy.both else [strategy.value]
    cpu_only = {} if on_gpu else {"strategies": ["feature_extraction"]}
    weights_choice = None
    if weights is not None:
        from sweep.backbone import parse_weights

        parsed = parse_weights(weights, seed=seed)
        weights_choice = [str(parsed.path) if parsed.path else parsed.kind]
    space = load_search_space(config, fallbacks=cpu_only, strategies=strategies, weights=weights_choice)
    dataset = load_dataset(data, seed=seed)
    parsed_task = dataset.task(task)
    settings = SweepSettings(
        data=str(Path(data).resolve()) if data else None,
        dataset=dataset.name,
        task=parsed_task.name,
        image_size=image_size,
        seed=seed,
        space=space.as_dict(),
    )
    name = study or f"{dataset.name}-{parsed_task.name}-{image_size}px"
    check_storage(storage_url)
    log_dir = Path(os.environ.get("OCL_LOG_DIR", "studies/logs"))
    pool = WorkerPool(storage_url, name, device_list, log_dir)
    code = pool.prepare(settings.to_json())
    if code != 0:
        raise typer.Exit(code)
    opened = open_storage(storage_url)
    the_study = create_or_resume(opened, name, settings, trials)
    the_study.set_user_attr(
        _attrs.DATASET_INFO,
        {
            "modality": dataset.modality,
            "images": len(dataset),
            "fingerprint": dataset.fingerprint(),
            "patients": dataset.patient_count,
        },
    )
    counts = count_states(the_study)
    console.print(
        f"study [bold]{name}[/] in {storage_url}\n"
        f"  data {dataset.name} ({len(dataset):,} images, task {parsed_task.name}, {image_size} px); "
        f"strategies {'+'.join(space.strategies)}; weights {'+'.join(space.weights)}; "
        f"{len(device_list)} worker(s) on {', '.join(d.label for d in device_list)}"
    )
    if strategy is None and not on_gpu and space.strategies == ("feature_extraction",):
        err_console.print(
            "note: no GPU visible, so only feature extraction runs (fine-tuning 200 trials on a CPU "
            "takes hours); pass --strategy both to include it",
            highlight=False,
        )
    if counts["finished"] >= trials:
        console.print(f"{counts['finished']} trials already finished (target {trials}); nothing to run")
        _summary(the_study)
        return
    if warm_start:
        _warm_start(the_study, storage_url, settings)
    pool.start()
    progress = _SweepProgress(the_study, trials, counts["finished"])
    try:
        with progress:
            codes = pool.wait(progress.tick)
    except KeyboardInterrupt:
        err_console.print("interrupted: stopping workers; finished trials stay in the storage")
        pool.interrupt()
        raise typer.Exit(130) from None
    finished = count_states(the_study)["finished"]
    for index, code in enumerate(codes):
        if code != 0 and finished >= trials:
            err_console.print(f"note: worker {index} exited with code {code}; its trial was retried (log: {pool.logs[index]})")
    if finished < trials:
        err_console.print(
            f"error: the workers stopped after {finished} of {trials} finished trials\n{pool.failure_tail()}", highlight=False
        )
        raise typer.Exit(1)
    _summary(the_study)


def _warm_start(study, storage_url: str, settings) -> None:
    from layers_index.warm_start import enqueue_top_layers

    enqueued = enqueue_top_layers(study, storage_url, settings)
    console.print(
        f"warm start: enqueued {len(enqueued)} trial(s) at the dictionary's best layers: "
        f"{', '.join(enqueued) or 'none known yet'}"
    )


class _SweepProgress:
    """One progress bar for the whole sweep, redrawn from the storage."""

    def __init__(self, study, target: int, already: int) -> None:
        from sweep._progress import rate_progress

        self.study, self.target, self.already = study, target, already
        self.bar = rate_progress()
        self.start = time.perf_counter()

    def __enter__(self):
        self.bar.__enter__()
        self.task = self.bar.add_task("trials", total=self.target, completed=self.already, rate="")
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def tick(self) -> None:
        from sweep.study import count_states

        try:
            counts = count_states(self.study)
        except Exception:  # a busy database: skip this redraw
            return
        done = counts["finished"]
        minutes = (time.perf_counter() - self.start) / 60
        rate = (done - self.already) / minutes if minutes > 0 else 0.0
        best = ""
        try:
            trial = self.study.best_trial
            best = f"best {trial.value:.4f} @ {trial.user_attrs.get('ocl:cut_layer', '?')}"
        except ValueError:
            pass
        self.bar.update(self.task, completed=done, rate=f"{rate:.1f} trials/min  {best}  failed {counts['fail']}")


def _summary(study) -> None:
    """The best trial and the best layers, as tables."""
    import optuna

    finished = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not finished:
        console.print("no completed trial yet")
        return
    best = max(finished, key=lambda t: t.value)
    a = best.user_attrs
    console.print(
        f"best trial #{best.number}: validation mean AUROC [bold]{best.value:.4f}[/] with {a.get('ocl:strategy')} at "
        f"[bold]{a.get('ocl:cut_layer')}[/] ({a.get('ocl:block')}, {a.get('ocl:channels')} channels), "
        f"weights {a.get('ocl:weights')}, "
        f"{best.params.get('optimizer', '')} lr {best.params.get('learning_rate', float('nan')):.2g}"
    )
    by_layer: dict[str, list] = {}
    for t in finished:
        by_layer.setdefault(t.user_attrs.get("ocl:cut_layer"), []).append(t)
    table = new_table("Top layers (validation mean AUROC)", "layer", "block", "depth", "best", "mean", "trials", text=("block",))
    ranked = sorted(by_layer.items(), key=lambda kv: -max(t.value for t in kv[1]))[:10]
    for layer, ts in ranked:
        values = [t.value for t in ts]
        table.add_row(
            layer,
            str(ts[0].user_attrs.get("ocl:block")),
            str(ts[0].user_attrs.get("ocl:layer_depth")),
            f"{max(values):.4f}",
            f"{sum(values) / len(values):.4f}",
            str(len(ts)),
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
    from layers_index.callback import dictionary_callback
    from sweep.worker import run_worker

    run_worker(storage, study, device=label, worker_index=worker_index, target=trials, callbacks=[dictionary_callback(storage)])


def prepare_sweep(
    settings: Annotated[str, typer.Option("--settings", help="SweepSettings as JSON.")],
    device: Annotated[str, typer.Option("--device")] = "cpu",
) -> None:
    """Check a sweep's settings and build its caches (run by `ocl sweep` before any worker starts)."""
    from sweep.study import SweepSettings
    from sweep.worker import prepare

    prepare(SweepSettings.from_json(settings), device=device)
