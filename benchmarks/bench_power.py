"""How often does the answer isolate a truly better layer, how often does it wrongly drop an equally
good one, and does a candidate's interval cover its truth? Per study design and trial-choice rule.

Generated studies (``tests/generated_studies.py``): 5 candidates of 3 trials each, one of them truly
``gap`` better in AUROC (0.75 + gap against 0.75), in two designs:

- ``independent``: a patient effect shared by every trial, trials otherwise independent, 2 images
  per patient, 40% positive (the design OCL's tests use);
- ``correlated``: patient SD 0.6, image 0.4, candidate 0.4 (shared by a candidate's trials), trial
  0.3 on the binormal scale, 1-3 images per patient, 30% positive (issue 27): closer to real layers.

Per design, size and rule: the *family-wise error* (studies of 5 equal candidates whose confidence
set leaves one out; promised at most 5%, and slack below it is power lost), the *coverage* of the
first candidate's 95% interval of its true AUROC, and the *power* (studies whose set is the
better candidate alone) at +0.03 and +0.05. Each candidate's trial is chosen on one validation half
and scored on the other (cross-fitting); the rules differ in what a bootstrap resample does with
that choice:

- ``every``: chooses again in every resample, on the resample's own patients (OCL until issue 27);
- ``fixed``: keeps the point's choice in every resample (OCL before issue 18);
- ``tied``: chooses again only among the trials statistically tied with the point's choice on the
  choosing half, within sqrt(2 log log n) standard errors of it (Hansen 2005), recentred on a
  shared value first (``sweep.results.recentre_tied``): what ``sweep.results.CandidateScorer`` does now;
- ``single``: issue 27's first design, ``ocl sweep --selection inner``: each candidate's trial is
  chosen where the comparison does not look (here on a generated training-side inner split of as
  many patients), and the validation split scores that one fixed model on all its patients, with
  no halves and no choice inside the bootstrap (``CandidateScorer(selection="inner")``, OCL's own);
- ``oracle``: the power envelope of the validation split, no rule of OCL's: each candidate's one
  fixed trial, judged by the same ``confidence_set``, ``interval`` and rank verification, but with
  the true sampling law in place of the bootstrap: the "resamples" are the deviations of the five
  candidates' AUROCs from their truths in ``--calibration`` fresh generated studies of the same
  design, size and gap (new patients each). It knows what a bootstrap can only estimate, so no
  max-T confidence set on this split has more power at its level: a goal above its row is beyond
  what these patients can tell, whatever the rule.

With ``--cv-sizes``, each such size is also run as a ``--cv 5`` study (rows ``train+val, cv 5``):
the answer's own rule on the out-of-fold predictions over train+val patients, 8x the validation
split's (a 70/10/20 split), each fold's head adding its own offset (SD 0.1 on the binormal scale)
to the images it scores. OCL scores each head on its own fold and averages the K folds' AUROCs
(``CandidateScorer(folds=)``), so an offset cannot move a score, and coverage is of one head's true
AUROC; rows ``cv 5, pooled`` score the same predictions as OCL did before, one AUROC over them all.

The confidence set is the step-down max-T of ``sweep.stats.confidence_set`` throughout. All rules
of one study score the same generated predictions and bootstrap resamples.

Run: .venv/bin/python benchmarks/bench_power.py [--repeats 200] [--sizes 150 300 1000 3000] [--cv-sizes 150 300 1000]
     [--gaps 0 0.03 0.05] [--rules every fixed tied single oracle] [--calibration 4000] [--smoke]
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _smoke import parse_args as parse_with_smoke  # noqa: E402
from generated_studies import CORRELATED, INDEPENDENT, Design  # noqa: E402

from sweep.results import CandidateScorer, crossfit_score  # noqa: E402
from sweep.stats import (  # noqa: E402
    confidence_set,
    interval,
    mean_auroc_point,
    patient_folds,
)
from sweep.storage import ValidationSplit  # noqa: E402

CANDIDATES, TRIALS, BASE = 5, 3, 0.75
DESIGNS = {"independent": INDEPENDENT, "correlated": CORRELATED}
RULES = ("every", "fixed", "tied", "single", "oracle")
HALVES = ("every", "fixed", "tied")  # the rules that score the cross-fitted halves
CV_FOLDS, CV_TIMES, FOLD_SD = 5, 8, 0.1  # --cv 5 over train+val, 8x the validation patients; heads' offsets
CV, CV_POOLED = f"cv {CV_FOLDS}", f"cv {CV_FOLDS}, pooled"  # OCL now: fold by fold; before: one pooled AUROC


def _chosen(values: np.ndarray, side: int, rule: str) -> np.ndarray:
    """Per column (point, resamples): the trial scored on ``side``, chosen on the other half by ``rule``."""
    choose = np.where(np.isfinite(values[:, 0, 1 - side, :]), values[:, 0, 1 - side, :], -np.inf)
    if rule == "fixed":
        return np.full(choose.shape[1], int(np.argmax(choose[:, 0])))
    return np.argmax(choose, axis=0)


def score(values: np.ndarray, rule: str, n_patients: int) -> tuple[float, np.ndarray]:
    """A candidate's cross-fitted score and its resampled values under ``rule`` (``tied``: OCL's own)."""
    if rule == "tied":
        return crossfit_score(values, n_patients)
    columns = np.arange(values.shape[3])
    halves = [values[_chosen(values, side, rule), 1, side, columns] for side in (0, 1)]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample where both halves are undefined stays NaN
        combined = np.nanmean(np.stack(halves), axis=0)
    return float(combined[0]), combined[1:]


def _judged(estimates: list[float], resampled: list[np.ndarray], truth: float) -> tuple[np.ndarray, bool, int | None]:
    """The confidence set, whether candidate 0's interval covers ``truth``, and the verified winner."""
    points, values = np.asarray(estimates), np.stack(resampled, axis=1)
    first = interval(points[0], values[:, 0])
    return confidence_set(points, values), bool(first.low <= truth <= first.high), verified(points, values)


