"""``ocl report``: the study's answer on one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sweep.cli._common import console


def report(
    study: Annotated[
        str | None,
        typer.Option("--study", help="Study to report on. Default: the only study in the storage.", show_default=False),
    ] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", help="Optuna storage URL. Default: sqlite:///studies/ocl.db", show_default=False)
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="HTML file to write (folders are created; a folder gets STUDY.html). Default: studies/reports/STUDY.html",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the study's answer as one self-contained HTML page (opens offline, prints well).

    The optimal cut-off layer and strategy with its 95% interval and confidence set, the layer
    profile against depth, feature extraction vs fine-tuning, transfer vs scratch, the search
    history, the split and leakage facts, and the command that reproduces the study.
    Example: ocl report --study nih-cxr14-sample-any-224px-fe-imagenet --output answer.html
    """
    from sweep.api import open_study, report_path
    from sweep.errors import OCLError
    from sweep.report import write_study_report

    the_study, url = open_study(study, storage=storage)
    path = report_path(the_study.study_name, output)
    try:
        written = write_study_report(the_study, url, path)
    except OSError as exc:
        raise OCLError(f"--output {path}: cannot write it ({exc.strerror or exc}); choose a writable location") from None
    console.print(f"wrote {written}", highlight=False)
