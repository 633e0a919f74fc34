"""Defaults a user can change: where things go, and how long a silent worker is given.

This is the one module that reads OCL's user-facing environment variables; everything else takes
their values as arguments, so a function's behaviour shows in its call.

* ``OCL_CACHE_DIR`` moves the artifact cache (default ``studies/cache``; tests point it at a
  temporary folder, a cluster at fast local disk).
* ``OCL_GRACE_SECONDS`` is how long a worker may go without a heartbeat before its trial is failed
  and queued again (default 20). The heartbeat interval is derived from it
  (:func:`sweep.storage._database.heartbeat_interval`), so this one variable sets both.
* ``OCL_CACHE_MAX_GB`` is the disk budget, in gigabytes, of one spatial bank (the banked frozen
  prefix of fine-tuning trials, :mod:`sweep.caches._spatial_bank`; default 20). Dense blocks (and their
  augmented views) whose tensors do not fit it are computed on the fly instead; ``0`` banks none.

The storage and cache are relative to the working directory, so running ``ocl`` from the
repository keeps everything a sweep writes in one git-ignored place, ``studies/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sweep.errors import OCLError

DEFAULT_STORAGE = "sqlite:///studies/ocl.db"
DEFAULT_GRACE_SECONDS = 20
DEFAULT_CACHE_MAX_GB = 20.0


def cache_dir() -> Path:
    return Path(os.environ.get("OCL_CACHE_DIR", "studies/cache"))


def pseudonym_key_file() -> Path:
    """``OCL_PSEUDONYM_KEY_FILE``, else ``pseudonym.key`` beside the cache folder (deleting the caches keeps it)."""
    named = os.environ.get("OCL_PSEUDONYM_KEY_FILE")
    return Path(named).expanduser() if named else cache_dir().absolute().parent / "pseudonym.key"


def grace_seconds() -> int:
    """``OCL_GRACE_SECONDS``: seconds without a heartbeat after which a worker counts as dead (default 20).

    Raises:
        OCLError: when the variable is set to anything but a whole number of at least 1.
    """
    text = os.environ.get("OCL_GRACE_SECONDS", "").strip()
    if not text:
        return DEFAULT_GRACE_SECONDS
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise OCLError(
            f"OCL_GRACE_SECONDS={text}: expected a whole number of seconds, at least 1; unset it for the default, "
            f"{DEFAULT_GRACE_SECONDS}"
        )
    return seconds


def cache_max_bytes() -> int:
    """``OCL_CACHE_MAX_GB``: the disk budget of one spatial bank, in bytes (default 20 GB; 0 banks nothing).

    Raises:
        OCLError: when the variable is set to anything but a number of gigabytes, at least 0.
    """
    text = os.environ.get("OCL_CACHE_MAX_GB", "").strip()
    if not text:
        return int(DEFAULT_CACHE_MAX_GB * 1e9)
    try:
        gigabytes = float(text)
    except ValueError:
        gigabytes = -1.0
    if not gigabytes >= 0 or gigabytes == float("inf"):
        raise OCLError(
            f"OCL_CACHE_MAX_GB={text}: expected a number of gigabytes, 0 or more (e.g. 20, or 0 to bank nothing); "
            f"unset it for the default, {DEFAULT_CACHE_MAX_GB:g}"
        )
    return int(gigabytes * 1e9)