def one_study(
    design: Design, seed: int, patients: int, gap: float, cv: bool = True, rules: tuple[str, ...] = RULES, calibration: int = 4000
) -> dict[str, tuple]:
    """Per rule: the confidence set of one generated study (candidate 0 is the one ``gap`` better),
    whether candidate 0's interval covers its true AUROC, and the verified winner; with ``cv``,
    also OCL's rule on a ``--cv 5`` study of the same design (its own generated patients)."""
    rng, inner_rng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    y, ids, shared = design.validation(rng, patients)
    split = ValidationSplit(("finding",), y, ids, "generated")
    scorer, inner = CandidateScorer(split, seed=seed), CandidateScorer(split, seed=seed, selection="inner")
    values, single, one_trial = [], [], []
    for candidate in range(CANDIDATES):
        shift = design.shift_for(true_auroc(candidate, gap))
        effect = design.candidate_effect(rng, len(y))
        stored = {t: design.trial(rng, y, shared, effect, shift) for t in range(TRIALS)}
        if "oracle" in rules:
            one_trial.append(mean_auroc_point(y, stored[0]))  # trial 0, no choice
        if any(rule in HALVES for rule in rules):
            values.append(scorer.values(list(stored), stored))
        if "single" in rules:
            chosen = _chosen_off_validation(design, inner_rng, patients, shift)
            single.append(inner.score(list(stored), stored, chosen=chosen))
    results = {}
    for rule in rules:
        if rule == "oracle":
            scored = list(zip(one_trial, true_deviations(design, patients, gap, calibration).T + np.asarray(one_trial)[:, None]))
        else:
            scored = single if rule == "single" else [score(v, rule, scorer.n_patients) for v in values]
        results[rule] = _judged([s[0] for s in scored], [s[1] for s in scored], BASE + gap)
    if cv:
        results.update(_cv_study(design, seed, patients, gap))
    return results


def true_auroc(candidate: int, gap: float) -> float:
    """A candidate's true AUROC: candidate 0 is the one ``gap`` better."""
    return BASE + (gap if candidate == 0 else 0.0)


@functools.cache
def true_deviations(design: Design, patients: int, gap: float, studies: int) -> np.ndarray:
    """The true sampling law of the five candidates' one-trial AUROCs at this design, size and gap,
    ``(studies, candidates)``: each fresh generated study's AUROCs less their truths (``oracle``).
    Drawn once per cell from seeds no study uses, shared by every study of the cell."""
    rng = np.random.default_rng([9, patients, round(gap * 1000)])
    truths = np.array([true_auroc(candidate, gap) for candidate in range(CANDIDATES)])
    shifts = [design.shift_for(truth) for truth in truths]
    deviations = np.empty((studies, CANDIDATES))
    for row in range(studies):
        y, _, shared = design.validation(rng, patients)
        deviations[row] = [
            mean_auroc_point(y, design.trial(rng, y, shared, design.candidate_effect(rng, len(y)), shift)) for shift in shifts
        ]
    return deviations - truths


def _chosen_off_validation(design: Design, rng: np.random.Generator, patients: int, shift: float) -> int:
    """The trial a training-side inner split of ``patients`` patients would choose (issue 27's design 1):
    each trial scored on generated patients the validation split never sees, the best one kept."""
    y, _, shared = design.validation(rng, patients)
    effect = design.candidate_effect(rng, len(y))
    return int(np.argmax([mean_auroc_point(y, design.trial(rng, y, shared, effect, shift)) for _ in range(TRIALS)]))


