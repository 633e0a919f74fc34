"""Candidate cut-off layers of DenseNet-121, and checking layer names a user types.

The candidates are where a feature map is complete: the stem output ``conv1_relu``, the output of
every dense layer (``convX_blockY_concat``, 58 of them), the transition outputs ``pool2_pool`` ...
``pool4_pool`` and the final ``relu``: 63 in depth order. Any other layer name of the network is
still accepted where a user names one (the poster fine-tuned from ``conv5_block16_2_conv``).

Example:
    >>> [c.name for c in candidate_layers(backbone)][:2]
    ['conv1_relu', 'conv2_block1_concat']
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from sweep.errors import OCLError

__all__ = [
    "CANDIDATES",
    "BlockSpan",
    "LayerCatalog",
    "LayerFacts",
    "LayerInfo",
    "block_of",
    "block_spans",
    "candidate_layers",
    "candidate_names",
    "is_candidate",
    "resolve_layer",
]

_CANDIDATE = re.compile(r"^(conv1_relu|relu|pool[234]_pool|conv[2-5]_block\d+_concat)$")
_DENSE_BLOCK = {"conv2": 1, "conv3": 2, "conv4": 3, "conv5": 4}


_BLOCK_SIZES = (6, 12, 24, 16)  # dense layers per block of DenseNet-121 (Huang et al. 2017, Table 1)
CANDIDATES: tuple[str, ...] = (
    "conv1_relu",
    *(
        name
        for block, size in enumerate(_BLOCK_SIZES, start=2)
        for name in (*(f"conv{block}_block{j}_concat" for j in range(1, size + 1)), *([f"pool{block}_pool"] if block < 5 else []))
    ),
    "relu",
)
"""The 63 candidate cut-off layers in depth order, known without building the network (a test
checks them against the built Keras model), so a process that never loads Keras can order them."""


def is_candidate(name: str) -> bool:
    return bool(_CANDIDATE.match(name))


def block_of(name: str) -> str:
    """Where a layer sits: ``stem``, ``dense block N``, ``transition N`` or ``final``."""
    if name.startswith("conv1") or name in ("pool1", "zero_padding2d", "zero_padding2d_1"):
        return "stem"
    if name in ("bn", "relu"):
        return "final"
    stage = name[:5]
    if stage.startswith("pool"):
        return f"transition {int(stage[4]) - 1}"
    if stage in _DENSE_BLOCK:
        return f"dense block {_DENSE_BLOCK[stage]}"
    return "input"


class BlockSpan(NamedTuple):
    """Where a dense block lies on a plot's x axis: the positions of its first and last layer."""

    block: str
    first: int
    last: int


def block_spans(positions: Mapping[str, int]) -> list[BlockSpan]:
    """The dense blocks' spans, in network order, over layers placed at ``positions`` (name to x).

    The report places candidates at their depth (0-62), the dictionary plot at their Keras layer
    index; both shade the same blocks from this one function.
    """
    spans: dict[str, list[int]] = {}
    for name, x in positions.items():
        block = block_of(name)
        if block.startswith("dense block"):
            spans.setdefault(block, []).append(int(x))
    return sorted((BlockSpan(block, min(xs), max(xs)) for block, xs in spans.items()), key=lambda span: span.first)


@dataclass(frozen=True)
class LayerFacts:
    """Where a layer sits in DenseNet-121: the facts every record of a layer carries, typed once.

    A trial's record (:meth:`sweep.study.TrialRecord.layer_facts`), a candidate's catalog entry
    (:attr:`LayerInfo.facts`) and a dictionary row (``layers_index.LayerKey``) all hold these.
    """

    name: str
    depth: int | None  # position among the 63 candidates (None: another layer of the network)
    layer_index: int  # position among all layers of the network
    block: str
    channels: int
    stride: int  # input size / the layer's output size


@dataclass(frozen=True)
class LayerInfo:
    """One candidate cut-off layer: where it is, what it outputs, what truncating there costs."""

    name: str
    depth: int  # position among the candidates, 0 = stem output
    layer_index: int  # position among all layers of the network
    block: str
    height: int
    width: int
    channels: int
    flops_fraction: float  # share of the full network's multiply-adds spent up to this layer
    stride: int  # input size / output size: how much the layer has downsampled
    params: int = 0  # weights of the network truncated here (DenseNet's layer order is topological)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def facts(self) -> LayerFacts:
        return LayerFacts(self.name, self.depth, self.layer_index, self.block, self.channels, self.stride)


def _layer_flops(layer: Any) -> float:
    """Multiply-adds of a convolution or dense layer (everything else in DenseNet is negligible)."""
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        return 0.0
    out_shape = layer.output.shape
    spatial = 1
    for dim in out_shape[1:-1]:
        spatial *= int(dim)
    weights = 1
    for dim in kernel.shape:
        weights *= int(dim)
    return float(weights * spatial)


def candidate_layers(model: Any) -> list[LayerInfo]:
    """The 63 candidate cut-off layers of a built backbone, in depth order."""
    flops = [_layer_flops(layer) for layer in model.layers]
    total = sum(flops) or 1.0
    infos: list[LayerInfo] = []
    running, params = 0.0, 0
    image_size = int(model.inputs[0].shape[1])
    for index, layer in enumerate(model.layers):
        running += flops[index]
        params += int(layer.count_params()) if layer.built else 0
        if is_candidate(layer.name):
            height, width, channels = (int(d) for d in layer.output.shape[1:])
            infos.append(
                LayerInfo(
                    layer.name,
                    len(infos),
                    index,
                    block_of(layer.name),
                    height,
                    width,
                    channels,
                    running / total,
                    image_size // height,
                    params,
                )
            )
    return infos


def candidate_names(model: Any) -> list[str]:
    return [info.name for info in candidate_layers(model)]


@dataclass(frozen=True)
class LayerCatalog:
    """Every layer name of a built backbone, and its candidate cut-off layers with their facts.

    One object instead of parallel lists: ``names`` are all layers in network order (any of them
    may be named as an unfreeze boundary or a cut), ``candidates`` the 63 cut-off layers.
    """

    names: tuple[str, ...]
    candidates: tuple[LayerInfo, ...]

    @classmethod
    def of(cls, model: Any) -> LayerCatalog:
        return cls(tuple(layer.name for layer in model.layers), tuple(candidate_layers(model)))

    @property
    def candidate_names(self) -> list[str]:
        return [info.name for info in self.candidates]

    def info(self, name: str) -> LayerInfo | None:
        """The facts of a candidate layer, or None for any other layer of the network."""
        return next((info for info in self.candidates if info.name == name), None)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def resolve(self, name: str, *, option: str = "--layer") -> str:
        return resolve_layer(name, self.names, option=option)


def resolve_layer(name: str, all_names: Sequence[str], *, option: str = "--layer") -> str:
    """Return ``name`` if the network has it, else raise with the nearest valid names."""
    if name in all_names:
        return name
    near = difflib.get_close_matches(name, list(all_names), n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(near)}? " if near else ""
    raise OCLError(f"{option} {name}: DenseNet-121 has no such layer; {hint}run `ocl layers` for the candidates")
