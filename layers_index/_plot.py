"""``ocl dictionary plot``: scores against depth, one curve per profile, as self-contained HTML.

Data first, picture second: :func:`plot_data` turns the dictionary frame into plain curves (what
tests check), :func:`draw` turns those into a plotly figure. One panel per score kind that has
values, x = the layer's position in DenseNet-121 (so layers a sweep named outside the 63
candidates still fall in place), dense blocks shaded. When a dataset has both ``imagenet`` and
``none`` scores, a last panel shows the transfer gain, imagenet minus none, per score kind on the
layers both have: the poster's question of what ImageNet pretraining buys, layer by layer.

Example:
    >>> data = plot_data(dictionary_frame("sqlite:///studies/ocl.db"))
    >>> write_html(draw(data), Path("dictionary.html"))
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd

from layers_index._views import GROUP
from sweep.model import BlockSpan, block_spans

__all__ = ["PLOT_METRICS", "BlockSpan", "Curve", "PlotData", "draw", "plot_data", "write_html"]

PLOT_METRICS = ("probe_auroc", "logme", "sweep_auroc", "ft_sweep_auroc")
TITLES = {
    "probe_auroc": "linear probe AUROC",
    "logme": "LogME",
    "sweep_auroc": "sweep AUROC, feature extraction (cross-fitted)",
    "ft_sweep_auroc": "sweep AUROC, fine-tuning (cross-fitted)",
    "sweep_best_auroc": "sweep best AUROC",
    "sweep_mean_auroc": "sweep mean AUROC",
    "ft_sweep_best_auroc": "sweep best AUROC, fine-tuning",
    "ft_sweep_mean_auroc": "sweep mean AUROC, fine-tuning",
}
PANEL_HEIGHT = 260
"""Pixels per panel: the figure has a fixed height, so the page never stretches a plot to the window."""


class Curve(NamedTuple):
    """One line: a score kind over the layers of one profile (or the gain between two)."""

    label: str
    metric: str
    dataset: str
    weights: str
    x: tuple[int, ...]  # layer_index
    layers: tuple[str, ...]
    values: tuple[float, ...]
    low: tuple[float, ...] = ()  # the 95% interval, for scores that have one (else empty)
    high: tuple[float, ...] = ()


class PlotData(NamedTuple):
    metrics: tuple[str, ...]  # the panels, in order; each curve's metric is one of them
    curves: tuple[Curve, ...]
    gains: tuple[Curve, ...]  # imagenet minus none; metric says which score
    blocks: tuple[BlockSpan, ...]


LABELLED = ("task", "image_size", "fingerprint")


def _label(key: dict, varying: list[str]) -> str:
    """``dataset · weights``, plus task, image size and split when the dictionary holds several."""
    parts = [str(key["dataset"]), str(key["weights"])]
    for column in (c for c in LABELLED if c in varying):
        value = key.get(column)
        parts.append(
            f"{value} px" if column == "image_size" else f"split {str(value)[:6]}" if column == "fingerprint" else str(value)
        )
    return " · ".join(parts)


def _curve(key: dict, varying: list[str], metric: str, rows: pd.DataFrame, layers, values, *, interval: bool = False) -> Curve:
    low = high = ()
    if interval and f"{metric}_low" in rows and rows[f"{metric}_low"].notna().all() and rows[f"{metric}_high"].notna().all():
        low = tuple(float(v) for v in rows[f"{metric}_low"])
        high = tuple(float(v) for v in rows[f"{metric}_high"])
    return Curve(
        _label(key, varying),
        metric,
        key["dataset"],
        key["weights"],
        tuple(int(v) for v in rows["layer_index"]),
        tuple(layers),
        tuple(float(v) for v in values),
        low,
        high,
    )


def plot_data(frame: pd.DataFrame, metrics: tuple[str, ...] = PLOT_METRICS) -> PlotData:
    """Curves per (profile, score kind) that has values, gain curves, and the dense blocks' spans."""
    varying = [c for c in ("task", "image_size") if frame[c].nunique() > 1]
    if "fingerprint" in frame and len(frame) and frame.groupby("dataset")["fingerprint"].nunique().max() > 1:
        varying.append("fingerprint")  # a dataset split two ways: say which split each curve is
    curves: list[Curve] = []
    for keys, profile in frame.groupby(GROUP, sort=False):
        key = dict(zip(GROUP, keys, strict=True))
        for metric in metrics:
            rows = profile.dropna(subset=[metric]).sort_values("layer_index")
            if len(rows):
                curves.append(_curve(key, varying, metric, rows, rows["layer"], rows[metric], interval=True))
    shown = tuple(m for m in metrics if any(c.metric == m for c in curves))
    return PlotData(shown, tuple(curves), tuple(_gains(frame, shown, varying)), tuple(_blocks(frame)))


