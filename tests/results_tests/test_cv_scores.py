"""Under ``--cv K`` the answer scores each fold's head on its own fold and averages the K AUROCs.

Out-of-fold predictions come from K heads of one configuration, and heads differ (here: each adds
its own offset to every image it scores). An AUROC over the pooled predictions ranks a positive
scored by one head against a negative scored by another, so it moves with the heads' chance
differences, which no patient resample replays; the mean of the folds' AUROCs does not.
"""

from __future__ import annotations

import numpy as np
from generated_studies import INDEPENDENT
from sklearn.metrics import roc_auc_score

from sweep.results import CandidateScorer
from sweep.stats import interval, patient_folds
from sweep.storage import ValidationSplit

TRUTH, FOLDS = 0.75, 5


def _oof_study(seed: int, patients: int, fold_sd: float):
    rng = np.random.default_rng(seed)
    y, ids, shared = INDEPENDENT.validation(rng, patients)
    fold = patient_folds(ids, FOLDS, seed)
    effect = INDEPENDENT.candidate_effect(rng, len(y))
    scores = INDEPENDENT.out_of_fold(rng, y, shared, effect, INDEPENDENT.shift_for(TRUTH), fold, fold_sd)
    return ValidationSplit(("finding",), y, ids, "generated"), fold, scores


def test_a_cv_score_is_the_mean_of_its_folds_aurocs_whatever_offset_a_head_adds():
    split, fold, scores = _oof_study(seed=3, patients=400, fold_sd=0.1)
    y = split.targets[:, 0]
    by_hand = np.mean([roc_auc_score(y[fold == f], scores[fold == f, 0]) for f in range(FOLDS)])
    shifted = scores + np.where(fold == 2, 5.0, 0.0)[:, None].astype(np.float32)  # one head scores everything higher
    assert abs(roc_auc_score(y, shifted[:, 0]) - roc_auc_score(y, scores[:, 0])) > 0.02  # a pooled AUROC moves
    for selection in ("inner", "halves"):
        scorer = CandidateScorer(split, n_resamples=50, seed=0, selection=selection, folds=fold)
        first, moved = (scorer.values([0], {0: p})[0] for p in (scores, shifted))
        np.testing.assert_allclose(first, moved, atol=1e-6)  # point and every resample
        if selection == "inner":
            assert abs(first[0] - by_hand) < 1e-6


def test_a_rare_finding_absent_from_a_fold_is_averaged_over_the_folds_that_hold_it():
    """A second output positive only in folds 0-2: its AUROC is the mean over those three folds
    (the others cannot score it), the first output's over all five, and the score their mean."""
    split, fold, scores = _oof_study(seed=4, patients=400, fold_sd=0.1)
    y = split.targets[:, 0]
    rare = np.where(fold <= 2, y, 0.0)
    targets, two = np.stack([y, rare], axis=1), np.concatenate([scores, scores], axis=1)
    two_outputs = ValidationSplit(("finding", "rare"), targets, split.patients, "generated")
    scorer = CandidateScorer(two_outputs, n_resamples=20, seed=0, selection="inner", folds=fold, min_positives=1)
    point, resampled = scorer.score([0], {0: two}, chosen=0)
    common = np.mean([roc_auc_score(y[fold == f], scores[fold == f, 0]) for f in range(FOLDS)])
    rare_mean = np.mean([roc_auc_score(rare[fold == f], scores[fold == f, 0]) for f in range(3)])
    assert abs(point - (common + rare_mean) / 2) < 1e-6
    assert np.isfinite(resampled).mean() > 0.9


def test_a_cv_scores_interval_covers_one_heads_true_auroc_when_heads_differ():
    """Over 100 generated ``--cv 5`` studies with heads that differ a lot (offset SD 0.5, where a
    pooled AUROC's truth is about 0.73), the 95% interval covers one head's true AUROC (0.75)
    in at least 88% of them (95% less two standard errors of 100 draws)."""
    covered = 0
    for seed in range(100):
        split, fold, scores = _oof_study(seed, patients=600, fold_sd=0.5)
        point, resampled = CandidateScorer(split, n_resamples=200, seed=seed, selection="inner", folds=fold).score(
            [0], {0: scores}, chosen=0
        )
        ci = interval(point, resampled)
        covered += ci.low <= TRUTH <= ci.high
    assert covered >= 88
