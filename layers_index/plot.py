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

from layers_index.views import GROUP

__all__ = ["PLOT_METRICS", "BlockSpan", "Curve", "PlotData", "draw", "plot_data", "write_html"]

PLOT_METRICS = ("probe_auroc", "logme", "sweep_best_auroc")
TITLES = {
    "probe_auroc": "linear probe AUROC",
    "logme": "LogME",
    "sweep_best_auroc": "sweep best AUROC",
    "sweep_mean_auroc": "sweep mean AUROC",
}


class Curve(NamedTuple):
    """One line: a score kind over the layers of one profile (or the gain between two)."""

    label: str
    metric: str
    dataset: str
    weights: str
    x: tuple[int, ...]  # layer_index
    layers: tuple[str, ...]
    values: tuple[float, ...]


class BlockSpan(NamedTuple):
    """The x range (first and last layer_index of its layers) of a dense block."""

    block: str
    first: int
    last: int


class PlotData(NamedTuple):
    metrics: tuple[str, ...]  # the panels, in order; each curve's metric is one of them
    curves: tuple[Curve, ...]
    gains: tuple[Curve, ...]  # imagenet minus none; metric says which score
    blocks: tuple[BlockSpan, ...]


def _label(key: dict, varying: list[str]) -> str:
    """``dataset · weights``, plus task and image size when the dictionary holds several."""
    parts = [str(key["dataset"]), str(key["weights"])]
    parts += [f"{key[c]} px" if c == "image_size" else str(key[c]) for c in ("task", "image_size") if c in varying]
    return " · ".join(parts)


def _curve(key: dict, varying: list[str], metric: str, rows: pd.DataFrame, layers, values) -> Curve:
    return Curve(
        _label(key, varying),
        metric,
        key["dataset"],
        key["weights"],
        tuple(int(v) for v in rows["layer_index"]),
        tuple(layers),
        tuple(float(v) for v in values),
    )


def plot_data(frame: pd.DataFrame, metrics: tuple[str, ...] = PLOT_METRICS) -> PlotData:
    """Curves per (profile, score kind) that has values, gain curves, and the dense blocks' spans."""
    varying = [c for c in ("task", "image_size") if frame[c].nunique() > 1]
    curves: list[Curve] = []
    for keys, profile in frame.groupby(GROUP, sort=False):
        key = dict(zip(GROUP, keys, strict=True))
        for metric in metrics:
            rows = profile.dropna(subset=[metric]).sort_values("layer_index")
            if len(rows):
                curves.append(_curve(key, varying, metric, rows, rows["layer"], rows[metric]))
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
    dense = frame[frame["block"].str.startswith("dense block")]
    spans = dense.groupby("block")["layer_index"].agg(["min", "max"]).sort_values("min")
    return [BlockSpan(block, int(row["min"]), int(row["max"])) for block, row in spans.iterrows()]


def draw(data: PlotData):
    """A plotly figure of the plot data: one row of panels per score kind, then the gain panel.

    A profile keeps one colour and one legend entry across panels, so its curves read as one.
    """
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    panels = [TITLES[m] for m in data.metrics] + (["transfer gain, imagenet − none"] if data.gains else [])
    rows = max(len(panels), 1)
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, subplot_titles=panels, vertical_spacing=0.06)
    placed = [(row, c, c.label) for row, m in enumerate(data.metrics, start=1) for c in data.curves if c.metric == m]
    placed += [(len(panels), c, f"{c.label} ({TITLES[c.metric]})") for c in data.gains]
    palette = qualitative.Plotly
    colours: dict[str, str] = {}
    for row, curve, name in placed:
        first = name not in colours
        colour = colours.setdefault(name, palette[len(colours) % len(palette)])
        figure.add_trace(
            go.Scatter(
                x=list(curve.x),
                y=list(curve.values),
                mode="lines+markers",
                name=name,
                text=list(curve.layers),
                line_color=colour,
                legendgroup=name,
                showlegend=first,
                hovertemplate="%{text}: %{y:.4f}<extra>" + name + "</extra>",
            ),
            row=row,
            col=1,
        )
    if data.gains:
        figure.add_hline(y=0, line_dash="dot", line_color="grey", row=len(panels), col=1)
    for span in data.blocks:  # shaded in every panel, named in the top one
        for row in range(1, rows + 1):
            label = {"annotation_text": span.block, "annotation_position": "top left"} if row == 1 else {}
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
    figure.update_xaxes(title_text="position in DenseNet-121 (layer index)", row=rows, col=1)
    figure.update_layout(
        title="OCL dictionary: layer-wise feature quality",
        height=320 * rows + 120,
        hovermode="x unified",
        template="plotly_white",
    )
    return figure


def write_html(figure, output: Path) -> Path:
    """Write the figure as one self-contained HTML file (plotly.js inside: opens offline)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(output, include_plotlyjs=True, full_html=True)
    return output
