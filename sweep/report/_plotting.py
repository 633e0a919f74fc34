"""What every report figure shares: colours, heights, bands, lines and the dense blocks shaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from sweep.report._data import ProfileCurve
from sweep.training import FEATURE_EXTRACTION, FINE_TUNING

STRATEGY_COLOURS = {FEATURE_EXTRACTION: "#1f77b4", FINE_TUNING: "#d62728"}


WEIGHTS_DASH = {"imagenet": "solid", "none": "dot"}


HEIGHTS = {"profile": 440, "profile_logme": 600, "history": 340, "roc": 420}
"""Plot heights in pixels: fixed, so a plot never collapses or fills a whole screen."""


def _blocks_on(figure: Any, blocks: Sequence[tuple[str, int, int]], rows: int) -> None:
    for block, first, last in blocks:
        for row in range(1, rows + 1):
            label = {"annotation_text": block, "annotation_position": "top left", "annotation_font_size": 11} if row == 1 else {}
            figure.add_vrect(
                x0=first - 0.5, x1=last + 0.5, fillcolor="#9aa5b1", opacity=0.13, line_width=0, row=row, col=1, **label
            )


def _add_band(figure: Any, x: list, low: list, high: list, fill: str, group: str) -> None:
    """A shaded interval band under a curve (one closed polygon, no legend entry)."""
    import plotly.graph_objects as go

    figure.add_trace(
        go.Scatter(
            x=x + x[::-1],
            y=high + low[::-1],
            mode="lines",
            fill="toself",
            fillcolor=fill,
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
            legendgroup=group,
        ),
        row=1,
        col=1,
    )


def _add_line(figure: Any, curve: ProfileCurve, colour: str, value: str, *, row: int, dash: str = "solid") -> None:
    import plotly.graph_objects as go

    figure.add_trace(
        go.Scatter(
            x=list(curve.depth),
            y=list(curve.values),
            mode="lines",
            name=curve.label,
            legendgroup=curve.label,
            line={"color": colour, "dash": dash, "width": 1.5},
            text=list(curve.layers),
            hovertemplate="%{text} (depth %{x})<br>" + value + "<extra></extra>",
        ),
        row=row,
        col=1,
    )


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"
