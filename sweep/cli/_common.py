"""Options shared by several commands, declared once so their help text stays the same."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="An NIH ChestX-ray14 folder (Data_Entry_2017_v2020.csv or Data_Entry_2017.csv + images/), a class-folder "
        "directory of PNG, JPEG, TIFF, DICOM... images, a path,label[,patient,split] CSV, or a CheXpert-style label "
        "table. Default: the embedded NIH sample (638 images).",
        show_default=False,
        rich_help_panel="Data",
    ),
]
TaskOption = Annotated[
    str | None,
    typer.Option(
        "--task",
        help="any (finding vs No Finding), binary:FINDING (e.g. binary:Pneumonia) or multilabel. Default: any for ChestX-ray14.",
        show_default=False,
        rich_help_panel="Data",
    ),
]
ImageSizeOption = Annotated[
    int,
    typer.Option("--image-size", help="Square input size in pixels (at least 32; 224 is standard).", rich_help_panel="Data"),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for patient-wise splits and sampling.", rich_help_panel="Data")]


class SplitMode(str, Enum):
    given = "given"
    patient = "patient"


SplitOption = Annotated[
    SplitMode,
    typer.Option(
        "--split",
        help="given: keep the split the data brings (NIH's lists, train/val/test folders, a CSV split column) and warn "
        "when it puts a patient in more than one split; patient: re-draw that split by patient (70/10/20, by --seed, "
        "same images) so no patient is in two splits; needs patient IDs. Data without a split is always split by patient "
        "when it has patient IDs.",
        rich_help_panel="Data",
    ),
]
PositiveOption = Annotated[
    str | None,
    typer.Option(
        "--positive",
        metavar="CLASS",
        help="The positive class of the default binary task (binary:CLASS). Default for two classes: the one that is "
        "not normal, no finding, negative or healthy.",
        show_default=False,
        rich_help_panel="Data",
    ),
]

LabelsOption = Annotated[
    str | None,
    typer.Option(
        "--labels",
        metavar="FORMAT",
        help="How to read a CSV given as --data: chexpert (Path, Frontal/Lateral, AP/PA and one column per finding "
        "holding 1, 0, -1 = uncertain, or blank) or generic (path,label[,patient,split]). Default: detected from the "
        "header, and ocl data info says what it detected.",
        show_default=False,
        rich_help_panel="Data",
    ),
]
UncertainOption = Annotated[
    str | None,
    typer.Option(
        "--uncertain",
        metavar="POLICY",
        help="What a CheXpert-style uncertain label (-1) becomes: ones (U-Ones, positive), zeros (U-Zeros, negative) or "
        "ignore (U-Ignore: left out of the loss and AUROC). Default: ones. Blank cells are negative.",
        show_default=False,
        rich_help_panel="Data",
    ),
]
ViewOption = Annotated[
    str | None,
    typer.Option(
        "--view",
        metavar="VIEW",
        help="Which images of a CheXpert-style table to keep: frontal (AP or PA), lateral or all. Default: all.",
        show_default=False,
        rich_help_panel="Data",
    ),
]


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


class TableFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


FormatOption = Annotated[OutputFormat, typer.Option("--format", help="table for people, json for programs.")]

console = Console()
if not console.is_terminal:  # piped or captured: don't squeeze tables into 80 columns
    console.width = 160
err_console = Console(stderr=True)
if not err_console.is_terminal:
    err_console.width = 160


def print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


def new_table(title: str, *columns: str, text: tuple[str, ...] = ()) -> Table:
    """A table whose first column and the ``text`` columns are left-aligned, the rest right-aligned."""
    table = Table(title=title, title_justify="left")
    for position, column in enumerate(columns):
        left = position == 0 or column in text
        table.add_column(column, justify="left" if left else "right", no_wrap=left)
    return table


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def data_options(
    data: Path | None,
    task: str | None,
    seed: int,
    split: Any,
    positive: str | None,
    labels: Any,
    uncertain: Any,
    view: Any,
):
    """The data flags of a command as one :class:`~sweep.data.DataOptions`, passed on whole."""
    from sweep.data import DataOptions

    def plain(value: Any) -> Any:
        return getattr(value, "value", value)

    return DataOptions(
        data=None if data is None else str(data),
        task=task,
        split=plain(split),
        positive=positive,
        labels=plain(labels),
        uncertain=plain(uncertain),
        view=plain(view),
        seed=seed,
    )
