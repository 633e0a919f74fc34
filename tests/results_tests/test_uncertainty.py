"""Uncertainty and the confidence set, checked where the truth is known.

The planted-signal tests go through the real code path: generated feature banks feed the real
Objective (numpy heads, real Optuna trials), predictions are kept in a real SQLite storage, and
:func:`sweep.results._answer.study_answer` reads them back. The coverage test draws from a binormal
generator with patient clusters, whose AUROC is known in closed form.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from sweep.data import DataOptions, Dataset
from sweep.results import study_answer
from sweep.stats import bootstrap_weights, confidence_set, interval, mean_auroc_point, mean_auroc_resampled, weighted_auroc
from sweep.study import Objective, SearchSpace, StudyResources, SweepSettings, create_or_resume, layer_catalog, make_pruner
from sweep.training import TrialData

LAYERS = ("conv2_block2_concat", "pool2_pool", "conv3_block6_concat", "pool3_pool")


def test_weighted_auroc_equals_scikit_learn_on_the_resampled_images():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 150)
    scores = np.round(rng.random(150), 1) + 0.2 * y  # many ties
    patients = rng.integers(0, 40, 150)
    weights = bootstrap_weights(patients, n_resamples=20, seed=1)
    for row in weights:
        images = np.repeat(np.arange(150), row.astype(int))
        assert weighted_auroc(y, scores, row[None])[0] == pytest.approx(roc_auc_score(y[images], scores[images]))
    # a patient's images are drawn together: equal weights within each patient
    for patient in np.unique(patients):
        assert (weights[:, patients == patient] == weights[:, patients == patient][:, :1]).all()


def test_bootstrap_weights_are_seeded_and_refuse_nonsense():
    patients = np.array(["a", "a", "b", "c"])
    np.testing.assert_array_equal(bootstrap_weights(patients, 50, seed=7), bootstrap_weights(patients, 50, seed=7))
    assert not np.array_equal(bootstrap_weights(patients, 50, seed=7), bootstrap_weights(patients, 50, seed=8))
    with pytest.raises(ValueError, match="n_resamples=0"):
        bootstrap_weights(patients, 0)


def test_the_95_percent_interval_covers_the_true_auroc_about_95_percent_of_the_time():
    """Binormal scores with a shared patient effect: true AUROC = Phi(d / sqrt(2 (s_u^2 + s_e^2)))."""
    d, s_u, s_e = 1.0, 0.7, 0.7
    truth = norm.cdf(d / math.sqrt(2 * (s_u**2 + s_e**2)))
    runs, covered = 300, 0
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        patients = np.repeat(np.arange(60), 3)  # 60 patients, 3 images each
        label = rng.random(60) < 0.4  # one label per patient: images of a patient share it
        y = label[patients].astype(int)[:, None]
        scores = (d * y[:, 0] + rng.normal(0, s_u, 60)[patients] + rng.normal(0, s_e, 180))[:, None]
        estimate = mean_auroc_point(y, scores)
        ci = interval(estimate, mean_auroc_resampled(y, scores, bootstrap_weights(patients, 1000, seed)))
        covered += ci.low <= truth <= ci.high
    # 300 runs: the binomial standard error of a 95% rate is 1.3 points; allow about 3 of them.
    assert 0.91 <= covered / runs <= 0.99, covered / runs


def test_confidence_set_keeps_the_tied_and_drops_the_clearly_worse():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.02, (1000, 1))
    resampled = np.hstack([0.80 + shared, 0.80 + shared + rng.normal(0, 0.005, (1000, 1)), 0.60 + shared])
    keep = confidence_set(np.array([0.80, 0.80, 0.60]), resampled)
    assert keep.tolist() == [True, True, False]


# --- through the real objective ---------------------------------------------------------------


class GeneratedBank:
    """A feature bank whose features are generated: each layer carries a planted signal strength."""

    def __init__(self, features: dict[str, np.ndarray]) -> None:
        self._features = features

    def features(self, layer: str) -> np.ndarray:
        return self._features[layer]

    def view_features(self, layer: str, rows: np.ndarray | None = None) -> None:
        return None


def planted_study(tmp_path: Path, signal: dict[str, float], *, trials_per_layer: int = 3, seed: int = 0):
    """A finished study over LAYERS whose banked features carry ``signal[layer]`` of the label."""
    rng = np.random.default_rng(seed)
    n_patients, per_patient = 400, 2
    patients = np.repeat(np.arange(n_patients), per_patient)
    label = rng.random(n_patients) < 0.4
    y = label[patients]
    split = np.array(["train", "val", "test"])[rng.choice(3, n_patients, p=[0.5, 0.4, 0.1])][patients]
    table = pd.DataFrame(
        {
            "image": [f"{i}.png" for i in range(len(y))],
            "path": [f"/generated/{i}.png" for i in range(len(y))],
            "patient": [f"p{p}" for p in patients],
            "labels": [("Effusion",) if v else () for v in y],
            "split": split,
        }
    )
    dataset = Dataset("planted", Path("/generated"), table, ("Effusion",), "generated")
    task = dataset.task("any")
    space = SearchSpace(
        strategies=("feature_extraction",),
        cut_layers=LAYERS,
        weights=("none",),
        optimizers=("adam",),
        learning_rate=(1e-2, 1e-2),
        head_units=(0,),
        augment=(False,),
        batch_sizes=(64,),
        epochs=15,
        patience=15,
        bank_views=0,
        pruner="none",
    )
    settings = SweepSettings(DataOptions(task=task.name, seed=seed), "planted", 32, space)
    catalog = layer_catalog(32)
    context = StudyResources(settings, dataset, task, {}, catalog, list(LAYERS))
    features = {}
    for layer, strength in signal.items():
        noise = rng.normal(0, 1, (len(y), 8))
        noise[:, 0] += strength * y  # one informative direction
        features[layer] = noise.astype(np.float32)
    context._banks["none"] = GeneratedBank(features)
    targets = dataset.targets(task)
    context._data = TrialData(
        np.zeros((len(y), 32, 32), np.uint8),
        targets,
        task.outputs,
        dataset.split_indices("train"),
        dataset.split_indices("val"),
        dataset.split_indices("test"),
    )
    url = f"sqlite:///{tmp_path / 'planted.db'}"
    storage = optuna.storages.RDBStorage(url)
    create_or_resume(storage, "planted", settings, target=len(LAYERS) * trials_per_layer)
    study = optuna.load_study(study_name="planted", storage=storage, pruner=make_pruner(space.pruner))
    for _ in range(trials_per_layer):
        for layer in LAYERS:
            study.enqueue_trial({"cut_layer": layer})
    study.optimize(Objective(context, device="cpu:0", storage_url=url), n_trials=len(LAYERS) * trials_per_layer)
    return study, url


def test_one_strong_layer_is_the_confidence_set_alone(tmp_path):
    study, url = planted_study(tmp_path, {LAYERS[0]: 0.0, LAYERS[1]: 2.0, LAYERS[2]: 0.0, LAYERS[3]: 0.3})
    answer = study_answer(study, url)
    assert answer.best.layer == LAYERS[1]
    assert [c.layer for c in answer.confidence_set] == [LAYERS[1]]
    assert answer.distinguishable and "is the optimal cut-off layer" in answer.sentence()
    assert answer.best.low <= answer.best.score <= answer.best.high
    for trial in study.trials:  # every trial carries its own interval
        assert trial.user_attrs["ocl:val_mean_auroc_low"] <= trial.value <= trial.user_attrs["ocl:val_mean_auroc_high"]


def test_equally_good_layers_are_all_in_the_set_and_the_answer_says_so(tmp_path):
    study, url = planted_study(tmp_path, dict.fromkeys(LAYERS, 1.0))
    answer = study_answer(study, url)
    assert len(answer.confidence_set) >= len(LAYERS) - 1  # nearly all: chance may drop one at 95%
    assert not answer.distinguishable
    assert "distinguishable" in answer.sentence() or "cannot be told apart" in answer.sentence()


def test_a_layer_with_too_few_trials_is_never_crowned(tmp_path):
    study, url = planted_study(tmp_path, {LAYERS[0]: 0.2, LAYERS[1]: 0.2, LAYERS[2]: 0.2, LAYERS[3]: 0.2}, trials_per_layer=1)
    answer = study_answer(study, url)
    assert answer.best is None and not answer.confidence_set
    assert all(not c.judged for c in answer.candidates)
    assert "needed to judge" in answer.sentence()


def test_the_halves_share_out_a_rare_findings_positives_and_keep_patients_whole():
    """Multilabel, 300 patients, one finding with 6 positive patients: unstratified halves leave it
    without a positive in one half in about 1 of 32 draws; stratified, it splits 3-3 every time."""
    from sweep.results import patient_halves

    for seed in range(40):
        rng = np.random.default_rng(seed)
        patients = np.repeat([f"p{i}" for i in range(300)], rng.integers(1, 5, 300))
        n = len(patients)
        common = rng.random((300, 2)) < [0.3, 0.1]
        rare = np.zeros(300, bool)
        rare[rng.choice(300, 6, replace=False)] = True
        index = np.unique(patients, return_inverse=True)[1]
        targets = np.column_stack([common, rare])[index].astype(np.float32)
        targets[rng.random(n) < 0.02, 0] = np.nan  # an unknown label here and there (U-Ignore)
        half = patient_halves(patients, targets, seed)
        assert np.array_equal(half, patient_halves(patients, targets, seed))  # seeded
        for p in np.unique(patients):  # a patient's images stay together
            assert len(set(half[patients == p])) == 1
        positive_patients = [set(patients[(half == side) & (targets[:, 2] == 1)]) for side in (0, 1)]
        assert sorted(map(len, positive_patients)) == [3, 3], seed
        for k in range(3):  # every output keeps both classes in both halves
            for side in (0, 1):
                column = targets[half == side, k]
                assert (column == 1).any() and (column == 0).any()
        sizes = [len(set(patients[half == side])) for side in (0, 1)]
        assert abs(sizes[0] - sizes[1]) <= 3  # at most one patient per stratum apart


def test_strict_resamples_average_exactly_the_points_outputs():
    rng = np.random.default_rng(0)
    y = np.zeros((40, 2))
    y[:20, 0] = 1
    y[0, 1] = 1  # one positive: undefined whenever that image's patient is not drawn
    scores = rng.random((40, 2))
    weights = bootstrap_weights(np.arange(40), 500, 0)
    loose, strict = mean_auroc_resampled(y, scores, weights), mean_auroc_resampled(y, scores, weights, strict=True)
    dropped = weights[:, 0] == 0
    assert dropped.any() and np.isnan(strict[dropped]).all() and np.isfinite(loose[dropped]).all()
    assert np.allclose(strict[~dropped], loose[~dropped])
