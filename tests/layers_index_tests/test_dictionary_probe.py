"""The linear probe: scikit-learn's logistic regression and AUROC, with C chosen by patient-wise CV on train only."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from layers_index._probe import CS, DEFAULT_C, FOLDS, linear_probe, patient_folds


def data(seed: int, outputs: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 20)) * rng.uniform(0.1, 10, size=20) + rng.normal(size=20) * 5
    y = (x[:, :outputs] / x[:, :outputs].std(axis=0) + rng.normal(size=(300, outputs)) > 0.8).astype(np.float32)
    return x[:200], y[:200], x[200:], y[200:]


@pytest.mark.parametrize("outputs", [1, 3])
def test_probe_auroc_is_sklearn_roc_auc_on_its_predictions(outputs):
    x_train, y_train, x_val, y_val = data(0, outputs)
    result = linear_probe(x_train, y_train, x_val, y_val)
    per_output = [roc_auc_score(y_val[:, k], result.predictions[:, k]) for k in range(outputs)]
    assert result.per_output == pytest.approx(per_output)
    assert result.auroc == pytest.approx(np.mean(per_output))
    assert 0.6 < result.auroc <= 1.0  # the labels depend on the features: the probe must find that


@pytest.mark.parametrize("c", [1e-3, 1.0, 10.0])
@pytest.mark.parametrize("wide", [False, True])
def test_probe_predictions_are_a_standardised_balanced_logistic_regression(c, wide):
    """Behaviour changed on purpose: C is no longer fixed at 1; at a given C the fit is scikit-learn's."""
    x_train, y_train, x_val, y_val = data(1)
    if wide:  # more channels than training rows, as in most DenseNet layers: the fit runs in the rows' span
        rng = np.random.default_rng(11)
        x_train, x_val = (np.hstack([x, rng.normal(size=(len(x), 300)) * 3 + 1]) for x in (x_train, x_val))
    result = linear_probe(x_train, y_train, x_val, y_val, cs=(c,))
    assert result.c == (c,)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=100_000, tol=1e-12))
    reference.fit(x_train, y_train[:, 0].astype(int))
    np.testing.assert_allclose(result.predictions[:, 0], reference.predict_proba(x_val)[:, 1], rtol=1e-4, atol=1e-6)


def patients(n: int, seed: int) -> np.ndarray:
    """Patient ids with 1-4 images each, in shuffled order."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(n), rng.integers(1, 5, n))[:n]
    return np.array([f"p{i}" for i in rng.permutation(ids)], dtype=object)


def test_c_is_the_argmax_of_a_patient_wise_cv_done_by_hand_with_scikit_learn():
    x_train, y_train, x_val, y_val = data(3)
    groups = patients(len(x_train), 3)
    result = linear_probe(x_train, y_train, x_val, y_val, groups=groups, seed=4)
    (folds,) = patient_folds(y_train, groups, seed=4)
    assert len(folds) == FOLDS
    by_hand = []
    for c in CS:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=100_000, tol=1e-12))
        held_out = []
        for fit, held in folds:
            model.fit(x_train[fit], y_train[fit, 0].astype(int))
            held_out.append(roc_auc_score(y_train[held, 0], model.decision_function(x_train[held])))
        by_hand.append(np.mean(held_out))
    # The probe standardises once on all of train (features only); by hand each fold refits the
    # scaler. Both must pick the same C on this problem, with the same held-out AUROC to 1e-2.
    assert result.c == (CS[int(np.argmax(by_hand))],)
    assert result.cv_auroc[0] == pytest.approx(max(by_hand), abs=1e-2)


def test_validation_rows_never_influence_c():
    x_train, y_train, x_val, y_val = data(5, outputs=3)
    groups = patients(len(x_train), 5)
    result = linear_probe(x_train, y_train, x_val, y_val, groups=groups)
    rng = np.random.default_rng(6)
    for other_y, other_x in [
        (y_val[rng.permutation(len(y_val))], x_val),
        (1 - y_val, x_val),
        (y_val, rng.normal(size=x_val.shape) * 100),
        (y_val[:10], x_val[:10]),
    ]:
        again = linear_probe(x_train, y_train, other_x, other_y, groups=groups)
        assert again.c == result.c and again.cv_auroc == result.cv_auroc
    assert len(set(result.c)) >= 1 and all(c in CS for c in result.c)


def test_the_fits_see_only_fold_rows_of_train(monkeypatch):
    """A spy on the solver: every CV fit gets exactly one fold's training rows, the refit all of train."""
    import layers_index._probe as probe

    x_train, y_train, x_val, y_val = data(7)
    seen: list[int] = []
    real = probe._fit
    monkeypatch.setattr(probe, "_fit", lambda z, y, *rest: seen.append(len(z)) or real(z, y, *rest))
    linear_probe(x_train, y_train, x_val, y_val, seed=2)
    (folds,) = patient_folds(y_train, seed=2)
    assert seen == [len(fit) for fit, _ in folds for _ in CS] + [len(x_train)]


