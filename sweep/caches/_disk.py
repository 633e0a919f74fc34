"""How much disk a sweep's caches will write: said before the first byte, refused when it cannot fit.

At full ChestX-ray14 size the feature bank alone is tens of gigabytes (float32, one row per image
and per augmented view, one column per channel of every candidate layer: about 35,000 for all 63).
A disk that fills halfway through would cost the user the whole build; so the sweep adds up what
each cache still has to write (nothing for what is already built and valid), prints it, and
refuses with one line when it does not fit in the free space less a margin.

The spatial bank is not a hard need: it plans itself within ``OCL_CACHE_MAX_GB`` and whatever
disk is left (:func:`sweep.caches.bank_plan`), so it is stated as an upper bound only.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.errors import OCLError

__all__ = ["FREE_DISK_MARGIN", "DiskPlan", "array_bytes", "present"]

FREE_DISK_MARGIN = 1_000_000_000  # bytes every cache leaves free on the disk
NPY_HEADER = 128  # bytes of a .npy file's header, as numpy writes it for these shapes


def _gb(count: float) -> str:
    return f"{count / 1e9:,.1f} GB" if count >= 1e9 else f"{count / 1e6:,.0f} MB"


def present(path: Path, entry: Mapping[str, Any] | None) -> bool:
    """Whether a cache file is there with the size its manifest entry records (a cheap check: the
    loaders verify the checksum when they open it, and rebuild a damaged file)."""
    try:
        return bool(entry) and path.is_file() and path.stat().st_size == entry.get("bytes")
    except OSError:
        return False


@dataclass(frozen=True)
class DiskPlan:
    """What the caches under ``directory`` will write before the first trial, and the free space there."""

    directory: Path
    pieces: tuple[tuple[str, int], ...]  # (what, bytes still to write), e.g. ("feature bank", 38e9)
    free: int  # bytes free on the disk now
    spatial_budget: int | None = None  # the spatial bank writes at most this much (None: none is banked)

    @classmethod
    def of(cls, directory: Path, pieces: Mapping[str, int], spatial_budget: int | None = None) -> DiskPlan:
        existing = Path(directory)
        while not existing.exists():  # the cache folder may not exist yet: measure the disk it will be on
            existing = existing.parent
        return cls(Path(directory), tuple(pieces.items()), shutil.disk_usage(existing).free, spatial_budget)

    @property
    def total(self) -> int:
        return sum(count for _, count in self.pieces)

    def line(self) -> str:
        """One line for the user, e.g. ``disk: the caches write 38.2 GB under ... (image cache 0.1 GB,
        feature bank 38.1 GB), then a spatial bank of at most 20.0 GB (OCL_CACHE_MAX_GB); 70.1 GB free``."""
        written = [f"{what} {_gb(count)}" for what, count in self.pieces if count]
        head = (
            f"disk: the caches write {_gb(self.total)} under {self.directory} ({', '.join(written)})"
            if written
            else f"disk: the caches under {self.directory} are built (nothing to write)"
        )
        spatial = (
            f", then a spatial bank of at most {_gb(self.spatial_budget)} (OCL_CACHE_MAX_GB, and what the disk has left)"
            if self.spatial_budget
            else ""
        )
        return f"{head}{spatial}; {_gb(self.free)} free"

    def check(self) -> None:
        """Raise one line when what must be written does not fit, before anything is."""
        room = self.free - FREE_DISK_MARGIN
        if self.total > room:
            written = ", ".join(f"{what} {_gb(count)}" for what, count in self.pieces if count)
            raise OCLError(
                f"not enough free disk under {self.directory}: the caches need {_gb(self.total)} ({written}) and "
                f"{_gb(self.free)} are free, {_gb(FREE_DISK_MARGIN)} of which stays free; free some space, or set "
                "OCL_CACHE_DIR to a larger disk"
            )


def array_bytes(shape: Sequence[int], itemsize: int) -> int:
    """The size of a .npy file of this shape on disk."""
    count = 1
    for dim in shape:
        count *= int(dim)
    return count * itemsize + NPY_HEADER
