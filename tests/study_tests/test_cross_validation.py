"""``--cv K`` for both strategies: every train+val patient is scored once, out of fold.

A real sweep on the embedded sample: fine-tuning trials as well as feature-extraction ones train
K times, on the other folds, and their stored predictions cover train+val, which the answer then
says it rests on.
"""

from __future__ import annotations

import numpy as np
import optuna
import pytest

import sweep
from sweep.data import DataOptions, load_dataset
from sweep.results import study_answer
from sweep.storage import load_predictions, load_validation

pytestmark = pytest.mark.slow

FOLDS_STUDY = """
[space]
cut_layers = ["conv4_block24_concat"]
head_units = [0]
epochs = 2
patience = 2
bank_views = 0
"""


def test_cv_cross_validates_fine_tuning_trials_over_train_and_validation(tmp_path, cache_dir):
    config = tmp_path / "folds.toml"
    config.write_text(FOLDS_STUDY)
    storage = f"sqlite:///{tmp_path / 'ocl.db'}"
    result = sweep.run_sweep(
        trials=2,
        image_size=32,
        weights="none",
        storage=storage,
        config=config,
        study="folds",
        cv=2,
        strategy="fine_tuning",
        log_dir=tmp_path / "logs",
    )
    assert result.finished == 2 and result.failed == 0
    study = optuna.load_study(study_name="folds", storage=storage)
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert {t.user_attrs["ocl:strategy"] for t in trials} == {"fine_tuning"}
    dataset = load_dataset(DataOptions())
    scored = len(dataset.split_indices("train")) + len(dataset.split_indices("val"))
    split = load_validation(storage, "folds")
    assert len(split.targets) == scored  # every train+val image, not the validation split's
    for stored in load_predictions(storage, "folds", [t.number for t in trials]).values():
        assert stored.own.shape == (scored, 1) and np.isfinite(stored.own).all()  # each image predicted by a fold's model
    answer = study_answer(study, storage)
    assert answer.validation["scored_on"] == "train+val, out of fold (--cv 2)"
    assert "out-of-fold AUROC (--cv 2, train+val)" in answer.sentence()
