"""The answer's statistics on generated studies where the truth is known (tests/generated_studies.py).

Monte Carlo over seeds, with the tolerance its binomial error allows: the answer's 95% claims must
hold at 69, 300 and 1,000 validation patients, the sizes of the embedded sample, a small hospital
dataset and a large one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from generated_studies import predictions, shift_for, validation, write_study

from sweep.results import CandidateScorer, study_answer
from sweep.stats import confidence_set, patient_halves
from sweep.storage import StoredPredictions, ValidationSplit
from sweep.training import EpochChoice

pytestmark = pytest.mark.slow  # a few thousand generated answers: a minute or two on 2 cores

REPEATS = 200  # binomial margin at 5%: 3.1 points; fixed choices (8.5-13%) and every-resample choices (0%) fail it
TRUTH = 0.75


def _monte_carlo_margin(rate: float, runs: int) -> float:
    """Two binomial standard errors of a rate over ``runs`` repetitions."""
    return 2 * math.sqrt(rate * (1 - rate) / runs)


def _equal_candidates_split(seed: int, n_patients: int, candidates: int = 4, trials: int = 3) -> bool:
    """One study of equally good candidates: True when the confidence set wrongly leaves one out."""
    rng = np.random.default_rng(seed)
    y, patients, effect = validation(rng, n_patients)
    scorer = CandidateScorer(ValidationSplit(("finding",), y, patients, "generated"), seed=seed)
    estimates, resampled = [], []
    for _ in range(candidates):
        stored = {t: predictions(rng, y, effect, shift_for(TRUTH)) for t in range(trials)}
        point, values = scorer.score(list(stored), stored)
        estimates.append(point)
        resampled.append(values)
    return not confidence_set(np.asarray(estimates), np.stack(resampled, axis=1)).all()


@pytest.mark.parametrize("n_patients", [69, 300, 1000])
def test_equal_candidates_are_all_kept_95_percent_of_the_time_and_not_much_more(n_patients):
    """Family-wise error with 4 equal candidates of 3 trials each, at 5% within the Monte Carlo
    margin on both sides: above it breaks the promise, below it is power lost to slack. Over these
    200 draws, holding each candidate's trial choice fixed across resamples made it 8.5%, 12.5% and
    13%; choosing again in every resample (OCL until issue 27) 0% at every size; choosing again
    among the trials tied with the point's choice (``sweep.results.recentre_tied``) 2.5%, 6% and 5%."""
    errors = sum(_equal_candidates_split(seed, n_patients) for seed in range(REPEATS))
    margin = _monte_carlo_margin(0.05, REPEATS)
    assert 0.05 - margin <= errors / REPEATS <= 0.05 + margin, errors


def test_the_best_candidates_interval_covers_its_truth_with_a_rare_finding():
    """Multilabel at 300 patients: two common findings and one rare one (8 positive patients), every
    trial of true mean AUROC 0.75. The interval of the cross-fitted score covers 0.75 within the
    binomial margin of 95% over 500 draws (93%). Holding the trial choice fixed in the resamples
    covers 92.3% (600 draws); the tied trials recentred, as now, 94.2%."""
    repeats, covered = 500, 0
    for seed in range(repeats):
        rng = np.random.default_rng(seed)
        patients = np.repeat(np.arange(300), 2).astype(str)
        labels = rng.random((300, 3)) < [0.4, 0.2, 0.0]
        labels[rng.choice(300, 8, replace=False), 2] = True
        y = labels[np.repeat(np.arange(300), 2)].astype(np.float32)
        effect = rng.normal(0, 0.7, 300)[np.repeat(np.arange(300), 2)]
        scorer = CandidateScorer(ValidationSplit(("a", "b", "rare"), y, patients, "generated"), seed=seed)
        assert scorer.counted.all()  # the rare finding counts, in both halves
        shift = shift_for(TRUTH)
        stored = {
            t: np.column_stack([(shift * y[:, k] + effect + rng.normal(0, 0.7, len(y))) for k in range(3)]).astype(np.float32)
            for t in range(3)
        }
        _, values = scorer.score(list(stored), stored)
        low, high = np.nanpercentile(values, [2.5, 97.5])
        covered += low <= TRUTH <= high
    assert covered / repeats >= 0.95 - _monte_carlo_margin(0.95, repeats), covered / repeats


def test_study_answer_keeps_equal_layers_and_finds_a_truly_better_one(tmp_path):
    """Through the stored records and predictions, as a sweep leaves them."""
    rng = np.random.default_rng(0)
    y, patients, effect = validation(rng, 1000)
    layers = ["conv3_block4_concat", "pool3_pool", "conv4_block12_concat"]
    equal = {layer: [predictions(rng, y, effect, shift_for(TRUTH)) for _ in range(3)] for layer in layers}
    url = f"sqlite:///{tmp_path / 'answer.db'}"
    answer = study_answer(write_study(url, "equal", y, patients, equal), url)
    assert {c.layer for c in answer.confidence_set} == set(layers) and not answer.distinguishable

    better = {**equal, "relu": [predictions(rng, y, effect, shift_for(0.85)) for _ in range(3)]}
    answer = study_answer(write_study(url, "better", y, patients, better), url)
    assert answer.best.layer == "relu" and answer.distinguishable
    assert answer.best.low <= answer.best.score <= answer.best.high


