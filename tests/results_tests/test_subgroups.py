"""Subgroup analysis on generated test predictions where the truth is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from generated_studies import shift_for

from sweep.results import subgroup_analysis, subgroups_of
from sweep.stats import bootstrap_weights

REPEATS = 200


def _split(rng: np.random.Generator, aurocs: dict[str, float], per_group: int = 300, prevalence: float = 0.3):
    """Test targets and scores of subgroups whose true AUROCs are ``aurocs`` (binormal, unit noise)."""
    y, p, group = [], [], []
    for name, auroc in aurocs.items():
        labels = (rng.random(per_group) < prevalence).astype(np.float64)
        shift = shift_for(auroc) / math.sqrt(2 * (0.7**2 + 0.7**2)) * math.sqrt(2)  # unit-variance binormal
        y.append(labels)
        p.append(shift * labels + rng.normal(0, 1, per_group))
        group += [name] * per_group
    return np.concatenate(y), np.concatenate(p), np.asarray(group, dtype=object)


def _flagged(seed: int, aurocs: dict[str, float]) -> bool:
    rng = np.random.default_rng(seed)
    y, p, group = _split(rng, aurocs)
    weights = bootstrap_weights(np.arange(len(y)).astype(str), 300, seed=seed)
    return subgroup_analysis(y, p, 0.5, {"g": group}, weights)["g"]["auroc_gap"]["flagged"]


def test_a_planted_auroc_gap_is_flagged_and_equal_subgroups_are_not():
    """Two subgroups of 300 images, AUROC 0.85 against 0.70: flagged in at least 90% of 200 draws.
    Four equally good subgroups (the largest of six gaps is tested, at a corrected level): flagged
    in at most 5% of draws, within two binomial standard errors (3.1 points)."""
    planted = sum(_flagged(seed, {"F": 0.70, "M": 0.85}) for seed in range(REPEATS)) / REPEATS
    assert planted >= 0.9, planted
    null = sum(_flagged(seed, dict.fromkeys(("0-17", "18-39", "40-59", "60-79"), 0.78)) for seed in range(REPEATS)) / REPEATS
    assert null <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / REPEATS), null


def test_small_subgroups_are_listed_never_scored_and_unknown_values_are_left_out():
    rng = np.random.default_rng(0)
    y, p, group = _split(rng, {"F": 0.8, "M": 0.8})
    group[:20] = None  # unknown sex
    group[-15:] = "X"  # 15 images: too few positives to score
    weights = bootstrap_weights(np.arange(len(y)).astype(str), 200, seed=0)
    result = subgroup_analysis(y, p, 0.5, {"sex": group}, weights)["sex"]
    assert set(result["subgroups"]) == {"F", "M", "X"}
    small = result["subgroups"]["X"]
    assert small["too_small"] and "auroc" not in small and small["images"] == 15
    scored = result["subgroups"]["F"]
    assert scored["images"] == 280 and scored["auroc"]["low"] <= scored["auroc"]["estimate"] <= scored["auroc"]["high"]
    fnr = scored["false_negative_rate"]["estimate"]
    positives = (y == 1) & (group == "F")
    assert fnr == pytest.approx(np.mean(p[positives] < 0.5))
    assert {result["auroc_gap"]["higher"], result["auroc_gap"]["lower"]} == {"F", "M"}


def test_groupings_come_from_the_tables_sex_age_bands_and_view_position():
    table = pd.DataFrame({"sex": ["F", "M", None], "age": [12.0, 85.0, float("nan")], "position": ["PA", "AP", None]})
    groups = subgroups_of(table)
    assert groups["age"].tolist() == ["0-17", "80+", None] and groups["sex"].tolist() == ["F", "M", None]
    assert list(groups) == ["sex", "position", "age"]
    assert subgroups_of(pd.DataFrame({"sex": [None, None]})) == {}
