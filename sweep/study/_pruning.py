"""Pruning that compares like with like and never discards a finished trial.

Optuna's pruners compare a trial's intermediate value at step ``s`` with every other trial's value
at ``s``. A study that mixes strategies breaks that in two ways: a fine-tuning trial (4 epochs,
each epoch a full pass of the network) is judged against feature-extraction heads (30 cheap epochs)
at the same step, and ``MedianPruner(n_warmup_steps=3)`` can prune a 4-epoch trial at step 3,
after its last epoch, throwing away a trial that already finished training. Both bias the
feature-extraction vs fine-tuning comparison the study exists to make.

So OCL prunes per group: a trial is compared only with trials of the same strategy and the same
epoch budget (each group gets its own pruner, so Hyperband's resource is that group's budget), and
the objective never asks at the epoch a trial's training ends, its last or the one where patience
ran out (:func:`may_prune`), so a trial that trained to the end always completes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.pruners import BasePruner

from sweep.study._records import key_of

__all__ = ["PerStrategyPruner", "may_prune"]


def may_prune(epoch: int, epochs: int, *, training_ends: bool = False) -> bool:
    """Whether a trial may be pruned after ``epoch`` (counted from 0) of ``epochs``: never after the
    last, and never once its training has ended otherwise (patience ran out): pruning then would
    throw away a finished result. The trainer says which (``training_ends``); the pruner is asked
    only after it has."""
    return epoch < epochs - 1 and not training_ends


class _GroupStorage:
    """An Optuna storage seen through a filter: only trials of one (strategy, epoch budget) group.

    Everything except listing trials goes to the real storage, so a pruner that writes (Hyperband
    records rungs as system attributes) writes there.
    """

    def __init__(self, storage: Any, group: tuple[Any, Any]) -> None:
        self._storage, self._group = storage, group

    def get_all_trials(self, study_id: int, deepcopy: bool = True, states: Sequence[Any] | None = None) -> list:
        trials = self._storage.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        return [t for t in trials if _group(t) == self._group]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


def _group(trial: Any) -> tuple[Any, Any]:
    attrs = trial.user_attrs
    return attrs.get(key_of("strategy")), attrs.get(key_of("epochs_budget"))


class PerStrategyPruner(BasePruner):
    """One pruner per (strategy, epoch budget), each seeing only its own group's trials.

    Args:
        make: builds the pruner for a group from its epoch budget, e.g.
            ``lambda epochs: HyperbandPruner(min_resource=1, max_resource=epochs)``.

    Example:
        >>> pruner = PerStrategyPruner(lambda epochs: optuna.pruners.MedianPruner(n_warmup_steps=epochs // 4))
    """

    def __init__(self, make: Callable[[int], BasePruner]) -> None:
        self._make = make
        self._pruners: dict[tuple[Any, Any], BasePruner] = {}

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        group = _group(trial)
        if group[0] is None or group[1] is None:  # not described by OCL: nothing to compare with safely
            return False
        if group not in self._pruners:
            self._pruners[group] = self._make(int(group[1]))
        view = optuna.Study(study_name=study.study_name, storage=_GroupStorage(study._storage, group), sampler=study.sampler)
        return self._pruners[group].prune(view, trial)
