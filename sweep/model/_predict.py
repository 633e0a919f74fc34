"""Scores of a Keras model for cached grayscale images, batch by batch.

One compiled predict step (``predict_on_batch``) over slices of the image cache: the validation
pass of every fine-tuning epoch, the test split, ``--external`` sets and ``ocl predict`` all score
images this way, so the batches a model sees, and so its float results, do not depend on who asks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["predict_in_batches"]


def predict_in_batches(
    model: Any,
    images: np.ndarray,
    rows: np.ndarray | None = None,
    *,
    batch_size: int = 64,
    description: str | None = None,
) -> np.ndarray:
    """The model's scores for ``images[rows]`` (``(n, size, size)``; all rows by default), ``(n, outputs)`` float32.

    With ``description``, a progress bar with an ETA counts the images (on a terminal only).
    """
    from sweep._progress import tracked_slices

    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    if description is None:
        batches = (slice(lo, lo + batch_size) for lo in range(0, len(rows), batch_size))
    else:
        batches = tracked_slices(len(rows), batch_size, description)
    parts = [np.asarray(model.predict_on_batch(np.asarray(images[rows[part]], np.float32)[..., None])) for part in batches]
    return np.concatenate(parts) if parts else np.zeros((0, int(model.output.shape[-1])), np.float32)
