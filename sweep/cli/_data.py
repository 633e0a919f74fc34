"""``ocl data``: look at a dataset and prepare its image cache."""

from __future__ import annotations

import time
from typing import Annotated

import typer

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
    new_table,
    print_json,
    warn,
)

app = typer.Typer(help="Inspect a dataset and build its image cache.", no_args_is_help=True)


def _split_label(source: str) -> str:
    """``seeded split``, ``official split``, ``given split``; ``re-split by patient`` as it is."""
    return source if " " in source else f"{source} split"


@app.command()
def info(
    data: DataOption = None,
    task: TaskOption = None,
    format: FormatOption = OutputFormat.table,
    seed: SeedOption = 0,
    split: SplitOption = SplitMode.given,
    positive: PositiveOption = None,
    labels: LabelsOption = None,
    uncertain: UncertainOption = None,
    view: ViewOption = None,
) -> None:
    """Images, patients, splits and patients shared between them, prevalence, and the majority-class accuracy to beat.

    Example: ocl data info --task binary:Pneumonia; ocl data info --data CheXpert-v1.0-small/train.csv --view frontal
    """
    from sweep.data import load_dataset, summarize

    dataset = load_dataset(data_options(data, task, seed, split, positive, labels, uncertain, view))
    summary = summarize(dataset, task)
    for message in dataset.warnings:
        warn(message)
    if format is OutputFormat.json:
        print_json(summary)
        return
    console.print(
        f"[bold]{summary['dataset']}[/]: {summary['images']:,} images, {summary['patients']:,} patients "
        f"({_split_label(summary['split_source'])}) from {summary['root']}"
    )
    for note in summary["notes"]:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    splits = new_table("Splits", "split", "images", "patients")
    for name, counts in summary["splits"].items():
        splits.add_row(name, f"{counts['images']:,}", f"{counts['patients']:,}")
    console.print(splits)
    if summary["patient_ids"]:
        overlap = summary["patient_overlap"]
        console.print(
            f"patients in more than one split: {overlap['any']} (train/val {overlap['train/val']}, "
            f"train/test {overlap['train/test']}, val/test {overlap['val/test']})",
            highlight=False,
        )
    else:
        console.print("no patient IDs: each image counts as its own patient, so the splits are per image", highlight=False)
    unknown = summary["unknown_labels"]
    prevalence = new_table("Prevalence", "finding", "images", "share", *(["unknown (--uncertain ignore)"] if unknown else []))
    for name, share in sorted(summary["prevalence"].items(), key=lambda kv: -kv[1]):
        extra = [f"{unknown.get(name, 0):,}"] if unknown else []
        prevalence.add_row(name, f"{round(share * summary['images']):,}", f"{share:.1%}", *extra)
    console.print(prevalence)
    chosen = summary["task"]
    console.print(
        f"task [bold]{chosen}[/]: always predicting the majority class is "
        f"[bold]{summary['majority_accuracy'][chosen]:.1%}[/] accurate; any accuracy must beat that "
        "(AUROC is the metric OCL optimises)."
    )


@app.command()
def prepare(
    data: DataOption = None,
    image_size: ImageSizeOption = 224,
    method: Annotated[str | None, typer.Option("--resize", help="lanczos or area.")] = "lanczos",
    seed: SeedOption = 0,
    split: SplitOption = SplitMode.given,
    positive: PositiveOption = None,
    labels: LabelsOption = None,
    uncertain: UncertainOption = None,
    view: ViewOption = None,
) -> None:
    """Decode every image once into the memory-mapped image cache (reused by every trial).

    Reads PNG, JPEG, BMP, TIFF, GIF, WebP and DICOM. Example: ocl data prepare --data ~/ChestX-ray14 --image-size 224
    """
    from sweep.caches import load_image_cache
    from sweep.data import RESIZE_METHODS, load_dataset
    from sweep.errors import OCLError

    if method not in RESIZE_METHODS:
        raise OCLError(f"--resize {method}: unknown method; use one of {', '.join(RESIZE_METHODS)}")
    dataset = load_dataset(data_options(data, None, seed, split, positive, labels, uncertain, view))
    for message in dataset.warnings:
        warn(message)
    for note in dataset.notes:  # e.g. what label format was detected, which class is positive
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    start = time.perf_counter()
    cache = load_image_cache(dataset.paths, image_size, method=method)
    seconds = time.perf_counter() - start
    console.print(
        f"image cache ready: {len(dataset):,} images at {image_size} px, {cache.path.stat().st_size / 2**20:,.1f} MiB "
        f"in {cache.path} ({seconds:.1f} s)"
    )
