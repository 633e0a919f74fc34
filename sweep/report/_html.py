"""The page: the report's data and figures as one self-contained HTML document."""

from __future__ import annotations

import html
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

if TYPE_CHECKING:
    from sweep.results import Evaluation

from sweep.report._clinical import clinical_html
from sweep.report._data import (
    STRATEGY_NAMES,
    Comparison,
    ReportData,
    _file_name,
    _weights_name,
    report_data,
    score_description,
)
from sweep.report._format import _fmt
from sweep.report._history import _history_figure
from sweep.report._profile import _profile_figure
from sweep.report._roc import _roc_figure


def _ci(score: dict[str, Any] | None) -> str:
    if score is None:
        return "–"
    return f"{_fmt(score['score'])} <span class='ci'>[{_fmt(score['low'])}, {_fmt(score['high'])}]</span>"


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
    method = html.escape(answer.get("method", "cross-fitted"))
    return (
        f"<section class='answer' id='answer'><div class='kicker'>{kicker}</div>"
        f"<div><span class='layer' id='answer-layer'>{html.escape(head['layer'])}</span>"
        f"<span class='how'>{html.escape(strategy)} · weights {html.escape(_weights_name(head['weights']))} · "
        f"{depth}</span></div>"
        f"<div class='auroc'>{html.escape(answer.get('score_name', 'validation AUROC'))} <b>{_fmt(head['score'])}</b> "
        f"<span class='ci'>[{_fmt(head['low'])}, {_fmt(head['high'])}] {level} CI, {method}, patient-level bootstrap; "
        f"{head['n_trials']} trial(s), {_scored_by(head, answer.get('method', 'cross-fitted'))}</span></div>"
        f"{confidence}<p class='sentence'>{sentence}</p>{_caveats(head, answer['min_trials'])}</section>"
    )


def _scored_by(head: dict[str, Any], method: str = "cross-fitted") -> str:
    """Which trials the interval belongs to, and which one ``ocl evaluate`` reuses."""
    scored = head.get("scored_trials")
    if method != "cross-fitted":  # --selection inner: one model, chosen on train
        return f"scored on trial #{head['best_trial']} on every patient; it is the configuration ocl evaluate reuses"
    reused = f"trial #{head['best_trial']} (best on the whole split) is the configuration ocl evaluate reuses"
    if not scored:
        return reused
    if scored[0] == scored[1]:
        return f"scored on trial #{scored[0]} for both halves, each chosen on the other half; {reused}"
    return f"scored on trials #{scored[0]} and #{scored[1]}, each chosen on the other half; {reused}"


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
            f"<h3>{html.escape(_scored_on(validation))} (what every trial was scored on)</h3>"
            f"<p class='note'>{images:,} images of "
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
    if evaluation.get("clinical"):
        parts.append(clinical_html(evaluation))
    parts.append("</section>")
    return "".join(parts)


def render_html(data: ReportData) -> str:
    """The page, as one self-contained HTML document."""
    figures = _Figures()
    title = f"OCL study {data.study}"
    sections = [
        _nav(data),
        _answer_html(data),
        *(
            f"<div class='warn'><b>Warning:</b> {html.escape(w)}</div>"
            for w in data.warnings
            if w not in data.dataset["warnings"]
        ),
        *(f"<p class='note'>{html.escape(note)}</p>" for note in data.notes),
        _profile_html(data, figures),
        "<section id='strategies'><h2>Feature extraction vs fine-tuning</h2>"
        + _comparison_html(data.strategies, data.settings["weights"])
        + "</section><section id='transfer'><h2>Transfer vs scratch</h2>"
        + _comparison_html(data.transfer, data.settings["strategies"])
        + "</section>",
        *([_evaluation_html(data.evaluation, figures)] if data.evaluation else []),
        _history_html(data, figures),
        f"<section id='data'><h2>Data, split and leakage</h2>{_data_html(data)}</section>",
        _reproduce_html(data),
        f"<footer>Written by <code>ocl report</code> on {html.escape(data.generated)} from {html.escape(data.storage)}. "
        f"AUROC intervals: {data.answer['n_resamples']:,} patient-level bootstrap resamples; a candidate is judged from "
        f"{data.answer['min_trials']} completed trials.</footer>",
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_asset('report.css')}</style></head><body><main>"
        f"<h1>{html.escape(title)}</h1><p class='sub'>{_subtitle(data)}</p>"
        + "\n".join(sections)
        + f"</main>{_print_script() if figures.count else ''}</body></html>"
    )


def _page_warnings(data: ReportData) -> list[str]:
    """Warnings for the top of the page; the dataset's own are shown in its section instead."""
    return [warning for warning in data.warnings if warning not in data.dataset["warnings"]]


