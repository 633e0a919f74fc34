"""Where the model looked: Grad-CAM maps of a few test images per output, and whether they depend
on what the model learnt.

For each output, at the operating point chosen on validation, ``ocl evaluate`` picks the test
images a reader most wants explained: the most confident true positives, the most confidently
missed positives (false negatives) and the most confident false alarms (false positives),
``per_kind`` of each. Their Grad-CAM maps at the cut-off layer (:func:`sweep.model.grad_cam`) are
overlaid on the X-ray as JPEG pictures, written beside the report and embedded in it.

The sanity check of Adebayo et al. (NeurIPS 2018, model-parameter randomisation): the same
images' maps from a twin whose every weight is re-initialised (:func:`sweep.model.randomised_twin`)
must differ. Similarity is the Spearman rank correlation of the two maps per image; the check
passes when the upper end of the 95% interval of its mean (bootstrap over the images) is below
:data:`SIMILARITY_LIMIT`. A saliency method that ignores the model (an edge detector, say) keeps
a correlation near 1 and fails. The pictures carry no file name: NIH file names hold patient IDs.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from sweep.stats import LEVEL

__all__ = ["KINDS", "SIMILARITY_LIMIT", "SaliencyMaps", "choose_examples", "map_similarity", "saliency_maps"]

KINDS = ("true positive", "false negative", "false positive")
SIMILARITY_LIMIT = 0.5
"""The largest mean rank correlation (its 95% upper bound) between a map and the randomised twin's
map that still counts as "differs": above it, the trained model's map would share more than a
quarter of its rank variance with a model that learnt nothing."""


@dataclass
class SaliencyMaps:
    """The chosen examples (output, kind, calibrated score), the sanity check, and the pictures
    (JPEG bytes by file name) until :meth:`write` puts them beside the report."""

    examples: list[dict[str, Any]]
    sanity: dict[str, Any]
    pictures: dict[str, bytes] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, "sanity": self.sanity}

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.pictures.items():
            (folder / name).write_bytes(data)


def choose_examples(y: np.ndarray, p: np.ndarray, threshold: float, per_kind: int) -> list[tuple[str, int]]:
    """``(kind, row)`` pairs: the ``per_kind`` most confident true positives, most confidently
    missed positives and most confident false positives of one output at ``threshold``."""
    rows = np.arange(len(y))
    positive, negative, called = y == 1, y == 0, p >= threshold
    picks = {
        "true positive": rows[positive & called][np.argsort(-p[positive & called], kind="stable")],
        "false negative": rows[positive & ~called][np.argsort(p[positive & ~called], kind="stable")],
        "false positive": rows[negative & called][np.argsort(-p[negative & called], kind="stable")],
    }
    return [(kind, int(row)) for kind in KINDS for row in picks[kind][:per_kind]]


def map_similarity(maps: np.ndarray, twin_maps: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Mean Spearman rank correlation between paired maps (trained, twin), its 95% bootstrap
    interval over images, and whether the check passes (see :func:`_spearman` for flat maps)."""
    rho = np.asarray([_spearman(a, b) for a, b in zip(maps, twin_maps)], np.float64)
    rho = rho[np.isfinite(rho)]
    if not len(rho):
        return {"images": 0, "mean": None, "low": None, "high": None, "passed": None, "limit": SIMILARITY_LIMIT}
    draws = np.random.default_rng(seed).integers(0, len(rho), (1000, len(rho)))
    tail = (1 - LEVEL) / 2 * 100
    low, high = (float(v) for v in np.percentile(rho[draws].mean(axis=1), [tail, 100 - tail]))
    return {
        "images": len(rho),
        "mean": float(rho.mean()),
        "low": low,
        "high": high,
        "passed": high < SIMILARITY_LIMIT,
        "limit": SIMILARITY_LIMIT,
    }


def _spearman(trained: np.ndarray, twin: np.ndarray) -> float:
    """Rank correlation of two maps. A flat trained map has no ranking to compare (NaN: left out);
    a flat twin map (no positive evidence anywhere) shares none of the trained map's ranking (0)."""
    a, b = np.ravel(trained), np.ravel(twin)
    if np.ptp(a) == 0:
        return float("nan")
    if np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def saliency_maps(
    model: Any,
    images: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    thresholds: dict[str, float],
    outputs: tuple[str, ...],
    *,
    per_kind: int = 2,
    seed: int = 0,
) -> SaliencyMaps:
    """Grad-CAM pictures for each output's chosen test images (grayscale ``images``, targets ``y``,
    calibrated scores ``p``), and the randomisation check over all of them."""
    from sweep._progress import tracked_slices
    from sweep.model import grad_cam, randomised_twin

    twin = randomised_twin(model, seed)
    examples, pictures, trained, randomised = [], {}, [], []
    for part in tracked_slices(len(outputs), 1, "Grad-CAM maps", "output"):
        k, output = part.start, outputs[part.start]
        if output not in thresholds or per_kind < 1:
            continue
        chosen = choose_examples(y[:, k], p[:, k], thresholds[output], per_kind)
        if not chosen:
            continue
        rows = np.asarray([row for _, row in chosen])
        maps, twin_maps = grad_cam(model, images[rows], k), grad_cam(twin, images[rows], k)
        trained.append(maps)
        randomised.append(twin_maps)
        for (kind, row), heat in zip(chosen, maps):
            name = f"{_slug(output)}-{_slug(kind)}-{sum(e['output'] == output and e['kind'] == kind for e in examples)}.jpg"
            pictures[name] = overlay_jpeg(images[row], heat)
            examples.append(
                {"output": output, "kind": kind, "score": float(p[row, k]), "threshold": thresholds[output], "file": name}
            )
    sanity = (
        map_similarity(np.concatenate(trained), np.concatenate(randomised), seed)
        if trained
        else map_similarity(np.zeros((0, 1, 1)), np.zeros((0, 1, 1)))
    )
    return SaliencyMaps(examples, sanity, pictures)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _colormap() -> np.ndarray:
    """Plotly's Turbo colour scale as a 256-entry RGB table (cool: little evidence, warm: much)."""
    from plotly.colors import sample_colorscale, sequential

    rgb = sample_colorscale(sequential.Turbo, list(np.linspace(0, 1, 256)))
    return np.asarray([[float(v) for v in c[c.index("(") + 1 : -1].split(",")] for c in rgb], np.float64)


def overlay_jpeg(image: np.ndarray, heat: np.ndarray, quality: int = 90) -> bytes:
    """The grayscale X-ray with the map blended over it (opacity grows with the map), as JPEG."""
    from PIL import Image

    gray = np.repeat(np.asarray(image, np.float64)[..., None], 3, axis=-1)
    colour = _colormap()[np.clip((heat * 255).astype(int), 0, 255)]
    alpha = 0.6 * np.asarray(heat, np.float64)[..., None]
    blended = np.clip((1 - alpha) * gray + alpha * colour, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(blended, mode="RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()