def _gains(frame: pd.DataFrame, metrics: tuple[str, ...], varying: list[str]) -> list[Curve]:
    gains = []
    others = [c for c in GROUP if c != "weights"]
    for keys, profiles in frame.groupby(others, sort=False):
        by_weights = {w: p.set_index("layer") for w, p in profiles.groupby("weights")}
        if "imagenet" not in by_weights or "none" not in by_weights:
            continue
        pretrained, scratch = by_weights["imagenet"], by_weights["none"]
        key = {**dict(zip(others, keys, strict=True)), "weights": "imagenet − none"}
        for metric in metrics:
            both = pretrained[metric].notna() & scratch[metric].reindex(pretrained.index).notna()
            rows = pretrained[both].sort_values("layer_index")
            if len(rows):
                gain = rows[metric] - scratch.loc[rows.index, metric]
                gains.append(_curve(key, varying, metric, rows, rows.index, gain))
    return gains


def _blocks(frame: pd.DataFrame) -> list[BlockSpan]:
    return block_spans(dict(zip(frame["layer"], frame["layer_index"])))


def draw(data: PlotData):
    """A plotly figure of the plot data: one row of panels per score kind, then the gain panel.

    A profile keeps one colour and one legend entry across panels, so its curves read as one;
    a score with a 95% interval has it as a band. The figure's height is fixed per panel.
    """
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    panels = [TITLES.get(m, m) for m in data.metrics] + (["transfer gain, imagenet − none"] if data.gains else [])
    rows = max(len(panels), 1)
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, subplot_titles=panels, vertical_spacing=0.24 / rows)
    palette = qualitative.Plotly
    colours: dict[str, str] = {}
    for row, curve, name in _placed_curves(data, len(panels)):
        first = name not in colours
        colour = colours.setdefault(name, palette[len(colours) % len(palette)])
        if curve.low and len(curve.x) > 1:
            _add_interval_band(figure, curve, name, colour, row)
        _add_line(figure, curve, name, colour, row, show_legend=first)
    if data.gains:
        figure.add_hline(y=0, line_dash="dot", line_color="grey", row=len(panels), col=1)
    _add_block_shading(figure, data.blocks, rows)
    _add_axes_and_layout(figure, rows)
    return figure


def _placed_curves(data: PlotData, gain_row: int) -> list[tuple[int, Curve, str]]:
    """(panel row, curve, legend name) of every curve: score curves in their metric's row, gains in the last."""
    placed = [(row, c, c.label) for row, m in enumerate(data.metrics, start=1) for c in data.curves if c.metric == m]
    placed += [(gain_row, c, f"{c.label} ({TITLES.get(c.metric, c.metric)})") for c in data.gains]
    return placed


def _add_interval_band(figure, curve: Curve, name: str, colour: str, row: int) -> None:
    """Draw a curve's 95% interval as a faint band in its colour, grouped with its line in the legend."""
    import plotly.graph_objects as go

    figure.add_trace(
        go.Scatter(
            x=list(curve.x) + list(curve.x)[::-1],
            y=list(curve.high) + list(curve.low)[::-1],
            mode="lines",
            fill="toself",
            fillcolor=colour,
            opacity=0.15,
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
            legendgroup=name,
        ),
        row=row,
        col=1,
    )


def _add_line(figure, curve: Curve, name: str, colour: str, row: int, *, show_legend: bool) -> None:
    """Draw a curve as a line with markers; only a profile's first curve gets a legend entry."""
    import plotly.graph_objects as go

    figure.add_trace(
        go.Scatter(
            x=list(curve.x),
            y=list(curve.values),
            mode="lines+markers",
            name=name,
            text=list(curve.layers),
            line_color=colour,
            marker_size=5,
            legendgroup=name,
            showlegend=show_legend,
            hovertemplate="%{text}: %{y:.4f}<extra>" + name + "</extra>",
        ),
        row=row,
        col=1,
    )


def _add_block_shading(figure, blocks: tuple[BlockSpan, ...], rows: int) -> None:
    """Shade each dense block in every panel, and name it in the top one."""
    for span in blocks:
        for row in range(1, rows + 1):
            label = (
                {"annotation_text": span.block, "annotation_position": "top left", "annotation_font_size": 11} if row == 1 else {}
            )
            figure.add_vrect(
                x0=span.first - 0.5,
                x1=span.last + 0.5,
                fillcolor="lightgrey",
                opacity=0.25,
                line_width=0,
                row=row,
                col=1,
                **label,
            )


def _add_axes_and_layout(figure, rows: int) -> None:
    """Title the x axis and the figure, and fix the height per panel with the legend below the panels."""
    figure.update_xaxes(title_text="position in DenseNet-121 (layer index)", row=rows, col=1)
    figure.update_layout(
        title={"text": "OCL dictionary: layer-wise feature quality (dense blocks shaded)", "x": 0, "xanchor": "left"},
        height=PANEL_HEIGHT * rows + 170,
        hovermode="x unified",
        template="plotly_white",
        margin={"l": 70, "r": 30, "t": 80, "b": 120},
        legend={"orientation": "h", "yanchor": "top", "y": -70 / (PANEL_HEIGHT * rows), "x": 0},
    )


def write_html(figure, output: Path) -> Path:
    """Write the figure as one self-contained HTML file (plotly.js inside: opens offline), at its fixed height."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    text = figure.to_html(
        include_plotlyjs=True,
        full_html=True,
        div_id="dictionary-plot",
        config={"displaylogo": False, "responsive": True},
    )
    text = text.replace("<head>", "<head>\n    <title>OCL dictionary</title>", 1)
    output.write_text(text, encoding="utf-8")
    return output
