"""``ocl predict``: score new images with an exported model folder, on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sweep.cli._common import FormatOption, OutputFormat, console, new_table, print_json


def predict(
    images: Annotated[list[Path], typer.Argument(help="Image files: PNG, JPEG, TIFF, BMP, WebP or DICOM.", show_default=False)],
    model: Annotated[
        Path, typer.Option("--model", help="The STUDY.model folder `ocl evaluate` wrote (model.keras and its model card).")
    ],
    format: FormatOption = OutputFormat.table,
) -> None:
    """Calibrated probabilities for new images, and the call at the model card's operating point.

    The folder stands alone: the model takes raw grayscale images and ends in its temperatures; the
    card says the input size, the outputs and the thresholds. Example: ocl predict --model
    studies/reports/STUDY.model xray1.png xray2.dcm
    """
    from sweep.api import predict_images

    rows = predict_images(model, [str(p) for p in images])
    if format is OutputFormat.json:
        print_json(rows)
        return
    outputs = list(rows[0]["scores"]) if rows else []
    table = new_table(f"Calibrated probabilities (calls at the {rows[0]['operating_point']} operating point)", "image", *outputs)
    for row in rows:
        table.add_row(
            row["image"],
            *(f"{row['scores'][o]:.3f} {'positive' if row['calls'].get(o) else 'negative'}" for o in outputs),
        )
    console.print(table)
