"""Which epoch's predictions a trial keeps for the answer: chosen on the other patient half."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sweep.caches import load_feature_bank, load_image_cache
from sweep.data import load_dataset
from sweep.model import Weights, build_backbone
from sweep.stats import mean_auroc_point, patient_halves, patients_of
from sweep.training import EpochChoice, TrialConfig, TrialData, run_trial


def _planted_epochs() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Three epochs over 40 images in two halves: epoch 1 ranks half 0 perfectly (half 1 at random),
    epoch 2 the other way round, epoch 0 neither."""
    rng = np.random.default_rng(0)
    y = np.tile([1.0, 0.0], 20)[:, None].astype(np.float32)
    halves = np.repeat([0, 1], 20)
    noise = [rng.random((40, 1)).astype(np.float32) for _ in range(3)]
    perfect = y + 0.1 * noise[0]
    epochs = [noise[0], np.where(halves[:, None] == 0, perfect, noise[1]), np.where(halves[:, None] == 1, perfect, noise[2])]
    return y, halves, epochs


def test_each_half_keeps_its_own_best_epoch_and_is_scored_at_the_other_halfs():
    y, halves, epochs = _planted_epochs()
    choice = EpochChoice(y, halves, min_positives=1)
    for epoch, predictions in enumerate(epochs):
        choice.update(epoch, predictions)
    kept = choice.crossfit()
    assert kept.epochs == (1, 2)
    first, second = halves == 0, halves == 1
    np.testing.assert_array_equal(kept.own[first], epochs[1][first])  # chosen on half 0: its best epoch
    np.testing.assert_array_equal(kept.own[second], epochs[2][second])
    np.testing.assert_array_equal(kept.crossfit[first], epochs[2][first])  # scored at half 1's choice
    np.testing.assert_array_equal(kept.crossfit[second], epochs[1][second])
    assert mean_auroc_point(y[first], kept.own[first]) == 1.0
    assert mean_auroc_point(y[first], kept.crossfit[first]) < 0.9  # the lucky epoch is not scored on its own half


def test_without_halves_only_the_whole_splits_best_epoch_is_kept():
    y, _, epochs = _planted_epochs()
    choice = EpochChoice(y, None, min_positives=1)
    values = [choice.update(epoch, predictions)[0] for epoch, predictions in enumerate(epochs)]
    assert choice.crossfit() is None
    assert choice.best_epoch == int(np.argmax(values)) and choice.best_predictions is epochs[choice.best_epoch]


@pytest.mark.parametrize("strategy", ["feature_extraction", "fine_tuning"])
def test_a_real_trial_returns_its_validation_predictions_at_each_halfs_epoch(strategy):
    """On the embedded sample at 32 px: the trial's kept epochs are ones it ran, and each half's rows
    hold that epoch's predictions (own: the half's best epoch; crossfit: the other half's)."""
    dataset = load_dataset()
    task = dataset.task("any")
    cache = load_image_cache(dataset.paths, 32)
    data = TrialData.from_dataset(dataset, task, cache, min_positives=1)
    halves = np.full(len(dataset.paths), -1)
    halves[data.val] = patient_halves(patients_of(dataset, data.val), data.targets[data.val], 0)
    data = dataclasses.replace(data, halves=halves)
    if strategy == "feature_extraction":
        bank = load_feature_bank(cache, Weights("none"), ["pool3_pool"], backbone=build_backbone(32, Weights("none")))
        config = TrialConfig(strategy, "pool3_pool", head_units=16, epochs=8, patience=8)
    else:
        bank, config = None, TrialConfig(strategy, "pool2_pool", unfreeze_from="pool2_pool", epochs=3, batch_size=128)
    result = run_trial(config, data, bank=bank, backbone_factory=lambda: build_backbone(32, Weights("none")))
    kept = result.crossfit
    assert kept is not None and all(0 <= e < result.epochs_run for e in kept.epochs)
    assert kept.own.shape == kept.crossfit.shape == result.val_predictions.shape
    if kept.epochs[0] == kept.epochs[1] == result.best_epoch:
        np.testing.assert_array_equal(kept.own, result.val_predictions)
