"""The two training strategies on real sample labels, checked against scikit-learn and Keras."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

from sweep.caches import load_feature_bank, load_image_cache
from sweep.data import load_dataset
from sweep.model import Weights, build_backbone
from sweep.stats import MIN_POSITIVES, mean_auroc, score
from sweep.training import TrialConfig, TrialData, run_trial
from sweep.training._head import _Optimizer

SIZE = 32


@pytest.fixture(scope="module")
def setup():
    dataset = load_dataset()
    task = dataset.task("multilabel")
    cache = load_image_cache(dataset.paths, SIZE)
    backbone = build_backbone(SIZE, Weights("none"))
    bank = load_feature_bank(cache, Weights("none"), ["conv4_block24_concat", "pool3_pool"], backbone=backbone)
    return TrialData.from_dataset(dataset, task, cache), bank


def test_feature_extraction_metrics_equal_scikit_learn_on_its_predictions(setup):
    data, bank = setup
    result = run_trial(
        TrialConfig("feature_extraction", "conv4_block24_concat", head_units=128, dropout=0.2, epochs=6),
        data,
        bank=bank,
        backbone_factory=lambda: None,
    )
    y, p = data.targets[data.val], result.val_predictions  # what result.val scores
    val = result.val
    for k, output in enumerate(data.outputs):
        if y[:, k].min() == y[:, k].max():
            assert np.isnan(val.auroc[k]), output
            continue
        predicted = (p[:, k] >= val.thresholds[k]).astype(int)
        assert val.auroc[k] == pytest.approx(roc_auc_score(y[:, k], p[:, k]))
        assert val.auprc[k] == pytest.approx(average_precision_score(y[:, k], p[:, k]))
        assert val.balanced_accuracy[k] == pytest.approx(balanced_accuracy_score(y[:, k], predicted))
        assert val.sensitivity[k] == pytest.approx(predicted[y[:, k] == 1].mean())
        assert val.majority_accuracy[k] == pytest.approx(max(y[:, k].mean(), 1 - y[:, k].mean()))
    # Outputs with fewer than MIN_POSITIVES validation positives (Mass 4, Hernia 2, Pneumonia and
    # Edema 1) leave the mean and are named; their AUROC is still reported above.
    positives = y.sum(axis=0)
    kept = (positives >= MIN_POSITIVES) & (len(y) - positives >= MIN_POSITIVES)
    assert val.excluded == [o for o, k in zip(data.outputs, kept) if not k]
    assert {"Mass", "Pneumonia", "Edema", "Hernia"} <= set(val.excluded) and not val.mean_auroc_fallback
    assert val.mean_auroc == pytest.approx(np.mean(np.asarray(val.auroc)[kept]))
    assert result.history[result.best_epoch] == pytest.approx(val.mean_auroc)


@pytest.mark.parametrize("strategy", ["feature_extraction", "fine_tuning"])
def test_trial_data_min_positives_sets_the_per_epoch_and_final_mean(setup, strategy):
    data, bank = setup
    every = dataclasses.replace(data, min_positives=1)
    if strategy == "feature_extraction":
        config = TrialConfig(strategy, "pool3_pool", head_units=16, epochs=2)
    else:
        config = TrialConfig(strategy, "pool2_pool", unfreeze_from="pool2_pool", epochs=1, batch_size=128)
    result = run_trial(config, every, bank=bank, backbone_factory=lambda: build_backbone(SIZE, Weights("none")))
    y, p = every.targets[every.val], result.val_predictions
    assert result.val.min_positives == 1 and result.val.excluded == []
    assert result.val.mean_auroc == pytest.approx(np.mean(result.val.auroc))  # every output has both classes
    assert result.history[result.best_epoch] == pytest.approx(mean_auroc(y, p, min_positives=1))
    assert mean_auroc(y, p, min_positives=1) != pytest.approx(mean_auroc(y, p))


def test_trial_data_refuses_a_bad_min_positives(setup):
    data, _ = setup
    with pytest.raises(ValueError, match="min_positives=-1"):
        dataclasses.replace(data, min_positives=-1)


def test_feature_extraction_predicts_validation_exactly_as_it_was_scored(setup):
    # Thresholds chosen on val are applied to predict()'s scores: a last-bit difference (another
    # BLAS thread count sums in another order) would move images across them.
    data, bank = setup
    config = TrialConfig("feature_extraction", "conv4_block24_concat", head_units=128, dropout=0.2, epochs=3)
    result = run_trial(config, data, bank=bank, backbone_factory=lambda: None)
    assert result.val_predictions.shape == (len(data.val), len(data.outputs))
    np.testing.assert_array_equal(result.predict(data.val), result.val_predictions)
    rescored = score(data.targets[data.val], result.predict(data.val), data.outputs, np.asarray(result.val.thresholds))
    np.testing.assert_array_equal(rescored.balanced_accuracy, result.val.balanced_accuracy)  # NaN equals NaN here


def test_the_per_epoch_auroc_equals_scikit_learn_including_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (200, 4))
    y[:, 3] = 0  # undefined for this output: left out of the mean
    scores = np.round(rng.random((200, 4)), 1)  # many tied scores
    expected = np.mean([roc_auc_score(y[:, k], scores[:, k]) for k in range(3)])
    assert mean_auroc(y, scores) == pytest.approx(expected)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_numpy_head_optimizers_follow_keras(name):
    rng = np.random.default_rng(1)
    start = rng.normal(size=(5, 3)).astype(np.float32)
    grads = [rng.normal(size=(5, 3)).astype(np.float32) for _ in range(3)]
    ours = [start.copy()]
    optimizer = _Optimizer(name, 0.01, ours)
    variable = keras.Variable(start.copy())
    theirs = {
        "adam": keras.optimizers.Adam(0.01),
        "adamw": keras.optimizers.AdamW(0.01),
        "sgd": keras.optimizers.SGD(0.01, momentum=0.9),
        "rmsprop": keras.optimizers.RMSprop(0.01),
    }[name]
    for grad in grads:
        optimizer.step(ours, [grad])
        theirs.apply([keras.ops.convert_to_tensor(grad)], [variable])
    np.testing.assert_allclose(ours[0], np.asarray(variable), rtol=1e-4, atol=1e-5)


def test_the_exported_keras_model_scores_raw_images_like_the_trained_head(setup):
    data, bank = setup
    result = run_trial(
        TrialConfig("feature_extraction", "pool3_pool", head_units=64, epochs=3),
        data,
        bank=bank,
        backbone_factory=lambda: build_backbone(SIZE, Weights("none")),
    )
    model = result.export()
    rows = data.val[:16]
    x = np.asarray(data.images[rows], np.float32)[..., None]
    np.testing.assert_allclose(np.asarray(model.predict_on_batch(x)), result.predict(rows), rtol=1e-3, atol=1e-4)


def test_fine_tuning_changes_only_weights_from_the_unfreeze_boundary_on(setup):
    data, _ = setup
    backbone = build_backbone(SIZE, Weights("none"))
    before = {w.path: w.numpy() for layer in backbone.layers for w in layer.weights}
    config = TrialConfig(
        "fine_tuning",
        "conv3_block4_concat",
        unfreeze_from="conv3_block2_concat",
        augment=True,
        epochs=1,
        batch_size=64,
        learning_rate=1e-2,
    )
    result = run_trial(config, data, backbone_factory=lambda: backbone)
    assert result.val_predictions.shape == (len(data.val), len(data.outputs))
    assert result.history[result.best_epoch] == pytest.approx(mean_auroc(data.targets[data.val], result.val_predictions))
    names = [layer.name for layer in backbone.layers]
    boundary = names.index("conv3_block2_concat")
    cut = names.index("conv3_block4_concat")
    changed_after = 0
    for index, layer in enumerate(backbone.layers[: cut + 1]):
        for w in layer.weights:
            same = np.array_equal(before[w.path], w.numpy())
            if index < boundary or isinstance(layer, keras.layers.BatchNormalization):
                assert same, f"{w.path} changed but lies before the boundary or is BatchNormalization"
            else:
                changed_after += not same
    assert changed_after >= 4  # the conv kernels of conv3_block3 and conv3_block4 trained


def _with_unknown(targets: np.ndarray, seed: int) -> np.ndarray:
    """Targets with ~15% of the cells unknown (NaN), as U-Ignore gives."""
    y = np.asarray(targets, np.float32).copy()
    y[np.random.default_rng(seed).random(y.shape) < 0.15] = np.nan
    return y


def test_unknown_labels_add_nothing_to_either_loss():
    from sweep.training._head import NumpyHead
    from sweep.training._keras_models import WeightedBinaryCrossentropy

    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    y = _with_unknown(rng.integers(0, 2, (40, 3)), 3)
    known = ~np.isnan(y)
    pos_weight = np.array([2.0, 0.5, 3.0], np.float32)

    def masked(p: np.ndarray) -> float:
        y0 = np.where(known, y, 0)
        weight = np.where(known, np.where(y0 > 0, pos_weight, 1.0), 0.0)
        return float(-np.mean(weight * (y0 * np.log(p + 1e-7) + (1 - y0) * np.log(1 - p + 1e-7))))

    head = NumpyHead(6, 3, 0, 0.0, "adam", 1e-3, seed=0)
    before = head.predict(x)
    assert head.fit_epoch(x, y, pos_weight, batch_size=40) == pytest.approx(masked(before), rel=1e-5)
    assert all(np.isfinite(p).all() for p in head.params)

    p = rng.uniform(0.05, 0.95, y.shape).astype(np.float32)
    loss = float(keras.ops.convert_to_numpy(WeightedBinaryCrossentropy(pos_weight.tolist())(y, p)))
    assert loss == pytest.approx(masked(p), rel=1e-4)


def test_a_trial_on_unknown_labels_trains_and_scores_the_known_ones(setup):
    data, bank = setup
    unknown = dataclasses.replace(data, targets=_with_unknown(data.targets, 4), min_positives=1)
    y = unknown.targets[unknown.train]
    positives, negatives = (y == 1).sum(axis=0), (y == 0).sum(axis=0)
    np.testing.assert_allclose(unknown.positive_weight(), np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0))
    result = run_trial(
        TrialConfig("feature_extraction", "pool3_pool", head_units=16, epochs=2),
        unknown,
        bank=bank,
        backbone_factory=lambda: None,
    )
    y_val, p = unknown.targets[unknown.val], result.val_predictions
    for k in range(y_val.shape[1]):
        known = ~np.isnan(y_val[:, k])
        if y_val[known, k].min() != y_val[known, k].max():
            assert result.val.auroc[k] == pytest.approx(roc_auc_score(y_val[known, k], p[known, k]))
    assert np.isfinite(result.val.mean_auroc)
    assert result.history[result.best_epoch] == pytest.approx(mean_auroc(y_val, p, min_positives=1))


class _RowLog(np.ndarray):
    """Features that note which rows a head reads, batch by batch."""

    def __getitem__(self, rows):
        self.seen.append(np.asarray(rows))
        return np.asarray(self).__getitem__(rows)


def test_a_capped_epoch_trains_on_epoch_rows_rows_and_every_row_is_seen_equally_often():
    from sweep.training._head import NumpyHead

    rng = np.random.default_rng(4)
    x = rng.normal(size=(1000, 6)).astype(np.float32).view(_RowLog)
    x.seen = []
    y = rng.integers(0, 2, (1000, 3)).astype(np.float32)
    head = NumpyHead(6, 3, 8, 0.2, "adam", 1e-3, seed=0)
    epochs = []
    for _ in range(5):
        x.seen.clear()
        head.fit_epoch(x, y, np.ones(3, np.float32), batch_size=32, rows=300)
        epochs.append(np.concatenate(x.seen))
    assert [len(rows) for rows in epochs] == [300] * 5
    assert head.optimizer.t == 5 * 10  # ceil(300 / 32) steps an epoch
    counts = np.bincount(np.concatenate(epochs), minlength=1000)
    assert counts.min() == 1 and counts.max() == 2  # 1,500 rows read: one pass and a half, no row thrice

    x.seen.clear()
    whole = NumpyHead(6, 3, 8, 0.2, "adam", 1e-3, seed=0)
    whole.fit_epoch(x, y, np.ones(3, np.float32), batch_size=32)  # rows=0: one pass over every row
    assert sorted(np.concatenate(x.seen).tolist()) == list(range(1000))


def test_a_head_with_dropout_trains_in_float32():
    """A float64 dropout mask once turned the hidden layer and every gradient float64 (1.45x slower)."""
    from sweep.training._head import NumpyHead

    head = NumpyHead(16, 3, 8, 0.3, "adam", 1e-3, seed=0)
    logits, (x, hidden, mask) = head._forward(np.ones((4, 16), np.float32), train=True)
    assert {logits.dtype, hidden.dtype, mask.dtype} == {np.dtype(np.float32)}
    grads = head._backward([x, hidden, mask], np.ones_like(logits))
    assert {g.dtype for g in grads} == {np.dtype(np.float32)}


def test_a_feature_extraction_trial_trains_on_the_epoch_rows_its_config_sets(setup):
    data, bank = setup
    assert len(data.train) > 100
    config = TrialConfig("feature_extraction", "pool3_pool", epochs=3, epoch_rows=100, head_units=16, seed=1)
    capped = run_trial(config, data, bank=bank, backbone_factory=lambda: None)
    whole = run_trial(dataclasses.replace(config, epoch_rows=0), data, bank=bank, backbone_factory=lambda: None)
    assert capped.epochs_run == 3 and np.isfinite(capped.val_predictions).all()
    assert not np.allclose(capped.val_predictions, whole.val_predictions)  # the cap changed what it trained on


def test_the_head_standardises_by_the_training_rows_mean_and_deviation_block_by_block():
    from sweep.training._head import NumpyHead

    rng = np.random.default_rng(5)
    x = (rng.normal(size=(1000, 6)) * [1, 10, 0.1, 3, 100, 0] + [0, 5, -2, 1e3, 7, 4]).astype(np.float32)
    head = NumpyHead(6, 3, 0, 0.0, "adam", 1e-3, seed=0)
    head.set_standardization(x, block=64)  # 16 blocks, the last one short
    np.testing.assert_allclose(head.mean, x.astype(np.float64).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(head.std, x.astype(np.float64).std(axis=0) + 1e-6, rtol=1e-4, atol=1e-6)
