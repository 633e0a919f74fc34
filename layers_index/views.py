"""Reading the OCL dictionary: one row per layer, the best one marked, as a table, CSV or JSON.

The stored scores are long (one row per layer and kind); people and programs want them wide: per
dataset, task, weights and image size (a *profile*), one row per layer in network order with its
probe AUROC, LogME, sweep best and mean AUROC and how many sweep trials used it.

Which layer is best: the sweep's own result wins where there is one, because a sweep trial is the
real classifier (tuned head, optimizer, learning rate) while a probe is a proxy. So in a profile
with any sweep score, layers are ranked by ``sweep_best_auroc``, and the layers no sweep trial
used follow, by ``probe_auroc``; in a profile without sweep scores, by ``probe_auroc`` alone.
``best_by`` names the score that picked the best layer.

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

__all__ = ["COLUMNS", "GROUP", "SCORE_COLUMNS", "dictionary_frame", "format_csv", "format_json", "format_tables", "top_layers"]

GROUP = ["dataset", "task", "weights", "image_size"]
"""The columns that identify one profile: scores are comparable only within one."""
SCORE_COLUMNS = list(SCORE_KINDS)
"""One column per kind of score, in :data:`layers_index.SCORE_KINDS` order."""
COLUMNS = [*GROUP, "layer", "block", "depth", "layer_index", "channels", *SCORE_COLUMNS, "n_trials", "rank", "best", "best_by"]


def dictionary_frame(
    storage_url: str,
    *,
    dataset: str | None = None,
    task: str | None = None,
    weights: str | None = None,
    image_size: int | None = None,
) -> pd.DataFrame:
    """The dictionary as a wide frame with :data:`COLUMNS`, profiles one after another, layers in network order."""
    rows: dict[tuple, dict[str, Any]] = {}
    for score in read_scores(storage_url, dataset=dataset, task=task, weights=weights, image_size=image_size):
        key = (*(score[c] for c in GROUP), score["layer"])
        row = rows.setdefault(
            key,
            {
                **{c: score[c] for c in (*GROUP, "layer", "block", "depth", "layer_index", "channels")},
                **dict.fromkeys(SCORE_COLUMNS, math.nan),
                "n_trials": 0,
            },
        )
        row[score["kind"]] = score["value"]
        if score["kind"].startswith("sweep_"):
            row["n_trials"] = score["n_trials"]
    frame = pd.DataFrame(list(rows.values()), columns=COLUMNS[: COLUMNS.index("rank")])
    frame = frame.sort_values([*GROUP, "layer_index"], kind="stable").reset_index(drop=True)
    frame = frame.astype(
        {
            "depth": "Int64",
            "layer_index": "Int64",
            "channels": "Int64",
            "n_trials": "Int64",
            "image_size": "Int64",
            **dict.fromkeys(SCORE_COLUMNS, "float64"),
        }
    )
    ranked = [_rank(profile) for _, profile in frame.groupby(GROUP, sort=False)]
    return pd.concat(ranked) if ranked else frame.reindex(columns=COLUMNS)


def _rank(profile: pd.DataFrame) -> pd.DataFrame:
    """Rank one profile's layers (1 = best) by the rule in the module docstring."""
    profile = profile.copy()
    by_sweep = bool(profile["sweep_best_auroc"].notna().any())
    key = profile[["sweep_best_auroc", "probe_auroc"]] if by_sweep else profile[["probe_auroc"]]
    order = key.sort_values(list(key.columns), ascending=False, na_position="last", kind="stable").index
    scored = [i for i in order if key.loc[i].notna().any()]
    profile["rank"] = pd.Series(range(1, len(scored) + 1), index=scored, dtype="Int64").reindex(profile.index)
    profile["best"] = (profile["rank"] == 1).fillna(False).astype(bool)
    profile["best_by"] = "sweep_best_auroc" if by_sweep else "probe_auroc"
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


def format_tables(frame: pd.DataFrame) -> list[Table]:
    """One rich table per profile; the best layer is starred and bold."""
    tables = []
    for (dataset, task, weights, image_size), profile in frame.groupby(GROUP, sort=False):
        by = profile["best_by"].iloc[0].replace("_", " ").replace("auroc", "AUROC")
        table = Table(
            title=f"{dataset} · task {task} · weights {weights} · {image_size} px",
            caption=f"★ best layer, by {by}",
            title_justify="left",
        )
        for name, left in (
            ("", True),
            ("depth", False),
            ("layer", True),
            ("block", True),
            ("channels", False),
            ("probe AUROC", False),
            ("LogME", False),
            ("sweep best", False),
            ("sweep mean", False),
            ("trials", False),
            ("rank", False),
        ):
            table.add_column(name, justify="left" if left else "right", no_wrap=True)
        for row in profile.itertuples(index=False):
            table.add_row(
                "★" if row.best else "",
                "-" if pd.isna(row.depth) else str(row.depth),
                row.layer,
                row.block,
                str(row.channels),
                _number(row.probe_auroc, 4),
                _number(row.logme, 4),
                _number(row.sweep_best_auroc, 4),
                _number(row.sweep_mean_auroc, 4),
                str(row.n_trials),
                "-" if pd.isna(row.rank) else str(row.rank),
                style="bold" if row.best else None,
            )
        tables.append(table)
    return tables
