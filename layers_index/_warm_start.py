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

from typing import Any

import optuna

from layers_index._views import dictionary_frame
from sweep.model import CANDIDATES
from sweep.study import SearchSpace, SweepSettings, is_glob
from sweep.study import _records as records
from sweep.training import FEATURE_EXTRACTION

__all__ = ["check_source", "enqueue_top_layers"]


def enqueue_top_layers(
    study: optuna.Study,
    storage_url: str,
    settings: SweepSettings,
    k: int = 3,
    *,
    fingerprint: str | None = None,
    source: str | None = None,
) -> list[str]:
    """Enqueue one trial at each of the ``k`` best allowed layers the dictionary knows.

    Args:
        study: the study to enqueue into.
        storage_url: the database holding the dictionary.
        settings: the study's settings; its search space says which layers, strategies and
            weights may be enqueued.
        k: how many layers.
        fingerprint: the study's split fingerprint. Without ``source``, only the dictionary's
            entries for this very dataset are used: same name, task, split, weights and size (an
            entry from another split may have trained on this study's validation or test patients).
        source: ``--warm-start-from``: another dataset's name, whose profiles (any task or split,
            same weights and size) are used instead.

    Returns:
        The layers enqueued now, best first (empty when the dictionary knows nothing that fits,
        or when the space has a single cut layer, so there is nothing to choose).
    """
    if k < 1:
        raise ValueError(f"k={k}: expected at least 1")
    space = settings.space
    weights = list(space.weights)
    if space.fixed_cut_layer is not None:
        return []
    frame = _ranked_profiles(storage_url, settings, fingerprint, source)
    allowed = _allowed_layers(space)
    enqueued: list[str] = []
    seen: set[tuple[str, str | None]] = set()
    for row in frame.itertuples(index=False):
        key = (row.layer, row.weights if len(weights) > 1 else None)
        if key in seen:
            continue
        seen.add(key)
        if _enqueue(study, _trial_params(space, row, allowed)):
            enqueued.append(row.layer)
        if len(seen) == k:
            break
    return enqueued


def _ranked_profiles(storage_url: str, settings: SweepSettings, fingerprint: str | None, source: str | None):
    """The dictionary's ranked rows for the space's weights and allowed layers, best first.

    With several weights profiles, their number-one layers come before any number two.
    """
    space = settings.space
    weights = list(space.weights)
    if source is None:
        frame = dictionary_frame(
            storage_url,
            dataset=settings.dataset,
            task=settings.task,
            image_size=settings.image_size,
            fingerprint=fingerprint,
        )
    else:
        frame = dictionary_frame(storage_url, dataset=source, image_size=settings.image_size)
    frame = frame[frame["weights"].isin(weights) & frame["rank"].notna()]
    frame = frame[frame["layer"].map(space.allows).astype(bool)]
    return frame.assign(order=frame["weights"].map(weights.index)).sort_values(["rank", "order"], kind="stable")


def _allowed_layers(space: SearchSpace) -> list[str]:
    """The cut layers the space allows, as the worker sees them (candidates, then named non-candidates)."""
    allowed = [layer for layer in CANDIDATES if space.allows(layer)]
    allowed += [name for name in space.cut_layers if not is_glob(name) and name not in CANDIDATES]
    return allowed


def _trial_params(space: SearchSpace, row: Any, allowed: list[str]) -> dict[str, Any]:
    """The parameters that fix a trial to the row's layer (and to feature extraction and the row's weights, when sampled)."""
    params: dict[str, Any] = space.cut_layer_params(row.layer, allowed)
    if len(space.strategies) > 1 and FEATURE_EXTRACTION in space.strategies:
        params["strategy"] = FEATURE_EXTRACTION.value
    if len(space.weights) > 1:
        params["weights"] = row.weights
    return params


def _enqueue(study: optuna.Study, params: dict[str, Any]) -> bool:
    """Enqueue a warm-start trial unless the same one is already queued; whether it was added."""
    before = len(study.get_trials(deepcopy=False))
    study.enqueue_trial(params, user_attrs={records.WARM_START: True}, skip_if_exists=True)
    return len(study.get_trials(deepcopy=False)) > before


def check_source(storage_url: str, source: str) -> None:
    """Refuse ``--warm-start-from`` a dataset the dictionary does not hold, listing those it does."""
    from layers_index._store import read_scores
    from sweep.errors import OCLError
    from sweep.storage import sqlite_path

    path = sqlite_path(storage_url)
    rows = [] if path is not None and not path.exists() else read_scores(storage_url)
    known = sorted({row["dataset"] for row in rows})
    if source not in known:
        raise OCLError(
            f"--warm-start-from {source}: the OCL dictionary in {storage_url} has no such dataset "
            f"(datasets: {', '.join(known) or 'none yet'}); run `ocl dictionary build --data ...` for it first"
        )
