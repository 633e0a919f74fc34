"""The layer-profile figure: cross-fitted score against depth per strategy and weights, probe and LogME beside it."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from sweep.model import CANDIDATES

if TYPE_CHECKING:
    pass

from sweep.report._data import ProfileCurve, ReportData
from sweep.report._plotting import HEIGHTS, STRATEGY_COLOURS, WEIGHTS_DASH, _add_band, _add_line, _blocks_on, _rgba


def _profile_figure(data: ReportData) -> Any:
    """The layer profile: sweep candidates with CI bars and bands, the probe, LogME below, the answer starred."""
    from plotly.subplots import make_subplots

    sweep = [c for c in data.profile if c.kind == "sweep"]
    logme = [c for c in data.profile if c.kind == "logme"]
    rows = 2 if logme else 1
    figure = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.7, 0.3] if rows == 2 else [1.0],
        vertical_spacing=0.08,
        subplot_titles=["validation AUROC", "LogME (dictionary; higher = better features)"][:rows],
    )
    several_weights = len({c.weights for c in sweep}) > 1
    for curve in sweep:
        _add_sweep_curve(figure, curve, several_weights)
    for curve in (c for c in data.profile if c.kind == "probe_auroc"):
        _add_probe_curve(figure, curve)
    for curve in logme:
        _add_line(figure, curve, "#2ca02c", "LogME %{y:.4f}", row=2)
    _add_answer_star(figure, data.headline)
    figure.add_hline(
        y=0.5,
        line_dash="dot",
        line_color="#999",
        row=1,
        col=1,
        annotation_text="chance",
        annotation_position="bottom left",
        annotation_font_size=10,
    )
    _blocks_on(figure, data.blocks, rows)
    figure.update_xaxes(range=[-1, len(CANDIDATES)], zeroline=False)
    figure.update_xaxes(title_text="cut-off layer depth (0 = stem conv1_relu … 62 = final relu)", row=rows, col=1)
    figure.update_yaxes(title_text="AUROC", row=1, col=1)
    figure.update_layout(
        height=HEIGHTS["profile_logme" if rows == 2 else "profile"],
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 40, "b": 60},
        legend={"orientation": "h", "yanchor": "top", "y": -0.14 if rows == 1 else -0.1, "x": 0},
        hovermode="closest",
    )
    return figure


def _add_sweep_curve(figure: Any, curve: ProfileCurve, several_weights: bool) -> None:
    """One strategy's (and weights') candidates: band, markers (open: not judged) with CI bars."""
    import plotly.graph_objects as go

    colour = STRATEGY_COLOURS.get(curve.strategy or "", "#555")
    dash = WEIGHTS_DASH.get(curve.weights, "dashdot") if several_weights else "solid"
    x, lo, hi = list(curve.depth), list(curve.low), list(curve.high)
    if len(x) > 1:
        _add_band(figure, x, lo, hi, _rgba(colour, 0.12), curve.label)
    symbols = ["circle" if judged else "circle-open" for judged in curve.judged]
    figure.add_trace(
        go.Scatter(
            x=x,
            y=list(curve.values),
            mode="lines+markers",
            name=curve.label,
            legendgroup=curve.label,
            line={"color": colour, "dash": dash, "width": 2},
            marker={"symbol": symbols, "size": 9, "color": colour, "line": {"color": colour, "width": 2}},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [h - v for h, v in zip(hi, curve.values)],
                "arrayminus": [v - low for v, low in zip(curve.values, lo)],
                "color": _rgba(colour, 0.5),
                "thickness": 1,
                "width": 3,
            },
            customdata=[
                [layer, low, high, n, "in the confidence set" if s else ("not judged" if not j else "")]
                for layer, low, high, n, s, j in zip(curve.layers, lo, hi, curve.n_trials, curve.in_set, curve.judged)
            ],
            hovertemplate="<b>%{customdata[0]}</b> (depth %{x})<br>AUROC %{y:.3f} [%{customdata[1]:.3f}, "
            "%{customdata[2]:.3f}]<br>%{customdata[3]} trial(s) %{customdata[4]}<extra>" + curve.label + "</extra>",
        ),
        row=1,
        col=1,
    )


def _add_probe_curve(figure: Any, curve: ProfileCurve) -> None:
    """The dictionary's linear probe AUROC, dashed grey, with its band when stored."""
    if curve.low:
        _add_band(figure, list(curve.depth), list(curve.low), list(curve.high), "rgba(107,114,128,0.08)", curve.label)
    _add_line(figure, curve, "#6b7280", "probe AUROC %{y:.3f}", row=1, dash="dash")


def _add_answer_star(figure: Any, best: dict[str, Any] | None) -> None:
    """A star on the answer (or on the best candidate so far, labelled as not judged)."""
    import plotly.graph_objects as go

    if best is None or best.get("depth") is None:
        return
    figure.add_trace(
        go.Scatter(
            x=[best["depth"]],
            y=[best["score"]],
            mode="markers",
            name="the answer" if best["judged"] else "best so far (not judged)",
            marker={"symbol": "star", "size": 18, "color": "#f2b705", "line": {"color": "#333", "width": 1}},
            hovertemplate=f"<b>{html.escape(best['layer'])}</b><br>AUROC %{{y:.3f}}<extra>answer</extra>",
        ),
        row=1,
        col=1,
    )
