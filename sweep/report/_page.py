"""The study report: the answer on one page, as one self-contained HTML file.

``ocl report`` (and ``ocl evaluate``, which adds its held-out test result) write it. The page
reads top to bottom as a person asks: what is the optimal cut-off layer and strategy, and how
sure (validation AUROC with its 95% interval, the confidence set, the answer in one sentence);
how the score changes with depth (one curve per strategy and weights, intervals as bands, the
dictionary's probe AUROC and LogME beside them, dense blocks shaded); feature extraction against
fine-tuning and transfer against scratch, layer by layer; how the search went; what the data
was (images, patients, prevalence, patients in several splits, the dataset's warnings); and the
exact command that reproduces the study.

Data first, picture second: :func:`report_data` gathers plain values (what tests check),
:func:`render_html` draws them, :func:`write_study_report` does both. plotly.js is embedded once,
so the file opens offline; every plot has a fixed height, so the page reads the same on a laptop
screen, a large one and on paper.

Example:
    >>> study = optuna.load_study(study_name="nih-cxr14-sample-any-224px", storage=url)
    >>> write_study_report(study, url, Path("studies/reports/answer.html"))
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import optuna

from sweep.model._candidates import CANDIDATES, block_of
from sweep.results._answer import Candidate, StudyAnswer, study_answer
from sweep.study import _records as records
from sweep.study._lifecycle import SweepSettings, count_states, load_settings, target_of
from sweep.study._records import DatasetInfo

if TYPE_CHECKING:
    from sweep.results._evaluate import Evaluation

__all__ = [
    "Comparison",
    "ComparisonRow",
    "ProfileCurve",
    "ReportData",
    "render_html",
    "report_data",
    "reproduce_command",
    "study_file",
    "write_report",
    "write_study_report",
]

STRATEGY_NAMES = {"feature_extraction": "feature extraction", "fine_tuning": "fine-tuning"}
STRATEGY_COLOURS = {"feature_extraction": "#1f77b4", "fine_tuning": "#d62728"}
WEIGHTS_DASH = {"imagenet": "solid", "none": "dot"}
HEIGHTS = {"profile": 440, "profile_logme": 600, "history": 340, "roc": 420}
"""Plot heights in pixels: fixed, so a plot never collapses or fills a whole screen."""


class ProfileCurve(NamedTuple):
    """One line of the layer profile, in depth order: a strategy and weights of the study, or a
    dictionary score (``kind`` ``probe_auroc`` or ``logme``) of one weights."""

    label: str
    kind: str  # "sweep", "probe_auroc" or "logme"
    strategy: str | None
    weights: str
    depth: tuple[int, ...]
    layers: tuple[str, ...]
    values: tuple[float, ...]
    low: tuple[float, ...] = ()  # the 95% interval (sweep curves only)
    high: tuple[float, ...] = ()
    n_trials: tuple[int, ...] = ()
    judged: tuple[bool, ...] = ()
    in_set: tuple[bool, ...] = ()


class ComparisonRow(NamedTuple):
    """One layer (and the other factor, held fixed) scored two ways; ``None`` where not swept."""

    layer: str
    depth: int | None
    fixed: str  # the weights (strategy comparison) or the strategy (transfer comparison)
    first: dict[str, Any] | None  # a candidate's score, low, high, n_trials, in_set
    second: dict[str, Any] | None
    difference: float | None  # first minus second, where both were swept


class Comparison(NamedTuple):
    """Two levels of one factor, layer by layer (feature extraction vs fine-tuning, imagenet vs none)."""

    factor: str  # "strategy" or "weights"
    first: str
    second: str
    rows: tuple[ComparisonRow, ...]
    note: str  # why there is nothing to compare, or how to read it


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, as plain values."""

    study: str
    storage: str  # the storage URL, password hidden
    generated: str
    settings: dict[str, Any]
    counts: dict[str, int]  # trial states, plus finished and target
    answer: dict[str, Any]  # StudyAnswer.to_dict(): sentence, best, confidence set, candidates
    headline: dict[str, Any] | None  # the best candidate, or the best so far when none is judged yet
    profile: tuple[ProfileCurve, ...]
    blocks: tuple[tuple[str, int, int], ...]  # dense block, first and last candidate depth
    strategies: Comparison
    transfer: Comparison
    history: tuple[dict[str, Any], ...]  # number, value, state, strategy, layer, weights
    dataset: dict[str, Any]  # DatasetInfo facts and the validation split's counts
    warnings: tuple[str, ...]
    study_file: str  # the study's search space as a TOML study file
    command: str  # the `ocl sweep` command that reproduces the study with that file
    evaluation: dict[str, Any] | None = None  # the held-out test result, when evaluated
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_trials(self) -> bool:
        return bool(self.history)


# --- data ---------------------------------------------------------------------------------------


