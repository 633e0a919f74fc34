"""Planning a sweep: every check a user's flags, data, storage and study can fail, before anything is written.

:func:`plan_sweep` returns a :class:`SweepPlan` that says what will run, where and on what;
:mod:`sweep.api._execute` runs it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep._env import DEFAULT_STORAGE
from sweep.data import DataOptions, load_dataset
from sweep.errors import OCLError
from sweep.model import parse_precision
from sweep.results import (
    default_study_name,
)
from sweep.storage import check_storage, open_storage, sqlite_path
from sweep.study import (
    FINISHED,
    SELECTIONS,
    DatasetInfo,
    Device,
    SearchSpace,
    SweepSettings,
    check_backend,
    check_resumable,
    count_states,
    load_search_space,
    load_study,
    parse_devices,
    records,
    usable_cores,
    visible_gpus,
)
from sweep.training import FEATURE_EXTRACTION, FINE_TUNING, STRATEGY_CHOICES


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep, before anything is written: what will run, where, and on what."""

    settings: SweepSettings
    study_name: str
    storage_url: str
    devices: tuple[Device, ...]
    trials: int
    dataset_info: DatasetInfo
    finished_before: int | None  # finished trials of the study being resumed; None for a new study
    dataset_warnings: tuple[str, ...]  # one line each: patients across splits, per-image splits, empty splits
    dataset_notes: tuple[str, ...]  # one line each: e.g. which class is positive
    warm_start_from: str | None  # another dataset of the dictionary to warm-start from
    backend: str = "tensorflow"  # the Keras backend every worker runs (KERAS_BACKEND); recorded on the study

    @property
    def fine_tuning_on_cpu(self) -> bool:
        """Fine-tuning trials will run on CPU workers (no GPU visible): the CLI says what they cost."""
        return not any(d.kind == "gpu" for d in self.devices) and FINE_TUNING in self.settings.space.strategies

    @property
    def idle_cores(self) -> int:
        """Cores a lone CPU worker leaves idle in a feature-extraction sweep: such a trial trains its
        head on one core (one BLAS thread, so scores do not depend on the thread count), so only
        more workers (``--workers N``) use the others; 0 when there is nothing to say."""
        if len(self.devices) != 1 or self.devices[0].kind != "cpu" or FEATURE_EXTRACTION not in self.settings.space.strategies:
            return 0
        return usable_cores() - 1

    def measured_seconds(self) -> dict[str, tuple[int, float]]:
        """Per strategy, from the study being resumed: how many trials finished and their mean wall
        time in seconds, as the workers recorded it (``ocl:wall_seconds``); empty for a new study."""
        if not self.finished_before:
            return {}
        study = load_study(open_storage(self.storage_url, heartbeat=False), self.study_name)
        times: dict[str, list[float]] = {}
        for trial in study.get_trials(deepcopy=False, states=FINISHED):
            attrs = trial.user_attrs
            strategy, seconds = attrs.get(records.key_of("strategy")), attrs.get(records.key_of("wall_seconds"))
            if strategy is not None and seconds is not None:
                times.setdefault(str(strategy), []).append(float(seconds))
        return {strategy: (len(values), sum(values) / len(values)) for strategy, values in times.items()}


def plan_sweep(
    trials: int = 200,
    *,
    data: DataOptions | str | Path | None = None,
    image_size: int = 224,
    weights: str | None = None,
    strategy: str | None = None,
    devices: str | None = None,
    workers: int | None = None,
    workers_per_gpu: int = 1,
    storage: str | None = None,
    study: str | None = None,
    config: str | Path | None = None,
    cv: int | None = None,
    warm_start_from: str | None = None,
    prefix_cache: bool = True,
    backend: str | None = None,
    allow_backend_change: bool = False,
    precision: str = "float32",
    selection: str = "halves",
    **data_options: Any,
) -> SweepPlan:
    """Check a sweep and say what it will run, writing nothing.

    Args:
        trials: finished trials wanted in total; a rerun adds only what is missing.
        data: a :class:`~sweep.data.DataOptions`, or a dataset folder or CSV (default: the embedded
            NIH sample) with ``data_options`` (``task``, ``seed``, ``split``, ``positive``, ...).
        image_size, weights: input size in pixels; ``imagenet``, ``none`` or a weights file (default: the study file's).
        strategy: ``feature_extraction``, ``fine_tuning`` or ``both`` (default: the study file's; only the first with cv).
        devices, workers, workers_per_gpu: GPU indices (``"0,1"``) or ``"cpu,cpu"``; CPU workers; workers per GPU.
        storage, study: Optuna storage URL (default ``sqlite:///studies/ocl.db``) and study name.
        config, cv: a study file (TOML) with a ``[space]`` table; patient-wise K-fold CV of feature extraction (K >= 2).
        warm_start_from, prefix_cache: a dictionary dataset to warm-start from; fine-tuning reads the spatial bank.
        backend, allow_backend_change, precision, selection: the Keras backend (default ``KERAS_BACKEND``, else
            tensorflow; resumed on another only when allowed); ``float32`` or ``mixed``; ``halves`` or ``inner``.

    Raises:
        OCLError: for anything the user can fix, with one line saying what, where and how.
    """
    backend = _check_flags(trials, strategy, image_size, backend, selection)
    storage_url = storage or DEFAULT_STORAGE
    options = DataOptions.of(data, **data_options).check()
    space, notes = _search_space(config, strategy, weights, cv, seed=options.seed, selection=selection)
    settings, dataset = _study_settings(options, image_size, space, cv, prefix_cache, precision, selection)
    name = study or default_study_name(settings)
    _check_storage(storage_url, warm_start_from)
    return SweepPlan(
        settings=settings,
        study_name=name,
        storage_url=storage_url,
        devices=tuple(parse_devices(devices, workers, visible_gpus(), per_gpu=workers_per_gpu)),
        trials=trials,
        dataset_info=DatasetInfo.of(dataset),
        finished_before=_finished_before(storage_url, name, settings, backend, allow_backend_change),
        dataset_warnings=tuple(dataset.warnings),
        dataset_notes=(*dataset.notes, *notes),
        warm_start_from=warm_start_from,
        backend=backend,
    )


