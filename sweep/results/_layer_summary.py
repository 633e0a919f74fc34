"""Per-layer summaries of a study's completed trials: one implementation for every reader.

The sweep's closing table, the OCL dictionary's sweep scores and the report all ask the same
question of a study: for each cut layer (and weights), how did its completed trials score? They
all read it from here, through :class:`~sweep.study._records.TrialRecord`.

Example:
    >>> [(s.layer, s.best, s.n_trials) for s in summarize_layers(study)][:1]
    [('conv4_block24_concat', 0.73, 4)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from sweep.study import TrialRecord

__all__ = ["LayerSummary", "completed_trials", "summarize_layers"]


@dataclass(frozen=True)
class LayerSummary:
    """The completed trials of one study at one cut layer and weights."""

    layer: str
    weights: str
    depth: int | None
    layer_index: int
    block: str | None
    channels: int | None
    stride: int | None
    best: float
    mean: float
    n_trials: int
    best_trial: int  # the number of the trial that scored ``best``


def completed_trials(study: optuna.Study) -> list[tuple[Any, TrialRecord]]:
    """Every completed trial with a value, paired with its record (trials OCL never described are left out)."""
    pairs = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        record = TrialRecord.from_trial(trial)
        if record is not None and trial.value is not None:
            pairs.append((trial, record))
    return pairs


def summarize_layers(
    study: optuna.Study, *, layer: str | None = None, weights: str | None = None, strategy: str | None = None
) -> list[LayerSummary]:
    """Best and mean validation AUROC per (cut layer, weights), best first; optionally one layer,
    weights or strategy only."""
    groups: dict[tuple[str, str], list[tuple[Any, TrialRecord]]] = {}
    for trial, record in completed_trials(study):
        wanted = (layer, weights, strategy)
        have = (record.cut_layer, record.weights, record.strategy)
        if all(w is None or w == h for w, h in zip(wanted, have)):
            groups.setdefault((record.cut_layer, record.weights), []).append((trial, record))
    summaries = []
    for (name, label), pairs in groups.items():
        values = [trial.value for trial, _ in pairs]
        best_trial, record = max(pairs, key=lambda pair: pair[0].value)
        summaries.append(
            LayerSummary(
                layer=name,
                weights=label,
                depth=record.layer_depth,
                layer_index=record.layer_index,
                block=record.block,
                channels=record.channels,
                stride=record.stride,
                best=max(values),
                mean=sum(values) / len(values),
                n_trials=len(values),
                best_trial=best_trial.number,
            )
        )
    return sorted(summaries, key=lambda s: -s.best)
