"""The study's answer, stated honestly: the optimal cut-off layer and strategy, how sure, and what
cannot be told apart from it.

A *candidate* is one cut layer trained one way (strategy, and weights when the study sweeps
them). Its trials differ in optimizer, learning rate, head and augmentation. Two biases make the
naive answer ("the layer of the best trial") untrustworthy, and each has a remedy here:

- **Winner's curse inside a candidate.** The maximum of a candidate's trials on one validation
  split is biased upward, more so the more trials TPE happened to give it (Cawley & Talbot 2010).
  So a candidate's score is **cross-fitted**: the validation patients are split in two halves
  (seeded, patient-wise, stratified by label: :func:`sweep.stats.patient_halves`); on each half, the
  candidate's trial that scored best on the *other* half is scored; the candidate's score is the
  mean of the two. Choosing the trial and scoring never see the same patients, so visiting a layer
  more often no longer inflates it. Both halves, and every resample, average the same outputs: those
  the mean AUROC counts that are defined in each half. The bootstrap resamples make the trial
  choice again among the trials statistically tied with the point's choice (:func:`crossfit_score`),
  so the interval carries the luck of that choice without replaying chance gaps as real ones.
- **Winner's curse across candidates.** The best of many noisy scores is not reliably the best
  candidate. So the answer is a **confidence set**: every candidate not significantly worse than
  the best, by a paired patient-level bootstrap with max-T correction over all comparisons
  (:func:`sweep.stats._uncertainty.confidence_set`). Only a set of one is called "the optimal layer".

A candidate with fewer than ``min_trials`` completed trials is shown but not judged: it never
enters the set and is never crowned.

Everything is computed from the predictions kept in the storage (:mod:`sweep.storage._predictions`), so
any report can be recomputed from the database alone.

Example:
    >>> answer = study_answer(study, "sqlite:///studies/ocl.db")
    >>> print(answer.sentence())
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sweep.results._layer_summary import completed_trials
from sweep.results._scorer import CandidateScorer, crossfit_score, recentre_tied
from sweep.stats import (
    LEVEL,
    MIN_TRIALS,
    N_RESAMPLES,
    confidence_set,
    interval,
    patient_folds,
    patient_halves,
)
from sweep.storage import (
    ValidationSplit,
    load_validation,
    stored_trials,
)
from sweep.study import load_settings

__all__ = [
    "MIN_TRIALS",
    "Candidate",
    "CandidateScorer",
    "StudyAnswer",
    "crossfit_score",
    "recentre_tied",
    "patient_halves",
    "small_validation_warning",
    "study_answer",
    "study_folds",
]


@dataclass(frozen=True)
class Candidate:
    """One (strategy, cut layer, weights) of the study, scored with its interval."""

    strategy: str
    layer: str
    weights: str
    depth: int | None
    block: str | None
    n_trials: int
    best_trial: int  # the trial with the highest validation AUROC: the configuration ``ocl evaluate`` reuses
    best_value: float  # its validation mean AUROC (biased upward; shown, never ranked on)
    score: float  # cross-fitted validation mean AUROC (what candidates are ranked on)
    low: float
    high: float
    judged: bool  # has at least MIN_TRIALS completed trials
    in_set: bool  # in the confidence set of the best (judged candidates only)
    flops_fraction: float | None = None  # share of the full network's multiply-adds up to the cut layer
    params: int | None = None  # weights of the network truncated at the cut layer
    scored_trials: tuple[int, int] | None = None  # the trials ``score`` scores on validation half 1 and 2

    @property
    def trial(self) -> int:
        """The trial whose configuration ``ocl evaluate`` retrains and exports: the candidate's best
        on the whole validation split. ``score`` estimates how well that rule does on patients it
        did not choose on (each half scores the trial the other half chose, ``scored_trials``)."""
        return self.best_trial

    @property
    def name(self) -> str:
        weights = "" if self.weights == "imagenet" else f", weights {self.weights}"
        return f"{self.layer} ({self.strategy.replace('_', ' ')}{weights})"


@dataclass(frozen=True)
class StudyAnswer:
    """What the study found, candidates best first (judged ones before the rest)."""

    study: str
    candidates: list[Candidate]
    level: float
    n_resamples: int
    min_trials: int
    validation: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def score_name(self) -> str:
        """What the scores are: validation AUROC, or out-of-fold AUROC over train+val with ``--cv``."""
        cv = self.validation.get("cv")
        return f"out-of-fold AUROC (--cv {cv}, train+val)" if cv else "validation AUROC"

    @property
    def method(self) -> str:
        """How each candidate's trial was chosen before the score was taken, as tables and the
        report name it: ``cross-fitted`` over the validation halves, or chosen on train's inner
        split (``--selection inner``), validation scoring one model per candidate."""
        return "chosen on train's inner split" if self.validation.get("selection") == "inner" else "cross-fitted"

    @property
    def value_name(self) -> str:
        """What each trial's value (``trial.value``, what TPE and the history plot see) is: the inner
        split's AUROC under ``--selection inner``, else the validation AUROC."""
        return "inner-split mean AUROC" if self.validation.get("selection") == "inner" else "validation mean AUROC"

    @property
    def judged(self) -> list[Candidate]:
        return [c for c in self.candidates if c.judged]

    @property
    def best(self) -> Candidate | None:
        """The best-scoring judged candidate (None when no candidate has enough trials)."""
        return self.judged[0] if self.judged else None

    @property
    def confidence_set(self) -> list[Candidate]:
        return [c for c in self.candidates if c.in_set]

    @property
    def cheapest(self) -> Candidate | None:
        """The candidate in the confidence set with the fewest FLOPs (ties: fewest parameters): as good
        as the best, as far as the data can tell, at the lowest cost. None when the set is unknown
        or its candidates carry no costs (a study made before OCL recorded them)."""
        costed = [c for c in self.confidence_set if c.flops_fraction is not None]
        if not costed:
            return None
        return min(costed, key=lambda c: (c.flops_fraction, c.params if c.params is not None else float("inf")))

    @property
    def ruled_out_before(self) -> Candidate | None:
        """The shallowest candidate of the set when every judged candidate shallower than it is
        significantly worse than the best (so "every layer before it is worse" is true); else None."""
        placed = [c for c in self.judged if c.depth is not None]
        members = [c for c in placed if c.in_set]
        if not members:
            return None
        first = min(members, key=lambda c: c.depth)
        shallower = [c for c in placed if c.depth < first.depth]
        return first if shallower and not any(c.in_set for c in shallower) else None

    def cost_sentence(self) -> str:
        """The cheapest candidate as good as the best, with its cost against the full network, and what is ruled out."""
        parts = []
        cheap = self.cheapest
        if cheap is not None and self.best is not None and cheap is not self.best:
            params = f" and {cheap.params / 1e6:.1f} M parameters" if cheap.params else ""
            parts.append(
                f"The cheapest candidate as good as the best is {cheap.name}: {cheap.flops_fraction:.0%} of the full "
                f"network's FLOPs{params}."
            )
        first = self.ruled_out_before
        if first is not None:
            parts.append(f"Every judged layer before {first.layer} is significantly worse than the best.")
        return " ".join(parts)

    @property
    def distinguishable(self) -> bool:
        """Whether the best candidate is significantly better than every other judged one."""
        return len(self.judged) >= 2 and len(self.confidence_set) == 1

    def sentence(self) -> str:
        """The answer in plain words: the verdict, then the cheapest candidate as good as the best and
        what is ruled out, when the data says so."""
        cost = self.cost_sentence() if self.best is not None else ""
        return self._verdict() + (f" {cost}" if cost else "")

    def _verdict(self) -> str:
        level = f"{self.level:.0%}"
        if not self.candidates:
            return "No completed trial has stored validation predictions yet, so there is no answer to give."
        if self.best is None:
            top = self.candidates[0]
            return (
                f"No candidate has the {self.min_trials} completed trials needed to judge it yet; the best so far is "
                f"{top.name} with {self.score_name} {_ci(top)} ({self.method}) from {top.n_trials} trial(s). "
                "Run more trials or narrow cut_layers."
            )
        best = self.best
        if len(self.judged) == 1:
            return (
                f"{best.name} is the only candidate with {self.min_trials}+ trials ({self.score_name} {_ci(best)}); "
                "there is nothing to compare it with yet."
            )
        if self.distinguishable:
            return (
                f"{best.name} is the optimal cut-off layer: its {self.score_name} {_ci(best)} is significantly higher "
                f"than that of every other candidate with {self.min_trials}+ trials ({level} simultaneous, "
                "patient-level bootstrap)."
            )
        others = [c for c in self.confidence_set if c is not best]
        if len(self.confidence_set) == len(self.judged):
            return (
                f"No layer is distinguishable: all {len(self.judged)} judged candidates are within chance of the best "
                f"({best.name}, {self.score_name} {_ci(best)}); more patients would be needed to tell them apart"
                + (
                    "."
                    if self.validation.get("cv")
                    else " (--cv 5 scores every train+val patient, not the validation split alone)."
                )
            )
        listed = ", ".join(c.name for c in others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
        return (
            f"{best.name} scored highest ({self.score_name} {_ci(best)}), but {len(others)} other candidate(s) cannot be "
            f"told apart from it at {level}: {listed}; treat them as equally good."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (``ocl sweep --format json``)."""
        first = self.ruled_out_before
        return {
            "study": self.study,
            "answer": self.sentence(),
            "score_name": self.score_name,
            "method": self.method,
            "value_name": self.value_name,
            "best": asdict(self.best) if self.best else None,
            "cheapest": asdict(self.cheapest) if self.cheapest else None,
            "ruled_out_before": first.layer if first else None,
            "distinguishable": self.distinguishable,
            "confidence_set": [c.name for c in self.confidence_set],
            "level": self.level,
            "n_resamples": self.n_resamples,
            "min_trials": self.min_trials,
            "validation": self.validation,
            "warnings": self.warnings,
            "candidates": [asdict(c) for c in self.candidates],
        }


def _ci(candidate: Candidate) -> str:
    return f"{candidate.score:.3f} [{candidate.low:.3f}, {candidate.high:.3f}]"


def small_validation_warning(split: ValidationSplit) -> str | None:
    """A one-line warning when the validation split is too small to rank layers.

    By Hanley & McNeil (1982), with fewer than 10 positives or negatives per output an AUROC near
    0.75 has a standard error above 0.07 (a 95% interval about 0.3 wide): wider than the spread of
    most layer profiles, so no confidence set can exclude anything.
    """
    y = np.asarray(split.targets)
    positives, negatives = (y == 1).sum(axis=0), (y == 0).sum(axis=0)  # NaN (unknown) is neither
    usable = (positives >= 10) & (negatives >= 10)
    if usable.any():
        return None
    return (
        f"the validation split ({len(y)} images; positives per output {int(positives.min())}-{int(positives.max())}, "
        f"negatives {int(negatives.min())}-{int(negatives.max())}) is too small to rank layers: fewer than 10 positives "
        "or negatives per output; use a larger dataset or --split with more validation patients"
    )


def study_answer(
    study: Any,
    storage_url: str,
    *,
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
    min_trials: int = MIN_TRIALS,
    seed: int | None = None,
) -> StudyAnswer:
    """The answer of a study, from its completed trials and their stored validation predictions.

    ``seed`` (of the validation halves and the resamples) defaults to the study's own ``--seed``,
    as the dictionary callback uses it, so every reader of a study gets the same answer.
    """
    split = load_validation(storage_url, study.study_name)
    groups = _candidate_groups(study, storage_url, split)
    if split is None or not groups:
        return StudyAnswer(study.study_name, [], level, n_resamples, min_trials, {}, [])
    warning = small_validation_warning(split)
    warnings = [warning] if warning else []
    settings = load_settings(study)
    scorer = CandidateScorer(
        split,
        n_resamples=n_resamples,
        seed=settings.data_options.seed if seed is None else seed,
        min_positives=settings.space.min_positives,
        storage_url=storage_url,
        study=study.study_name,
        selection=settings.selection,
        folds=study_folds(split, settings),
    )
    best = {key: max(members, key=lambda pair: pair[0].value) for key, members in groups.items()}
    needed = [b.number for b, _ in best.values()] if settings.selection == "inner" else None
    scorer.values(needed or [t.number for members in groups.values() for t, _ in members])  # what is not stored, at once
    keys, estimates, resampled, facts = [], [], [], []
    for key, members in groups.items():
        numbers, (best_trial, record) = [t.number for t, _ in members], best[key]
        point, boot = scorer.score(numbers, chosen=best_trial.number)
        keys.append(key)
        estimates.append(point)
        resampled.append(boot)
        facts.append((record, len(members), best_trial, scorer.chosen_trials(numbers, chosen=best_trial.number)))
    candidates = _judge(keys, facts, np.asarray(estimates, np.float64), np.stack(resampled, axis=1), level, min_trials)
    facts = _validation_facts(split, settings.cv, settings.selection)
    return StudyAnswer(study.study_name, candidates, level, n_resamples, min_trials, facts, warnings)


def study_folds(split: ValidationSplit, settings: Any) -> np.ndarray | None:
    """Under ``--cv K``, the fold of each scored image, drawn as the sweep drew them
    (:meth:`sweep.study.StudyResources.cv_folds`: the stored split's patients, the study's seed),
    so the answer scores each head on its own fold; None for a holdout study."""
    return patient_folds(split.patients, settings.cv, settings.data_options.seed) if settings.cv else None


def _candidate_groups(study: Any, storage_url: str, split: ValidationSplit | None) -> dict:
    """Completed trials with stored predictions, grouped per candidate (strategy, layer, weights)."""
    pairs = completed_trials(study)
    stored = stored_trials(storage_url, study.study_name, [t.number for t, _ in pairs]) if split is not None else set()
    groups: dict[tuple[str, str, str], list] = {}
    for trial, record in pairs:
        if trial.number in stored:
            groups.setdefault((record.strategy, record.cut_layer, record.weights), []).append((trial, record))
    return groups


def _validation_facts(split: ValidationSplit, cv: int | None = None, selection: str = "halves") -> dict[str, Any]:
    """Which patients stand behind the answer, and how many: the validation split, or with ``--cv K``
    the pooled out-of-fold predictions over train+val; where the choices were made (``selection``);
    images, patients, positives per output."""
    y = np.asarray(split.targets)
    return {
        "scored_on": f"train+val, out of fold (--cv {cv})" if cv else "validation split",
        "cv": cv,
        "selection": selection,
        "images": int(len(y)),
        "patients": int(len(np.unique(split.patients.astype(str)))),
        "positives": dict(zip(split.outputs, (y == 1).sum(axis=0).astype(int).tolist())),
        "fingerprint": split.fingerprint,
    }


def _judge(
    keys: list, facts: list, estimates: np.ndarray, resampled: np.ndarray, level: float, min_trials: int
) -> list[Candidate]:
    """Each candidate with its interval, whether it has enough trials to be judged, and whether it
    is in the confidence set; judged candidates first, best first."""
    judged = np.asarray([n >= min_trials and np.isfinite(e) for (_, n, _, _), e in zip(facts, estimates)])
    in_set = np.zeros(len(keys), bool)
    if judged.any():
        in_set[judged] = confidence_set(estimates[judged], resampled[:, judged], level)
    candidates = []
    for i, ((strategy, layer, label), (record, n, best_trial, chosen)) in enumerate(zip(keys, facts)):
        ci = interval(estimates[i], resampled[:, i], level)
        candidates.append(
            Candidate(
                strategy=strategy,
                layer=layer,
                weights=label,
                depth=record.layer_depth,
                block=record.block,
                n_trials=n,
                best_trial=best_trial.number,
                best_value=float(best_trial.value),
                score=float(ci.estimate),
                low=ci.low,
                high=ci.high,
                judged=bool(judged[i]),
                in_set=bool(in_set[i]),
                flops_fraction=record.flops_fraction,
                params=record.params,
                scored_trials=chosen,
            )
        )
    candidates.sort(key=lambda c: (not c.judged, -np.nan_to_num(c.score, nan=-1.0)))
    return candidates
