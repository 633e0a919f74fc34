"""Default locations: the study storage and the artifact cache, both under ``studies/``.

They are relative to the working directory, so running ``ocl`` from the repository keeps
everything a sweep writes in one git-ignored place. ``OCL_CACHE_DIR`` moves the cache (tests
point it at a temporary folder; a cluster can point it at fast local disk).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STORAGE = "sqlite:///studies/ocl.db"


def cache_dir() -> Path:
    return Path(os.environ.get("OCL_CACHE_DIR", "studies/cache"))
