"""Progress bars on stderr (rich), drawn only when stderr is a terminal (never into logs or pipes)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
    """A progress bar: done/total, ETA, a short bar, then a rate such as ``153 img/s`` (:func:`rate_text`).

    What a person needs most comes first, so an 80-column terminal still shows the count and the
    ETA; the bar is short, and the free-text rate (which a sweep extends with its best so far) goes last.
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        MofNCompleteColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        BarColumn(bar_width=16),
        TimeElapsedColumn(),
        TextColumn("{task.fields[rate]}"),
        console=Console(stderr=True),
        disable=not progress_enabled(),
        transient=False,
    )


def rate_text(done: int, seconds: float, unit: str) -> str:
    return f"{done / seconds:,.0f} {unit}/s" if seconds > 0 and done else f"- {unit}/s"


def tracked_slices(total: int, chunk: int, description: str, unit: str = "img") -> Iterator[slice]:
    """``slice``s of ``range(total)``, ``chunk`` items each, drawing a bar (done/total, ETA, rate) as they are used.

    For the long loops outside a sweep (scoring a 25,000-image test split, an external set,
    Grad-CAM): the caller does the work of each slice, and the bar advances when it asks for the next.
    """
    if chunk < 1:
        raise ValueError(f"chunk={chunk!r}: expected at least 1")
    with rate_progress() as bar:
        task = bar.add_task(description, total=total, rate="")
        start = time.perf_counter()
        for lo in range(0, total, chunk):
            hi = min(total, lo + chunk)
            yield slice(lo, hi)
            bar.update(task, completed=hi, rate=rate_text(hi, time.perf_counter() - start, unit))


@contextmanager
def epoch_progress(description: str, epochs: int) -> Iterator[Callable[[int, float, bool], None]]:
    """A bar over one training run's epochs, used as its ``on_epoch`` hook (epoch from 0, validation
    mean AUROC, whether training ends there): count, ETA and the last epoch's validation AUROC.

    For a retrain outside the sweep (``ocl evaluate``), where a fine-tuning epoch at full size takes
    minutes. A run that stops early (its patience ran out) fills the bar: that is its end, not a stall.
    """
    with rate_progress() as bar:
        task = bar.add_task(description, total=epochs, rate="")

        def on_epoch(epoch: int, value: float, ends: bool) -> None:
            bar.update(task, completed=epochs if ends else epoch + 1, rate=f"val AUROC {value:.3f}")

        yield on_epoch
