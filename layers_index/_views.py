"""Reading the OCL dictionary: one row per layer, the best one marked, as a table, CSV or JSON.

The stored scores are long (one row per layer and kind); people and programs want them wide: per
dataset, task, split fingerprint, weights and image size (a *profile*), one row per layer in
network order with its probe AUROC, LogME, and the sweep's scores per strategy.

Which layer is best is decided on ONE score that is comparable across the profile's layers, never
on a mix, and never on the maximum over trials (which rewards the layers a sampler visited most):

- ``probe_auroc`` when ``ocl dictionary build`` scored the profile: the same linear probe on every
  candidate layer, so all 63 are ranked;
- otherwise ``sweep_auroc``: a sweep's cross-fitted feature-extraction score (with its 95%
  interval, :mod:`sweep.results._answer`); layers with fewer than ``MIN_TRIALS`` sweep trials, or none, are
  listed but not ranked.

``best_by`` names the score that ranked the profile.

Example:
    >>> frame = dictionary_frame("sqlite:///studies/ocl.db", dataset="nih-cxr14-sample")
    >>> frame.loc[frame["best"], "layer"]
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
from rich.table import Table

from layers_index import SCORE_KINDS
from layers_index._store import read_scores
from sweep.stats import MIN_TRIALS

__all__ = ["COLUMNS", "GROUP", "SCORE_COLUMNS", "dictionary_frame", "format_csv", "format_json", "format_tables", "top_layers"]

GROUP = ["dataset", "task", "fingerprint", "weights", "image_size"]
"""The columns that identify one profile: scores are comparable only within one."""
SCORE_COLUMNS = list(SCORE_KINDS)
"""One column per kind of score, in :data:`layers_index.SCORE_KINDS` order."""
INTERVAL_KINDS = ("probe_auroc", "sweep_auroc", "ft_sweep_auroc")
INTERVAL_COLUMNS = [f"{kind}_{end}" for kind in INTERVAL_KINDS for end in ("low", "high")]
"""The 95% interval of each score that has one, e.g. ``sweep_auroc_low``."""
COLUMNS = [
    *GROUP,
    "layer",
    "block",
    "depth",
    "layer_index",
    "channels",
    *SCORE_COLUMNS,
    *INTERVAL_COLUMNS,
    "n_trials",
    "ft_n_trials",
    "rank",
    "best",
    "best_by",
]


def dictionary_frame(
    storage_url: str,
    *,
    dataset: str | None = None,
    task: str | None = None,
    weights: str | None = None,
    image_size: int | None = None,
    fingerprint: str | None = None,
) -> pd.DataFrame:
    """The dictionary as a wide frame with :data:`COLUMNS`, profiles one after another, layers in network order."""
    rows: dict[tuple, dict[str, Any]] = {}
    found = read_scores(storage_url, dataset=dataset, task=task, weights=weights, image_size=image_size, fingerprint=fingerprint)
    for score in found:
        key = (*(score[c] for c in GROUP), score["layer"])
        row = rows.setdefault(
            key,
            {
                **{c: score[c] for c in (*GROUP, "layer", "block", "depth", "layer_index", "channels")},
                **dict.fromkeys(SCORE_COLUMNS + INTERVAL_COLUMNS, math.nan),
                "n_trials": 0,
                "ft_n_trials": 0,
            },
        )
        kind = score["kind"]
        row[kind] = score["value"]
        if kind in INTERVAL_KINDS:
            row[f"{kind}_low"] = math.nan if score["low"] is None else score["low"]
            row[f"{kind}_high"] = math.nan if score["high"] is None else score["high"]
        if kind.startswith("sweep_"):
            row["n_trials"] = score["n_trials"]
        elif kind.startswith("ft_sweep_"):
            row["ft_n_trials"] = score["n_trials"]
    frame = pd.DataFrame(list(rows.values()), columns=COLUMNS[: COLUMNS.index("rank")])
    frame = frame.sort_values([*GROUP, "layer_index"], kind="stable").reset_index(drop=True)
    frame = frame.astype(
        {
            "depth": "Int64",
            "layer_index": "Int64",
            "channels": "Int64",
            "n_trials": "Int64",
            "ft_n_trials": "Int64",
            "image_size": "Int64",
            **dict.fromkeys(SCORE_COLUMNS + INTERVAL_COLUMNS, "float64"),
        }
    )
    ranked = [_rank(profile) for _, profile in frame.groupby(GROUP, sort=False)]
    return pd.concat(ranked) if ranked else frame.reindex(columns=COLUMNS)


def _rank(profile: pd.DataFrame) -> pd.DataFrame:
    """Rank one profile's layers (1 = best) on one comparable score (see the module docstring)."""
    profile = profile.copy()
    by = "probe_auroc" if profile["probe_auroc"].notna().any() else "sweep_auroc"
    eligible = profile[by].notna()
    if by == "sweep_auroc":  # as in the sweep's answer: too few trials to judge is never ranked
        eligible &= profile["n_trials"].fillna(0) >= MIN_TRIALS
    scored = profile.loc[eligible, by].sort_values(ascending=False, kind="stable").index
    profile["rank"] = pd.Series(range(1, len(scored) + 1), index=scored, dtype="Int64").reindex(profile.index)
    profile["best"] = (profile["rank"] == 1).fillna(False).astype(bool)
    profile["best_by"] = by
    return profile


