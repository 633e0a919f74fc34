"""``ocl dictionary``: build, show, plot and compare the OCL dictionary of layer-wise scores."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from layers_index import PROBE_IMAGES, SCORE_KINDS
from sweep.cli._common import (
    DataOption,
    ImageSizeOption,
    LabelsOption,
    PositiveOption,
    SeedOption,
    SplitMode,
    SplitOption,
    TableFormat,
    TaskOption,
    UncertainOption,
    ViewOption,
    console,
    data_options,
    err_console,
    new_table,
    warn,
)
from sweep.model import shared_weights_name

app = typer.Typer(
    help="The OCL dictionary: how good each layer's features are, per dataset, task and weights.",
    no_args_is_help=True,
)

StorageOption = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Database holding the dictionary (the sweep's storage). Default: sqlite:///studies/ocl.db",
        show_default=False,
    ),
]
NameOption = Annotated[
    str | None,
    typer.Option("--data", help="Dataset name as stored (e.g. nih-cxr14-sample) or its path. Default: all.", show_default=False),
]
FilterTaskOption = Annotated[
    str | None, typer.Option("--task", help="Only this task (e.g. any). Default: all.", show_default=False)
]
FilterWeightsOption = Annotated[
    str | None,
    typer.Option("--weights", help="Only these weights: imagenet, none or a weights file. Default: all.", show_default=False),
]
FilterSizeOption = Annotated[
    int | None,
    typer.Option("--image-size", min=1, help="Only this input size in pixels. Default: all.", show_default=False),
]


# The score kinds are declared once, in layers_index (whose import loads nothing else).
Metric = Enum("Metric", {kind: kind for kind in SCORE_KINDS}, type=str)


def _storage(storage: str | None) -> str:
    from sweep._env import DEFAULT_STORAGE

    return storage or DEFAULT_STORAGE


def _dataset_name(data: str | None) -> str | None:
    """A stored dataset name as given, or the name of the dataset at a path."""
    if data is None or not Path(data).expanduser().exists():
        return data
    from sweep.data import load_dataset

    return load_dataset(data).name


def _weights(weights: str | None) -> str | None:
    from sweep.model import weights_label

    return None if weights is None else weights_label(weights)


@app.command()
def build(
    data: DataOption = None,
    task: TaskOption = None,
    weights: Annotated[
        str, typer.Option("--weights", help="imagenet, none (random init) or PATH to a weights file.")
    ] = "imagenet",
    image_size: ImageSizeOption = 224,
    storage: StorageOption = None,
    seed: SeedOption = 0,
    split: SplitOption = SplitMode.given,
    positive: PositiveOption = None,
    labels: LabelsOption = None,
    uncertain: UncertainOption = None,
    view: ViewOption = None,
    probe_images: Annotated[
        int,
        typer.Option(
            "--probe-images",
            min=0,
            help="Fit the linear probe on at most N training images (whole patients, drawn with --seed; "
            "0: all). Its cost grows with them; its AUROC is scored on all of validation, LogME on all of train.",
        ),
    ] = PROBE_IMAGES,
) -> None:
    """Score EVERY candidate layer (linear probe AUROC and LogME) from the feature bank, in one pass.

    The first build at a size computes the feature bank (about a minute at 224 px on two CPU cores).
    Later builds and sweeps reuse it. Example: ocl dictionary build --weights none --image-size 128
    """
    from layers_index import build_dictionary

    storage_url = _storage(storage)
    start = time.perf_counter()
    rows = build_dictionary(
        storage_url,
        data_options(data, task, seed, split, positive, labels, uncertain, view),
        weights=weights,
        image_size=image_size,
        on_dataset=_print_dataset_facts,
        probe_images=probe_images,
    )
    if rows and rows[0].probe_images < rows[0].train_images:
        err_console.print(
            f"note: the probe was fitted on {rows[0].probe_images:,} of {rows[0].train_images:,} training images "
            f"(whole patients; --probe-images {probe_images:,}); `--probe-images 0` fits on all, more slowly",
            highlight=False,
        )
    best = max(rows, key=lambda r: r.probe_auroc)
    best_logme = max(rows, key=lambda r: r.logme)
    console.print(
        f"scored {len(rows)} layers in {time.perf_counter() - start:.1f} s into {storage_url}: best probe AUROC "
        f"[bold]{best.probe_auroc:.4f}[/] at [bold]{best.layer}[/] ({best.block}), best LogME at {best_logme.layer}; "
        "see `ocl dictionary show`"
    )


def _print_dataset_facts(dataset) -> None:
    """The dataset's notes and warnings (patients in more than one split, per-image splits), once."""
    for note in dataset.notes:
        err_console.print(f"note: {note}", highlight=False)
    for warning in dataset.warnings:
        warn(warning)


