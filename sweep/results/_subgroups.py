"""Performance per subgroup (sex, age band, view position), and whether the largest gap is real.

Chest X-ray classifiers are known to underdiagnose some groups: higher false "no finding" rates
for female, young, Black and low-income patients (Seyyed-Kalantari et al., Nature Medicine 2021).
So ``ocl evaluate`` scores the test split per subgroup of each grouping the data has
(:mod:`sweep.data._demographics`): images, prevalence, AUROC and the false-negative rate at the
chosen operating point (for the ``any`` task, the rate at which a finding is called "no finding":
the underdiagnosis rate), each with a patient-level bootstrap interval.

A subgroup with fewer than :data:`MIN_SUBGROUP` positives or negatives is listed as too small and
never scored. Of the scored ones, the pair with the largest AUROC gap (and the pair with the
largest false-negative-rate gap) is tested: its paired bootstrap interval, at a level corrected
for the number of pairs that could have been the largest (Bonferroni), must exclude 0 for the gap
to be flagged. With equally good subgroups a gap is then flagged at most 5% of the time, however
many age bands there are.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from sweep.data import age_band
from sweep.stats import LEVEL, rates_resampled, weighted_auroc

__all__ = ["MIN_SUBGROUP", "gap_lines", "subgroup_analysis", "subgroups_of"]

MIN_SUBGROUP = 10


def subgroups_of(table: Any, extra: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The groupings of these dataset rows: ``sex``, ``age`` (bands 0-17 ... 80+) and ``position``,
    for the columns the data has, and the ``extra`` columns (``--subgroup site``) by their values;
    None where a row's value is unknown."""
    groups: dict[str, np.ndarray] = {}
    for column in ("sex", "position", *extra):
        if column in table:
            groups[column] = np.asarray([v if isinstance(v, str) else None for v in table[column]], dtype=object)
    if "age" in table:
        groups["age"] = np.asarray([age_band(a) for a in np.asarray(table["age"], np.float64)], dtype=object)
    return {name: values for name, values in groups.items() if any(v is not None for v in values)}


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    tail = (1 - level) / 2 * 100
    return tuple(float(v) for v in np.percentile(finite, [tail, 100 - tail])) if len(finite) else (np.nan, np.nan)


def _level(y: np.ndarray, p: np.ndarray, threshold: float, weights: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
    """One subgroup: counts, and (when large enough) AUROC and false-negative rate, point and resampled."""
    known = rows & ~np.isnan(y)
    positives, negatives = int((y[known] == 1).sum()), int((y[known] == 0).sum())
    out: dict[str, Any] = {"images": int(rows.sum()), "positives": positives, "prevalence": positives / max(known.sum(), 1)}
    out["too_small"] = positives < MIN_SUBGROUP or negatives < MIN_SUBGROUP
    if out["too_small"]:
        return out
    every = np.vstack([np.ones((1, len(y))), weights])[:, rows]
    auroc = weighted_auroc(y[rows], p[rows], every)
    fnr = 1 - rates_resampled(y[rows], p[rows], threshold, every)["sensitivity"]
    return {**out, "_auroc": auroc, "_fnr": fnr}


def _gap(levels: dict[str, dict], key: str, level: float) -> dict[str, Any] | None:
    """The largest gap in ``key`` between two scored subgroups, with its corrected paired interval."""
    scored = [name for name, facts in levels.items() if not facts["too_small"]]
    if len(scored) < 2:
        return None
    pairs = list(combinations(scored, 2))
    a, b = max(pairs, key=lambda pair: abs(levels[pair[0]][key][0] - levels[pair[1]][key][0]))
    if levels[a][key][0] < levels[b][key][0]:
        a, b = b, a
    difference = levels[a][key] - levels[b][key]
    low, high = _interval(difference[1:], 1 - (1 - level) / len(pairs))
    return {"higher": a, "lower": b, "estimate": float(difference[0]), "low": low, "high": high, "flagged": bool(low > 0)}


def subgroup_analysis(
    y: np.ndarray, p: np.ndarray, threshold: float, groups: dict[str, np.ndarray], weights: np.ndarray, level: float = LEVEL
) -> dict[str, Any]:
    """Per grouping: each subgroup's facts (AUROC and false-negative rate with intervals, or too
    small), and the largest AUROC and false-negative-rate gaps with whether they are flagged.

    Args:
        y, p: one output's test targets and (calibrated) scores.
        threshold: the chosen operating point's threshold.
        groups: grouping name to each image's subgroup (None: unknown, left out).
        weights: the test split's patient-level bootstrap weights, ``(resamples, images)``.
    """
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    result: dict[str, Any] = {}
    for name, values in groups.items():
        names = sorted({v for v in values if v is not None}, key=str)
        levels = {v: _level(y, p, threshold, weights, np.asarray([x == v for x in values])) for v in names}
        gaps = {"auroc_gap": _gap(levels, "_auroc", level), "fnr_gap": _gap(levels, "_fnr", level)}
        shown = {}
        for value, facts in levels.items():
            public = {k: v for k, v in facts.items() if not k.startswith("_")}
            for key, label in (("_auroc", "auroc"), ("_fnr", "false_negative_rate")):
                if key in facts:
                    low, high = _interval(facts[key][1:], level)
                    public[label] = {"estimate": float(facts[key][0]), "low": low, "high": high}
            shown[value] = public
        result[name] = {"subgroups": shown, **gaps}
    return result


def gap_lines(subgroups: dict[str, Any]) -> list[str]:
    """One line per flagged gap: which subgroup does worse, by how much, with its interval."""
    lines = []
    for output, groupings in subgroups.items():
        for grouping, found in groupings.items():
            for key, what in (("auroc_gap", "AUROC"), ("fnr_gap", "false-negative rate")):
                gap = found.get(key)
                if gap and gap["flagged"]:
                    worse = gap["lower"] if key == "auroc_gap" else gap["higher"]
                    lines.append(
                        f"{output}: {what} differs between {grouping} {gap['higher']} and {gap['lower']} by "
                        f"{gap['estimate']:.3f} [{gap['low']:.3f}, {gap['high']:.3f}] (worse: {worse})"
                    )
    return lines
