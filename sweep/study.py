"""Creating and resuming studies, with the settings every worker reads back from storage.

A study fixes what its trials are comparable on: dataset, task, image size, seed and search
space. They are stored on the study itself (``ocl:settings``), so ``ocl worker --study S
--storage URL`` on another machine needs nothing else, and rerunning ``ocl sweep`` with other
settings under the same name is refused instead of mixing incomparable trials.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import optuna

from sweep import _attrs
from sweep.errors import OCLError

__all__ = ["METRIC_NAME", "SweepSettings", "count_states", "create_or_resume", "load_settings", "make_pruner", "make_sampler"]

METRIC_NAME = "val_mean_auroc"
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@dataclass(frozen=True)
class SweepSettings:
    """What a study compares trials on; ``data`` None means the embedded sample."""

    data: str | None
    dataset: str
    task: str
    image_size: int
    seed: int
    space: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SweepSettings:
        return cls(**json.loads(text))


def create_or_resume(storage: Any, name: str, settings: SweepSettings, target: int) -> optuna.Study:
    """Open study ``name`` (creating it), check its settings, and record the trial target."""
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
    stored = study.user_attrs.get(_attrs.SETTINGS)
    if stored is None:
        study.set_user_attr(_attrs.SETTINGS, settings.to_json())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([METRIC_NAME])
    elif json.loads(stored) != json.loads(settings.to_json()):  # compare as stored: tuples become lists
        old, new = json.loads(stored), json.loads(settings.to_json())
        differ = [k for k in new if old.get(k) != new[k]]
        raise OCLError(
            f"--study {name}: this study was run with other {', '.join(differ)}; rerun with the same settings "
            "to resume it, or pass --study NEW_NAME to start another"
        )
    study.set_user_attr(_attrs.TARGET, int(target))
    return study


def load_settings(study: optuna.Study) -> SweepSettings:
    stored = study.user_attrs.get(_attrs.SETTINGS)
    if stored is None:
        raise OCLError(f"--study {study.study_name}: not an OCL study (no {_attrs.SETTINGS}); start it with `ocl sweep`")
    return SweepSettings.from_json(stored)


def load_study(storage: Any, name: str) -> optuna.Study:
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        listed = ", ".join(names[:8]) or "none yet"
        raise OCLError(f"--study {name}: no such study in this storage (studies: {listed})") from None


def count_states(study: optuna.Study) -> dict[str, int]:
    counts = {state.name.lower(): 0 for state in optuna.trial.TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name.lower()] += 1
    counts["finished"] = counts["complete"] + counts["pruned"]
    return counts


def make_sampler(seed: int) -> optuna.samplers.BaseSampler:
    """TPE with a seed per worker; the constant liar keeps parallel workers from sampling the same point."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=10)


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs)
    if name == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)
