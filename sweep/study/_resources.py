"""What every trial of a study shares, loaded once per process: the trial context.

A worker runs hundreds of trials on the same dataset, image cache, feature banks and network
layout. :class:`StudyResources` holds them, checked and loaded once, and builds the heavy parts
(image cache, feature banks, backbones) on first use. The objective, ``ocl evaluate`` and the
cache-building step before a sweep all start from ``StudyResources.from_settings(settings)``, so
they read the study's settings the same way.

Example:
    >>> context = StudyResources.from_settings(load_settings(study))
    >>> context.cut_layers[:2], len(context.data.val)
    (['conv1_relu', 'conv2_block1_concat'], 69)
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sweep.data import Dataset, Task, check_scorable, load_dataset
from sweep.errors import OCLError
from sweep.model import LayerCatalog, Weights, parse_weights
from sweep.stats import bootstrap_weights, patient_folds, patient_groups, patient_halves, patients_of
from sweep.storage import ValidationSplit
from sweep.study._lifecycle import SweepSettings
from sweep.training import FEATURE_EXTRACTION, FINE_TUNING

__all__ = ["StudyResources", "layer_catalog"]


@functools.cache
def layer_catalog(image_size: int) -> LayerCatalog:
    """DenseNet-121's layers at one input size; the network is built once per process to read them."""
    from sweep.model import build_backbone

    return LayerCatalog.of(build_backbone(image_size, Weights("none")))


def _check_folds(k: int, dataset: Dataset, task: Task) -> None:
    """Refuse ``--cv k`` where train+val cannot fill ``k`` patient-wise folds with a positive each:
    a fold whose held-out patients are all negative scores no positive, and its head's threshold
    is never compared with another's."""
    rows = np.concatenate([dataset.split_indices("train"), dataset.split_indices("val")])
    patients = patients_of(dataset, rows)
    if len(np.unique(patients)) < 2 * k:
        raise OCLError(f"--cv {k}: the dataset has too few patients for {k} folds; pass a smaller --cv")
    positive = (np.asarray(dataset.targets(task)[rows]) == 1).any(axis=1)
    with_positive = len(np.unique(patients[positive]))
    if with_positive < k:
        raise OCLError(
            f"--cv {k}: only {with_positive} patient(s) in train+val have a positive finding of task {task.name}, "
            f"too few for {k} folds with a positive each; "
            + (f"pass --cv {with_positive} or less, or leave --cv out" if with_positive >= 2 else "leave --cv out")
        )