@pytest.mark.parametrize("seed", range(3))
def test_folds_never_split_a_patient_and_every_fold_holds_both_classes(seed):
    _, y_train, _, _ = data(seed, outputs=3)
    groups = patients(len(y_train), seed)
    groups[::17] = None  # unknown patients: each image its own
    for k, folds in enumerate(patient_folds(y_train, groups, seed=seed)):
        held_rows = np.concatenate([held for _, held in folds])
        assert sorted(held_rows) == list(range(len(y_train)))  # a partition of the training rows
        for fit, held in folds:
            assert not set(groups[fit]) - {None} & set(groups[held]) - {None}
            assert not set(groups[fit]) & set(groups[held]) - {None}
            assert y_train[held, k].min() == 0 and y_train[held, k].max() == 1


def test_rare_outputs_get_fewer_folds_or_the_default_c():
    x_train, y_train, x_val, y_val = data(8, outputs=2)
    groups = np.array([f"p{i // 2}" for i in range(len(x_train))], dtype=object)  # two images per patient
    y_train = y_train.copy()
    y_train[:, 1] = 0
    y_train[[0, 1, 10], 1] = 1  # 3 positive images, 2 positive patients: 2 folds
    folds = patient_folds(y_train, groups)
    assert len(folds[0]) == FOLDS and len(folds[1]) == 2
    y_train[10, 1] = 0  # one positive patient: no CV, the default C
    result = linear_probe(x_train, y_train, x_val, y_val, groups=groups)
    assert result.c[1] == DEFAULT_C and np.isnan(result.cv_auroc[1]) and not np.isnan(result.cv_auroc[0])


def test_unknown_labels_are_left_out_of_that_outputs_folds_fit_and_auroc():
    """NaN is an unknown label (U-Ignore): the output learns and is scored on the rows it knows."""
    x_train, y_train, x_val, y_val = data(10, outputs=2)
    y_train, y_val = y_train.astype(np.float64), y_val.astype(np.float64)
    y_train[::6, 1] = np.nan
    y_val[::5, 1] = np.nan
    known, known_val = ~np.isnan(y_train[:, 1]), ~np.isnan(y_val[:, 1])
    folds = patient_folds(y_train)
    assert all(known[fit].all() and known[held].all() for fit, held in folds[1])
    assert sorted(np.concatenate([held for _, held in folds[1]])) == list(np.flatnonzero(known))
    result = linear_probe(x_train, y_train, x_val, y_val, cs=(0.1,))
    assert not np.isnan(result.predictions).any()  # unknown rows still get a prediction
    # the fit: a balanced L2 logistic regression on the known rows, standardised on all of train
    scaler = StandardScaler().fit(x_train)
    reference = LogisticRegression(C=0.1, class_weight="balanced", max_iter=100_000, tol=1e-12)
    reference.fit(scaler.transform(x_train[known]), y_train[known, 1].astype(int))
    np.testing.assert_allclose(result.predictions[:, 1], reference.predict_proba(scaler.transform(x_val))[:, 1], rtol=1e-4)
    assert result.per_output[1] == pytest.approx(roc_auc_score(y_val[known_val, 1], result.predictions[known_val, 1]))
    assert result.per_output[0] == linear_probe(x_train, y_train[:, :1], x_val, y_val[:, :1], cs=(0.1,)).per_output[0]