def test_the_answer_names_the_cheapest_layer_as_good_as_the_best_and_what_is_ruled_out(tmp_path):
    """Three layers of equal true AUROC (0.80) from dense block 2 to the end, and two shallow ones far
    worse (0.55): the cheapest of the equal three is the shallowest, and every judged layer before it is worse."""
    rng = np.random.default_rng(1)
    y, patients, effect = validation(rng, 1000)
    truths = {
        "conv2_block1_concat": 0.55,
        "conv2_block3_concat": 0.55,
        "conv3_block4_concat": 0.80,
        "conv4_block12_concat": 0.80,
        "relu": 0.80,
    }
    trials = {layer: [predictions(rng, y, effect, shift_for(auroc)) for _ in range(3)] for layer, auroc in truths.items()}
    url = f"sqlite:///{tmp_path / 'cheap.db'}"
    answer = study_answer(write_study(url, "cheap", y, patients, trials), url)
    assert {c.layer for c in answer.confidence_set} == {"conv3_block4_concat", "conv4_block12_concat", "relu"}
    assert answer.cheapest.layer == "conv3_block4_concat" and answer.ruled_out_before.layer == "conv3_block4_concat"
    sentence = answer.sentence()
    assert "The cheapest candidate as good as the best is conv3_block4_concat" in sentence
    assert f"{answer.cheapest.flops_fraction:.0%} of the full network's FLOPs" in sentence
    assert "Every judged layer before conv3_block4_concat is significantly worse than the best." in sentence
    data = answer.to_dict()
    assert data["cheapest"]["layer"] == "conv3_block4_concat" and data["ruled_out_before"] == "conv3_block4_concat"
    assert data["cheapest"]["params"] == 1000 * (data["cheapest"]["depth"] + 1)


def _first_rank_of_long_trials(seed: int, n_patients: int, crossfit_epochs: bool) -> bool:
    """One study of two equally good candidates, 3 trials each: 30-epoch trials (as feature
    extraction runs) against 4-epoch ones (as fine-tuning runs), every epoch of the same true AUROC.
    Each trial keeps its epochs through the trainer's own EpochChoice; True when the 30-epoch
    candidate scores higher. ``crossfit_epochs`` False keeps the whole split's best epoch (the code before)."""
    rng = np.random.default_rng(seed)
    y, patients, effect = validation(rng, n_patients)
    split = ValidationSplit(("finding",), y, patients, "generated")
    scorer = CandidateScorer(split, n_resamples=1, seed=seed)
    halves = patient_halves(patients, y, seed)
    points = []
    for epochs in (30, 4):
        stored = {}
        for t in range(3):
            trial_effect = rng.normal(0, 0.3, len(y))[:, None]  # what the trial learned, kept over its epochs
            choice = EpochChoice(y, halves, min_positives=1)
            for epoch in range(epochs):
                choice.update(epoch, predictions(rng, y, effect, shift_for(TRUTH)) + trial_effect)
            kept = choice.crossfit()
            stored[t] = StoredPredictions(kept.own, kept.crossfit) if crossfit_epochs else choice.best_predictions
        points.append(scorer.score(list(stored), stored)[0])
    return points[0] > points[1]


def test_long_and_short_trials_of_equal_truth_rank_first_equally_often():
    """The epoch a trial keeps is chosen inside the cross-fit: at 300 validation patients, 30-epoch and
    4-epoch candidates of equal true AUROC rank first about half the time each (53% over these 400
    draws). Keeping the whole split's best epoch (the code before) made the 30-epoch one first
    77.5% of the time over the first 200."""
    runs = 400
    margin = _monte_carlo_margin(0.5, runs)  # 5 points
    first = sum(_first_rank_of_long_trials(seed, 300, crossfit_epochs=True) for seed in range(runs))
    assert abs(first / runs - 0.5) <= margin, first / runs
    before = sum(_first_rank_of_long_trials(seed, 300, crossfit_epochs=False) for seed in range(runs // 2))
    assert before / (runs // 2) > 0.5 + 2 * margin, before / (runs // 2)  # the test tells apart the bias it guards against


def test_a_second_answer_reads_the_stored_resamples_not_the_predictions(tmp_path, monkeypatch):
    """Each trial's resampled half-scores are computed once and kept: the next answer (the report,
    ``ocl evaluate``) is the same without loading one prediction."""
    rng = np.random.default_rng(2)
    y, patients, effect = validation(rng, 300)
    trials = {layer: [predictions(rng, y, effect, shift_for(TRUTH)) for _ in range(3)] for layer in ("pool3_pool", "relu")}
    url = f"sqlite:///{tmp_path / 'cached.db'}"
    study = write_study(url, "cached", y, patients, trials)
    first = study_answer(study, url)

    def no_loading(*args, **kwargs):
        raise AssertionError("predictions were loaded again")

    with monkeypatch.context() as patch:
        patch.setattr("sweep.results._scorer.load_predictions", no_loading)
        assert study_answer(study, url) == first
    other = study_answer(study, url, n_resamples=200)  # another scheme: computed again, never mixed up
    assert other.n_resamples == 200 and other.best.low != first.best.low
