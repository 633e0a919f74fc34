"""Progress on stderr: rich bars at a terminal; in a log or pipe, a plain line now and then for long stages.

A bar cannot redraw in a file, so it would either be lost or fill a log with escape codes; but a
user who pipes ``ocl sweep`` into a log or runs it under nohup must still see that banking 112k
images is under way and when it will end. Short stages (the tests', the sample's) print nothing.
"""

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

# In a log or pipe: the first line once a stage has run this long, then one line at this interval,
# and a last one when a stage that printed a line ends.
FIRST_LINE_AFTER_S = 30.0
LINE_EVERY_S = 60.0


def configure(*, enabled: bool) -> None:
    """Turn progress bars off (or back on) for this process, e.g. in a benchmark that prints its own lines."""
    global _enabled
    _enabled = enabled


def progress_enabled() -> bool:
    return _enabled and sys.stderr.isatty()


def rate_progress() -> Progress | _LineProgress:
    """A progress bar: done/total, ETA, a short bar, then a rate such as ``153 img/s`` (:func:`rate_text`).

    What a person needs most comes first, so an 80-column terminal still shows the count and the
    ETA; the bar is short, and the free-text rate (which a sweep extends with its best so far) goes last.

    Where stderr is not a terminal (and progress is not turned off) a :class:`_LineProgress` stands in.
    """
    if _enabled and not sys.stderr.isatty():
        return _LineProgress()
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


class _LineProgress:
    """The part of rich's ``Progress`` that OCL uses (``add_task``, ``update``), as plain lines on stderr.

    ``banking features: 12,000/112,120 · eta 0:08:01 · 0:00:53 elapsed · 226 img/s``: the first
    after :data:`FIRST_LINE_AFTER_S`, then every :data:`LINE_EVERY_S`, and a last line at the end
    of a stage that printed one (not when it failed: its error says what happened).
    """

    def __init__(self) -> None:
        self.tasks: list[dict] = []

    def __enter__(self) -> _LineProgress:
        return self

    def __exit__(self, kind, *_exc) -> None:
        for task in self.tasks:
            if kind is None and task["printed"] is not None and task["printed_at"] != task["completed"]:
                self._print(task)

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields) -> int:
        now = time.perf_counter()
        self.tasks.append(
            dict(
                description=description, total=total, completed=completed, fields=fields, start=now, printed=None, printed_at=None
            )
        )
        return len(self.tasks) - 1

    def update(self, task_id: int, *, total=None, completed=None, advance=None, **fields) -> None:
        task = self.tasks[task_id]
        if total is not None:
            task["total"] = total
        if completed is not None:
            task["completed"] = completed
        if advance is not None:
            task["completed"] += advance
        task["fields"].update(fields)
        now = time.perf_counter()
        due = now - task["start"] >= FIRST_LINE_AFTER_S if task["printed"] is None else now - task["printed"] >= LINE_EVERY_S
        if due:
            self._print(task)

    def _print(self, task: dict) -> None:
        now = time.perf_counter()
        elapsed, done, total = now - task["start"], task["completed"], task["total"]
        parts = [f"{task['description']}: {done:,.0f}" + (f"/{total:,.0f}" if total else "")]
        if total and done and done < total:
            parts.append(f"eta {_clock(elapsed * (total - done) / done)}")
        parts.append(f"{_clock(elapsed)} elapsed")
        if task["fields"].get("rate"):
            parts.append(str(task["fields"]["rate"]))
        print(" · ".join(parts), file=sys.stderr, flush=True)
        task["printed"], task["printed_at"] = now, done


def _clock(seconds: float) -> str:
    """``0:08:01``, as rich's time columns show it."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def rate_text(done: int, seconds: float, unit: str) -> str:
    """``153 img/s``; below 10 a second, two significant digits (``0.18 layer/s``, not ``0 layer/s``)."""
    if not (seconds > 0 and done):
        return f"- {unit}/s"
    rate = done / seconds
    return f"{rate:,.0f} {unit}/s" if rate >= 10 else f"{rate:.2g} {unit}/s"


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
