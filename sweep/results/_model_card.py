"""The model card that travels with an exported model: what it takes, what it returns, how it was
made, how well it did, and what the reporting guidelines still ask of its author.

``ocl evaluate`` writes a folder, ``STUDY.model/``: ``model.keras`` (raw grayscale X-ray in,
calibrated probabilities out), ``model_card.json`` (everything below, for programs such as
``ocl predict``) and ``MODEL_CARD.md`` (the same for people). Items of CLAIM (Mongan et al., 2020;
2024 update) and TRIPOD+AI (Collins et al., BMJ 2024) that OCL can fill are filled from the
study; those it cannot know (intended use, the reference standard's quality, the population) are
listed for the author. Like the report, the card names no patient, folder or host.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

__all__ = ["CARD_FILE", "CARD_MARKDOWN", "MODEL_FILE", "load_model_card", "model_card", "write_model_card"]

MODEL_FILE = "model.keras"
CARD_FILE = "model_card.json"
CARD_MARKDOWN = "MODEL_CARD.md"

FILLED_BY_OCL = (
    "data partitions and how patients were kept apart (CLAIM 21; TRIPOD+AI 10)",
    "model, training and selection (CLAIM 22-30)",
    "discrimination with confidence intervals (CLAIM 33; TRIPOD+AI 23)",
    "calibration before and after recalibration (TRIPOD+AI 23)",
    "performance by subgroup where the data records sex, age and view (CLAIM 38; TRIPOD+AI 23)",
    "validation on external data, for the --external datasets given (CLAIM: testing on external data)",
    "saliency maps and how they were checked: model randomisation (CLAIM: methods for explainability)",
)
AUTHOR_MUST_FILL = (
    "intended use and users (CLAIM 2; TRIPOD+AI 3)",
    "how the reference labels were made and their known errors (NIH's labels are NLP-mined from reports) (CLAIM 14-18)",
    "the population and setting the data come from, and inclusion criteria (CLAIM 7-9; TRIPOD+AI 5)",
    "ethics approval and data-use agreements (TRIPOD+AI 9)",
    "failure analysis on misclassified images with a clinician (CLAIM 37)",
)


def model_card(summary: dict[str, Any], settings: Any, info: Any, config: Any) -> dict[str, Any]:
    """The card of an evaluated model, from ``ocl evaluate``'s summary, the study's settings and
    dataset facts, and the retrained trial's configuration."""
    point = summary.get("operating_point", "youden")
    thresholds = {
        output: points[point]["threshold"]
        for output, points in (summary.get("operating_points") or {}).items()
        if point in points
    }
    return {
        "model": MODEL_FILE,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "architecture": {
            "network": "DenseNet-121",
            "cut_layer": config.cut_layer,
            "strategy": config.strategy,
            "weights": summary.get("weights"),
            "trial": summary.get("trial"),
        },
        "input": {
            "image_size": settings.image_size,
            "channels": 1,
            "values": "grayscale 0-255, resized to image_size x image_size (Lanczos), as the image cache does",
            "preprocessing": "inside the model: gray to 3 channels, then Keras' DenseNet preprocess_input",
        },
        "outputs": list((summary.get("temperatures") or {}).keys()),
        "task": settings.task,
        "temperatures": summary.get("temperatures"),
        "operating_point": point,
        "thresholds": thresholds,
        "data": {
            "dataset": settings.dataset,
            "images": info.images,
            "patients": info.patients,
            "split_fingerprint": info.fingerprint,
            "split": settings.data_options.split,
            "seed": settings.data_options.seed,
            "selection": "Cut layer, strategy and hyperparameters chosen on validation only; test used once",
        },
        "results": {
            "validation_mean_auroc": summary.get("val_mean_auroc"),
            "test": summary.get("test"),
            "calibration": {
                output: {k: c[k] for k in ("temperature", "ece_before", "ece_after")}
                for output, c in (summary.get("calibration") or {}).items()
            },
            "operating_points": summary.get("operating_points"),
            "subgroups": summary.get("subgroups"),
            "external": summary.get("external") or [],
            "saliency_check": (summary.get("saliency") or {}).get("sanity"),
            "inference": summary.get("inference"),
        },
        "reporting": {"filled_by_ocl": list(FILLED_BY_OCL), "author_must_fill": list(AUTHOR_MUST_FILL)},
    }