def _study_settings(
    options: DataOptions,
    image_size: int,
    space: SearchSpace,
    cv: int | None,
    prefix_cache: bool,
    precision: str,
    selection: str = "halves",
) -> tuple[SweepSettings, Any]:
    """Load the dataset the options describe (once the spatial bank's disk budget is known to fit); the
    settings its study is stored under (the task as the dataset names it)."""
    _check_cache_budget(space, prefix_cache)
    dataset = load_dataset(options)
    options = dataclasses.replace(options, task=dataset.task(options.task).name)
    settings = SweepSettings(options, dataset.name, image_size, space, cv=cv, prefix_cache=prefix_cache, selection=selection)
    return dataclasses.replace(settings, precision=parse_precision(precision)), dataset


def _check_storage(storage_url: str, warm_start_from: str | None) -> None:
    """The storage must be usable, and a warm-start source must be in its dictionary."""
    check_storage(storage_url)
    if warm_start_from is not None:
        from layers_index import check_source

        check_source(storage_url, warm_start_from)


def _check_flags(trials: int, strategy: str | None, image_size: int, backend: str | None, selection: str = "halves") -> str:
    """Refuse a bad flag before anything is loaded; returns the backend the sweep runs on."""
    from sweep.caches import check_image_size

    if selection not in SELECTIONS:
        raise OCLError(f"--selection {selection}: pass one of {', '.join(SELECTIONS)}")
    if trials < 1:
        raise OCLError(f"--trials {trials}: pass 1 or more")
    if strategy is not None and strategy not in STRATEGY_CHOICES:
        raise OCLError(f"--strategy {strategy}: pass one of {', '.join(STRATEGY_CHOICES)}")
    check_image_size(image_size)
    return _check_backend_flag(backend)


def _check_cache_budget(space: SearchSpace, prefix_cache: bool) -> None:
    """A bad ``OCL_CACHE_MAX_GB`` is a user mistake, found before anything is written."""
    if prefix_cache and FINE_TUNING in space.strategies:
        from sweep._env import cache_max_bytes

        cache_max_bytes()


def _search_space(
    config: str | Path | None, strategy: str | None, weights: str | None, cv: int | None, *, seed: int, selection: str = "halves"
) -> tuple[SearchSpace, list[str]]:
    """The study file's search space with the flags applied, and notes on what the flags changed.

    Both strategies run by default, on GPUs and CPUs alike: with the spatial bank, 200 trials of
    both at 224 px take minutes on 2 CPU cores (``benchmarks/bench_fine_tuning.py``). ``--cv``
    trains every trial K times, so with ``--cv`` and no ``--strategy`` only feature extraction
    runs (as it did when ``--cv`` scored feature extraction only, so those studies resume);
    ``--strategy both`` or ``fine_tuning`` cross-validates fine-tuning too, on the spatial bank's
    clean prefix tensors. Either way trials train without augmentation: augmented views are
    banked for train only, and under ``--cv`` validation patients train too.
    """
    from sweep.model import parse_weights, weights_label

    if cv is not None and cv < 2:
        raise OCLError(
            f"--cv {cv}: K-fold cross-validation needs 2 or more folds (e.g. --cv 5); leave --cv out to use the validation split"
        )
    weights_choice = None
    if weights is not None:
        parse_weights(weights, seed=seed)  # a missing or wrong file fails here, before anything runs
        weights_choice = [weights_label(weights)]
    space = load_search_space(
        Path(config) if config else None,
        fallbacks={"strategies": [FEATURE_EXTRACTION.value]} if cv is not None else {},
        strategies=STRATEGY_CHOICES[strategy] if strategy is not None else None,
        weights=weights_choice,
    )
    notes: list[str] = []
    if cv is not None:
        if strategy is None and space.strategies == (FEATURE_EXTRACTION,):
            notes.append(f"--cv {cv}: feature extraction only (pass --strategy both to cross-validate fine-tuning too)")
        if True in space.augment:
            space = dataclasses.replace(space, augment=(False,))
            notes.append(f"--cv {cv}: trials train on clean banked features only (augmented views are banked for train only)")
    if selection == "inner":
        notes.append(f"--selection inner: {SELECTIONS['inner']}")
    return space, notes


def _check_backend_flag(backend: str | None) -> str:
    from sweep._keras import BACKENDS, backend_name

    chosen = (backend or backend_name()).strip().lower()
    if chosen not in BACKENDS:
        where = "--backend" if backend else "KERAS_BACKEND"
        raise OCLError(f"{where} {chosen}: pass one of {', '.join(BACKENDS)}")
    return chosen


def _finished_before(storage_url: str, name: str, settings: SweepSettings, backend: str, allow_change: bool) -> int | None:
    """Finished trials of the study being resumed (refusing one run with other settings); None for a
    new study. A SQLite file not there yet holds no study: nothing is created to find that out."""
    database = sqlite_path(storage_url)
    if database is not None and not database.exists():
        return None
    opened = open_storage(storage_url, heartbeat=False)
    if not check_resumable(opened, name, settings):
        return None
    check_backend(opened, name, backend, allow_change=allow_change)
    return count_states(load_study(opened, name))["finished"]
