"""Pruning per strategy and epoch budget, never after a trial's last epoch (real Optuna studies)."""

from __future__ import annotations

import optuna
import pytest

from sweep.study import key_of, make_pruner, may_prune

BUDGETS = {"feature_extraction": 30, "fine_tuning": 4}


def run_study(pruner_name: str, strategies: list[str]) -> optuna.Study:
    """Feature-extraction trials score 0.8 and up; fine-tuning trials 0.5 to 0.6, rising per epoch,
    as the objective reports them (``may_prune`` guarding the last epoch)."""
    # Hyperband puts a trial in a bracket by a hash of the study name: a fixed name, the same brackets every run.
    study = optuna.create_study(
        study_name=f"pruning-{pruner_name}",
        direction="maximize",
        pruner=make_pruner(pruner_name),
        sampler=optuna.samplers.RandomSampler(0),
    )

    def objective(trial: optuna.Trial) -> float:
        strategy = strategies[trial.number % len(strategies)]
        epochs = BUDGETS[strategy]
        trial.set_user_attr(key_of("strategy"), strategy)
        trial.set_user_attr(key_of("epochs_budget"), epochs)
        quality = trial.suggest_float("quality", 0.0, 0.1)
        value = 0.0
        for epoch in range(epochs):
            value = (0.8 if strategy == "feature_extraction" else 0.5) + quality + 0.001 * epoch
            trial.report(value, epoch)
            if may_prune(epoch, epochs) and trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study.optimize(objective, n_trials=40)
    return study


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_fine_tuning_is_judged_only_against_fine_tuning_and_never_pruned_after_its_last_epoch(pruner):
    study = run_study(pruner, ["feature_extraction", "fine_tuning"])
    tuned = [t for t in study.trials if t.user_attrs[key_of("strategy")] == "fine_tuning"]
    pruned = [t for t in tuned if t.state == optuna.trial.TrialState.PRUNED]
    assert all(t.last_step < BUDGETS["fine_tuning"] - 1 for t in pruned)  # never at the final epoch
    # Judged among themselves, not against the (higher) feature-extraction curve, many complete (a pooled
    # pruner prunes every late one, below). Hyperband's own halving prunes some: over 30 study names,
    # 9 to 16 of the 20 completed, never fewer than 40%.
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in tuned) >= 2 * len(tuned) // 5
    fe = [t for t in study.trials if t.user_attrs[key_of("strategy")] == "feature_extraction"]
    assert all(t.last_step < BUDGETS["feature_extraction"] - 1 for t in fe if t.state == optuna.trial.TrialState.PRUNED)


def test_a_pooled_median_would_have_pruned_the_fine_tuning_trials():
    """The control: Optuna's plain MedianPruner over both strategies prunes fine-tuning for being
    fine-tuning, which is the bias the per-strategy pruner removes."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1))

    def objective(trial: optuna.Trial) -> float:
        fine_tuning = trial.number % 2 == 1
        for epoch in range(4 if fine_tuning else 30):
            trial.report((0.5 if fine_tuning else 0.8) + 0.001 * epoch, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 0.5 if fine_tuning else 0.8

    study.optimize(objective, n_trials=20)
    late = [t for t in study.trials if t.number % 2 == 1 and t.number > 10]
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in late)


def test_ctrl_c_outside_the_objective_waits_for_the_trial_bookkeeping():
    """SIGINT raises only inside the objective (Optuna then records FAIL); elsewhere, e.g. while
    Optuna writes the trial's result, it is noted and the worker stops after the write."""
    import os
    import signal

    from sweep.study._worker import _InterruptOnlyInTrials

    study = optuna.create_study()
    with _InterruptOnlyInTrials() as guard:
        os.kill(os.getpid(), signal.SIGINT)  # between trials: noted, not raised
        assert guard.requested

        def objective(trial: optuna.Trial) -> float:
            os.kill(os.getpid(), signal.SIGINT)  # inside the objective: raised
            return 1.0

        guard.requested = False
        with pytest.raises(KeyboardInterrupt):
            study.optimize(guard.wrap(objective), n_trials=1)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL]  # never left RUNNING
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


class _PruneOnAnyDip(optuna.pruners.BasePruner):
    """Wants a trial stopped at any epoch that did not beat its best so far: with patience 1, exactly
    the epoch where patience ends training."""

    def prune(self, study, trial) -> bool:
        values = [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]
        return len(values) > 1 and values[-1] <= max(values[:-1])


def test_a_trial_whose_patience_ended_its_training_completes_even_if_the_pruner_says_prune(tmp_path):
    """The real objective and trainer: with patience 1, training ends at the first epoch without
    improvement, before the 30-epoch budget; the pruner is then not asked, and the trial completes.
    Before, the pruner was asked first, and such a finished result was thrown away."""
    from sweep.data import DataOptions
    from sweep.study import Objective, SearchSpace, StudyResources, SweepSettings, create_or_resume

    space = SearchSpace(
        strategies=("feature_extraction",),
        cut_layers=("pool2_pool",),
        weights=("none",),
        head_units=(0,),
        augment=(False,),
        epochs=30,
        patience=1,
        bank_views=0,
    )
    settings = SweepSettings(DataOptions(task="any"), "nih-cxr14-sample", 32, space)
    context = StudyResources.from_settings(settings)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'ocl.db'}")
    study = create_or_resume(storage, "patience", settings, target=3)
    study = optuna.load_study(study_name="patience", storage=storage, pruner=_PruneOnAnyDip())
    study.optimize(Objective(context, device="cpu:0"), n_trials=3)
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)
    # patience, not the budget, ended them: the case the pruner used to catch
    assert all(len(trial.intermediate_values) < 30 for trial in study.trials)
    assert may_prune(3, 30) and not may_prune(3, 30, training_ends=True) and not may_prune(29, 30)
