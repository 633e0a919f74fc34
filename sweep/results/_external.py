"""External validation: the exported model scored on other datasets, beside the study's own test split.

Models trained on NIH ChestX-ray14 lose AUROC on other hospitals' images (Zech et al., PLOS
Medicine 2018), so a reportable model is scored on data it has never seen: ``ocl evaluate
--external DATA`` (repeatable), each ``DATA`` anything ``--data`` reads (a DICOM folder, a CheXpert
table, a ``path,label`` CSV, an NIH folder). Every image of it is a test image: nothing of it
trains, selects or calibrates. The model is the exported one (its temperature, and the threshold
chosen on the study's validation split), so the numbers are those a user of the export would see.

The study's outputs meet the external findings through :class:`sweep.data.LabelMap`. Images of a
patient (or file) that is also in the study's own data are left out and counted: after
pseudonymisation with the same key, the same patient has the same pseudonym in both.

Everything a user can get wrong (a path, no finding in common, a ``--map`` row naming an unknown
finding) is checked by :func:`prepare_external` before anything is trained or written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sweep.data import DataOptions, Dataset, LabelMap, load_dataset
from sweep.errors import OCLError
from sweep.stats import (
    bootstrap_weights,
    ece,
    ece_resampled,
    interval,
    mean_auroc_resampled,
    patients_of,
    rates_at,
    weighted_auroc,
)

__all__ = ["ExternalData", "auroc_with_intervals", "predict_scores", "prepare_external", "score_external"]


@dataclass(frozen=True)
class ExternalData:
    """One ``--external`` dataset, checked and mapped: the images kept, their study-shaped targets,
    each output's external counterpart, and how many images of the study's own patients were left out."""

    where: str
    dataset: Dataset
    targets: np.ndarray  # (images, study outputs); NaN: unknown or unmapped
    mapped: dict[str, str | None]
    left_out: int

    @property
    def scorable(self) -> np.ndarray:
        """Per output: mapped, with positive and negative images."""
        return np.asarray(
            [(self.targets[:, k] == 1).any() and (self.targets[:, k] == 0).any() for k in range(self.targets.shape[1])]
        )


def _load(path: str | Path, seed: int) -> Dataset:
    try:
        return load_dataset(DataOptions.of(Path(path), seed=seed))
    except OCLError as exc:
        message = str(exc)
        raise OCLError(
            "--external " + message.removeprefix("--data ") if message.startswith("--data ") else f"--external {path}: {message}"
        ) from None


def prepare_external(paths: Sequence[str | Path], study: Dataset, label_map: LabelMap, *, seed: int = 0) -> list[ExternalData]:
    """Load, map and check every ``--external`` dataset against the study's own ``study`` dataset.

    Raises:
        OCLError: for data ``--data`` would refuse, a ``--map`` row naming an unknown output or
            finding, data with no finding in common with the study, no image left once the study's
            patients are left out, or no mapped finding with both positive and negative images.
    """
    datasets = _named_apart([_load(path, seed) for path in paths])
    label_map.check(datasets)
    return [_checked(str(path), dataset, study, label_map) for path, dataset in zip(paths, datasets)]


def _named_apart(datasets: list[Dataset]) -> list[Dataset]:
    """Datasets whose names repeat (two folders both called ``images``) as ``images``, ``images-2``:
    tables and the model card name each external dataset by its name alone."""
    seen: dict[str, int] = {}
    named = []
    for dataset in datasets:
        seen[dataset.name] = seen.get(dataset.name, 0) + 1
        count = seen[dataset.name]
        named.append(dataset if count == 1 else dataclasses.replace(dataset, name=f"{dataset.name}-{count}"))
    return named


def _checked(where: str, dataset: Dataset, study: Dataset, label_map: LabelMap) -> ExternalData:
    targets, mapped = label_map.targets(dataset)
    outputs = label_map.task.outputs
    if all(found is None for found in mapped.values()):
        what = "says which images show no finding" if label_map.task.kind == "any" else f"has {', '.join(outputs)}"
        raise OCLError(
            f"--external {where}: no finding in common with the study: neither its classes ({', '.join(dataset.classes)}) "
            f"nor the built-in NIH/CheXpert map {what}; map them with --map FILE (a CSV with the header study,external)"
        )
    table = dataset.table
    ours = set(study.table["patient"].dropna())
    shared = table["patient"].isin(ours).to_numpy() | table["path"].isin(set(study.table["path"])).to_numpy()
    if shared.all():
        raise OCLError(
            f"--external {where}: every image is of a patient (or is a file) in the study's own data; "
            "external validation needs patients the study never saw"
        )
    keep = np.flatnonzero(~shared)
    kept = dataclasses.replace(dataset, table=table.iloc[keep].reset_index(drop=True), warnings=(), notes=())
    external = ExternalData(where, kept, targets[keep], mapped, int(shared.sum()))
    if not external.scorable.any():
        found = ", ".join(f"{o} as {m}" for o, m in mapped.items() if m)
        raise OCLError(
            f"--external {where}: no mapped finding ({found}) has both positive and negative images; external AUROC needs both"
        )
    return external


def predict_scores(model: Any, images: np.ndarray, batch_size: int = 32, description: str = "scoring images") -> np.ndarray:
    """The model's scores for grayscale images ``(n, size, size)``, batch by batch, as float64 (with a progress bar)."""
    from sweep.model import predict_in_batches

    return predict_in_batches(model, images, batch_size=batch_size, description=description).astype(np.float64)


