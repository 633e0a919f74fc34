"""Progress bars on stderr (rich), drawn only when stderr is a terminal (never into logs or pipes)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_enabled = True


def configure(*, enabled: bool) -> None:
    """Turn progress bars off (or back on) for this process, e.g. in a benchmark that prints its own lines."""
    global _enabled
    _enabled = enabled


def progress_enabled() -> bool:
    return _enabled and sys.stderr.isatty()


def rate_progress() -> Progress:
    """A progress bar that shows done/total, a rate such as ``153 img/s`` (from :func:`rate_text`), elapsed time and ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not progress_enabled(),
        transient=False,
    )


def rate_text(done: int, seconds: float, unit: str) -> str:
    return f"{done / seconds:,.0f} {unit}/s" if seconds > 0 and done else f"- {unit}/s"
