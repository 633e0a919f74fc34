"""What a finished sweep's storage says about its speed: wall time, trials per minute, and the mean
trial time per strategy (from each trial's ``ocl:wall_seconds`` and start/end times).

Run: python benchmarks/sweep_timings.py sqlite:///PATH [--label "2 workers"]
"""

from __future__ import annotations

import argparse

import optuna


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    for summary in optuna.get_all_study_summaries(args.storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=args.storage)
        done = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED") and t.datetime_complete]
        if not done:
            print(f"{args.label} {summary.study_name}: no finished trial")
            continue
        wall = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
        per: dict[str, list[float]] = {}
        for t in done:
            per.setdefault(str(t.user_attrs.get("ocl:strategy")), []).append(float(t.user_attrs.get("ocl:wall_seconds", 0)))
        means = ", ".join(f"{s} {sum(v) / len(v):.1f} s x{len(v)}" for s, v in sorted(per.items()))
        used = sorted({str(t.user_attrs.get("ocl:device_used")) for t in done})
        print(
            f"{args.label} {summary.study_name}: {len(done)} trials in {wall:.0f} s ({len(done) / wall * 60:.1f}/min; "
            f"mean trial {means}); trained on {used}; backend {study.user_attrs.get('ocl:backend')}"
        )


if __name__ == "__main__":
    main()
