"""``ocl dictionary build``: score every candidate layer of one dataset, task and weights at once.

A sweep only learns about the layers its trials happen to visit. The build scores all 63 from the
feature bank (one forward pass, cached and shared with the sweep) with two cheap measures: a
linear probe (fit on train, AUROC on validation) and LogME (evidence on train; it needs no
held-out data). The splits are the dataset's patient-wise ones, so the probe is never scored on a
patient it was fitted on, and its regularisation is chosen by patient-wise folds of the training
rows alone (the same folds for every layer), never on validation.
Everything is scored before anything is written, and written in one transaction: an interrupted
build leaves the dictionary as it was.

Example:
    >>> rows = build_dictionary("sqlite:///studies/ocl.db", weights="none", image_size=64)
    >>> max(rows, key=lambda r: r.probe_auroc).layer
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from layers_index import PROBE_IMAGES
from layers_index._logme import logme
from layers_index._probe import linear_probe, patient_folds, patient_ids
from layers_index._store import DatasetKey, Score, engine_for, upsert_scores
from sweep.data import DataOptions, check_scorable
from sweep.errors import OCLError
from sweep.model import parse_weights
from sweep.stats import bootstrap_weights, counted_outputs, interval, mean_auroc_point, mean_auroc_resampled, patients_of

__all__ = ["LayerScores", "build_dictionary", "probe_subsample"]


@dataclass(frozen=True)
class LayerScores:
    """What the build stored for one layer."""

    layer: str
    depth: int
    block: str
    channels: int
    probe_auroc: float  # mean over the outputs the mean AUROC counts, as its stored interval
    logme: float
    probe_c: tuple[float, ...] = ()  # the probe's C per output, chosen by patient-wise CV on train
    probe_images: int = 0  # training images the probe was fitted on (see PROBE_IMAGES)
    train_images: int = 0  # training images of the split (LogME's rows)


def build_dictionary(
    storage_url: str,
    data: DataOptions | Path | str | None = None,
    *,
    weights: str = "imagenet",
    image_size: int = 224,
    on_dataset: Callable[[Any], None] | None = None,
    probe_images: int | None = PROBE_IMAGES,
    **data_options: Any,
) -> list[LayerScores]:
    """Score every candidate layer (probe AUROC and LogME) and upsert the scores; returns them by depth.

    Args:
        storage_url: the database (the sweep's Optuna storage) that holds the dictionary.
        data: how to read the dataset, as in ``ocl sweep``: a :class:`~sweep.data.DataOptions`, or a
            path (default: the embedded NIH sample) with ``data_options`` (``task``, ``seed``, ...).
        weights: ``imagenet``, ``none`` (random init, seeded) or a weights file.
        image_size: input size in pixels; the image cache and feature bank are keyed by it.
        on_dataset: called with the loaded dataset before anything is scored (the CLI prints its
            warnings, e.g. patients in more than one split, and notes).
        probe_images: fit the probe on at most this many training images (whole patients, drawn
            with the dataset's seed, the same for every layer); ``None`` or 0: all of them.

    The probe AUROC is stored with its 95% patient-level bootstrap interval on the validation split.

    Raises:
        OCLError: for bad input (data, task, weights, image size), or a validation split that
            cannot score AUROC for any output.
    """
    engine_for(storage_url)  # a wrong or too new database fails now, before Keras loads or anything is scored
    from sweep.caches import check_image_size

    check_image_size(image_size)
    if probe_images is not None and (isinstance(probe_images, bool) or not isinstance(probe_images, int) or probe_images < 0):
        raise OCLError(f"--probe-images {probe_images!r}: expected a whole number of images (0: every training image)")
    options = DataOptions.of(data, **data_options)
    parsed_weights = parse_weights(weights, seed=options.seed)
    dataset, parsed_task, targets, train, val = _load_scorable(options, on_dataset)
    infos, bank = _candidate_features(dataset, parsed_weights, image_size)
    scores, results = _layer_rows(dataset, bank, infos, targets, train, val, options.seed, probe_images or None)
    upsert_scores(storage_url, _dataset_key(dataset, parsed_task), parsed_weights.label, image_size, scores)
    return results


def _load_scorable(options: DataOptions, on_dataset: Callable[[Any], None] | None):
    """Load the dataset and refuse it early if its validation split cannot score AUROC: (dataset, task, targets, train, val)."""
    from sweep.data import load_dataset

    dataset = load_dataset(options)
    parsed_task = dataset.task(options.task)
    targets = dataset.targets(parsed_task)
    train, val = dataset.split_indices("train"), dataset.split_indices("val")
    check_scorable(targets, train, val, parsed_task)
    if on_dataset is not None:
        on_dataset(dataset)
    return dataset, parsed_task, targets, train, val


def _candidate_features(dataset, parsed_weights, image_size: int):
    """The candidate layers' infos and their feature bank (one cached forward pass, shared with the sweep)."""
    from sweep.caches import load_feature_bank, load_image_cache
    from sweep.model import build_backbone, candidate_layers

    cache = load_image_cache(dataset.paths, image_size)
    backbone = build_backbone(image_size, parsed_weights)
    infos = candidate_layers(backbone)
    bank = load_feature_bank(cache, parsed_weights, [info.name for info in infos], backbone=backbone)
    return infos, bank


def probe_subsample(patients: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Positions of the training rows the probe is fitted on: whole patients in a seeded random order, at most ``limit`` images.

    All rows when ``limit`` is ``None`` or not below their number. Patients are drawn, not images,
    so the probe's patient-wise folds stay patient-wise; an unknown patient (``None``) is an image
    of its own. At least one patient is kept, even one with more than ``limit`` images.
    """
    if limit is None or len(patients) <= limit:
        return np.arange(len(patients))
    codes = patient_ids(patients, len(patients))
    order = np.random.default_rng(seed).permutation(codes.max() + 1)
    images = np.bincount(codes)[order]
    kept = order[: max(1, int(np.searchsorted(np.cumsum(images), limit, side="right")))]
    return np.flatnonzero(np.isin(codes, kept))


def _layer_rows(
    dataset, bank, infos, targets: np.ndarray, train: np.ndarray, val: np.ndarray, seed: int, probe_images: int | None
) -> tuple[list[Score], list[LayerScores]]:
    """Score every layer and turn it into the rows to store (probe AUROC with its bootstrap interval, LogME) and to return."""
    results: list[LayerScores] = []
    scores: list[Score] = []
    patients = dataset.table["patient"].to_numpy(dtype=object)[train]  # None: unknown, each image its own patient
    probe_rows = probe_subsample(patients, probe_images, seed)
    resamples = bootstrap_weights(patients_of(dataset, val), seed=seed)
    counted, _ = counted_outputs(targets[val])
    for info, probe, evidence in _score_layers(bank, infos, targets, train, val, patients, seed, probe_rows):
        key = info.facts
        # The point and its interval average the same outputs: those the mean AUROC counts (enough
        # positives and negatives on validation) that the probe could fit.
        fitted = counted & np.isfinite(probe.predictions).all(axis=0)
        predictions = np.nan_to_num(probe.predictions)
        point = mean_auroc_point(targets[val], predictions, fitted) if fitted.any() else probe.auroc
        ci = interval(point, mean_auroc_resampled(targets[val], predictions, resamples, fitted))
        scores += [Score(key, "probe_auroc", point, low=ci.low, high=ci.high), Score(key, "logme", evidence)]
        results.append(
            LayerScores(info.name, info.depth, info.block, info.channels, point, evidence, probe.c, len(probe_rows), len(train))
        )
    return scores, results


def _dataset_key(dataset, parsed_task) -> DatasetKey:
    """The dictionary's key for this dataset, task and split."""
    return DatasetKey(
        dataset.name,
        parsed_task.name,
        dataset.modality,
        len(dataset),
        dataset.patient_count,
        dataset.fingerprint(),
    )


# The probe's and LogME's matrix products are small: on a two-core machine one BLAS thread is
# several times faster than two (an SVD of 487 x 1024 takes 0.1 s on one thread, 0.3 s on two).
@threadpool_limits.wrap(limits=1, user_api="blas")
def _score_layers(
    bank, infos, targets: np.ndarray, train: np.ndarray, val: np.ndarray, patients: np.ndarray, seed: int, probe_rows: np.ndarray
):
    """Probe and LogME of every layer, with a progress bar: a list of (info, ProbeResult, logme).

    The probe is fitted on the training rows at ``probe_rows`` (positions in ``train``), LogME on all
    of them. The probe's patient-wise folds depend on the labels and patients only, so they are drawn once.
    """
    from sweep._progress import rate_progress, rate_text

    scored = []
    known = [targets[train, k][~np.isnan(targets[train, k])] for k in range(targets.shape[1])]  # NaN: unknown label
    fitted = [k for k, y in enumerate(known) if len(y) and y.min() != y.max()]
    probe_train = train[probe_rows]
    folds = patient_folds(targets[probe_train], patients[probe_rows], seed=seed)
    with rate_progress() as bar:
        task = bar.add_task("scoring layers", total=len(infos), rate="")
        start = time.perf_counter()
        for done, info in enumerate(infos, start=1):
            features = np.asarray(bank.features(info.name), dtype=np.float64)
            probe = linear_probe(features[probe_train], targets[probe_train], features[val], targets[val], folds=folds)
            evidence = logme(features[train], targets[train][:, fitted])  # as the probe, skip one-class outputs
            scored.append((info, probe, evidence))
            bar.update(task, advance=1, rate=rate_text(done, time.perf_counter() - start, "layer"))
    return scored
