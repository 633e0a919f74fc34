"""The test section's clinical parts: calibration, operating points, subgroups, external
validation and saliency maps, each its own sub-section with the note that says how to read it."""

from __future__ import annotations

import html
from typing import Any

from sweep.report._format import _fmt, _interval_text
from sweep.results import gap_lines

__all__ = ["clinical_html"]


def clinical_html(evaluation: dict[str, Any]) -> str:
    """Every clinical sub-section the evaluation has, in reading order."""
    clinical = evaluation.get("clinical") or {}
    parts = [_calibration_html(clinical)] if clinical.get("calibration") else []
    if clinical.get("subgroups"):
        parts.append(_subgroups_html(clinical["subgroups"], clinical.get("operating_point", "youden")))
    if evaluation.get("external"):
        parts.append(_external_html(evaluation["external"], evaluation.get("internal_aurocs") or {}, clinical))
    if evaluation.get("saliency"):
        parts.append(_saliency_html(evaluation["saliency"], evaluation.get("pictures") or {}))
    return "".join(parts)


def _calibration_html(clinical: dict[str, Any]) -> str:
    """Calibration (ECE before and after the validation temperature) and every operating point on test."""
    rows = "".join(
        f"<tr><td class=l>{html.escape(output)}</td><td>{c['temperature']:.2f}</td><td>{_interval_text(c['ece_before'])}</td>"
        f"<td>{_interval_text(c['ece_after'])}</td></tr>"
        for output, c in clinical["calibration"].items()
    )
    parts = [
        "<h3 id='calibration'>Calibration</h3>",
        "<div class='scroll'><table><tr><th class=l>output</th><th>temperature</th><th>test ECE before (95% CI)</th>"
        f"<th>test ECE after</th></tr>{rows}</table></div>",
        "<p class='note'>ECE: expected calibration error over 10 equal-mass bins, |observed frequency - mean score|. "
        "The temperature is fitted on validation only and applied to test; it leaves AUROC and every operating "
        "point's calls unchanged. The exported model returns the calibrated scores.</p>",
        "<h3 id='operating-points'>Operating points</h3>",
    ]
    head = "<tr><th class=l>output</th><th class=l>point</th><th>threshold</th><th>sensitivity</th><th>specificity</th>"
    head += "<th>PPV</th><th>NPV</th></tr>"
    body = "".join(
        f"<tr><td class=l>{html.escape(output)}</td><td class=l>{html.escape(name)}</td><td>{point['threshold']:.3f}</td>"
        + "".join(f"<td>{_interval_text(point['test'][k])}</td>" for k in ("sensitivity", "specificity", "ppv", "npv"))
        + "</tr>"
        for output, points in clinical["operating_points"].items()
        for name, point in points.items()
    )
    parts.append(f"<div class='scroll'><table>{head}{body}</table></div>")
    parts.append(
        "<p class='note'>Each threshold is chosen on validation (calibrated scale) and applied unchanged to test: "
        "youden maximises sensitivity + specificity; sens@spec90 is the most sensitive threshold with 90% validation "
        "specificity; spec@sens95 the most specific with 95% validation sensitivity. Intervals: patient-level bootstrap.</p>"
    )
    return "".join(parts)


def _subgroups_html(subgroups: dict[str, Any], point: str) -> str:
    """Per output and subgroup of sex, age band and view: AUROC and false-negative rate, and the flagged gaps."""
    head = "<tr><th class=l>output</th><th class=l>grouping</th><th class=l>subgroup</th><th>images</th><th>prevalence</th>"
    head += "<th>AUROC (95% CI)</th><th>false-negative rate</th></tr>"
    rows = []
    for output, groupings in subgroups.items():
        for grouping, found in groupings.items():
            for name, facts in found["subgroups"].items():
                scored = not facts["too_small"]
                cells = (
                    [_interval_text(facts["auroc"]), _interval_text(facts["false_negative_rate"])]
                    if scored
                    else ["<span class='ci'>too small to score</span>", ""]
                )
                rows.append(
                    f"<tr><td class=l>{html.escape(output)}</td><td class=l>{html.escape(grouping)}</td>"
                    f"<td class=l>{html.escape(str(name))}</td><td>{facts['images']}</td><td>{facts['prevalence']:.0%}</td>"
                    + "".join(f"<td>{c}</td>" for c in cells)
                    + "</tr>"
                )
    gaps = gap_lines(subgroups)
    flagged = "".join(f"<div class='warn'><b>Subgroup gap:</b> {html.escape(line)}</div>" for line in gaps)
    return (
        "<h3 id='subgroups'>Subgroups</h3>"
        f"<div class='scroll'><table>{head}{''.join(rows)}</table></div>{flagged}"
        f"<p class='note'>Sex, age band and view position as the data records them; never a model input. False "
        f"negatives at the {html.escape(point)} operating point (for the any-finding task, the underdiagnosis rate). A "
        "subgroup with fewer than 10 positives or negatives is not scored. The largest AUROC and false-negative-rate "
        "gaps are flagged when their paired bootstrap interval, corrected for the pairs compared, excludes 0"
        f"{'' if gaps else '; none is'}.</p>"
    )