def report_data(
    study: optuna.Study,
    storage_url: str,
    *,
    evaluation: Evaluation | None = None,
    answer: StudyAnswer | None = None,
) -> ReportData:
    """Gather what the page shows from the study, its stored predictions and the dictionary.

    Args:
        study: an OCL study (one ``ocl sweep`` made).
        storage_url: the storage it lives in (for its predictions and the dictionary).
        evaluation: the result of ``ocl evaluate`` (:func:`sweep.results._evaluate.evaluate_best`); without
            it, the test result stored on the study (``ocl:evaluation``) is shown, when there is one.
        answer: the study's answer when the caller has already computed it.

    Raises:
        OCLError: when the study is not an OCL study (no stored settings).
    """
    if isinstance(storage_url, optuna.Study):  # the former report_data(evaluation, study), until every caller moves
        study, evaluation, storage_url = storage_url, study, _url_of(storage_url)
    settings = load_settings(study)
    if answer is None:
        answer = study_answer(study, storage_url)
    info = DatasetInfo.from_study(study)
    counts = count_states(study)
    counts["target"] = target_of(study)
    candidates = answer.candidates
    history = tuple(_history(study))
    headline = _headline(answer)
    profile = [*_sweep_curves(candidates), *_dictionary_curves(storage_url, settings, info.fingerprint or None)]
    strategies = _comparison(candidates, "strategy", "feature_extraction", "fine_tuning", settings.space.strategies)
    transfer = _comparison(candidates, "weights", "imagenet", "none", settings.space.weights)
    dataset = {
        "name": settings.dataset,
        "modality": info.modality,
        "images": info.images,
        "patients": info.patients,
        "fingerprint": info.fingerprint,
        "cross_split_patients": info.cross_split_patients,
        "split": settings.split,
        "positive": settings.positive,
        "task": settings.task,
        "validation": dict(answer.validation),
        "warnings": list(info.warnings),
    }
    warnings = tuple(dict.fromkeys([*info.warnings, *answer.warnings]))
    notes = []
    if history and not candidates:
        notes.append(
            "Completed trials have no stored validation predictions (a study made before OCL kept them), so no "
            "candidate can be scored with an interval; the history below still shows every trial."
        )
    return ReportData(
        study=study.study_name,
        storage=_hide_password(storage_url),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        settings=_settings_dict(settings),
        counts=counts,
        answer=answer.to_dict(),
        headline=headline,
        profile=tuple(profile),
        blocks=tuple(_dense_blocks()),
        strategies=strategies,
        transfer=transfer,
        history=history,
        dataset=dataset,
        warnings=warnings,
        study_file=study_file(settings),
        command=reproduce_command(study.study_name, storage_url, settings, counts["target"]),
        evaluation=_evaluation(evaluation, study),
        notes=tuple(notes),
    )


def _url_of(study: optuna.Study) -> str:
    storage = getattr(study._storage, "_backend", study._storage)
    return str(storage.url)


def _hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL: shown as given
        return url


def _settings_dict(settings: SweepSettings) -> dict[str, Any]:
    space = settings.space
    return {
        "data": settings.data,
        "dataset": settings.dataset,
        "task": settings.task,
        "image_size": settings.image_size,
        "seed": settings.seed,
        "split": settings.split,
        "positive": settings.positive,
        "cv": getattr(settings, "cv", None),
        "strategies": list(space.strategies),
        "weights": list(space.weights),
        "cut_layers": list(space.cut_layers),
        "pruner": space.pruner,
    }


def _headline(answer: StudyAnswer) -> dict[str, Any] | None:
    chosen = answer.best or (answer.candidates[0] if answer.candidates else None)
    if chosen is None:
        return None
    return {
        **asdict(chosen),
        "name": chosen.name,
        "judged": chosen.judged,
        "distinguishable": answer.distinguishable,
        "set_size": len(answer.confidence_set),
        "at_chance": bool(chosen.low <= 0.5),  # its interval reaches guessing
        "higher_unjudged": [  # too few trials to judge, yet scoring above it: the answer may change
            {"name": c.name, "score": c.score, "low": c.low, "high": c.high, "n_trials": c.n_trials}
            for c in answer.candidates
            if not c.judged and c is not chosen and math.isfinite(c.score) and c.score > chosen.score
        ],
    }


def _history(study: optuna.Study) -> list[dict[str, Any]]:
    rows = []
    for trial in study.get_trials(deepcopy=False):
        record = records.TrialRecord.from_trial(trial)
        if record is None or trial.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
            continue
        value = trial.value
        if value is None and trial.intermediate_values:  # a pruned trial: its last reported epoch
            value = trial.intermediate_values[max(trial.intermediate_values)]
        rows.append(
            {
                "number": trial.number,
                "value": None if value is None or not math.isfinite(value) else float(value),
                "state": trial.state.name,
                "strategy": record.strategy,
                "layer": record.cut_layer,
                "depth": record.layer_depth,
                "weights": record.weights,
            }
        )
    return rows


def _label(strategy: str, weights: str, all_weights: Sequence[str]) -> str:
    name = STRATEGY_NAMES.get(strategy, strategy)
    return name if len(set(all_weights)) == 1 else f"{name} · weights {_weights_name(weights)}"