@app.command()
def show(
    data: NameOption = None,
    task: FilterTaskOption = None,
    weights: FilterWeightsOption = None,
    image_size: FilterSizeOption = None,
    top: Annotated[
        int | None,
        typer.Option(
            "--top",
            min=1,
            help="Only the N best layers of each profile, best first. Default: every layer, by depth.",
            show_default=False,
        ),
    ] = None,
    format: Annotated[
        TableFormat, typer.Option("--format", help="table for people, csv or json for programs.")
    ] = TableFormat.table,
    storage: StorageOption = None,
) -> None:
    """The dictionary by depth: probe AUROC, LogME, sweep best/mean AUROC and trials per layer; best layer starred.

    The best layer is the sweep's best where a sweep scored the profile, else the probe's.
    Example: ocl dictionary show --data nih-cxr14-sample --top 5
    """
    from layers_index import dictionary_frame, format_csv, format_json, format_tables, top_layers
    from sweep.errors import OCLError

    filters = {"dataset": _dataset_name(data), "task": task, "weights": _weights(weights), "image_size": image_size}
    frame = dictionary_frame(_storage(storage), **filters)
    if frame.empty and any(v is not None for v in filters.values()):
        given = " ".join(f"--{k.replace('_', '-').replace('dataset', 'data')} {v}" for k, v in filters.items() if v is not None)
        known = dictionary_frame(_storage(storage))
        listed = ", ".join(sorted(set(known["dataset"]))) or "none yet"
        raise OCLError(
            f"{given}: no dictionary rows match (datasets: {listed}); run `ocl dictionary build` for it or loosen the filters"
        )
    if top is not None:
        frame = top_layers(frame, top)
    frame = frame.assign(weights=frame["weights"].map(shared_weights_name))  # a weights file by name, not by folder
    if format is TableFormat.json:
        typer.echo(format_json(frame))
    elif format is TableFormat.csv:
        typer.echo(format_csv(frame), nl=False)
    elif frame.empty:
        console.print("the dictionary is empty; run `ocl dictionary build` or `ocl sweep` to fill it")
    else:
        for table in format_tables(frame, width=console.width):
            console.print(table)


@app.command()
def plot(
    output: Annotated[
        Path, typer.Option("--output", help="HTML file to write (self-contained: opens offline).", dir_okay=False)
    ] = Path("studies/reports/dictionary.html"),
    storage: StorageOption = None,
) -> None:
    """Scores against depth, dense blocks shaded, one curve per (dataset, weights), and the ImageNet gain.

    Example: ocl dictionary plot --output dictionary.html
    """
    from layers_index import dictionary_frame, draw, plot_data, write_html
    from sweep.errors import OCLError

    frame = dictionary_frame(_storage(storage))
    if frame.empty:
        raise OCLError(f"--storage {_storage(storage)}: the dictionary is empty; run `ocl dictionary build` first")
    data = plot_data(frame.assign(weights=frame["weights"].map(shared_weights_name)))
    path = write_html(draw(data), output)
    gains = (
        f"{len(data.gains)} ImageNet-minus-none gain curve(s)"
        if data.gains
        else "no gain curve (it needs imagenet and none scores of one dataset: build both with --weights)"
    )
    console.print(f"wrote {path}: {len(data.curves)} curve(s), {gains}", highlight=False)


@app.command()
def compare(
    data: Annotated[list[str], typer.Option("--data", help="Dataset name as stored, or its path; give exactly two.")],
    task: FilterTaskOption = None,
    weights: FilterWeightsOption = None,
    image_size: FilterSizeOption = None,
    metric: Annotated[Metric, typer.Option("--metric", help="Which score's layer ranking to compare.")] = Metric["probe_auroc"],
    storage: StorageOption = None,
) -> None:
    """Spearman and Kendall rank correlation of two datasets' layer profiles, and where they disagree most.

    Near 1: the best layers of one dataset are a good start for the other.
    Example: ocl dictionary compare --data nih-cxr14-sample --data ~/ultrasound
    """
    from layers_index import compare_profiles, dictionary_frame
    from sweep.errors import OCLError

    if len(data) != 2:
        raise OCLError(f"--data: got {len(data)} dataset(s); pass exactly two, e.g. --data A --data B")
    first, second = (_dataset_name(d) for d in data)
    frame = dictionary_frame(_storage(storage), task=task, weights=_weights(weights), image_size=image_size)
    result = compare_profiles(frame, first, second, metric.value)

    def describe(p: dict) -> str:
        return f"{p['dataset']} (task {p['task']}, weights {p['weights']}, {p['image_size']} px)"

    console.print(
        f"{result.metric} over {result.layers} common layers of {describe(result.profile_a)} and "
        f"{describe(result.profile_b)}:\n  Spearman rho [bold]{result.spearman:.3f}[/] (p {result.spearman_p:.2g}), "
        f"Kendall tau [bold]{result.kendall:.3f}[/] (p {result.kendall_p:.2g})"
    )
    if not result.disagreements:
        console.print("the two rank every common layer the same")
        return
    table = new_table(
        "Layers where the rankings disagree most (rank 1 = best)",
        "layer",
        "depth",
        first,
        second,
        f"rank in {first}",
        f"rank in {second}",
    )
    for d in result.disagreements:
        table.add_row(
            d.layer,
            "-" if d.depth is None else str(d.depth),
            f"{d.value_a:.4f}",
            f"{d.value_b:.4f}",
            str(d.rank_a),
            str(d.rank_b),
        )
    console.print(table)