def top_layers(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` best layers of each profile, best first."""
    if n < 1:
        raise ValueError(f"n={n}: expected at least 1")
    return frame.dropna(subset=["rank"]).sort_values([*GROUP, "rank"], kind="stable").groupby(GROUP, sort=False).head(n)


def format_csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def format_json(frame: pd.DataFrame) -> str:
    """A JSON list of row objects; missing scores are ``null``."""
    return json.dumps(json.loads(frame.to_json(orient="records")), indent=2)


def _number(value: Any, digits: int) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def _interval(row: Any, kind: str) -> str:
    value, low, high = getattr(row, kind), getattr(row, f"{kind}_low"), getattr(row, f"{kind}_high")
    if pd.isna(value):
        return "-"
    return f"{value:.3f}" if pd.isna(low) else f"{value:.3f} [{low:.2f}, {high:.2f}]"


NARROW = 120
"""Terminals narrower than this get the compact table: the ranked score with its interval only."""


def format_tables(frame: pd.DataFrame, width: int | None = None) -> list[Table]:
    """One rich table per profile; the best layer is starred and bold; scores with their 95% intervals.

    Below :data:`NARROW` columns (an 80-column terminal) the table keeps what the ranking needs:
    star, depth, layer, the ranked score with its interval, trials and rank.
    """
    narrow = width is not None and width < NARROW
    tables = []
    for (dataset, task, fingerprint, weights, image_size), profile in frame.groupby(GROUP, sort=False):
        by = profile["best_by"].iloc[0]
        unranked = int(profile["rank"].isna().sum())
        caption = f"★ best layer by {by.replace('_', ' ').replace('auroc', 'AUROC')}"
        if unranked:
            caption += f"; {unranked} layer(s) without that score"
            caption += f" (or with fewer than {MIN_TRIALS} trials)" if by == "sweep_auroc" else ""
            caption += " are not ranked"
        if by == "sweep_auroc":
            caption += "; `ocl dictionary build` scores all 63 layers with a probe"
        table = Table(
            title=f"{dataset} · task {task} · split {fingerprint} · weights {weights} · {image_size} px",
            caption=caption,
            title_justify="left",
            caption_justify="left",
        )
        has_ft = bool(profile["ft_sweep_auroc"].notna().any()) and not narrow
        cells_of = {
            "": lambda row: "★" if row.best else "",
            "depth": lambda row: "-" if pd.isna(row.depth) else str(row.depth),
            "layer": lambda row: row.layer,
            "block": lambda row: row.block,
            "probe AUROC [95% CI]": lambda row: _interval(row, "probe_auroc"),
            "LogME": lambda row: _number(row.logme, 4),
            "sweep FE [95% CI]": lambda row: _interval(row, "sweep_auroc"),
            "trials": lambda row: str(row.n_trials),
            "sweep FT [95% CI]": lambda row: _interval(row, "ft_sweep_auroc"),
            "FT trials": lambda row: str(row.ft_n_trials),
            "rank": lambda row: "-" if pd.isna(row.rank) else str(row.rank),
        }
        if narrow:
            ranked = "probe AUROC [95% CI]" if by == "probe_auroc" else "sweep FE [95% CI]"
            names = ["", "depth", "layer", ranked, "trials", "rank"]
        else:
            names = ["", "depth", "layer", "block", "probe AUROC [95% CI]", "LogME", "sweep FE [95% CI]", "trials"]
            names += ["sweep FT [95% CI]", "FT trials"] if has_ft else []
            names += ["rank"]
        for name in names:
            left = name in ("", "layer", "block")
            table.add_column(name, justify="left" if left else "right", no_wrap=True, min_width=len(name) if name else 1)
        for row in profile.itertuples(index=False):
            table.add_row(*(cells_of[name](row) for name in names), style="bold" if row.best else None)
        tables.append(table)
    return tables