def _weights_name(label: str) -> str:
    return Path(label).name if "/" in label else label


def _sweep_curves(candidates: Sequence[Candidate]) -> list[ProfileCurve]:
    placed = [c for c in candidates if c.depth is not None]
    all_weights = [c.weights for c in candidates]
    curves = []
    for strategy, weights in sorted({(c.strategy, c.weights) for c in placed}):
        rows = sorted((c for c in placed if (c.strategy, c.weights) == (strategy, weights)), key=lambda c: c.depth)
        curves.append(
            ProfileCurve(
                label=_label(strategy, weights, all_weights),
                kind="sweep",
                strategy=strategy,
                weights=weights,
                depth=tuple(int(c.depth) for c in rows),
                layers=tuple(c.layer for c in rows),
                values=tuple(c.score for c in rows),
                low=tuple(c.low for c in rows),
                high=tuple(c.high for c in rows),
                n_trials=tuple(c.n_trials for c in rows),
                judged=tuple(c.judged for c in rows),
                in_set=tuple(c.in_set for c in rows),
            )
        )
    return curves


def _dictionary_curves(storage_url: str, settings: SweepSettings, fingerprint: str | None) -> list[ProfileCurve]:
    """The dictionary's probe AUROC (with its interval, where stored) and LogME for this study's
    dataset, task, split, image size and weights."""
    from sqlalchemy.exc import SQLAlchemyError

    from layers_index.views import dictionary_frame
    from sweep.errors import OCLError

    try:
        frame = dictionary_frame(
            storage_url, dataset=settings.dataset, task=settings.task, image_size=settings.image_size, fingerprint=fingerprint
        )
    except (OCLError, SQLAlchemyError):  # no dictionary there, or one this release cannot read: the sweep alone
        return []
    curves = []
    weights_swept = list(settings.space.weights)
    for weights in weights_swept:
        profile = frame[(frame["weights"] == weights) & frame["depth"].notna()]
        for kind, name in (("probe_auroc", "linear probe AUROC"), ("logme", "LogME")):
            rows = profile.dropna(subset=[kind]).sort_values("depth")
            if rows.empty:
                continue
            label = name if len(weights_swept) == 1 else f"{name} · weights {_weights_name(weights)}"
            bounds = [f"{kind}_low", f"{kind}_high"]
            interval = all(b in rows for b in bounds) and bool(rows[bounds].notna().all().all())
            curves.append(
                ProfileCurve(
                    label=f"{label} (dictionary)",
                    kind=kind,
                    strategy=None,
                    weights=weights,
                    depth=tuple(int(v) for v in rows["depth"]),
                    layers=tuple(str(v) for v in rows["layer"]),
                    values=tuple(float(v) for v in rows[kind]),
                    low=tuple(float(v) for v in rows[bounds[0]]) if interval else (),
                    high=tuple(float(v) for v in rows[bounds[1]]) if interval else (),
                )
            )
    return curves


def _dense_blocks() -> list[tuple[str, int, int]]:
    spans: dict[str, list[int]] = {}
    for depth, name in enumerate(CANDIDATES):
        block = block_of(name)
        if block.startswith("dense block"):
            spans.setdefault(block, []).append(depth)
    return [(block, min(depths), max(depths)) for block, depths in spans.items()]


def _score(candidate: Candidate | None) -> dict[str, Any] | None:
    if candidate is None:
        return None
    return {
        "score": candidate.score,
        "low": candidate.low,
        "high": candidate.high,
        "n_trials": candidate.n_trials,
        "judged": candidate.judged,
        "in_set": candidate.in_set,
        "best_trial": candidate.best_trial,
    }


def _comparison(candidates: Sequence[Candidate], factor: str, first: str, second: str, swept: Sequence[str]) -> Comparison:
    """``first`` against ``second`` of one factor, per layer, with the other factor held fixed."""
    other = "weights" if factor == "strategy" else "strategy"
    names = {"strategy": STRATEGY_NAMES, "weights": {"imagenet": "ImageNet transfer", "none": "training from scratch"}}[factor]
    if first not in swept or second not in swept:
        only = ", ".join(names.get(s, s) for s in swept)
        how = (
            'sweep both (the default; in a study file, strategies = ["feature_extraction", "fine_tuning"])'
            if factor == "strategy"
            else 'sweep weights = ["imagenet", "none"] in the study file'
        )
        return Comparison(factor, first, second, (), f"This study swept only {only}; to compare, {how}.")
    keyed = {(getattr(c, factor), c.layer, getattr(c, other)): c for c in candidates}
    pairs = sorted({(c.layer, c.depth, getattr(c, other)) for c in candidates}, key=lambda p: (p[1] is None, p[1] or 0, p[2]))
    rows = []
    for layer, depth, fixed in pairs:
        a, b = keyed.get((first, layer, fixed)), keyed.get((second, layer, fixed))
        difference = a.score - b.score if a is not None and b is not None else None
        rows.append(ComparisonRow(layer, depth, fixed, _score(a), _score(b), difference))
    both = sum(r.difference is not None for r in rows)
    note = (
        f"{both} layer(s) were tried both ways. Intervals are 95% patient-level bootstrap intervals of the "
        "cross-fitted validation AUROC; a layer's two intervals overlapping does not make them equal, and "
        "separate intervals are no paired test: the confidence set in the answer is that test."
        if both
        else f"No layer was tried both ways yet: TPE gave each layer only one {factor}; run more trials."
    )
    return Comparison(factor, first, second, tuple(rows), note)


