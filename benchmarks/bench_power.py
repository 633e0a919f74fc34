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
  shared value first (``sweep.results.recentre_tied``): what ``sweep.results.CandidateScorer`` does now.

The confidence set is the step-down max-T of ``sweep.stats.confidence_set`` throughout. All rules
of one study score the same generated predictions and bootstrap resamples.

Run: .venv/bin/python benchmarks/bench_power.py [--repeats 200] [--sizes 150 300 1000 3000] [--gaps 0 0.03 0.05] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _smoke import parse_args as parse_with_smoke  # noqa: E402
from generated_studies import CORRELATED, INDEPENDENT, Design  # noqa: E402

from sweep.results import CandidateScorer, crossfit_score  # noqa: E402
from sweep.stats import confidence_set, interval  # noqa: E402
from sweep.storage import ValidationSplit  # noqa: E402

CANDIDATES, TRIALS, BASE = 5, 3, 0.75
DESIGNS = {"independent": INDEPENDENT, "correlated": CORRELATED}
RULES = ("every", "fixed", "tied")


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


def one_study(design: Design, seed: int, patients: int, gap: float) -> dict[str, tuple[np.ndarray, bool]]:
    """Per rule: the confidence set of one generated study (candidate 0 is the one ``gap`` better), and
    whether candidate 0's interval covers its true AUROC."""
    rng = np.random.default_rng(seed)
    y, ids, shared = design.validation(rng, patients)
    scorer = CandidateScorer(ValidationSplit(("finding",), y, ids, "generated"), seed=seed)
    values = []
    for candidate in range(CANDIDATES):
        shift = design.shift_for(BASE + (gap if candidate == 0 else 0.0))
        effect = design.candidate_effect(rng, len(y))
        stored = {t: design.trial(rng, y, shared, effect, shift) for t in range(TRIALS)}
        values.append(scorer.values(list(stored), stored))
    results = {}
    for rule in RULES:
        scored = [score(v, rule, scorer.n_patients) for v in values]
        estimates, resampled = np.asarray([s[0] for s in scored]), np.stack([s[1] for s in scored], axis=1)
        first = interval(estimates[0], resampled[:, 0])
        results[rule] = (
            confidence_set(estimates, resampled),
            first.low <= BASE + gap <= first.high,
            verified(estimates, resampled),
        )
    return results


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
    parser.add_argument("--gaps", type=float, nargs="*", default=[0.0, 0.03, 0.05], help="AUROC gaps (0: the level)")
    parser.add_argument("--designs", nargs="*", default=list(DESIGNS), choices=list(DESIGNS))
    args = parse_with_smoke(parser, repeats=2, sizes=[150])
    print(f"{CANDIDATES} candidates x {TRIALS} trials, {args.repeats} generated studies per cell, 95% level")
    gaps = [gap for gap in args.gaps if gap > 0]
    print(
        "| design | validation patients | rule | family-wise error | coverage | verified, equal |"
        + "".join(f" power +{gap:g} set / verified |" for gap in gaps)
    )
    print("|---|---|---|---|---|---|" + "---|" * len(gaps))
    start = time.perf_counter()
    for name in args.designs:
        for patients in args.sizes:
            counts = {
                rule: {"error": 0, "covered": 0, "claimed": 0, **dict.fromkeys(gaps, 0), **{("v", g): 0 for g in gaps}}
                for rule in RULES
            }
            alone = np.eye(CANDIDATES, dtype=bool)[0]
            for gap in args.gaps:
                for seed in range(args.repeats):
                    for rule, (kept, covered, winner) in one_study(DESIGNS[name], seed, patients, gap).items():
                        if gap == 0:
                            counts[rule]["error"] += not kept.all()
                            counts[rule]["covered"] += covered
                            counts[rule]["claimed"] += winner is not None
                        else:
                            counts[rule][gap] += np.array_equal(kept, alone)
                            counts[rule][("v", gap)] += winner == 0
            for rule in RULES:
                c = counts[rule]
                level = (
                    f"{c['error'] / args.repeats:.1%} | {c['covered'] / args.repeats:.1%} | {c['claimed'] / args.repeats:.1%}"
                    if 0.0 in args.gaps
                    else "- | - | -"
                )
                power = "".join(f" {c[gap] / args.repeats:.0%} / {c[('v', gap)] / args.repeats:.0%} |" for gap in gaps)
                print(f"| {name} | {patients:,} | {rule} | {level} |{power}", flush=True)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
