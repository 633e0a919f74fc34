"""Creating and resuming studies, with the settings every worker reads back from storage.

A study fixes what its trials are comparable on: dataset, task, image size, seed and search
space. They are stored on the study itself (``ocl:settings``), so ``ocl worker --study S
--storage URL`` on another machine needs nothing else, and rerunning ``ocl sweep`` with other
settings under the same name is refused instead of mixing incomparable trials.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, fields
from typing import Any

import optuna

from sweep.data import DataOptions, key_fingerprint, pseudonym_key, pseudonym_key_path
from sweep.errors import OCLError
from sweep.study import _records as records
from sweep.study._search_space import SearchSpace

__all__ = [
    "METRIC_NAME",
    "SELECTIONS",
    "SweepSettings",
    "check_resumable",
    "count_states",
    "fail_trials_of",
    "create_or_resume",
    "load_settings",
    "load_study",
    "make_pruner",
    "make_sampler",
    "check_pseudonym_key",
]

METRIC_NAME = "val_mean_auroc"
INNER_METRIC_NAME = "inner_mean_auroc"  # what a --selection inner trial's value is: the AUROC it was chosen on
SELECTIONS = {
    "halves": "each trial's epoch and each candidate's trial chosen on one validation half, scored on the other",
    "inner": (
        "each trial's epoch and each candidate's trial chosen on an inner split of train; "
        "validation scores one model per candidate"
    ),
}
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


_DATA_KEYS = tuple(f.name for f in fields(DataOptions))


@dataclass(frozen=True)
class SweepSettings:
    """What a study compares trials on: how the data is read, the image size and the search space.

    Stored on the study as flat JSON with one key per data option (``data``, ``task``, ``seed``,
    ``split``, ``positive``, ``labels``, ``uncertain``, ``view``) beside the rest, exactly as
    studies have always been stored, so every existing study resumes under its old default name.
    ``data_options.task`` is the task as the dataset resolved it (``any``, never None).
    """

    data_options: DataOptions
    dataset: str
    image_size: int
    space: SearchSpace
    cv: int | None = None  # K: feature-extraction trials score K-fold out-of-fold predictions over train+val (--cv)
    prefix_cache: bool = True  # fine-tuning trials read their frozen prefix from the spatial bank (--no-prefix-cache)
    precision: str = "float32"  # float32 or mixed (--precision): what banking and fine-tuning compute in
    selection: str = "halves"  # where a trial's epoch and a candidate's trial are chosen (--selection): see SELECTIONS

    @property
    def task(self) -> str:
        return str(self.data_options.task)

    @classmethod
    def default_for(cls, dataset: str, task: str, image_size: int, space: SearchSpace) -> SweepSettings:
        """The settings of a study that passed nothing but its dataset, task, size and space."""
        return cls(DataOptions(task=task), dataset, image_size, space)

    def to_json(self) -> str:
        values = asdict(self)
        values.update(values.pop("data_options"))
        if values["precision"] == "float32":  # the default is left out: studies stored before it keep their JSON and names
            values.pop("precision")
        if values["selection"] == "halves":  # likewise
            values.pop("selection")
        if values["space"]["epoch_rows"] == SearchSpace.epoch_rows:  # likewise
            values["space"].pop("epoch_rows")
        return json.dumps(values, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SweepSettings:
        values = json.loads(text)
        options = DataOptions(**{key: values.pop(key) for key in _DATA_KEYS if key in values})
        return cls(data_options=options, **{**values, "space": SearchSpace.from_dict(values["space"])})


def _differences(stored: str, settings: SweepSettings) -> list[str]:
    """The settings (and search-space keys) in which a stored study differs, compared as JSON."""
    old = json.loads(SweepSettings.from_json(stored).to_json())  # settings added since fill in their defaults
    new = json.loads(settings.to_json())
    differ = [k for k in new if k != "space" and old.get(k) != new[k]]
    old_space, new_space = old.get("space", {}), new["space"]
    differ += [f"space.{k}" for k in new_space if old_space.get(k) != new_space[k]]
    return differ


def check_resumable(storage: Any, name: str, settings: SweepSettings) -> bool:
    """Refuse to resume study ``name`` with other settings; touches nothing, so it runs before any
    cache is built. Returns whether the study already exists."""
    if name not in {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}:
        return False
    stored = optuna.load_study(study_name=name, storage=storage).user_attrs.get(records.SETTINGS)
    differ = _differences(stored, settings) if stored is not None else []
    if differ:
        raise OCLError(
            f"--study {name}: this study was run with other {', '.join(differ)}; rerun with the same settings "
            "to resume it, or pass --study NEW_NAME to start another"
        )
    return True


def check_backend(storage: Any, name: str, backend: str, *, allow_change: bool = False) -> None:
    """Refuse to resume study ``name`` on another Keras backend than its trials ran on, unless asked:
    numerics differ between backends in the last bits, and a study should say what produced it.
    A study without a recorded backend (made before OCL recorded it) resumes on any."""
    if name not in {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}:
        return
    stored = optuna.load_study(study_name=name, storage=storage).user_attrs.get(records.BACKEND)
    if stored is not None and stored != backend and not allow_change:
        raise OCLError(
            f"--backend {backend}: study {name} ran its trials on the {stored} backend; pass --backend {stored} to resume "
            "it, --allow-backend-change to add trials from another backend, or --study NEW_NAME to start another"
        )


def create_or_resume(storage: Any, name: str, settings: SweepSettings, target: int) -> optuna.Study:
    """Open study ``name`` (creating it), check its settings, and record the trial target."""
    check_resumable(storage, name, settings)
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
    if study.user_attrs.get(records.SETTINGS) is None:
        study.set_user_attr(records.SETTINGS, settings.to_json())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([METRIC_NAME if settings.selection == "halves" else INNER_METRIC_NAME])
    study.set_user_attr(records.TARGET, int(target))
    check_pseudonym_key(study)
    return study


def check_pseudonym_key(study: optuna.Study) -> None:
    """Record the fingerprint of this machine's pseudonym key on a study without one, and refuse a
    study whose patients were pseudonymised with another key (the stored split would name other
    pseudonyms than this machine computes)."""
    here = key_fingerprint(pseudonym_key())
    stored = study.user_attrs.get(records.PSEUDONYM_KEY)
    if stored is None:
        study.set_user_attr(records.PSEUDONYM_KEY, here)
    elif stored != here:
        raise OCLError(
            f"--study {study.study_name}: its patient IDs were pseudonymised with another key (fingerprint {stored}; "
            f"this machine's {pseudonym_key_path()} is {here}); copy the key file from the machine that started the "
            "study, or point OCL_PSEUDONYM_KEY_FILE at it"
        )


def load_settings(study: optuna.Study) -> SweepSettings:
    stored = study.user_attrs.get(records.SETTINGS)
    if stored is None:
        raise OCLError(f"--study {study.study_name}: not an OCL study (no {records.SETTINGS}); start it with `ocl sweep`")
    return SweepSettings.from_json(stored)


def target_of(study: optuna.Study) -> int:
    """The finished trials the study was last asked for (``ocl sweep --trials``)."""
    return int(study.user_attrs.get(records.TARGET, 0))


def load_study(storage: Any, name: str) -> optuna.Study:
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        listed = ", ".join(names[:8]) or "none yet"
        raise OCLError(f"--study {name}: no such study in this storage (studies: {listed})") from None


def fail_trials_of(study: optuna.Study, pids: list[int]) -> list[int]:
    """Mark FAIL the RUNNING trials of worker processes that were terminated (``pids``): a worker
    stopped mid-trial cannot tell the storage itself, and a trial left RUNNING would read as alive
    until its heartbeat went stale. Returns the trial numbers marked."""
    marked = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get(records.key_of("pid")) in pids:
            try:
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            except (RuntimeError, ValueError):  # it finished after all, between the read and the tell
                continue
            marked.append(trial.number)
    return marked


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


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """The study's pruner, applied per strategy and epoch budget (see :mod:`sweep.study._pruning`).

    ``median``: after 5 finished trials of its group, a trial whose validation AUROC is below the
    group's median at the same epoch stops, but not in the first quarter of its budget nor after
    its last epoch. ``hyperband``: Hyperband with the group's epoch budget as its resource.
    """
    from sweep.study._pruning import PerStrategyPruner

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "hyperband":
        return PerStrategyPruner(lambda epochs: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs))
    return PerStrategyPruner(lambda epochs: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, epochs // 4)))