@dataclass
class StudyResources:
    """The dataset, task, weights and layers of one study, and its caches once built."""

    settings: SweepSettings
    dataset: Dataset
    task: Task
    weights: dict[str, Weights]  # by the label trials store (imagenet, none, or a file's path)
    catalog: LayerCatalog
    cut_layers: list[str]  # the cut layers the search space allows, in network order
    _cache: Any = field(default=None, repr=False)
    _data: Any = field(default=None, repr=False)
    _banks: dict[str, Any] = field(default_factory=dict, repr=False)
    _spatial: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: SweepSettings) -> StudyResources:
        """Load and check everything a user can get wrong (data, task, layers, weights) before
        anything is written."""
        dataset = load_dataset(settings.data_options)
        task = dataset.task(settings.task)
        check_scorable(dataset.targets(task), dataset.split_indices("train"), dataset.split_indices("val"), task)
        if settings.cv:
            _check_folds(settings.cv, dataset, task)
        catalog = layer_catalog(settings.image_size)
        space = settings.space
        cut_layers = space.resolve_layers(catalog)
        if space.unfreeze_from:
            catalog.resolve(space.unfreeze_from, option="unfreeze_from")
        weights = {label: parse_weights(label, seed=settings.data_options.seed) for label in space.weights}
        resources = cls(settings, dataset, task, weights, catalog, cut_layers)
        if settings.selection == "inner":
            resources._check_inner()
        return resources

    @property
    def cache(self) -> Any:
        """The image cache (built on first use)."""
        if self._cache is None:
            from sweep.caches import load_image_cache

            self._cache = load_image_cache(self.dataset.paths, self.settings.image_size)
        return self._cache

    @property
    def data(self) -> Any:
        """The trial data (:class:`sweep.training.TrialData`): images, targets, split rows."""
        if self._data is None:
            from sweep.training import TrialData

            data = TrialData.from_dataset(self.dataset, self.task, self.cache, min_positives=self.settings.space.min_positives)
            self._data = dataclasses.replace(data, halves=self.halves)
        return self._data

    @functools.cached_property
    def halves(self) -> np.ndarray:
        """Per image row: its validation half (0/1) for cross-fitting, -1 outside the rows trials are
        scored on. The same halves the answer splits the stored split into (seeded by ``--seed``)."""
        rows = self.validation_rows
        halves = np.full(len(self.dataset.paths), -1, np.int64)
        split = self.validation_split()
        halves[rows] = patient_halves(split.patients, split.targets, self.settings.data_options.seed)
        return halves

    @functools.cached_property
    def validation_rows(self) -> np.ndarray:
        """The image rows every trial is scored on: the validation split, or train+val with ``--cv``."""
        if self.settings.cv:
            return np.sort(np.concatenate([self.dataset.split_indices("train"), self.dataset.split_indices("val")]))
        return self.dataset.split_indices("val")

    @functools.cached_property
    def cv_folds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """With ``--cv K``: K patient-wise (train rows, held-out rows) folds over train+val, seeded.

        Whole patients go to one fold, so no patient is ever scored by a head that saw them.
        """
        k = self.settings.cv
        if not k:
            return []
        rows = self.validation_rows
        fold = patient_folds(self.patients(rows), k, self.settings.data_options.seed)
        return [(rows[fold != f], rows[fold == f]) for f in range(k)]

    @functools.cached_property
    def inner_groups(self) -> int:
        """With ``--selection inner``: the patient groups training rows are dealt into; group 0 is
        the inner split, about as many patients as the validation split (70/10/20: 7 groups)."""
        train = len(np.unique(self.patients(self.dataset.split_indices("train"))))
        val = len(np.unique(self.patients(self.dataset.split_indices("val"))))
        return max(2, round(train / max(val, 1)))

    def inner_split(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``--selection inner``: (the training ``rows`` a trial fits on, the inner rows it chooses on).

        The inner rows choose a trial's epoch, feed the pruner and give the trial's value, by which
        the answer chooses each candidate's trial; the patients the answer scores on (validation,
        or each held-out fold under ``--cv``) never take part in a choice. Whole patients, stratified
        by label (:func:`sweep.stats.patient_groups`), seeded by ``--seed``: every worker draws the same.
        """
        rows = np.asarray(rows)
        targets = self.dataset.targets(self.task)[rows]
        group = patient_groups(self.patients(rows), targets, self.inner_groups, self.settings.data_options.seed)
        return rows[group != 0], rows[group == 0]

    def _check_inner(self) -> None:
        """Refuse ``--selection inner`` when the inner split (or the rest of train) cannot score an output."""
        fit, inner = self.inner_split(self.dataset.split_indices("train"))
        y = np.asarray(self.dataset.targets(self.task), np.float64)
        scorable = [((y[r] == 1).any(axis=0) & (y[r] == 0).any(axis=0)) for r in (fit, inner)]
        if not (scorable[0] & scorable[1]).any():
            raise OCLError(
                f"--selection inner: the inner split of train ({len(np.unique(self.patients(inner)))} patients) has no "
                f"positive (or no negative) image for {', '.join(self.task.outputs)}; use a larger dataset or leave "
                "--selection out (the validation halves choose)"
            )

    def validation_split(self) -> ValidationSplit:
        """What trials are scored on, as the predictions store keeps it: targets, patients, fingerprint.

        An image without a patient id counts as its own patient (as in the split itself).
        """
        rows = self.validation_rows
        targets = self.dataset.targets(self.task)[rows]
        return ValidationSplit(self.task.outputs, targets, self.patients(rows), self.dataset.fingerprint())

    def patients(self, rows: np.ndarray) -> np.ndarray:
        """The patient of each image row, as the bootstrap resamples them (:func:`sweep.stats._uncertainty.patients_of`)."""
        return patients_of(self.dataset, rows)

    @functools.cached_property
    def validation_resamples(self) -> np.ndarray:
        """Patient-level bootstrap weights of the validation split, shared by every trial of this process."""
        return bootstrap_weights(self.patients(self.validation_rows), seed=self.settings.data_options.seed)

    def backbone(self, label: str) -> Any:
        """A freshly built DenseNet-121 with the weights ``label`` (fine-tuning changes weights,
        so every trial gets its own)."""
        from sweep.model import build_backbone

        self.dtype_policy  # noqa: B018 (the precision is set before the first layer is built)
        return build_backbone(self.settings.image_size, self.weights[label])

    @functools.cached_property
    def dtype_policy(self) -> str:
        """The Keras dtype policy of ``--precision`` on this process's device, set on first use
        (before any model is built): ``float32``, ``mixed_bfloat16`` or ``mixed_float16``."""
        from sweep.model import use_precision

        return use_precision(self.settings.precision)

    def _views(self) -> Any:
        """The augmented views of the training images both banks hold (None without augmentation)."""
        from sweep.caches import ViewSpec

        space = self.settings.space
        if space.bank_views and True in space.augment:
            train = tuple(int(i) for i in np.asarray(self.dataset.split_indices("train")))  # the cache not needed
            return ViewSpec(space.bank_views, train, seed=self.settings.data_options.seed)
        return None

    def bank(self, label: str, backbone: Any = None) -> Any:
        """The feature bank for one weights choice (built on first use, under a file lock)."""
        if label not in self._banks:
            from sweep.caches import load_feature_bank

            self._banks[label] = load_feature_bank(
                self.cache,
                self.weights[label],
                self.cut_layers,
                views=self._views(),
                backbone=backbone,
                dtype_policy=self.dtype_policy,
            )
        return self._banks[label]

    def spatial_bank(self, label: str, backbone: Any = None, *, verify_checksum: bool = False) -> Any:
        """The spatial bank (banked frozen prefix of fine-tuning trials) for one weights choice, or
        None with ``--no-prefix-cache``; built on first use, under a file lock. Checksums are
        checked by :meth:`prepare`, before any worker starts; a worker checks sizes and shapes."""
        if not self.settings.prefix_cache:
            return None
        if label not in self._spatial:
            from sweep.caches import load_spatial_bank

            self._spatial[label] = load_spatial_bank(
                self.cache,
                self.weights[label],
                views=self._views(),
                cut_layers=self.cut_layers,
                backbone=backbone,
                verify_checksum=verify_checksum,
                dtype_policy=self.dtype_policy,
            )
        return self._spatial[label]

    def disk_plan(self) -> Any:
        """What the image cache and the feature banks will write (0 for what is built), and the
        spatial banks' bound: a :class:`sweep.caches.DiskPlan`, worked out before anything is written."""
        from sweep._env import cache_dir, cache_max_bytes
        from sweep.caches import DiskPlan, feature_bank_bytes, image_cache_bytes

        space, paths = self.settings.space, self.dataset.paths
        key, image_bytes = image_cache_bytes(paths, self.settings.image_size)
        pieces = {"image cache": image_bytes}
        if FEATURE_EXTRACTION in space.strategies:
            widths = {layer: self.catalog.info(layer).channels for layer in self.cut_layers}
            views = self._views()
            pieces["feature bank"] = sum(
                feature_bank_bytes(key, len(paths), weights, widths, views=views, dtype_policy=self.dtype_policy)
                for weights in self.weights.values()
            )
        spatial = None
        if FINE_TUNING in space.strategies and self.settings.prefix_cache:
            spatial = cache_max_bytes() * len(self.weights)
        return DiskPlan.of(cache_dir(), pieces, spatial)

    def prepare(self) -> list[str]:
        """Load every weights file first (so a wrong one fails before any cache is written), then
        build the image cache and, for feature extraction, the feature banks; for fine-tuning
        (unless ``--no-prefix-cache``), the spatial banks.

        Returns:
            Lines for the user: which blocks each spatial bank holds, and a full disk's note.
        """
        space = self.settings.space
        if FINE_TUNING in space.strategies and self.settings.prefix_cache:
            from sweep._env import cache_max_bytes

            cache_max_bytes()  # a bad OCL_CACHE_MAX_GB fails here, before any cache is written
        backbones = {label: self.backbone(label) for label in self.weights}
        disk = self.disk_plan()
        if sys.stderr.isatty():  # at a terminal, before banking; in logs with the caches' lines, so an error stays one line
            print(disk.line(), file=sys.stderr, flush=True)
        disk.check()
        self.cache  # noqa: B018  (builds the image cache)
        if FEATURE_EXTRACTION in space.strategies:
            for label, backbone in backbones.items():
                self.bank(label, backbone)
        lines: list[str] = [] if sys.stderr.isatty() else [disk.line()]
        if FINE_TUNING in space.strategies and self.settings.prefix_cache:
            for label, backbone in backbones.items():
                bank = self.spatial_bank(label, backbone, verify_checksum=True)
                lines.append(bank.summary() + (f" (weights {label})" if len(self.weights) > 1 else ""))
                lines += [f"note: {note}" for note in bank.notes]
        return lines
