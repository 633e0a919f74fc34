"""The optimisation-history figure: every finished trial's validation AUROC and the best so far."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from sweep.report._data import STRATEGY_NAMES, ReportData, _weights_name
from sweep.report._plotting import HEIGHTS, STRATEGY_COLOURS


def _history_figure(data: ReportData) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure()
    for strategy in sorted({h["strategy"] for h in data.history}):
        done = [h for h in data.history if h["strategy"] == strategy and h["state"] == "COMPLETE" and h["value"] is not None]
        if done:
            figure.add_trace(
                go.Scatter(
                    x=[h["number"] for h in done],
                    y=[h["value"] for h in done],
                    mode="markers",
                    name=STRATEGY_NAMES.get(strategy, strategy),
                    marker={"color": STRATEGY_COLOURS.get(strategy, "#555"), "size": 8},
                    text=[f"{h['layer']} (depth {h['depth']}, weights {_weights_name(h['weights'])})" for h in done],
                    hovertemplate="trial %{x}: %{y:.3f}<br>%{text}<extra></extra>",
                )
            )
    pruned = [h for h in data.history if h["state"] == "PRUNED" and h["value"] is not None]
    if pruned:
        figure.add_trace(
            go.Scatter(
                x=[h["number"] for h in pruned],
                y=[h["value"] for h in pruned],
                mode="markers",
                name="pruned (last epoch's value)",
                marker={"color": "#9ca3af", "symbol": "x", "size": 7},
                text=[h["layer"] for h in pruned],
                hovertemplate="trial %{x} pruned at %{y:.3f}<br>%{text}<extra></extra>",
            )
        )
    complete = sorted((h["number"], h["value"]) for h in data.history if h["state"] == "COMPLETE" and h["value"] is not None)
    if complete:
        best, running = [], -math.inf
        for _, value in complete:
            running = max(running, value)
            best.append(running)
        figure.add_trace(
            go.Scatter(
                x=[n for n, _ in complete],
                y=best,
                mode="lines",
                line={"shape": "hv", "color": "#111", "width": 1.5},
                name="best single trial so far",
                hoverinfo="skip",
            )
        )
    figure.update_layout(
        height=HEIGHTS["history"],
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 20, "b": 50},
        xaxis_title="trial number",
        yaxis_title=data.answer.get("value_name", "validation mean AUROC"),
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    )
    return figure
