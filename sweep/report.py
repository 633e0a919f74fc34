"""The ``ocl evaluate`` report: one self-contained plotly HTML file.

Data first, picture second: :func:`report_data` gathers plain numbers (per-class AUROC beside
CheXNet's published values, ROC points, trial history, layer vs AUROC), :func:`write_report`
draws them. Tests check the data; people read the page.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import optuna
from sklearn.metrics import roc_curve

from sweep.evaluate import CHEXNET_AUROC, Evaluation
from sweep.summary import completed_trials

__all__ = ["ReportData", "report_data", "write_report"]


class ReportData(NamedTuple):
    title: str
    per_class: list[dict[str, Any]]  # output, test AUROC, val AUROC, sensitivity, specificity, CheXNet
    roc: dict[str, tuple[list[float], list[float]]]  # output -> (fpr, tpr) on test
    history: list[tuple[int, float, str]]  # trial number, value, state
    layers: list[tuple[int, str, float, str]]  # depth, layer, value, strategy
    summary: dict[str, float]


def report_data(evaluation: Evaluation, study: optuna.Study) -> ReportData:
    test, val = evaluation.test, evaluation.val
    per_class = []
    for k, output in enumerate(test.outputs):
        per_class.append(
            {
                "output": output,
                "test_auroc": test.auroc[k],
                "val_auroc": val.auroc[k],
                "sensitivity": test.sensitivity[k],
                "specificity": test.specificity[k],
                "accuracy": test.accuracy[k],
                "majority_accuracy": test.majority_accuracy[k],
                "chexnet_auroc": CHEXNET_AUROC.get(output),
            }
        )
    roc = {}
    for k, output in enumerate(test.outputs):
        y = evaluation.y_test[:, k]
        if y.min() != y.max():
            fpr, tpr, _ = roc_curve(y, evaluation.p_test[:, k])
            roc[output] = (fpr.tolist(), tpr.tolist())
    trials = study.get_trials(deepcopy=False)
    history = [(t.number, float(t.value), t.state.name) for t in trials if t.value is not None]
    layers = [
        (record.layer_depth, record.cut_layer, float(trial.value), record.strategy)
        for trial, record in completed_trials(study)
        if record.layer_depth is not None
    ]
    title = f"{evaluation.study}: trial {evaluation.trial}, {evaluation.config.strategy} at {evaluation.config.cut_layer}"
    return ReportData(title, per_class, roc, history, layers, test.summary())


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def write_report(data: ReportData, path: Path) -> Path:
    import plotly.graph_objects as go

    figures = []
    roc = go.Figure()
    for output, (fpr, tpr) in data.roc.items():
        roc.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=output))
    roc.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "gray"}))
    roc.update_layout(title="ROC curves on the held-out test split", xaxis_title="1 - specificity", yaxis_title="sensitivity")
    figures.append(roc)
    history = go.Figure()
    done = [h for h in data.history if h[2] == "COMPLETE"]
    history.add_trace(go.Scatter(x=[h[0] for h in done], y=[h[1] for h in done], mode="markers", name="trial"))
    best = np.maximum.accumulate([h[1] for h in done]) if done else []
    history.add_trace(go.Scatter(x=[h[0] for h in done], y=list(best), mode="lines", name="best so far"))
    history.update_layout(title="Optimisation history (validation mean AUROC)", xaxis_title="trial", yaxis_title="AUROC")
    figures.append(history)
    layers = go.Figure()
    for strategy in sorted({row[3] for row in data.layers}):
        rows = [r for r in data.layers if r[3] == strategy]
        layers.add_trace(
            go.Scatter(x=[r[0] for r in rows], y=[r[2] for r in rows], mode="markers", name=strategy, text=[r[1] for r in rows])
        )
    layers.update_layout(title="Cut-off layer depth vs validation mean AUROC", xaxis_title="candidate depth", yaxis_title="AUROC")
    figures.append(layers)

    head = ["output", "test AUROC", "val AUROC", "sensitivity", "specificity", "accuracy", "majority accuracy", "CheXNet AUROC"]
    keys = ["output", "test_auroc", "val_auroc", "sensitivity", "specificity", "accuracy", "majority_accuracy", "chexnet_auroc"]
    rows = "".join("<tr>" + "".join(f"<td>{_fmt(row[k])}</td>" for k in keys) + "</tr>" for row in data.per_class)
    summary = ", ".join(f"{k.replace('_', ' ')} {_fmt(v)}" for k, v in data.summary.items())
    parts = [
        f"<html><head><meta charset='utf-8'><title>{html.escape(data.title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:right}"
        "td:first-child{text-align:left}</style></head><body>",
        f"<h1>{html.escape(data.title)}</h1><p>Test split (never used for selection): {summary}.</p>",
        "<p>Thresholds were chosen on validation (Youden's J). Accuracy means little at low prevalence: compare it "
        "with the majority-class accuracy. CheXNet values are its published test AUROCs on the full dataset.</p>",
        "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + f"</tr>{rows}</table>",
    ]
    for index, figure in enumerate(figures):
        parts.append(figure.to_html(full_html=False, include_plotlyjs=index == 0))
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path
