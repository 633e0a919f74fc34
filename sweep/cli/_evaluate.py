"""``ocl evaluate``: the best configuration on the held-out test split, as a report and a model."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from sweep.cli._common import FormatOption, OutputFormat, console, new_table, print_json, warn
from sweep.results import EVALUATE_CONFIGS
from sweep.stats import OPERATING_POINTS

EvaluateConfig = Enum("EvaluateConfig", {name: name for name in EVALUATE_CONFIGS}, type=str)


OperatingPoint = Enum("OperatingPoint", {name: name for name in OPERATING_POINTS}, type=str)


ExternalOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--external",
        metavar="DATA",
        help="Another dataset to score the exported model on (repeatable): anything --data reads, e.g. a hospital's "
        "DICOM folder or a CheXpert table. All its images are test images; patients of the study's own data are left out.",
        show_default=False,
    ),
]


MapOption = Annotated[
    Path | None,
    typer.Option(
        "--map",
        metavar="FILE",
        help="CSV with the header study,external mapping the study's outputs to --external findings (e.g. "
        "Effusion,Pleural Effusion). Without it: the built-in NIH/CheXpert map, then equal names.",
        show_default=False,
    ),
]


SaliencyOption = Annotated[
    int,
    typer.Option(
        "--saliency",
        metavar="N",
        help="Test images per output and kind (true positive, false negative, false positive) explained by Grad-CAM "
        "at the cut-off layer, in the report; 0 for none (the pictures show test X-rays).",
    ),
]


SubgroupOption = Annotated[
    list[str] | None,
    typer.Option(
        "--subgroup",
        metavar="NAME[=COLUMN]",
        help="Another subgroup from a column of a path,label CSV (repeatable): NAME groups by the column NAME; "
        "sex=COLUMN, age=COLUMN and position=COLUMN read it as sex, age bands or PA/AP, e.g. --subgroup sex=gender.",
        show_default=False,
    ),
]


ConfigOption = Annotated[
    EvaluateConfig,
    typer.Option(
        "--config",
        help="best: the answer's best candidate. cheapest: the candidate in its confidence set with the fewest "
        "FLOPs, as good as the best as far as the data can tell.",
    ),
]


OperatingPointOption = Annotated[
    OperatingPoint,
    typer.Option(
        "--operating-point",
        help="The threshold the summary leads with, chosen on validation: youden (max sensitivity + specificity), "
        "sens@spec90/95 (most sensitive at 90/95% specificity) or spec@sens90/95 (most specific at 90/95% sensitivity).",
    ),
]


def evaluate(
    study: Annotated[
        str | None,
        typer.Option(
            "--study", help="Name of the study to evaluate. Default: the only study in the storage.", show_default=False
        ),
    ] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", help="Optuna storage URL. Default: sqlite:///studies/ocl.db", show_default=False)
    ] = None,
    output_dir: Annotated[Path, typer.Option("--output-dir", help="Where the HTML report and the .keras model go.")] = Path(
        "studies/reports"
    ),
    config: ConfigOption = EvaluateConfig.best,
    operating_point: OperatingPointOption = "youden",
    external: ExternalOption = None,
    label_map: MapOption = None,
    saliency: SaliencyOption = 2,
    subgroup: SubgroupOption = None,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Retrain the answer's configuration and score it once on the test split.

    Writes a self-contained HTML report (per-class AUROC, ROC curves, calibration, operating points,
    subgroups, external validation, Grad-CAM maps) and the model folder (model.keras with its
    model card), and measures its inference speed beside the full network's.
    Example: ocl evaluate --study nih-cxr14-sample-any-224px-fe-imagenet --external ~/hospital-dicoms
    """
    from sweep.api import evaluate_study

    evaluation, summary = evaluate_study(
        study,
        storage=storage,
        output_dir=output_dir,
        config=config.value,
        operating_point=OperatingPoint(operating_point).value,
        external=external or (),
        label_map=label_map,
        saliency=saliency,
        subgroups=subgroup or (),
    )
    for warning in summary["warnings"]:
        warn(warning)
    if format is OutputFormat.json:
        print_json(summary)
        return
    _print_evaluation(evaluation, summary)


def _print_evaluation(evaluation, summary: dict) -> None:
    """The test split per output, the interval, the inference cost and the answer, as a table and lines."""
    table = new_table(
        f"Test split, trial {evaluation.trial}: {evaluation.config.strategy} at {evaluation.config.cut_layer}",
        "output",
        "test AUROC",
        "val AUROC",
        "sensitivity",
        "specificity",
    )
    for k, output in enumerate(evaluation.test.outputs):
        t, v = evaluation.test, evaluation.val
        table.add_row(output, f"{t.auroc[k]:.4f}", f"{v.auroc[k]:.4f}", f"{t.sensitivity[k]:.3f}", f"{t.specificity[k]:.3f}")
    console.print(table)
    s, test = evaluation.test.summary(), summary["test"]
    console.print(
        f"test mean AUROC [bold]{s['mean_auroc']:.4f}[/] [{test['mean_auroc_low']:.3f}, {test['mean_auroc_high']:.3f}] "
        "(95% patient-level bootstrap), "
        f"balanced accuracy {s['mean_balanced_accuracy']:.3f} "
        f"(accuracy {s['mean_accuracy']:.3f} vs majority-class {s['mean_majority_accuracy']:.3f})"
    )
    cost = summary["inference"]
    console.print(
        f"inference: {cost['images_per_second']:.0f} img/s at {cost['image_size']} px on {cost['device']}, against "
        f"{cost['full_network_images_per_second']:.0f} img/s for the full DenseNet-121 ({cost['speedup']:.1f}x; measured now)",
        highlight=False,
    )
    _print_clinical(summary)
    _print_subgroups(summary)
    _print_external(summary)
    _print_saliency(summary)
    console.print(f"[bold]the study's answer:[/] {summary['answer']}", highlight=False)
    console.print(f"report: {summary['report']}\nmodel:  {summary['model_dir']} (model.keras, model_card.json, MODEL_CARD.md)")