def _external_html(external: list[dict[str, Any]], internal: dict[str, Any], clinical: dict[str, Any]) -> str:
    """Per output, internal test AUROC beside each external dataset's; then each dataset's facts and rates."""
    names = "".join(f"<th>{html.escape(e['name'])}</th>" for e in external)
    rows = []
    outputs = list(internal) + [o for e in external for o in e["outputs"] if o not in internal]
    for output in dict.fromkeys(outputs):
        found, cells = internal.get(output), []
        for entry in external:
            facts = entry["outputs"].get(output) or {}
            if facts.get("auroc"):
                cells.append(_interval_text(facts["auroc"]))
            else:
                cells.append("<span class='ci'>not in the data</span>" if not facts.get("counterpart") else "–")
        rows.append(
            f"<tr><td class=l>{html.escape(output)}</td><td>{_interval_text(found)}</td>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )
    point = clinical.get("operating_point", "youden")
    detail = []
    for entry in external:
        left = f"; {entry['left_out']:,} image(s) of the study's own patients left out" if entry["left_out"] else ""
        detail.append(
            f"<h4>{html.escape(entry['name'])}</h4><p>{entry['images']:,} images of {entry['patients']:,} patients{left}; "
            f"mean AUROC {_interval_text(entry['mean_auroc'])}.</p>"
        )
        lines = [
            f"<tr><td class=l>{html.escape(output)}</td><td class=l>{html.escape(str(facts['counterpart']))}</td>"
            f"<td>{facts['images']:,}</td><td>{facts['positives']:,}</td><td>{_interval_text(facts.get('ece'), 2)}</td>"
            + "".join(
                f"<td>{_interval_text((facts.get('rates') or {}).get(k), 2)}</td>"
                for k in ("sensitivity", "specificity", "ppv", "npv")
            )
            + "</tr>"
            for output, facts in entry["outputs"].items()
            if facts.get("auroc")
        ]
        head = "<tr><th class=l>output</th><th class=l>compared with</th><th>images</th><th>positives</th><th>ECE</th>"
        head += "<th>sensitivity</th><th>specificity</th><th>PPV</th><th>NPV</th></tr>"
        detail.append(f"<div class='scroll'><table>{head}{''.join(lines)}</table></div>")
    return (
        "<h3 id='external'>External validation</h3>"
        "<div class='scroll'><table><tr><th class=l>output</th><th>internal test AUROC</th>"
        f"{names}</tr>{''.join(rows)}</table></div>"
        + "".join(detail)
        + "<p class='note'>The exported model (calibrated on the study's validation split) scored on data it never saw: "
        "every external image is a test image, and images of patients in the study's own data are left out. Findings "
        "are matched by --map, else the built-in NIH/CheXpert map, else by name. Rates are read at the "
        f"{html.escape(point)} threshold chosen on the study's validation split. Intervals: patient-level bootstrap.</p>"
    )


def _saliency_html(saliency: dict[str, Any], pictures: dict[str, str]) -> str:
    """The Grad-CAM pictures per output, and the randomisation check's verdict."""
    sanity = saliency["sanity"]
    by_output: dict[str, list[dict[str, Any]]] = {}
    for example in saliency["examples"]:
        by_output.setdefault(example["output"], []).append(example)
    parts = ["<h3 id='saliency'>Saliency (Grad-CAM at the cut-off layer)</h3>", _sanity_html(sanity)]
    for output, examples in by_output.items():
        figures = "".join(
            "<figure class='saliency'>"
            + (
                f"<img alt='Grad-CAM, {html.escape(e['kind'])}' src='{pictures[e['file']]}'>"
                if e["file"] in pictures
                else "<div class='missing'>picture not found</div>"
            )
            + f"<figcaption>{html.escape(e['kind'])}<br>score {e['score']:.2f} "
            f"(threshold {e['threshold']:.2f})</figcaption></figure>"
            for e in examples
        )
        parts.append(f"<h4>{html.escape(output)}</h4><div class='saliency-row'>{figures}</div>")
    parts.append(
        "<p class='note'>Test images chosen at the operating point: the most confident true positives, the most "
        "confidently missed positives and the most confident false positives. Warm colours: where the evidence for the "
        "output's logit lies in the cut-off layer's feature map (Selvaraju et al., 2017). A map shows where the model "
        "looked, not why, and not that it looked at the finding.</p>"
    )
    return "".join(parts)


def _sanity_html(sanity: dict[str, Any]) -> str:
    """Adebayo et al.'s model-randomisation check, as one sentence that says what it found."""
    if sanity.get("mean") is None:
        return "<div class='warn'><b>Sanity check not made:</b> every map is flat, so there is no ranking to compare.</div>"
    numbers = (
        f"mean rank correlation with a fully randomised twin's maps {_fmt(sanity['mean'], 2)} "
        f"<span class='ci'>[{_fmt(sanity['low'], 2)}, {_fmt(sanity['high'], 2)}]</span> over {sanity['images']} maps"
    )
    if sanity["passed"]:
        return (
            "<p><b>Sanity check passed:</b> the maps change when the model's weights are randomised "
            f"({numbers}; needed: upper bound below {sanity['limit']}).</p>"
        )
    return (
        f"<div class='warn'><b>Sanity check failed:</b> the maps are not clearly different from those of a model with "
        f"randomised weights ({numbers}; needed: upper bound below {sanity['limit']}), so they say little about what "
        "this model learnt. Do not read them as evidence.</div>"
    )