def _rate(value: dict[str, Any] | None) -> str:
    if not value:
        return "-"
    return f"{value['estimate']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"


def _markdown(card: dict[str, Any]) -> str:
    arch, data, results, test = card["architecture"], card["data"], card["results"], card["results"]["test"] or {}
    lines = [
        f"# Model card: DenseNet-121 cut at `{arch['cut_layer']}` ({arch['strategy'].replace('_', ' ')})",
        "",
        f"Made by OCL `ocl evaluate` on {card['created']}. File: `{card['model']}` "
        f"(input {card['input']['image_size']} x {card['input']['image_size']} x 1, grayscale 0-255; output: calibrated "
        f"probabilities of {', '.join(card['outputs'])}).",
        "",
        "## Data",
        f"{data['dataset']}: {data['images']:,} images of {data['patients']:,} patients, task `{card['task']}`, split "
        f"fingerprint `{data['split_fingerprint']}`. {data['selection']}.",
        "",
        "## Results on the held-out test split",
        f"Mean AUROC {test.get('mean_auroc', float('nan')):.3f} "
        f"[{test.get('mean_auroc_low', float('nan')):.3f}, {test.get('mean_auroc_high', float('nan')):.3f}] "
        f"(95% patient-level bootstrap); validation {results['validation_mean_auroc']:.3f}.",
        "",
        "| output | temperature | ECE before | ECE after | threshold | sensitivity | specificity | PPV | NPV |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for output in card["outputs"]:
        calibration = results["calibration"].get(output, {})
        chosen = (results["operating_points"] or {}).get(output, {}).get(card["operating_point"], {})
        rates = chosen.get("test", {})
        lines.append(
            f"| {output} | {calibration.get('temperature', float('nan')):.2f} | {_rate(calibration.get('ece_before'))} | "
            f"{_rate(calibration.get('ece_after'))} | {chosen.get('threshold', float('nan')):.3f} | "
            + " | ".join(_rate(rates.get(k)) for k in ("sensitivity", "specificity", "ppv", "npv"))
            + " |"
        )
    lines += ["", f"Operating point: `{card['operating_point']}` (chosen on validation)."]
    lines += _external_markdown(card)
    lines += ["", "## For the author to fill"]
    lines += [f"- {item}" for item in card["reporting"]["author_must_fill"]]
    return "\n".join(lines) + "\n"


def _external_markdown(card: dict[str, Any]) -> list[str]:
    """The external datasets' AUROC per output beside the internal test split's."""
    external = card["results"].get("external") or []
    if not external:
        return ["", "## External validation", "None: pass `ocl evaluate --external DATA` to score the model on other data."]
    internal = (card["results"]["test"] or {}).get("auroc_intervals") or {}
    lines = ["", "## External validation (AUROC, 95% patient-level bootstrap)", ""]
    lines.append("| output | internal test | " + " | ".join(e["name"] for e in external) + " |")
    lines.append("|---|---|" + "---|" * len(external))
    for output in card["outputs"]:
        cells = [_rate((e["outputs"].get(output) or {}).get("auroc")) for e in external]
        lines.append(f"| {output} | {_rate(internal.get(output))} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [
        f"- {e['name']}: {e['images']:,} images of {e['patients']:,} patients, none of them in the study's data."
        for e in external
    ]
    return lines


def write_model_card(folder: Path, card: dict[str, Any]) -> None:
    """``model_card.json`` and ``MODEL_CARD.md`` into ``folder`` (beside ``model.keras``)."""
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2, default=float) + "\n")
    (folder / CARD_MARKDOWN).write_text(_markdown(card))


def load_model_card(folder: str | Path) -> dict[str, Any]:
    """The card of an exported model folder (raises OCLError when it is not one)."""
    from sweep.errors import OCLError

    path = Path(folder) / CARD_FILE
    if not (Path(folder) / MODEL_FILE).is_file() or not path.is_file():
        raise OCLError(
            f"--model {folder}: not an exported OCL model (no {MODEL_FILE} and {CARD_FILE}); pass the STUDY.model folder "
            "that `ocl evaluate` wrote"
        )
    return json.loads(path.read_text())
