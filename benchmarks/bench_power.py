"""How often does the answer isolate a truly better layer, and how often does it wrongly drop an
equally good one? Before and after the answer's statistics were made exact (issue 18).

Generated studies (``tests/generated_studies.py``: binormal validation scores with a patient
effect, 2 images per patient, 40% positive): 5 candidates of 3 trials each, one of them truly
``gap`` better in AUROC (0.75 + gap against 0.75). *Power* is the share of studies whose confidence
set is that candidate alone; *family-wise error* the share of studies of 5 equal candidates whose
set leaves one out (the claim is at most 5%).

- before: each candidate's trial choice fixed across the bootstrap resamples, one max-T step;
- after: the choice made again in every resample (``CandidateScorer``), step-down max-T
  (``confidence_set``), as ``study_answer`` does now.

Run: .venv/bin/python benchmarks/bench_power.py [--repeats 100] [--sizes 150 300 1000 3000] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _smoke import parse_args as parse_with_smoke  # noqa: E402
from generated_studies import predictions, shift_for, validation  # noqa: E402

from sweep.results import CandidateScorer  # noqa: E402
from sweep.stats import confidence_set  # noqa: E402
from sweep.storage import ValidationSplit  # noqa: E402

CANDIDATES, TRIALS, BASE = 5, 3, 0.75


def _before(scorer: CandidateScorer, stored: dict[int, np.ndarray]) -> tuple[float, np.ndarray]:
    """The previous scoring: the point's trial choice, held fixed in every resample."""
    trials = list(stored)
    values = scorer.values(trials, stored)  # (trials, choose/score, half, point + resamples)
    chosen = [trials.index(t) for t in scorer.chosen_trials(trials, stored)]  # the point's choice, per half
    combined = np.nanmean(np.stack([values[chosen[side], 1, side, :] for side in (0, 1)]), axis=0)
    return float(combined[0]), combined[1:]


def _single_step(estimates: np.ndarray, resampled: np.ndarray) -> np.ndarray:
    return confidence_set(estimates, resampled, step_down=False)


def one_study(seed: int, patients: int, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """The confidence sets (before, after) of one generated study; candidate 0 is the truly better one."""
    rng = np.random.default_rng(seed)
    y, ids, effect = validation(rng, patients)
    scorer = CandidateScorer(ValidationSplit(("finding",), y, ids, "generated"), seed=seed)
    results = {"before": ([], []), "after": ([], [])}
    for candidate in range(CANDIDATES):
        auroc = BASE + (gap if candidate == 0 else 0.0)
        stored = {t: predictions(rng, y, effect, shift_for(auroc)) for t in range(TRIALS)}
        for name, score in (("before", _before), ("after", scorer.score)):
            point, values = score(scorer, stored) if name == "before" else score(list(stored), stored)
            results[name][0].append(point)
            results[name][1].append(values)
    sets = []
    for name, choose in (("before", _single_step), ("after", confidence_set)):
        estimates, resampled = np.asarray(results[name][0]), np.stack(results[name][1], axis=1)
        sets.append(choose(estimates, resampled))
    return sets[0], sets[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--sizes", type=int, nargs="*", default=[150, 300, 1000, 3000])
    args = parse_with_smoke(parser, repeats=2, sizes=[150])
    print(f"{CANDIDATES} candidates x {TRIALS} trials, {args.repeats} generated studies per cell, 95% level")
    print("| validation patients | family-wise error before / after | power +0.03 before / after | power +0.05 before / after |")
    print("|---|---|---|---|")
    start = time.perf_counter()
    for patients in args.sizes:
        cells = []
        for gap in (0.0, 0.03, 0.05):
            before = after = 0
            for seed in range(args.repeats):
                kept_before, kept_after = one_study(seed, patients, gap)
                if gap == 0:
                    before, after = before + (not kept_before.all()), after + (not kept_after.all())
                else:
                    alone = np.eye(CANDIDATES, dtype=bool)[0]
                    before, after = before + np.array_equal(kept_before, alone), after + np.array_equal(kept_after, alone)
            cells.append(f"{before / args.repeats:.0%} / {after / args.repeats:.0%}")
        print(f"| {patients:,} | {' | '.join(cells)} |", flush=True)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
