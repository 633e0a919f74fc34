"""``--selection inner``: each trial's epoch and each candidate's trial are chosen on an inner split
of train, so validation scores one fixed model per candidate on all its patients (issue 27, item 1).

A real sweep on the embedded sample, and the split itself: the inner patients come out of train
only, whole, and never meet the validation patients the answer scores on.
"""

from __future__ import annotations

import html
import re

import numpy as np
import optuna
import pytest

import sweep
from sweep.cli._sweep import _print_summary
from sweep.data import DataOptions
from sweep.report import render_html, report_data
from sweep.stats import mean_auroc
from sweep.storage import load_predictions, load_validation
from sweep.study import StudyResources, SweepSettings, load_search_space

INNER_STUDY = """
[space]
cut_layers = ["conv2_block6_concat", "conv3_block12_concat"]
head_units = [0]
epochs = 3
patience = 2
"""


def test_inner_split_is_whole_training_patients_disjoint_from_validation():
    space = load_search_space(None)
    settings = SweepSettings(DataOptions(task="any"), "nih-sample", 32, space, selection="inner")
    context = StudyResources.from_settings(settings)
    train = context.dataset.split_indices("train")
    fit, inner = context.inner_split(train)
    assert np.array_equal(np.sort(np.concatenate([fit, inner])), np.sort(train))  # a partition of train
    fit_patients, inner_patients = set(context.patients(fit)), set(context.patients(inner))
    assert not fit_patients & inner_patients  # whole patients
    assert not inner_patients & set(context.patients(context.validation_rows))  # never a patient the answer scores
    val_patients = len(set(context.patients(context.validation_rows)))
    assert 0.5 * val_patients <= len(inner_patients) <= 1.5 * val_patients  # about as large as validation
    assert np.array_equal(context.inner_split(train)[1], inner)  # every worker draws the same


def test_selection_inner_scores_one_model_per_candidate_chosen_on_train(tmp_path, cache_dir, capsys):
    config = tmp_path / "inner.toml"
    config.write_text(INNER_STUDY)
    storage = f"sqlite:///{tmp_path / 'ocl.db'}"
    result = sweep.run_sweep(
        trials=6,
        image_size=32,
        weights="none",
        storage=storage,
        config=config,
        study="inner",
        selection="inner",
        strategy="both",
        log_dir=tmp_path / "logs",
    )
    assert result.finished == 6 and result.failed == 0
    study = optuna.load_study(study_name="inner", storage=storage)
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    split = load_validation(storage, "inner")
    stored = load_predictions(storage, "inner", [t.number for t in trials])
    for trial in trials:
        # The value TPE and the answer's choice see is the inner split's AUROC; validation's is kept beside it.
        assert trial.value == pytest.approx(trial.user_attrs["ocl:inner_mean_auroc"])
        predictions = stored[trial.number]
        assert np.array_equal(predictions.own, predictions.crossfit)  # one model, no halves
        assert trial.user_attrs["ocl:val_mean_auroc"] == pytest.approx(mean_auroc(split.targets, predictions.own), abs=1e-6)
    answer = result.answer
    assert answer.validation["selection"] == "inner" and answer.method == "chosen on train's inner split"
    for candidate in answer.candidates:
        members = [
            t
            for t in trials
            if (t.user_attrs["ocl:strategy"], t.user_attrs["ocl:cut_layer"]) == (candidate.strategy, candidate.layer)
        ]
        chosen = max(members, key=lambda t: t.value)  # chosen on train, never on validation
        assert candidate.scored_trials == (chosen.number, chosen.number) == (candidate.trial,) * 2
        assert candidate.score == pytest.approx(chosen.user_attrs["ocl:val_mean_auroc"], abs=1e-6)  # all its patients
        assert candidate.low <= candidate.score <= candidate.high
    # Where a person reads it, the terminal and the report, it is named as chosen on train, never
    # "cross-fitted" or a validation AUROC (both were, before).
    _print_summary(result)
    assert f"best trial #{result.best_trial}: inner-split mean AUROC" in capsys.readouterr().out
    page = html.unescape(re.sub(r"<[^>]+>", "", render_html(report_data(study, storage, answer=answer))))
    assert "chosen on train's inner split, patient-level bootstrap" in page  # the answer box
    assert "on every patient; it is the configuration ocl evaluate reuses" in page
    assert "one trial, chosen on an inner split of train, scored on every validation patient" in page  # the profile
    assert "each chosen on the other half" not in page and "cross-fit" not in page  # nor the history's note
    assert "validation mean AUROC" not in page  # the history plots trial values: inner-split AUROCs
