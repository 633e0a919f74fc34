"""The ROC figure of the held-out test evaluation, one curve per output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from sweep.report._plotting import HEIGHTS


def _roc_figure(evaluation: dict[str, Any]) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure()
    for output, (fpr, tpr) in evaluation["roc"].items():
        figure.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=output))
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "gray"}))
    figure.update_layout(
        height=HEIGHTS["roc"],
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 20, "b": 50},
        xaxis_title="1 − specificity",
        yaxis_title="sensitivity",
        xaxis={"range": [0, 1], "constrain": "domain"},
        yaxis={"range": [0, 1.02], "scaleanchor": "x", "constrain": "domain"},
    )
    return figure