def _ci(estimate: float, resampled: np.ndarray) -> dict[str, float]:
    found = interval(estimate, resampled)
    return {"estimate": found.estimate, "low": found.low, "high": found.high}


def auroc_with_intervals(y: np.ndarray, p: np.ndarray, weights: np.ndarray, outputs: Sequence[str]) -> dict[str, Any]:
    """Per output, AUROC with its patient-level interval (None where undefined), and their mean."""
    every = np.vstack([np.ones((1, len(y)), np.float32), np.asarray(weights, np.float32)])
    per_output, counted = {}, []
    for k, output in enumerate(outputs):
        values = weighted_auroc(y[:, k], p[:, k], every)
        counted.append(bool(np.isfinite(values[0])))
        per_output[output] = _ci(values[0], values[1:]) if counted[-1] else None
    mean = None
    if any(counted):
        resampled = mean_auroc_resampled(y, p, every, np.asarray(counted))
        mean = _ci(resampled[0], resampled[1:])
    return {"auroc": per_output, "mean_auroc": mean}


def score_external(
    external: ExternalData, model: Any, image_size: int, thresholds: dict[str, float], *, seed: int = 0
) -> dict[str, Any]:
    """Score the exported (calibrated) ``model`` on one external dataset: per output its AUROC,
    ECE and the rates at ``thresholds`` (the operating point chosen on the study's validation
    split), each with a patient-level bootstrap interval; and the mean AUROC."""
    from sweep.caches import load_image_cache

    dataset = external.dataset
    images = load_image_cache(dataset.paths, image_size).images
    p = predict_scores(model, images, description=f"scoring --external {dataset.name}")
    y = external.targets.astype(np.float64)
    weights = bootstrap_weights(patients_of(dataset, np.arange(len(dataset))), seed=seed)
    outputs = tuple(external.mapped)
    found = auroc_with_intervals(y, p, weights, outputs)
    per_output = {}
    for k, output in enumerate(outputs):
        entry: dict[str, Any] = {"counterpart": external.mapped[output], "images": int(np.isfinite(y[:, k]).sum())}
        entry["positives"] = int((y[:, k] == 1).sum())
        entry["auroc"] = found["auroc"][output]
        if external.scorable[k]:
            entry["ece"] = _ci(ece(y[:, k], p[:, k]), ece_resampled(y[:, k], p[:, k], weights))
            if output in thresholds:
                entry["rates"] = rates_at(y[:, k], p[:, k], thresholds[output], weights)
        per_output[output] = entry
    return {
        "name": dataset.name,
        "images": len(dataset),
        "patients": int(len(np.unique(patients_of(dataset, np.arange(len(dataset)))))),
        "left_out": external.left_out,
        "mean_auroc": found["mean_auroc"],
        "outputs": per_output,
    }
