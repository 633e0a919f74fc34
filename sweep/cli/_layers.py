"""``ocl layers``: the candidate cut-off layers of DenseNet-121."""

from __future__ import annotations

from sweep.cli._common import FormatOption, ImageSizeOption, OutputFormat, console, new_table, print_json


def layers(image_size: ImageSizeOption = 224, format: FormatOption = OutputFormat.table) -> None:
    """Candidate cut-off layers in depth order: block, output shape, channels, share of FLOPs up to it.

    Truncating at a layer saves the FLOPs after it; any other layer name of the network is also
    accepted where a command takes a layer. Example: ocl layers --format json
    """
    from sweep.caches import check_image_size
    from sweep.model import Weights, build_backbone, candidate_layers

    check_image_size(image_size)
    infos = candidate_layers(build_backbone(image_size, Weights("none")))
    if format is OutputFormat.json:
        print_json([info.as_dict() for info in infos])
        return
    table = new_table(
        f"DenseNet-121 candidate cut-off layers at {image_size} px",
        "depth",
        "layer",
        "block",
        "output",
        "channels",
        "FLOPs up to here",
        text=("layer", "block"),
    )
    for info in infos:
        table.add_row(
            str(info.depth),
            info.name,
            info.block,
            f"{info.height}x{info.width}",
            str(info.channels),
            f"{info.flops_fraction:.1%}",
        )
    console.print(table)