def _cv_study(design: Design, seed: int, patients: int, gap: float) -> dict[str, tuple]:
    """OCL's rule on a ``--cv 5`` study: out-of-fold predictions over train+val patients (``CV_TIMES``
    x the validation split), folds drawn as ``--cv`` draws them (``sweep.stats.patient_folds``), scored
    by the answer's own :class:`CandidateScorer`: fold by fold (``cv 5``, OCL now) and, on the same
    predictions, as one AUROC over the pooled predictions (``cv 5, pooled``, OCL before), whose
    coverage is of the true pooled AUROC."""
    rng = np.random.default_rng([seed, 2])
    y, ids, shared = design.validation(rng, patients * CV_TIMES)
    fold = patient_folds(ids, CV_FOLDS, seed)
    split = ValidationSplit(("finding",), y, ids, "generated")
    scorers = {CV: CandidateScorer(split, seed=seed, folds=fold), CV_POOLED: CandidateScorer(split, seed=seed)}
    scored = {rule: [] for rule in scorers}
    for candidate in range(CANDIDATES):
        shift = design.shift_for(true_auroc(candidate, gap))
        effect = design.candidate_effect(rng, len(y))
        stored = {t: design.out_of_fold(rng, y, shared, effect, shift, fold, FOLD_SD) for t in range(TRIALS)}
        for rule, scorer in scorers.items():
            scored[rule].append(scorer.score(list(stored), stored))
    truths = {CV: BASE + gap, CV_POOLED: design.pooled_auroc(BASE + gap, CV_FOLDS, FOLD_SD)}
    return {rule: _judged([s[0] for s in scored[rule]], [s[1] for s in scored[rule]], truths[rule]) for rule in scorers}


def verified(estimates: np.ndarray, resampled: np.ndarray, level: float = 0.95) -> int | None:
    """Rank verification: the winner, when its lead over the closest competitor (smallest standardised
    difference) passes an unadjusted two-sided test; else None."""
    from scipy.stats import norm

    centred = np.where(np.isfinite(resampled), resampled - estimates, 0.0)
    best = int(np.argmax(estimates))
    spread = np.std(centred[:, [best]] - centred, axis=0)
    z = np.delete((estimates[best] - estimates) / np.where(spread > 0, spread, np.inf), best)
    return best if z.min() > norm.ppf(1 - (1 - level) / 2) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="generated studies per cell (default 200)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[150, 300, 1000, 3000], help="validation patients")
    parser.add_argument("--cv-sizes", type=int, nargs="*", default=[150, 300, 1000], help="sizes also run as --cv 5 studies")
    parser.add_argument("--gaps", type=float, nargs="*", default=[0.0, 0.03, 0.05], help="AUROC gaps (0: the level)")
    parser.add_argument("--designs", nargs="*", default=list(DESIGNS), choices=list(DESIGNS))
    parser.add_argument("--rules", nargs="*", default=list(RULES), choices=list(RULES), help="validation-split rules to run")
    parser.add_argument(
        "--calibration", type=int, default=4000, help="generated studies behind the oracle's true sampling law (default 4000)"
    )
    args = parse_with_smoke(parser, repeats=2, sizes=[150], cv_sizes=[150], calibration=50)
    print(f"{CANDIDATES} candidates x {TRIALS} trials, {args.repeats} generated studies per cell, 95% level")
    gaps = [gap for gap in args.gaps if gap > 0]
    print(
        "| design | validation patients | scored on | rule | family-wise error | coverage | verified, equal |"
        + "".join(f" power +{gap:g} set / verified |" for gap in gaps)
    )
    print("|---|---|---|---|---|---|---|" + "---|" * len(gaps))
    start = time.perf_counter()
    for name in args.designs:
        for patients in args.sizes:
            cv = patients in args.cv_sizes
            rules = tuple(args.rules) + ((CV, CV_POOLED) if cv else ())
            counts = {rule: {"error": 0, "covered": 0, "claimed": 0, **{(k, g): 0 for g in gaps for k in "sv"}} for rule in rules}
            alone = np.eye(CANDIDATES, dtype=bool)[0]
            for gap in args.gaps:
                for seed in range(args.repeats):
                    study = one_study(DESIGNS[name], seed, patients, gap, cv, tuple(args.rules), args.calibration)
                    for rule, (kept, covered, winner) in study.items():
                        if gap == 0:
                            counts[rule]["error"] += not kept.all()
                            counts[rule]["covered"] += covered
                            counts[rule]["claimed"] += winner is not None
                        else:
                            counts[rule][("s", gap)] += np.array_equal(kept, alone)
                            counts[rule][("v", gap)] += winner == 0
            for rule in rules:
                print(_row(name, patients, rule, counts[rule], args.repeats, 0.0 in args.gaps, gaps), flush=True)
    print(f"({time.perf_counter() - start:.0f} s)")


def _row(design: str, patients: int, rule: str, c: dict, repeats: int, level: bool, gaps: list[float]) -> str:
    """One table row: ``cv 5`` rows are OCL's rule (tied) scored on the --cv study's out-of-fold predictions."""
    scored_on, shown = (f"train+val, {rule}", "tied") if rule in (CV, CV_POOLED) else ("validation", rule)
    rates = f"{c['error'] / repeats:.1%} | {c['covered'] / repeats:.1%} | {c['claimed'] / repeats:.1%}" if level else "- | - | -"
    power = "".join(f" {c[('s', gap)] / repeats:.0%} / {c[('v', gap)] / repeats:.0%} |" for gap in gaps)
    return f"| {design} | {patients:,} | {scored_on} | {shown} | {rates} |{power}"


if __name__ == "__main__":
    main()