def _evaluation(evaluation: Evaluation | None, study: optuna.Study) -> dict[str, Any] | None:
    """The held-out test result: from ``ocl evaluate``'s Evaluation, or as stored on the study."""
    from sweep.results._evaluate import CHEXNET_AUROC

    if evaluation is not None:
        from sklearn.metrics import roc_curve

        test, val = evaluation.test, evaluation.val
        per_class = [
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
            for k, output in enumerate(test.outputs)
        ]
        roc = {}
        for k, output in enumerate(test.outputs):
            y = evaluation.y_test[:, k]
            if y.min() != y.max():
                fpr, tpr, _ = roc_curve(y, evaluation.p_test[:, k])
                roc[output] = (fpr.tolist(), tpr.tolist())
        return {
            "trial": evaluation.trial,
            "strategy": evaluation.config.strategy,
            "cut_layer": evaluation.config.cut_layer,
            "weights": evaluation.weights,
            "val_mean_auroc": val.mean_auroc,
            "summary": test.summary(),
            "low": evaluation.test_interval.low,
            "high": evaluation.test_interval.high,
            "per_class": per_class,
            "roc": roc,
            "excluded": list(test.excluded),
        }
    stored = study.user_attrs.get(records.EVALUATION)
    if not stored:
        return None
    test = dict(stored.get("test") or {})
    per_class = [
        {"output": output, "test_auroc": value, "chexnet_auroc": CHEXNET_AUROC.get(output)}
        for output, value in (test.pop("auroc_per_class", None) or {}).items()
    ]
    low, high = test.pop("mean_auroc_low", None), test.pop("mean_auroc_high", None)
    return {
        "trial": stored.get("trial"),
        "strategy": stored.get("strategy"),
        "cut_layer": stored.get("cut_layer"),
        "weights": stored.get("weights"),
        "val_mean_auroc": stored.get("val_mean_auroc"),
        "summary": test,
        "low": low,
        "high": high,
        "per_class": per_class,
        "roc": {},
        "excluded": [],
    }


# --- reproducing the study ----------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def study_file(settings: SweepSettings) -> str:
    """The study's search space as a study file (TOML) for ``ocl sweep --config``."""
    lines = ["[space]"]
    for key, value in settings.space.as_dict().items():
        if value is not None:  # TOML has no null: an unset option keeps its default
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _file_name(study: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", study) + ".toml"


def reproduce_command(study: str, storage_url: str, settings: SweepSettings, target: int) -> str:
    """The ``ocl sweep`` command that reruns the study with :func:`study_file` saved beside it."""
    import shlex

    parts = ["ocl", "sweep", "--config", _file_name(study)]
    if settings.data:
        parts += ["--data", settings.data]
    parts += ["--task", settings.task, "--image-size", str(settings.image_size), "--seed", str(settings.seed)]
    if settings.split != "given":
        parts += ["--split", settings.split]
    if settings.positive:
        parts += ["--positive", settings.positive]
    cv = getattr(settings, "cv", None)
    if cv:
        parts += ["--cv", str(cv)]
    parts += ["--trials", str(max(target, 1)), "--study", study, "--storage", _hide_password(storage_url)]
    return " ".join(shlex.quote(p) for p in parts)


# --- picture ------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _ci(score: dict[str, Any] | None) -> str:
    if score is None:
        return "–"
    return f"{_fmt(score['score'])} <span class='ci'>[{_fmt(score['low'])}, {_fmt(score['high'])}]</span>"


def _blocks_on(figure: Any, blocks: Sequence[tuple[str, int, int]], rows: int) -> None:
    for block, first, last in blocks:
        for row in range(1, rows + 1):
            label = {"annotation_text": block, "annotation_position": "top left", "annotation_font_size": 11} if row == 1 else {}
            figure.add_vrect(
                x0=first - 0.5, x1=last + 0.5, fillcolor="#9aa5b1", opacity=0.13, line_width=0, row=row, col=1, **label
            )


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


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


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
        yaxis_title="validation mean AUROC",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    )
    return figure


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


