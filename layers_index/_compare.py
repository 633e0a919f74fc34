"""``ocl dictionary compare``: do two datasets rank the layers alike?

The poster asked whether the best cut-off layer found on chest X-rays generalises to other,
unrelated medical images. If two datasets' layer profiles rank the layers alike (Spearman's rho
and Kendall's tau near 1), a sweep on the new dataset can start from the old one's best layers;
near 0 or negative, it should not. The layers whose ranks differ most say where the two disagree.

Example:
    >>> result = compare_profiles(dictionary_frame(url), "nih-cxr14-sample", "my-ultrasound")
    >>> result.spearman, result.kendall
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from scipy.stats import kendalltau, spearmanr

from layers_index._views import GROUP
from sweep.errors import OCLError

__all__ = ["Comparison", "Disagreement", "compare_profiles"]

MIN_COMMON_LAYERS = 3


@dataclass(frozen=True)
class Disagreement:
    """A layer ranked differently by the two datasets (rank 1 = best)."""

    layer: str
    depth: int | None
    value_a: float
    value_b: float
    rank_a: int
    rank_b: int

    @property
    def shift(self) -> int:
        return abs(self.rank_a - self.rank_b)


@dataclass(frozen=True)
class Comparison:
    """Rank agreement of two profiles on the layers both have a score for."""

    metric: str
    profile_a: dict  # dataset, task, weights, image_size
    profile_b: dict
    layers: int
    spearman: float
    spearman_p: float
    kendall: float
    kendall_p: float
    disagreements: tuple[Disagreement, ...]  # up to ``top`` layers whose ranks differ, largest shift first


def _profile(frame: pd.DataFrame, dataset: str, metric: str) -> tuple[dict, pd.DataFrame]:
    """The one profile of ``dataset`` in the (already filtered) frame, or a clear error."""
    rows = frame[(frame["dataset"] == dataset) & frame[metric].notna()]
    if rows.empty:
        known = ", ".join(sorted(frame["dataset"].unique())) or "none"
        raise OCLError(
            f"--data {dataset}: the dictionary has no {metric} scores for it (datasets: {known}); "
            f"run `ocl dictionary build --data PATH` for it first"
        )
    groups = rows[GROUP].drop_duplicates()
    if len(groups) > 1:
        listed = "; ".join(f"task {g.task}, weights {g.weights}, {g.image_size} px" for g in groups.itertuples())
        raise OCLError(f"--data {dataset}: several profiles ({listed}); pick one with --task, --weights and --image-size")
    first = groups.iloc[0]
    return {c: int(first[c]) if c == "image_size" else str(first[c]) for c in GROUP}, rows.set_index("layer")


def compare_profiles(
    frame: pd.DataFrame, dataset_a: str, dataset_b: str, metric: str = "probe_auroc", *, top: int = 5
) -> Comparison:
    """Spearman and Kendall correlation of two datasets' ``metric`` over their common layers.

    Raises:
        OCLError: when a dataset has no profile, several, or the two share fewer than 3 layers.
    """
    key_a, a = _profile(frame, dataset_a, metric)
    key_b, b = _profile(frame, dataset_b, metric)
    common = [layer for layer in a.index if layer in b.index]
    if len(common) < MIN_COMMON_LAYERS:
        raise OCLError(
            f"--data {dataset_a} --data {dataset_b}: only {len(common)} layer(s) with {metric} in common, "
            f"need {MIN_COMMON_LAYERS}; run `ocl dictionary build` for both"
        )
    values_a, values_b = a.loc[common, metric].astype(float), b.loc[common, metric].astype(float)
    spearman = spearmanr(values_a, values_b)
    kendall = kendalltau(values_a, values_b)
    rank_a = values_a.rank(ascending=False, method="min").astype(int)
    rank_b = values_b.rank(ascending=False, method="min").astype(int)
    disagreements = sorted(
        (
            Disagreement(
                layer,
                None if pd.isna(a.loc[layer, "depth"]) else int(a.loc[layer, "depth"]),
                float(values_a[layer]),
                float(values_b[layer]),
                int(rank_a[layer]),
                int(rank_b[layer]),
            )
            for layer in common
            if rank_a[layer] != rank_b[layer]
        ),
        key=lambda d: -d.shift,
    )
    return Comparison(
        metric,
        key_a,
        key_b,
        len(common),
        float(spearman.statistic),
        float(spearman.pvalue),
        float(kendall.statistic),
        float(kendall.pvalue),
        tuple(disagreements[:top]),
    )
