"""The Optuna objective: sample a configuration, train it, store what the dashboard needs.

One :class:`Objective` lives in each worker process. It loads the dataset, the image cache and
the feature banks once, then every call trains one trial. Validation mean AUROC is reported after
each epoch, so the pruner can stop a hopeless trial early; the test split is never touched here.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import numpy as np
import optuna

from sweep import _attrs
from sweep.backbone import Weights, build_backbone, parse_weights
from sweep.data import load_dataset
from sweep.errors import OCLError
from sweep.feature_bank import FeatureBank, ViewSpec, load_feature_bank
from sweep.image_cache import ImageCache, load_image_cache
from sweep.layers import LayerInfo, candidate_layers, resolve_layer
from sweep.search_space import SearchSpace
from sweep.study import FINISHED, SweepSettings
from sweep.training import TrainingDiverged, TrialConfig, TrialData, run_trial

__all__ = ["Objective", "SurplusTrial"]


class SurplusTrial(RuntimeError):
    """Another worker already started the trial that reaches the target; this one is not run."""


class Objective:
    """Trains one sampled configuration per call; see the module docstring."""

    def __init__(self, settings: SweepSettings, *, device: str, target: int | None = None) -> None:
        """Check everything a user can get wrong (task, layers, weights) before anything is written."""
        self.settings, self.device, self.target = settings, device, target
        self.space = SearchSpace.from_dict(settings.space)
        self.dataset = load_dataset(settings.data, seed=settings.seed)
        self.task = self.dataset.task(settings.task)
        check_validation(self.dataset.targets(self.task)[self.dataset.split_indices("val")], self.task.outputs)
        reference = build_backbone(settings.image_size, Weights("none", seed=settings.seed))
        self.all_layers = [layer.name for layer in reference.layers]
        self.infos: dict[str, LayerInfo] = {info.name: info for info in candidate_layers(reference)}
        self.candidates = list(self.infos)
        self.layers = self.space.resolve_layers(self.candidates, self.all_layers)
        if self.space.unfreeze_from:
            resolve_layer(self.space.unfreeze_from, self.all_layers, option="unfreeze_from")
        self.weights = {label: parse_weights(label, seed=settings.seed) for label in self.space.weights}
        self._cache: ImageCache | None = None
        self._data: TrialData | None = None
        self._banks: dict[str, FeatureBank] = {}
        self.built_keras_models = False  # set by trials that build models; the worker then clears Keras

    @property
    def cache(self) -> ImageCache:
        """The image cache (built on first use)."""
        if self._cache is None:
            self._cache = load_image_cache(self.dataset.paths, self.settings.image_size)
        return self._cache

    @property
    def data(self) -> TrialData:
        if self._data is None:
            self._data = TrialData.from_dataset(self.dataset, self.task, self.cache)
        return self._data

    def bank(self, label: str, backbone: Any = None) -> FeatureBank:
        """The feature bank for one weights choice (built on first use, under a file lock)."""
        if label not in self._banks:
            views = None
            if self.space.bank_views and True in self.space.augment:
                views = ViewSpec(self.space.bank_views, tuple(int(i) for i in self.data.train), seed=self.settings.seed)
            self._banks[label] = load_feature_bank(self.cache, self.weights[label], self.layers, views=views, backbone=backbone)
        return self._banks[label]

    def prepare(self) -> None:
        """Load every weights file (so a wrong one fails before any cache is written), then build
        the image cache and, for feature extraction, the feature banks."""
        backbones = {label: build_backbone(self.settings.image_size, w) for label, w in self.weights.items()}
        self.cache  # noqa: B018  (builds the image cache)
        if "feature_extraction" in self.space.strategies:
            for label, backbone in backbones.items():
                self.bank(label, backbone)

    def __call__(self, trial: optuna.Trial) -> float:
        if self.target is not None and _is_surplus(trial, self.target):
            trial.set_user_attr(_attrs.SURPLUS, True)
            raise SurplusTrial(f"trial {trial.number} not run: {self.target} trials were already finished or running")
        config, weights_label = self.space.suggest(trial, self.layers, self.candidates, self.settings.seed + trial.number)
        self._describe(trial, config, weights_label)
        start = time.perf_counter()

        def on_epoch(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                trial.set_user_attr(_attrs.key("wall_seconds"), round(time.perf_counter() - start, 3))
                raise optuna.TrialPruned(f"pruned at epoch {epoch} with validation AUROC {value:.4f}")

        weights = self.weights[weights_label]
        self.built_keras_models |= config.strategy == "fine_tuning"
        try:
            result = run_trial(
                config,
                self.data,
                backbone_factory=lambda: build_backbone(self.settings.image_size, weights),
                bank=self.bank(weights_label) if config.strategy == "feature_extraction" else None,
                on_epoch=on_epoch,
            )
        except TrainingDiverged as exc:
            trial.set_user_attr(_attrs.FAIL_REASON, f"diverged: {exc} (learning rate {config.learning_rate:.3g})")
            raise
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            first_line = (str(exc).splitlines() or [""])[0][:200]
            if _is_out_of_memory(exc):
                trial.set_user_attr(_attrs.FAIL_REASON, f"out of memory on {self.device}: {first_line}")
                raise OutOfMemory(first_line) from None
            trial.set_user_attr(_attrs.FAIL_REASON, f"{type(exc).__name__}: {first_line}")
            raise
        val = result.val
        trial.set_user_attr(_attrs.key("wall_seconds"), round(result.seconds, 3))
        trial.set_user_attr(_attrs.key("best_epoch"), result.best_epoch)
        trial.set_user_attr(_attrs.key("epochs_run"), result.epochs_run)
        for name, value in val.summary().items():
            trial.set_user_attr(_attrs.key(f"val_{name}"), _finite(value))
        trial.set_user_attr(_attrs.key("val_auroc_per_class"), {o: _finite(v) for o, v in zip(val.outputs, val.auroc)})
        if not np.isfinite(val.mean_auroc):
            raise OCLError("validation AUROC is undefined: the validation split has no positive or no negative image")
        return float(val.mean_auroc)

    def _describe(self, trial: optuna.Trial, config: TrialConfig, weights_label: str) -> None:
        """Attributes a person browsing the dashboard needs to read the trial without the code."""
        info = self.infos.get(config.cut_layer)
        attrs: dict[str, Any] = {
            "strategy": config.strategy,
            "cut_layer": config.cut_layer,
            "layer_depth": info.depth if info else None,
            "layer_index": self.all_layers.index(config.cut_layer),
            "block": info.block if info else None,
            "channels": info.channels if info else None,
            "stride": self.settings.image_size // info.height if info else None,
            "flops_fraction": round(info.flops_fraction, 4) if info else None,
            "weights": weights_label,
            "unfreeze_from": config.unfreeze_from,
            "augment": config.augment,
            "epochs_budget": config.epochs,
            "device": self.device,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "task": self.task.name,
            "dataset": self.dataset.name,
        }
        for name, value in attrs.items():
            trial.set_user_attr(_attrs.key(name), value)


class OutOfMemory(RuntimeError):
    """The device ran out of memory in a trial; the worker goes on with the next one."""


def _is_out_of_memory(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return "resourceexhausted" in text or "out of memory" in text or isinstance(exc, MemoryError)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _is_surplus(trial: optuna.Trial, target: int) -> bool:
    """Whether trials numbered before this one already finish the target (exact trial counts)."""
    running = optuna.trial.TrialState.RUNNING
    earlier = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number]
    busy = sum(1 for t in earlier if t.state in FINISHED or t.state == running)
    return busy >= target


def check_validation(y_val: np.ndarray, outputs: tuple[str, ...]) -> None:
    """Refuse a task whose validation split cannot score AUROC for any output."""
    if len(y_val) == 0:
        raise OCLError("--data: the validation split has no images; a sweep selects on validation AUROC, use more images")
    missing = [o for o, col in zip(outputs, y_val.T) if col.min() == col.max()]
    if len(missing) == len(outputs):
        raise OCLError(
            f"--task: the validation split has no positive (or no negative) image for {', '.join(missing)}; "
            "choose another task or a larger dataset"
        )