class _Figures:
    """Each figure as an HTML fragment; plotly.js goes into the first one only."""

    def __init__(self) -> None:
        self.count = 0

    def html(self, figure: Any, name: str) -> str:
        fragment = figure.to_html(
            full_html=False,
            include_plotlyjs=self.count == 0,
            div_id=f"plot-{name}",
            default_width="100%",
            default_height=f"{figure.layout.height}px",
            config={"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]},
        )
        self.count += 1
        return f"<div class='plot'>{fragment}</div>"


CSS = """
:root{--ink:#1f2933;--muted:#52606d;--line:#d9e2ec;--accent:#0b5cad;--good:#1b7a3a;--warn:#8a5a00}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0;background:#f5f7fa}
main{max-width:1180px;margin:0 auto;padding:20px 28px 40px;background:#fff;min-height:100vh}
h1{font-size:24px;margin:0 0 2px}h2{font-size:19px;margin:28px 0 8px;padding-top:8px;border-top:1px solid var(--line)}
h3{font-size:15px;margin:16px 0 6px}
.sub{color:var(--muted);margin:0 0 10px}
nav{font-size:13px;margin:0 0 12px}nav a{color:var(--accent);margin-right:12px;text-decoration:none}
.answer{border:1px solid var(--line);border-left:6px solid var(--accent);border-radius:6px;padding:12px 18px;background:#f8fbff}
.answer.none{border-left-color:var(--muted);background:#fafafa}
.answer .layer{font-size:26px;font-weight:700;font-family:ui-monospace,Menlo,Consolas,monospace;margin-right:10px}
.answer .how{font-size:17px;color:var(--muted)}
.answer .auroc{font-size:17px;margin:4px 0}
.answer .sentence{font-size:15px;margin:6px 0 4px}
.kicker{text-transform:uppercase;letter-spacing:.06em;font-size:12px;color:var(--muted);font-weight:600}
.chip{display:inline-block;border:1px solid var(--line);border-radius:12px;padding:0 9px;margin:2px 4px 2px 0;font-size:13px;
background:#fff;font-family:ui-monospace,Menlo,Consolas,monospace}
.chip.best{border-color:#f2b705;background:#fff8dc}
.warn{border-left:4px solid #f0b429;background:#fffbea;padding:6px 12px;margin:8px 0;font-size:14px}
.note{color:var(--muted);font-size:13.5px;margin:6px 0}
.ci{color:var(--muted);font-size:.92em}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px;margin:8px 0}
.fact{border:1px solid var(--line);border-radius:6px;padding:6px 10px}
.fact b{display:block;font-size:18px}.fact span{font-size:12.5px;color:var(--muted)}
table{border-collapse:collapse;font-size:13.5px;margin:6px 0}
th,td{padding:3px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{font-weight:600;background:#f0f4f8}td.l,th.l{text-align:left}
td.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
tr.in td{background:#f3faf5}b.win{color:var(--good)}
.scroll{overflow-x:auto}
.plot{border:1px solid var(--line);border-radius:6px;margin:8px 0;break-inside:avoid;page-break-inside:avoid}
pre{background:#f0f4f8;border:1px solid var(--line);border-radius:6px;padding:8px 12px;font-size:12.5px;overflow-x:auto;
white-space:pre-wrap;word-break:break-all}
footer{color:var(--muted);font-size:12px;margin-top:28px;border-top:1px solid var(--line);padding-top:8px}
@media print{
 @page{size:A4;margin:12mm}
 body{background:#fff;font-size:11pt}main{max-width:none;padding:0}nav{display:none}
 h2{break-after:avoid;page-break-after:avoid}.answer,.facts,table,pre{break-inside:avoid;page-break-inside:avoid}
 .modebar-container{display:none!important}a{color:inherit;text-decoration:none}
 table{font-size:9pt}th,td{white-space:normal;padding:2px 6px}.scroll{overflow:visible}
}
"""

PRINT_JS = """
<script>
(function () {
  // Printed, a plot takes the page's width, then its screen width back.
  function each(f) { if (window.Plotly) document.querySelectorAll('.plotly-graph-div').forEach(f); }
  window.addEventListener('beforeprint', function () { each(function (g) { Plotly.relayout(g, {width: 690}); }); });
  window.addEventListener('afterprint', function () {
    each(function (g) { Plotly.relayout(g, {width: null, autosize: true}).then(function () { Plotly.Plots.resize(g); }); });
  });
})();
</script>
"""


def _answer_html(data: ReportData) -> str:
    head, answer = data.headline, data.answer
    sentence = html.escape(answer["answer"])
    if head is None:
        finished = data.counts.get("finished", 0)
        reason = (
            "This study has no finished trial yet"
            if finished == 0
            else f"This study has {finished} finished trial(s) but none with stored validation predictions"
        )
        return (
            "<section class='answer none' id='answer'><div class='kicker'>The answer</div>"
            f"<p class='auroc'><b>{reason}</b>, so there is no optimal layer to report.</p>"
            f"<p class='sentence'>{sentence}</p><p class='note'>Run the command under "
            "<a href='#reproduce'>Reproduce</a> to add trials, then write this page again with <code>ocl report</code>.</p>"
            "</section>"
        )
    if head["judged"] and head["distinguishable"]:
        kicker = "The optimal cut-off layer"
    elif head["judged"] and head["set_size"] <= 1:
        kicker = "The best cut-off layer so far (nothing to compare it with yet)"
    elif head["judged"]:
        kicker = f"The best-scoring cut-off layer ({head['set_size']} candidates cannot be told apart)"
    else:
        kicker = f"The best so far (no candidate has {answer['min_trials']} trials yet, so none is judged)"
    strategy = STRATEGY_NAMES.get(head["strategy"], head["strategy"])
    block = f", {html.escape(head['block'])}" if head.get("block") else ""
    depth = f"depth {head['depth']}{block}" if head.get("depth") is not None else html.escape(head.get("block") or "")
    chips = "".join(
        f"<span class='chip{' best' if name == head['name'] else ''}'>{html.escape(name)}</span>"
        for name in answer["confidence_set"]
    )
    level = f"{answer['level']:.0%}"
    confidence = (
        f"<div><span class='kicker'>Confidence set ({level})</span> {chips}</div>"
        if chips
        else f"<div class='note'>No confidence set yet: a candidate needs {answer['min_trials']} completed trials.</div>"
    )
    return (
        f"<section class='answer' id='answer'><div class='kicker'>{kicker}</div>"
        f"<div><span class='layer' id='answer-layer'>{html.escape(head['layer'])}</span>"
        f"<span class='how'>{html.escape(strategy)} · weights {html.escape(_weights_name(head['weights']))} · "
        f"{depth}</span></div>"
        f"<div class='auroc'>validation AUROC <b>{_fmt(head['score'])}</b> "
        f"<span class='ci'>[{_fmt(head['low'])}, {_fmt(head['high'])}] {level} CI, cross-fitted, patient-level bootstrap; "
        f"{head['n_trials']} trial(s), best is trial #{head['best_trial']}</span></div>"
        f"{confidence}<p class='sentence'>{sentence}</p>{_caveats(head, answer['min_trials'])}</section>"
    )


def _caveats(head: dict[str, Any], min_trials: int) -> str:
    """What a reader must know before acting on the answer: chance, and better candidates not yet judged."""
    parts = []
    if head.get("at_chance"):
        parts.append(
            f"Its 95% interval reaches 0.5: on this validation split, {html.escape(head['layer'])} cannot be told from guessing."
        )
    higher = head.get("higher_unjudged") or []
    if higher:
        listed = "; ".join(
            f"{html.escape(c['name'])} {_fmt(c['score'])} [{_fmt(c['low'])}, {_fmt(c['high'])}] from {c['n_trials']} trial(s)"
            for c in higher[:3]
        )
        more = f" and {len(higher) - 3} more" if len(higher) > 3 else ""
        parts.append(
            f"{len(higher)} candidate(s) score higher but have fewer than {min_trials} completed trials, so they are not "
            f"judged yet: {listed}{more}. Run more trials before trusting this answer."
        )
    return "".join(f"<div class='warn caveat'>{p}</div>" for p in parts)


def _comparison_html(comparison: Comparison, swept_other: Sequence[str]) -> str:
    parts = [f"<p class='note'>{html.escape(comparison.note)}</p>"]
    if not comparison.rows:
        return "".join(parts)
    names = {"strategy": STRATEGY_NAMES, "weights": {"imagenet": "ImageNet", "none": "scratch"}}[comparison.factor]
    first, second = names.get(comparison.first, comparison.first), names.get(comparison.second, comparison.second)
    fixed_head = "weights" if comparison.factor == "strategy" else "strategy"
    show_fixed = len(set(swept_other)) > 1
    head = "<tr><th class='l'>layer</th><th>depth</th>" + (f"<th class='l'>{fixed_head}</th>" if show_fixed else "")
    head += f"<th>{html.escape(first)}</th><th>trials</th><th>{html.escape(second)}</th><th>trials</th>"
    head += f"<th>{html.escape(first)} − {html.escape(second)}</th></tr>"
    body = []
    for row in comparison.rows:
        a, b = row.first, row.second
        win_a = row.difference is not None and row.difference > 0
        win_b = row.difference is not None and row.difference < 0
        cells = [f"<td class='l mono'>{html.escape(row.layer)}</td><td>{_fmt(row.depth)}</td>"]
        if show_fixed:
            fixed = STRATEGY_NAMES.get(row.fixed, _weights_name(row.fixed))
            cells.append(f"<td class='l'>{html.escape(fixed)}</td>")
        cells.append(f"<td>{'<b class=win>' if win_a else ''}{_ci(a)}{'</b>' if win_a else ''}</td>")
        cells.append(f"<td>{a['n_trials'] if a else '–'}</td>")
        cells.append(f"<td>{'<b class=win>' if win_b else ''}{_ci(b)}{'</b>' if win_b else ''}</td>")
        cells.append(f"<td>{b['n_trials'] if b else '–'}</td>")
        diff = "–" if row.difference is None else f"{row.difference:+.3f}"
        cells.append(f"<td>{diff}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    parts.append(f"<div class='scroll'><table>{head}{''.join(body)}</table></div>")
    return "".join(parts)


def _facts(pairs: Sequence[tuple[str, str]]) -> str:
    return "<div class='facts'>" + "".join(f"<div class='fact'><b>{v}</b><span>{k}</span></div>" for k, v in pairs) + "</div>"


def _data_html(data: ReportData) -> str:
    d = data.dataset
    crossing = d["cross_split_patients"]
    pairs = [
        ("dataset", html.escape(d["name"])),
        ("images", _fmt(d["images"])),
        ("patients", _fmt(d["patients"])),
        ("task", html.escape(d["task"])),
        ("split", html.escape(d["split"]) + (" (as given)" if d["split"] == "given" else " (re-drawn by patient)")),
        ("patients in several splits", f"{crossing:,}" + (" ⚠" if crossing else " ✓")),
    ]
    if d["positive"]:
        pairs.append(("positive class", html.escape(d["positive"])))
    parts = [_facts(pairs)]
    validation = d["validation"]
    if validation:
        images = validation["images"]
        parts.append(
            f"<h3>Validation split (what every trial was scored on)</h3><p class='note'>{images:,} images of "
            f"{validation['patients']:,} patients; fingerprint <code>{html.escape(str(validation.get('fingerprint', '')))}"
            "</code>. Intervals resample these patients.</p>"
        )
        rows = "".join(
            f"<tr><td class='l'>{html.escape(output)}</td><td>{positives:,}</td><td>{images - positives:,}</td>"
            f"<td>{positives / images:.1%}</td></tr>"
            for output, positives in validation["positives"].items()
        )
        parts.append(
            f"<table><tr><th class='l'>output</th><th>positives</th><th>negatives</th><th>prevalence</th></tr>{rows}</table>"
        )
    if crossing:
        parts.append(
            f"<div class='warn'><b>Leakage:</b> {crossing:,} patient(s) have images in more than one split, so validation "
            "scores may be optimistic; rerun with <code>--split patient</code> to re-draw the split by patient.</div>"
        )
    for warning in d["warnings"]:
        parts.append(f"<div class='warn'><b>Dataset warning:</b> {html.escape(warning)}</div>")
    if not d["warnings"] and not crossing:
        parts.append("<p class='note'>The dataset raised no leakage warning when the study was made.</p>")
    parts.append(f"<p class='note'>Dataset fingerprint <code>{html.escape(d['fingerprint'] or '–')}</code>.</p>")
    return "".join(parts)


def _evaluation_html(evaluation: dict[str, Any], figures: _Figures) -> str:
    summary = evaluation["summary"]
    strategy = STRATEGY_NAMES.get(evaluation["strategy"], evaluation["strategy"])
    parts = [
        "<section id='test'><h2>Held-out test</h2>",
        f"<p>Trial #{evaluation['trial']} ({html.escape(str(strategy))} at <code>{html.escape(str(evaluation['cut_layer']))}"
        f"</code>, weights {html.escape(_weights_name(str(evaluation['weights'])))}) retrained and scored once on the "
        "test split, which no selection ever saw.</p>",
        _facts(
            [
                (
                    "test mean AUROC (95% CI)",
                    f"{_fmt(summary.get('mean_auroc'))} <span class='ci'>[{_fmt(evaluation['low'])}, "
                    f"{_fmt(evaluation['high'])}]</span>",
                ),
                ("validation mean AUROC", _fmt(evaluation["val_mean_auroc"])),
                ("balanced accuracy", _fmt(summary.get("mean_balanced_accuracy"))),
                (
                    "accuracy / majority class",
                    f"{_fmt(summary.get('mean_accuracy'))} / {_fmt(summary.get('mean_majority_accuracy'))}",
                ),
            ]
        ),
    ]
    columns = [
        ("output", "output"),
        ("test AUROC", "test_auroc"),
        ("val AUROC", "val_auroc"),
        ("sensitivity", "sensitivity"),
        ("specificity", "specificity"),
        ("accuracy", "accuracy"),
        ("majority accuracy", "majority_accuracy"),
        ("CheXNet AUROC", "chexnet_auroc"),
    ]
    shown = [(h, k) for h, k in columns if any(k in row for row in evaluation["per_class"])]
    if evaluation["per_class"]:
        head = "".join(f"<th{' class=l' if k == 'output' else ''}>{h}</th>" for h, k in shown)
        body = "".join(
            "<tr>" + "".join(f"<td{' class=l' if k == 'output' else ''}>{_fmt(row.get(k))}</td>" for _, k in shown) + "</tr>"
            for row in evaluation["per_class"]
        )
        parts.append(f"<div class='scroll'><table><tr>{head}</tr>{body}</table></div>")
        parts.append(
            "<p class='note'>Thresholds were chosen on validation (Youden's J). Accuracy means little at low prevalence: "
            "compare it with the majority-class accuracy. CheXNet values are its published test AUROCs on the full "
            "dataset, for reference only.</p>"
        )
    if evaluation["roc"]:
        parts.append("<h3>ROC curves on the test split</h3>" + figures.html(_roc_figure(evaluation), "roc"))
    parts.append("</section>")
    return "".join(parts)


def render_html(data: ReportData) -> str:
    """The page, as one self-contained HTML document."""
    figures = _Figures()
    settings, counts = data.settings, data.counts
    title = f"OCL study {data.study}"
    weights = ", ".join(_weights_name(w) for w in settings["weights"])
    strategies = ", ".join(STRATEGY_NAMES.get(s, s) for s in settings["strategies"])
    sub = (
        f"{html.escape(settings['dataset'])} · task {html.escape(settings['task'])} · {settings['image_size']} px · "
        f"strategies {html.escape(strategies)} · weights {html.escape(weights)} · {counts.get('finished', 0)} finished "
        f"trial(s) of {counts.get('target', 0)} asked for ({counts.get('complete', 0)} complete, {counts.get('pruned', 0)} "
        f"pruned; {counts.get('fail', 0)} failed)"
    )
    sections = [
        "<nav><a href='#answer'>Answer</a><a href='#profile'>Layer profile</a><a href='#strategies'>Strategies</a>"
        "<a href='#transfer'>Transfer</a>"
        + ("<a href='#test'>Test</a>" if data.evaluation else "")
        + "<a href='#history'>History</a><a href='#data'>Data &amp; leakage</a><a href='#reproduce'>Reproduce</a></nav>",
        _answer_html(data),
    ]
    for warning in data.warnings:
        if warning not in data.dataset["warnings"]:
            sections.append(f"<div class='warn'><b>Warning:</b> {html.escape(warning)}</div>")
    for note in data.notes:
        sections.append(f"<p class='note'>{html.escape(note)}</p>")
    sections.append("<section id='profile'><h2>Layer profile</h2>")
    if any(c.kind == "sweep" for c in data.profile) or data.headline:
        sections.append(
            "<p class='note'>Each point is one cut-off layer trained one way: its cross-fitted validation AUROC (its trials "
            "chosen on one half of the validation patients, scored on the other), with the 95% patient-level bootstrap "
            "interval as bar and band. Filled points have enough trials to be judged; the star is the answer. Dense blocks are "
            "shaded; the dashed grey line is the dictionary's linear probe, a cheap proxy.</p>"
        )
        sections.append(figures.html(_profile_figure(data), "profile"))
    else:
        sections.append("<p class='note'>No layer has a score yet.</p>")
    sections.append("</section>")
    sections.append("<section id='strategies'><h2>Feature extraction vs fine-tuning</h2>")
    sections.append(_comparison_html(data.strategies, settings["weights"]))
    sections.append("</section><section id='transfer'><h2>Transfer vs scratch</h2>")
    sections.append(_comparison_html(data.transfer, settings["strategies"]))
    sections.append("</section>")
    if data.evaluation:
        sections.append(_evaluation_html(data.evaluation, figures))
    sections.append("<section id='history'><h2>Optimisation history</h2>")
    if data.history:
        sections.append(
            "<p class='note'>The best single trial is biased upward (it was picked for being best); the answer above "
            "corrects for that by cross-fitting.</p>"
        )
        sections.append(figures.html(_history_figure(data), "history"))
    else:
        sections.append("<p class='note'>No finished trial yet.</p>")
    sections.append("</section>")
    sections.append(f"<section id='data'><h2>Data, split and leakage</h2>{_data_html(data)}</section>")
    file_name = _file_name(data.study)
    sections.append(
        "<section id='reproduce'><h2>Reproduce</h2>"
        f"<p>Save the study's search space as <code>{html.escape(file_name)}</code>:</p>"
        f"<pre id='study-file'>{html.escape(data.study_file)}</pre>"
        "<p>then run (rerunning it on the same storage resumes the study and adds only missing trials):</p>"
        f"<pre id='command'>{html.escape(data.command)}</pre></section>"
    )
    sections.append(
        f"<footer>Written by <code>ocl report</code> on {html.escape(data.generated)} from {html.escape(data.storage)}. "
        f"AUROC intervals: {data.answer['n_resamples']:,} patient-level bootstrap resamples; a candidate is judged from "
        f"{data.answer['min_trials']} completed trials.</footer>"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{html.escape(title)}</h1><p class='sub'>{sub}</p>"
        + "\n".join(sections)
        + f"</main>{PRINT_JS if figures.count else ''}</body></html>"
    )


def write_study_report(study: optuna.Study, storage_url: str, output: Path, *, evaluation: Evaluation | None = None) -> Path:
    """Write the study's page to ``output`` (folders created) and return its path.

    Args:
        study: an OCL study.
        storage_url: the storage it lives in.
        output: the HTML file to write.
        evaluation: ``ocl evaluate``'s result, shown as the page's held-out test section.
    """
    output = Path(output)
    text = render_html(report_data(study, storage_url, evaluation=evaluation))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output


def write_report(data: ReportData, path: Path) -> Path:
    """Write gathered report data as the page (the former two-step API; see :func:`write_study_report`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return path
