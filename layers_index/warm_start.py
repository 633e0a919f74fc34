"""``ocl sweep --warm-start``: first try the layers the OCL dictionary already rates best.

TPE starts with random trials (10 here); on a 63-layer dimension that is mostly a blind draw. When
the dictionary knows the dataset (a build or an earlier sweep), the first trials can go to its
top layers instead, and the sampler takes over from there with good points already in hand.

Only the cut layer is fixed (and the strategy, to feature extraction, which is what the
dictionary's scores measure, and the weights, when the space samples them); every other
hyperparameter is still sampled. Layers the space does not allow are never enqueued, and a
rerun does not enqueue the same layer twice.

Example:
    >>> enqueue_top_layers(study, "sqlite:///studies/ocl.db", settings, k=3)
    ['relu', 'conv5_block14_concat', 'conv5_block13_concat']
"""

from __future__ import annotations

import fnmatch
from typing import Any

import optuna

from layers_index.views import dictionary_frame
from sweep import _attrs

__all__ = ["enqueue_top_layers"]


def _allowed(layer: str, patterns: list[str]) -> bool:
    """Whether the space's ``cut_layers`` allow a layer (as ``SearchSpace.resolve_layers``: names or globs)."""
    return any(fnmatch.fnmatchcase(layer, p) if any(ch in p for ch in "*?[") else layer == p for p in patterns)


def _enqueued_before(study: optuna.Study, params: dict[str, Any]) -> bool:
    for trial in study.get_trials(deepcopy=False):
        if trial.system_attrs.get("fixed_params") == params:
            return True
    return False


def enqueue_top_layers(study: optuna.Study, storage_url: str, settings: Any, k: int = 3) -> list[str]:
    """Enqueue one trial at each of the ``k`` best allowed layers for the study's dataset, task and size.

    Args:
        study: the study to enqueue into.
        storage_url: the database holding the dictionary.
        settings: the study's :class:`sweep.study.SweepSettings`.
        k: how many layers.

    Returns:
        The layers enqueued now, best first (empty when the dictionary knows nothing that fits,
        or when the space has a single cut layer, so there is nothing to choose).
    """
    if k < 1:
        raise ValueError(f"k={k}: expected at least 1")
    space = settings.space
    patterns = list(space.get("cut_layers", ["*"]))
    strategies = list(space.get("strategies", ["feature_extraction"]))
    weights = list(space.get("weights", ["imagenet"]))
    if len(patterns) == 1 and not any(ch in patterns[0] for ch in "*?["):
        return []
    frame = dictionary_frame(storage_url, dataset=settings.dataset, task=settings.task, image_size=settings.image_size)
    frame = frame[frame["weights"].isin(weights) & frame["rank"].notna()]
    frame = frame[frame["layer"].map(lambda layer: _allowed(layer, patterns)).astype(bool)]
    # Best first; with several weights profiles, their number-one layers come before any number two.
    frame = frame.assign(order=frame["weights"].map(weights.index)).sort_values(["rank", "order"], kind="stable")
    enqueued: list[str] = []
    seen: set[tuple[str, str | None]] = set()
    for row in frame.itertuples(index=False):
        key = (row.layer, row.weights if len(weights) > 1 else None)
        if key in seen:
            continue
        seen.add(key)
        params: dict[str, Any] = {"cut_layer": row.layer}
        if len(strategies) > 1 and "feature_extraction" in strategies:
            params["strategy"] = "feature_extraction"
        if len(weights) > 1:
            params["weights"] = row.weights
        if not _enqueued_before(study, params):
            study.enqueue_trial(params, user_attrs={_attrs.WARM_START: True})
            enqueued.append(row.layer)
        if len(seen) == k:
            break
    return enqueued