def _subtitle(data: ReportData) -> str:
    """Dataset, task, size, strategies, weights and trial counts in one line under the title."""
    settings, counts = data.settings, data.counts
    weights = ", ".join(_weights_name(w) for w in settings["weights"])
    strategies = ", ".join(STRATEGY_NAMES.get(s, s) for s in settings["strategies"])
    return (
        f"{html.escape(settings['dataset'])} · task {html.escape(settings['task'])} · {settings['image_size']} px · "
        f"strategies {html.escape(strategies)} · weights {html.escape(weights)} · {counts.get('finished', 0)} finished "
        f"trial(s) of {counts.get('target', 0)} asked for ({counts.get('complete', 0)} complete, {counts.get('pruned', 0)} "
        f"pruned; {counts.get('fail', 0)} failed)"
    )


def _nav(data: ReportData) -> str:
    return (
        "<nav><a href='#answer'>Answer</a><a href='#profile'>Layer profile</a><a href='#strategies'>Strategies</a>"
        "<a href='#transfer'>Transfer</a>"
        + ("<a href='#test'>Test</a>" if data.evaluation else "")
        + "<a href='#history'>History</a><a href='#data'>Data &amp; leakage</a><a href='#reproduce'>Reproduce</a></nav>"
    )


def _profile_html(data: ReportData, figures: _Figures) -> str:
    if not (any(c.kind == "sweep" for c in data.profile) or data.headline):
        return "<section id='profile'><h2>Layer profile</h2><p class='note'>No layer has a score yet.</p></section>"
    return (
        "<section id='profile'><h2>Layer profile</h2>"
        "<p class='note'>Each point is one cut-off layer trained one way: its "
        + html.escape(score_description(data.answer.get("method", "cross-fitted")))
        + ", with the 95% patient-level bootstrap "
        "interval as bar and band. Filled points have enough trials to be judged; the star is the answer. Dense blocks are "
        "shaded; the dashed grey line is the dictionary's linear probe, a cheap proxy.</p>"
        + figures.html(_profile_figure(data), "profile")
        + "</section>"
    )


def _history_html(data: ReportData, figures: _Figures) -> str:
    if not data.history:
        return "<section id='history'><h2>Optimisation history</h2><p class='note'>No finished trial yet.</p></section>"
    return (
        "<section id='history'><h2>Optimisation history</h2>"
        "<p class='note'>The best single trial is biased upward (it was picked for being best); the answer above "
        + _history_correction(data.answer.get("method", "cross-fitted"))
        + "</p>"
        + figures.html(_history_figure(data), "history")
        + "</section>"
    )


def _history_correction(method: str) -> str:
    """How the answer undoes the history's pick-the-best bias, for the answer's ``method``."""
    if method == "cross-fitted":
        return "corrects for that by cross-fitting."
    return (
        "corrects for that by scoring each candidate's chosen trial on the validation patients, which no choice "
        "saw (each point here is a trial's inner-split AUROC, the value it was chosen by)."
    )


def _reproduce_html(data: ReportData) -> str:
    return (
        "<section id='reproduce'><h2>Reproduce</h2>"
        f"<p>Save the study's search space as <code>{html.escape(_file_name(data.study))}</code>:</p>"
        f"<pre id='study-file'>{html.escape(data.study_file)}</pre>"
        "<p>then run (rerunning it on the same storage resumes the study and adds only missing trials):</p>"
        f"<pre id='command'>{html.escape(data.command)}</pre></section>"
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
    data = report_data(study, storage_url, evaluation=evaluation)
    if data.evaluation and data.evaluation.get("saliency"):
        folders = [output.with_suffix(".saliency")]
        if data.evaluation.get("written_to"):  # ocl report --output elsewhere: the pictures stay where evaluate put them
            folders.append(Path(data.evaluation["written_to"]).with_suffix(".saliency"))
        data.evaluation["pictures"] = _saliency_pictures(folders, data.evaluation["saliency"])
    text = render_html(data)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output


def _saliency_pictures(folders: list[Path], saliency: dict[str, Any]) -> dict[str, str]:
    """The Grad-CAM pictures ``ocl evaluate`` wrote beside its report, as data URIs, so the page
    stays one file (and ``ocl report`` rewrites it with them); the first folder that has a picture wins."""
    import base64

    found = {}
    for example in saliency.get("examples", []):
        path = next((folder / example["file"] for folder in folders if (folder / example["file"]).is_file()), None)
        if path is not None:
            found[example["file"]] = "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return found


def _asset(name: str) -> str:
    """A file of ``sweep/report/assets/``, inlined so the page stays one self-contained file."""
    return files("sweep.report").joinpath("assets", name).read_text(encoding="utf-8")


def _print_script() -> str:
    """Printed, a plot takes the page's width, then its screen width back."""
    return f"<script>\n{_asset('print.js')}</script>"


def _scored_on(validation: dict) -> str:
    """The patients every trial was scored on, as a heading (answers stored before ``scored_on``: validation)."""
    scored_on = validation.get("scored_on", "validation split")
    return scored_on[0].upper() + scored_on[1:]
