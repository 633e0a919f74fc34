"""How fast is the patient-level bootstrap, and how much does --cv narrow the confidence set?

1. Times 1,000 patient-level bootstrap resamples of the mean AUROC for 11,000 predictions x 14
   outputs (the full NIH validation split; ~3.1 images per patient). Goal: under 2 s on 2 cores.
2. With ``--full-study``: builds a generated study at full ChestX-ray14 size (11,000 validation
   images of about 3,700 patients x 14 outputs, 200 completed trials over 100 candidates, half of
   them with different epochs on the two patient halves) through the real record and prediction
   store, and times what readers of it pay: the first answer (every trial's resamples computed and
   stored), the answer again (goal: 15 s), the report, and one dictionary-callback update for a
   new trial (goal: 1 s), with the storage's size.
3. Runs the same feature-extraction sweep on the embedded sample twice, scored on the validation
   split and with ``--cv 5``, and prints for each: images behind every comparison, the best
   candidate's 95% interval and its width, and how many judged candidates the confidence set
   keeps (fewer = the data can tell more layers apart).

Run: .venv/bin/python benchmarks/bench_uncertainty.py [--full-study] [--trials 60] [--image-size 64] [--skip-sweeps] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _smoke import parse_args as parse_with_smoke


def time_bootstrap(images: int = 11_000, outputs: int = 14, resamples: int = 1_000) -> None:
    from sweep.stats import bootstrap_weights, mean_auroc_resampled

    rng = np.random.default_rng(0)
    patients = rng.integers(0, images // 3.1, images)
    y = (rng.random((images, outputs)) < 0.1).astype(np.uint8)
    scores = (rng.random((images, outputs)) + 0.3 * y).astype(np.float32)
    start = time.perf_counter()
    weights = bootstrap_weights(patients, resamples, seed=0)
    resampled = mean_auroc_resampled(y, scores, weights)
    seconds = time.perf_counter() - start
    cpu = time.process_time()
    print(
        f"bootstrap: {resamples} resamples x {images:,} images x {outputs} outputs in {seconds:.2f} s "
        f"(goal < 2 s; process CPU so far {cpu:.1f} s); mean AUROC 95% interval "
        f"[{np.percentile(resampled, 2.5):.3f}, {np.percentile(resampled, 97.5):.3f}]"
    )


def full_study(images: int = 11_000, patients_n: int = 3_700, trial_count: int = 200) -> None:
    """A generated study at full size, read as ``ocl sweep``, ``ocl report`` and the dictionary read it."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import optuna
    from generated_studies import add_trial, shift_for, write_study

    from layers_index._callback import dictionary_callback
    from sweep.model import CANDIDATES
    from sweep.report import write_study_report
    from sweep.results import study_answer

    rng = np.random.default_rng(0)
    outputs = 14
    patients = rng.integers(0, patients_n, images)
    prevalence = np.geomspace(0.003, 0.18, outputs)  # NIH's findings run from Hernia (0.2%) to Infiltration (18%)
    y = (rng.random((images, outputs)) < prevalence).astype(np.float32)
    effect = rng.normal(0, 0.7, patients_n)[patients][:, None]
    keys = [(strategy, layer) for strategy in ("feature_extraction", "fine_tuning") for layer in CANDIDATES[-50:]]
    keys = keys[: max(1, trial_count // 2)]  # two trials per candidate (100 candidates at 200 trials)
    trials: dict = {key: [] for key in keys}
    for number in range(trial_count + 1):
        key = keys[number % len(keys)]
        own = (shift_for(0.75) * y + effect + rng.normal(0, 0.7, y.shape)).astype(np.float32)
        crossfit = own if number % 2 else (own + rng.normal(0, 0.1, y.shape)).astype(np.float32)
        trials[key].append((own, crossfit))
    last_key = keys[trial_count % len(keys)]
    last = trials[last_key].pop()  # written after the answer: the new trial of the callback
    workdir = Path(tempfile.mkdtemp(prefix="ocl-bench-full-"))
    url = f"sqlite:///{workdir / 'full.db'}"
    start = time.perf_counter()
    study = write_study(url, "full", y, patients.astype(str), trials)
    seconds = time.perf_counter() - start
    print(f"full study: {trial_count} trials x {images:,} images x {outputs} outputs written in {seconds:.0f} s")
    for label in ("first answer (computes and stores every trial's resamples)", "answer again (goal <= 15 s)"):
        start = time.perf_counter()
        answer = study_answer(study, url)
        print(f"  {label}: {time.perf_counter() - start:.1f} s, {len(answer.candidates)} candidates")
    start = time.perf_counter()
    write_study_report(study, url, workdir / "report.html")
    print(f"  report (goal: reuses the answer): {time.perf_counter() - start:.1f} s")
    trial = add_trial(study, url, y, last_key, last)
    start = time.perf_counter()
    dictionary_callback(url)(study, trial)
    print(f"  one dictionary-callback update for a new trial (goal < 1 s): {time.perf_counter() - start:.2f} s")
    print(f"  storage: {(workdir / 'full.db').stat().st_size / 1e6:.0f} MB")
    optuna.delete_study(study_name="full", storage=url)


SPACE = """
[space]
strategies = ["feature_extraction"]
cut_layers = ["pool2_pool", "pool3_pool", "conv4_block12_concat", "pool4_pool", "conv5_block8_concat", "relu"]
"""


def sweep_widths(trials: int, image_size: int) -> None:
    from sweep.api import run_sweep

    workdir = Path(tempfile.mkdtemp(prefix="ocl-bench-uncertainty-"))
    os.environ["OCL_CACHE_DIR"] = str(workdir / "cache")
    (workdir / "space.toml").write_text(SPACE)
    for label, cv in (("validation split", None), ("--cv 5", 5)):
        start = time.perf_counter()
        result = run_sweep(
            trials,
            image_size=image_size,
            weights="none",
            config=workdir / "space.toml",
            storage=f"sqlite:///{workdir / 'bench.db'}",
            study=f"bench-{'cv' if cv else 'holdout'}",
            cv=cv,
            log_dir=workdir / "logs",
        )
        answer = result.answer
        best = answer.best or (answer.candidates[0] if answer.candidates else None)
        if best is None:
            print(f"{label}: no candidate scored")
            continue
        print(
            f"{label}: {answer.validation['images']} images ({answer.validation['patients']} patients) behind each "
            f"comparison; best {best.layer} {best.score:.3f} [{best.low:.3f}, {best.high:.3f}] "
            f"(width {best.high - best.low:.3f}); confidence set {len(answer.confidence_set)} of {len(answer.judged)} "
            f"judged candidates; {trials} trials in {time.perf_counter() - start:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--skip-sweeps", action="store_true", help="only time the bootstrap (and --full-study)")
    parser.add_argument("--full-study", action="store_true", help="time the answer on a generated full-size study")
    parser.add_argument("--full-images", type=int, default=11_000, help="validation images of the full study (NIH: 11,000)")
    parser.add_argument("--full-patients", type=int, default=3_700, help="their patients (NIH: about 3,700)")
    parser.add_argument("--full-trials", type=int, default=200, help="completed trials of the full study (default 200)")
    args = parse_with_smoke(parser, trials=3, image_size=32, full_study=True, full_images=600, full_patients=200, full_trials=20)
    time_bootstrap()
    if args.full_study:
        full_study(args.full_images, args.full_patients, args.full_trials)
    if not args.skip_sweeps:
        sweep_widths(args.trials, args.image_size)


if __name__ == "__main__":
    main()