def test_bad_arguments_are_refused_with_the_argument_named():
    x_train, y_train, x_val, y_val = data(9)
    with pytest.raises(ValueError, match="groups: 3 entries"):
        linear_probe(x_train, y_train, x_val, y_val, groups=["a", "b", "c"])
    with pytest.raises(ValueError, match="cs="):
        linear_probe(x_train, y_train, x_val, y_val, cs=(1.0, 0.1))
    with pytest.raises(ValueError, match="n_splits=1"):
        patient_folds(y_train, n_splits=1)
    with pytest.raises(ValueError, match="folds: 2 outputs"):
        linear_probe(x_train, y_train, x_val, y_val, folds=[[], []])


def test_outputs_with_one_class_are_left_out_of_the_mean():
    x_train, y_train, x_val, y_val = data(2, outputs=2)
    y_val = y_val.copy()
    y_val[:, 1] = 0  # no positive validation image: AUROC undefined for output 1
    result = linear_probe(x_train, y_train, x_val, y_val)
    assert np.isnan(result.per_output[1])
    assert result.auroc == pytest.approx(roc_auc_score(y_val[:, 0], result.predictions[:, 0]))
    y_train = y_train.copy()
    y_train[:, 0] = 1  # nothing to learn for output 0: not fitted
    result = linear_probe(x_train, y_train, x_val, y_val)
    assert np.isnan(result.auroc) and np.isnan(result.predictions[:, 0]).all()


def test_outputs_fitted_in_threads_give_the_same_probe_as_one_at_a_time():
    x_train, y_train, x_val, y_val = data(12, outputs=3)
    groups = patients(len(x_train), 12)
    alone = linear_probe(x_train, y_train, x_val, y_val, groups=groups, n_jobs=1)
    threaded = linear_probe(x_train, y_train, x_val, y_val, groups=groups, n_jobs=3)
    for field in ("c", "cv_auroc", "per_output", "predictions"):  # equal to the bit, NaN where undefined
        np.testing.assert_array_equal(getattr(threaded, field), getattr(alone, field), err_msg=field)
    assert np.isfinite(alone.per_output).sum() >= 2


@pytest.mark.parametrize("seed", range(3))
def test_the_probe_subsample_keeps_whole_patients_up_to_the_limit(seed):
    from layers_index import probe_subsample

    groups = patients(1000, seed)
    groups[::50] = None  # unknown patients: an image each
    rows = probe_subsample(groups, 300, seed)
    assert 290 <= len(rows) <= 300 and list(rows) == sorted(set(rows))  # whole patients of 1-4 images fill it to within 4
    kept = set(groups[rows]) - {None}
    assert all(g in kept for g in groups if g is not None and g in kept)
    assert {g for g in groups if g in kept} == kept
    assert sum(g in kept for g in groups if g is not None) == sum(g is not None for g in groups[rows])  # no patient cut
    assert list(probe_subsample(groups, 300, seed)) == list(rows)  # seeded: the same rows for every layer
    assert list(probe_subsample(groups, 300, seed + 1)) != list(rows)
    assert list(probe_subsample(groups, None, seed)) == list(probe_subsample(groups, 1000, seed)) == list(range(1000))
    one = probe_subsample(np.array(["a"] * 5 + ["b"] * 5, dtype=object), 3, seed)
    assert len(one) == 5  # a patient with more images than the limit is kept whole