def _ci(value: dict) -> str:
    return f"{value['estimate']:.2f} [{value['low']:.2f}, {value['high']:.2f}]"


def _print_clinical(summary: dict) -> None:
    """Calibration before and after the validation temperature, then the chosen operating point on test:
    two narrow tables rather than one wide one, so each reads in an 80-column terminal."""
    point = summary["operating_point"]
    calibration = new_table("Calibration on test (temperature fitted on validation)", "output", "T", "ECE before", "ECE after")
    for output, found in summary["calibration"].items():
        calibration.add_row(output, f"{found['temperature']:.2f}", _ci(found["ece_before"]), _ci(found["ece_after"]))
    console.print(calibration)
    rates = new_table(
        f"The {point} operating point (chosen on validation, scored on test)",
        "output",
        "threshold",
        "sens.",
        "spec.",
        "PPV",
        "NPV",
    )
    for output, points in summary["operating_points"].items():
        chosen = points.get(point)
        values = [_ci(chosen["test"][k]) for k in ("sensitivity", "specificity", "ppv", "npv")] if chosen else ["-"] * 4
        rates.add_row(output, f"{chosen['threshold']:.3f}" if chosen else "-", *values)
    console.print(rates)


def _print_subgroups(summary: dict) -> None:
    """Per subgroup of sex, age band and view: a table for up to three outputs, and every flagged gap."""
    subgroups = summary.get("subgroups") or {}
    if len(subgroups) <= 3:
        for output, groupings in subgroups.items():
            table = new_table(
                f"{output} by subgroup (test; false negatives at {summary['operating_point']})",
                "grouping",
                "subgroup",
                "images",
                "prevalence",
                "AUROC",
                "false neg. rate",
            )
            for grouping, found in groupings.items():
                for name, facts in found["subgroups"].items():
                    scored = not facts["too_small"]
                    auroc = _ci(facts["auroc"]) if scored else "too small"
                    fnr = _ci(facts["false_negative_rate"]) if scored else ""
                    table.add_row(grouping, str(name), str(facts["images"]), f"{facts['prevalence']:.0%}", auroc, fnr)
            console.print(table)
    from sweep.results import gap_lines

    lines = gap_lines(subgroups)
    for line in lines:
        console.print(f"[bold]subgroup gap:[/] {line}", highlight=False)
    tested = any(
        found.get(key) for groupings in subgroups.values() for found in groupings.values() for key in ("auroc_gap", "fnr_gap")
    )
    if tested and not lines:
        console.print("no subgroup gap is significant (95%, corrected for the pairs compared)", highlight=False)
    elif subgroups and not tested:
        console.print("no subgroup gap could be tested: no grouping has two subgroups large enough to score", highlight=False)


def _print_external(summary: dict) -> None:
    """Per output: the internal test AUROC beside each external dataset's, with intervals."""
    external = summary.get("external") or []
    if not external:
        return
    internal = summary["test"].get("auroc_intervals") or {}
    table = new_table("AUROC: internal test split vs external data", "output", "internal", *(e["name"] for e in external))
    for output, found in internal.items():
        cells = []
        for entry in external:
            facts = entry["outputs"][output]
            cells.append(_ci(facts["auroc"]) if facts["auroc"] else ("not in data" if facts["counterpart"] is None else "-"))
        table.add_row(output, _ci(found) if found else "-", *cells)
    console.print(table)
    for entry in external:
        left = f"; {entry['left_out']} image(s) of the study's own patients left out" if entry["left_out"] else ""
        mean = entry["mean_auroc"]
        console.print(
            f"external {entry['name']}: {entry['images']} images of {entry['patients']} patients{left}; mean AUROC {_ci(mean)}"
            if mean
            else f"external {entry['name']}: no output scorable",
            highlight=False,
        )


def _print_saliency(summary: dict) -> None:
    """How many Grad-CAM pictures were made, and the randomisation check's verdict."""
    saliency = summary.get("saliency")
    if not saliency or not saliency["examples"]:
        return
    sanity = saliency["sanity"]
    count = f"saliency: {len(saliency['examples'])} Grad-CAM maps in the report; "
    if sanity["mean"] is None:
        console.print(count + "the randomisation check could not be made (every map is flat)", highlight=False)
        return
    numbers = f"rank correlation with a randomised twin's maps {sanity['mean']:.2f} [{sanity['low']:.2f}, {sanity['high']:.2f}]"
    verdict = (
        f"sanity check passed ({numbers}; upper bound below {sanity['limit']})"
        if sanity["passed"]
        else f"sanity check failed ({numbers}; needs an upper bound below {sanity['limit']}): do not read the maps as evidence"
    )
    console.print(count + verdict, highlight=False)
