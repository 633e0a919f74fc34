"""The report's data: plain values gathered from the study, the answer and the dictionary (what tests check)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import optuna

from sweep.model import CANDIDATES, block_spans, shared_weights_name
from sweep.results import Candidate, StudyAnswer, study_answer
from sweep.storage import shared_url
from sweep.study import DatasetInfo, SweepSettings, count_states, load_settings, target_of
from sweep.study import _records as records
from sweep.training import FEATURE_EXTRACTION, FINE_TUNING, STRATEGIES

if TYPE_CHECKING:
    from sweep.results import Evaluation


STRATEGY_NAMES = {strategy.value: strategy.words for strategy in STRATEGIES}


class ProfileCurve(NamedTuple):
    """One line of the layer profile, in depth order: a strategy and weights of the study, or a
    dictionary score (``kind`` ``probe_auroc`` or ``logme``) of one weights."""

    label: str
    kind: str  # "sweep", "probe_auroc" or "logme"
    strategy: str | None
    weights: str
    depth: tuple[int, ...]
    layers: tuple[str, ...]
    values: tuple[float, ...]
    low: tuple[float, ...] = ()  # the 95% interval (sweep curves only)
    high: tuple[float, ...] = ()
    n_trials: tuple[int, ...] = ()
    judged: tuple[bool, ...] = ()
    in_set: tuple[bool, ...] = ()


class ComparisonRow(NamedTuple):
    """One layer (and the other factor, held fixed) scored two ways; ``None`` where not swept."""

    layer: str
    depth: int | None
    fixed: str  # the weights (strategy comparison) or the strategy (transfer comparison)
    first: dict[str, Any] | None  # a candidate's score, low, high, n_trials, in_set
    second: dict[str, Any] | None
    difference: float | None  # first minus second, where both were swept


class Comparison(NamedTuple):
    """Two levels of one factor, layer by layer (feature extraction vs fine-tuning, imagenet vs none)."""

    factor: str  # "strategy" or "weights"
    first: str
    second: str
    rows: tuple[ComparisonRow, ...]
    note: str  # why there is nothing to compare, or how to read it


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, as plain values."""

    study: str
    storage: str  # the storage URL, password hidden
    generated: str
    settings: dict[str, Any]
    counts: dict[str, int]  # trial states, plus finished and target
    answer: dict[str, Any]  # StudyAnswer.to_dict(): sentence, best, confidence set, candidates
    headline: dict[str, Any] | None  # the best candidate, or the best so far when none is judged yet
    profile: tuple[ProfileCurve, ...]
    blocks: tuple[tuple[str, int, int], ...]  # dense block, first and last candidate depth
    strategies: Comparison
    transfer: Comparison
    history: tuple[dict[str, Any], ...]  # number, value, state, strategy, layer, weights
    dataset: dict[str, Any]  # DatasetInfo facts and the validation split's counts
    warnings: tuple[str, ...]
    study_file: str  # the study's search space as a TOML study file
    command: str  # the `ocl sweep` command that reproduces the study with that file
    evaluation: dict[str, Any] | None = None  # the held-out test result, when evaluated
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_trials(self) -> bool:
        return bool(self.history)


def report_data(
    study: optuna.Study,
    storage_url: str,
    *,
    evaluation: Evaluation | None = None,
    answer: StudyAnswer | None = None,
) -> ReportData:
    """Gather what the page shows from the study, its stored predictions and the dictionary.

    Args:
        study: an OCL study (one ``ocl sweep`` made).
        storage_url: the storage it lives in (for its predictions and the dictionary).
        evaluation: the result of ``ocl evaluate`` (:func:`sweep.results.evaluate_best`); without
            it, the test result stored on the study (``ocl:evaluation``) is shown, when there is one.
        answer: the study's answer when the caller has already computed it.

    Raises:
        OCLError: when the study is not an OCL study (no stored settings).
    """
    settings = load_settings(study)
    if answer is None:
        answer = study_answer(study, storage_url)
    info = DatasetInfo.from_study(study)
    counts = count_states(study)
    counts["target"] = target_of(study)
    candidates = answer.candidates
    history = tuple(_history(study))
    headline = _headline(answer)
    profile = [*_sweep_curves(candidates), *_dictionary_curves(storage_url, settings, info.fingerprint or None)]
    scored = score_description(answer.method, short=True)
    strategies = _comparison(candidates, "strategy", FEATURE_EXTRACTION, FINE_TUNING, settings.space.strategies, scored)
    transfer = _comparison(candidates, "weights", "imagenet", "none", settings.space.weights, scored)
    warnings = tuple(dict.fromkeys([*info.warnings, *answer.warnings]))
    notes = []
    if history and not candidates:
        notes.append(
            "Completed trials have no stored validation predictions (a study made before OCL kept them), so no "
            "candidate can be scored with an interval; the history below still shows every trial."
        )
    return ReportData(
        study=study.study_name,
        storage=shared_url(storage_url),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        settings=_settings_dict(settings),
        counts=counts,
        answer=answer.to_dict(),
        headline=headline,
        profile=tuple(profile),
        blocks=tuple(_dense_blocks()),
        strategies=strategies,
        transfer=transfer,
        history=history,
        dataset=_dataset_dict(settings, info, answer),
        warnings=warnings,
        study_file=study_file(settings),
        command=reproduce_command(study.study_name, storage_url, settings, counts["target"]),
        evaluation=_evaluation(evaluation, study),
        notes=tuple(notes),
    )


def _dataset_dict(settings: SweepSettings, info: DatasetInfo, answer: StudyAnswer) -> dict[str, Any]:
    """The data section: what was read, how it was split, and the validation split behind the answer."""
    return {
        "name": settings.dataset,
        "modality": info.modality,
        "images": info.images,
        "patients": info.patients,
        "fingerprint": info.fingerprint,
        "cross_split_patients": info.cross_split_patients,
        "split": settings.data_options.split,
        "positive": settings.data_options.positive,
        "task": settings.task,
        "validation": dict(answer.validation),
        "warnings": list(info.warnings),
    }


def _settings_dict(settings: SweepSettings) -> dict[str, Any]:
    space = settings.space
    return {
        "data": _shared_path(settings.data_options.data) if settings.data_options.data else None,
        "dataset": settings.dataset,
        "task": settings.task,
        "image_size": settings.image_size,
        "seed": settings.data_options.seed,
        "split": settings.data_options.split,
        "positive": settings.data_options.positive,
        "cv": getattr(settings, "cv", None),
        "strategies": list(space.strategies),
        "weights": [_weights_name(label) for label in space.weights],
        "cut_layers": list(space.cut_layers),
        "pruner": space.pruner,
    }


def _headline(answer: StudyAnswer) -> dict[str, Any] | None:
    chosen = answer.best or (answer.candidates[0] if answer.candidates else None)
    if chosen is None:
        return None
    return {
        **asdict(chosen),
        "name": chosen.name,
        "judged": chosen.judged,
        "distinguishable": answer.distinguishable,
        "set_size": len(answer.confidence_set),
        "at_chance": bool(chosen.low <= 0.5),  # its interval reaches guessing
        "higher_unjudged": [  # too few trials to judge, yet scoring above it: the answer may change
            {"name": c.name, "score": c.score, "low": c.low, "high": c.high, "n_trials": c.n_trials}
            for c in answer.candidates
            if not c.judged and c is not chosen and math.isfinite(c.score) and c.score > chosen.score
        ],
    }


def _history(study: optuna.Study) -> list[dict[str, Any]]:
    rows = []
    for trial in study.get_trials(deepcopy=False):
        record = records.TrialRecord.from_trial(trial)
        if record is None or trial.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
            continue
        value = trial.value
        if value is None and trial.intermediate_values:  # a pruned trial: its last reported epoch
            value = trial.intermediate_values[max(trial.intermediate_values)]
        rows.append(
            {
                "number": trial.number,
                "value": None if value is None or not math.isfinite(value) else float(value),
                "state": trial.state.name,
                "strategy": record.strategy,
                "layer": record.cut_layer,
                "depth": record.layer_depth,
                "weights": record.weights,
            }
        )
    return rows


def _label(strategy: str, weights: str, all_weights: Sequence[str]) -> str:
    name = STRATEGY_NAMES.get(strategy, strategy)
    return name if len(set(all_weights)) == 1 else f"{name} · weights {_weights_name(weights)}"


_weights_name = shared_weights_name  # the name the page's own modules import


def _shared_path(path: str) -> str:
    """A path as a page made to be shared names it: its last part only (no folders, no user names)."""
    return Path(path).name or str(path)


def _sweep_curves(candidates: Sequence[Candidate]) -> list[ProfileCurve]:
    placed = [c for c in candidates if c.depth is not None]
    all_weights = [c.weights for c in candidates]
    curves = []
    for strategy, weights in sorted({(c.strategy, c.weights) for c in placed}):
        rows = sorted((c for c in placed if (c.strategy, c.weights) == (strategy, weights)), key=lambda c: c.depth)
        curves.append(
            ProfileCurve(
                label=_label(strategy, weights, all_weights),
                kind="sweep",
                strategy=strategy,
                weights=weights,
                depth=tuple(int(c.depth) for c in rows),
                layers=tuple(c.layer for c in rows),
                values=tuple(c.score for c in rows),
                low=tuple(c.low for c in rows),
                high=tuple(c.high for c in rows),
                n_trials=tuple(c.n_trials for c in rows),
                judged=tuple(c.judged for c in rows),
                in_set=tuple(c.in_set for c in rows),
            )
        )
    return curves


def _dictionary_curves(storage_url: str, settings: SweepSettings, fingerprint: str | None) -> list[ProfileCurve]:
    """The dictionary's probe AUROC (with its interval, where stored) and LogME for this study's
    dataset, task, split, image size and weights."""
    from sqlalchemy.exc import SQLAlchemyError

    from layers_index import dictionary_frame
    from sweep.errors import OCLError

    try:
        frame = dictionary_frame(
            storage_url, dataset=settings.dataset, task=settings.task, image_size=settings.image_size, fingerprint=fingerprint
        )
    except (OCLError, SQLAlchemyError):  # no dictionary there, or one this release cannot read: the sweep alone
        return []
    curves = []
    weights_swept = list(settings.space.weights)
    for weights in weights_swept:
        profile = frame[(frame["weights"] == weights) & frame["depth"].notna()]
        for kind, name in (("probe_auroc", "linear probe AUROC"), ("logme", "LogME")):
            rows = profile.dropna(subset=[kind]).sort_values("depth")
            if rows.empty:
                continue
            label = name if len(weights_swept) == 1 else f"{name} · weights {_weights_name(weights)}"
            bounds = [f"{kind}_low", f"{kind}_high"]
            interval = all(b in rows for b in bounds) and bool(rows[bounds].notna().all().all())
            curves.append(
                ProfileCurve(
                    label=f"{label} (dictionary)",
                    kind=kind,
                    strategy=None,
                    weights=weights,
                    depth=tuple(int(v) for v in rows["depth"]),
                    layers=tuple(str(v) for v in rows["layer"]),
                    values=tuple(float(v) for v in rows[kind]),
                    low=tuple(float(v) for v in rows[bounds[0]]) if interval else (),
                    high=tuple(float(v) for v in rows[bounds[1]]) if interval else (),
                )
            )
    return curves


def _dense_blocks() -> list[tuple[str, int, int]]:
    return [tuple(span) for span in block_spans({name: depth for depth, name in enumerate(CANDIDATES)})]


def _score(candidate: Candidate | None) -> dict[str, Any] | None:
    if candidate is None:
        return None
    return {
        "score": candidate.score,
        "low": candidate.low,
        "high": candidate.high,
        "n_trials": candidate.n_trials,
        "judged": candidate.judged,
        "in_set": candidate.in_set,
        "best_trial": candidate.best_trial,
    }


def score_description(method: str, *, short: bool = False) -> str:
    """What a candidate's score is, in words, for the answer's ``method`` (``StudyAnswer.method``).

    The page says it where it shows scores, so it must follow ``--selection``: under ``halves`` a
    score is cross-fitted over the validation halves; under ``inner`` it is one model's AUROC on every
    validation patient, its trial chosen on train's inner split.
    """
    if method == "cross-fitted":
        how = " (its trials chosen on one half of the validation patients, scored on the other)"
        return "cross-fitted validation AUROC" + ("" if short else how)
    how = " (one trial, chosen on an inner split of train, scored on every validation patient)"
    return "validation AUROC" + (" of a trial chosen on train's inner split" if short else how)


def _comparison(
    candidates: Sequence[Candidate], factor: str, first: str, second: str, swept: Sequence[str], scored: str
) -> Comparison:
    """``first`` against ``second`` of one factor, per layer, with the other factor held fixed."""
    other = "weights" if factor == "strategy" else "strategy"
    names = {"strategy": STRATEGY_NAMES, "weights": {"imagenet": "ImageNet transfer", "none": "training from scratch"}}[factor]
    if first not in swept or second not in swept:
        only = ", ".join(names.get(s, s) for s in swept)
        how = (
            "sweep both (the default; in a study file, strategies = " + str([str(s) for s in STRATEGIES]).replace("'", '"') + ")"
            if factor == "strategy"
            else 'sweep weights = ["imagenet", "none"] in the study file'
        )
        return Comparison(factor, first, second, (), f"This study swept only {only}; to compare, {how}.")
    keyed = {(getattr(c, factor), c.layer, getattr(c, other)): c for c in candidates}
    pairs = sorted({(c.layer, c.depth, getattr(c, other)) for c in candidates}, key=lambda p: (p[1] is None, p[1] or 0, p[2]))
    rows = []
    for layer, depth, fixed in pairs:
        a, b = keyed.get((first, layer, fixed)), keyed.get((second, layer, fixed))
        difference = a.score - b.score if a is not None and b is not None else None
        rows.append(ComparisonRow(layer, depth, fixed, _score(a), _score(b), difference))
    both = sum(r.difference is not None for r in rows)
    note = (
        f"{both} layer(s) were tried both ways. Intervals are 95% patient-level bootstrap intervals of the "
        f"{scored}; a layer's two intervals overlapping does not make them equal, and "
        "separate intervals are no paired test: the confidence set in the answer is that test."
        if both
        else f"No layer was tried both ways yet: TPE gave each layer only one {factor}; run more trials."
    )
    return Comparison(factor, first, second, tuple(rows), note)


def _evaluation(evaluation: Evaluation | None, study: optuna.Study) -> dict[str, Any] | None:
    """The held-out test result: from ``ocl evaluate``'s Evaluation, or as stored on the study."""
    if evaluation is not None:
        return _fresh_evaluation(evaluation)
    stored = study.user_attrs.get(records.EVALUATION)
    return _stored_evaluation(stored) if stored else None


def _fresh_evaluation(evaluation: Evaluation) -> dict[str, Any]:
    """An evaluation just run: per-class scores and ROC curves from its test predictions."""
    from sklearn.metrics import roc_curve

    from sweep.results import CHEXNET_AUROC

    test, val = evaluation.test, evaluation.val
    per_class = [
        {
            "output": output,
            "test_auroc": test.auroc[k],
            "val_auroc": val.auroc[k],
            "sensitivity": test.sensitivity[k],
            "specificity": test.specificity[k],
            "accuracy": test.accuracy[k],
            "majority_accuracy": test.majority_accuracy[k],
            "chexnet_auroc": CHEXNET_AUROC.get(output),
        }
        for k, output in enumerate(test.outputs)
    ]
    roc = {}
    for k, output in enumerate(test.outputs):
        y = evaluation.y_test[:, k]
        if y.min() != y.max():
            fpr, tpr, _ = roc_curve(y, evaluation.p_test[:, k])
            roc[output] = (fpr.tolist(), tpr.tolist())
    return {
        "trial": evaluation.trial,
        "strategy": evaluation.config.strategy,
        "cut_layer": evaluation.config.cut_layer,
        "weights": evaluation.weights,
        "val_mean_auroc": val.mean_auroc,
        "summary": test.summary(),
        "low": evaluation.test_interval.low,
        "high": evaluation.test_interval.high,
        "per_class": per_class,
        "roc": roc,
        "excluded": list(test.excluded),
        "clinical": evaluation.clinical.to_dict() if evaluation.clinical else None,
        "internal_aurocs": evaluation.test_aurocs.get("auroc") or {},
        "external": list(evaluation.external),
        "saliency": evaluation.saliency.to_dict() if evaluation.saliency else None,
    }


def _stored_evaluation(stored: dict[str, Any]) -> dict[str, Any]:
    """An evaluation read back from the study (``ocl:evaluation``): scores, no curves."""
    from sweep.results import CHEXNET_AUROC

    test = dict(stored.get("test") or {})
    per_class = [
        {"output": output, "test_auroc": value, "chexnet_auroc": CHEXNET_AUROC.get(output)}
        for output, value in (test.pop("auroc_per_class", None) or {}).items()
    ]
    low, high = test.pop("mean_auroc_low", None), test.pop("mean_auroc_high", None)
    return {
        "trial": stored.get("trial"),
        "strategy": stored.get("strategy"),
        "cut_layer": stored.get("cut_layer"),
        "weights": stored.get("weights"),
        "val_mean_auroc": stored.get("val_mean_auroc"),
        "summary": test,
        "low": low,
        "high": high,
        "per_class": per_class,
        "roc": {},
        "excluded": [],
        # calibration, operating points and subgroups, as ocl evaluate stored them
        "clinical": {
            k: stored.get(k) for k in ("temperatures", "calibration", "operating_points", "operating_point", "subgroups")
        }
        if "calibration" in stored
        else None,
        "internal_aurocs": test.pop("auroc_intervals", None) or {},
        "external": stored.get("external") or [],
        "saliency": stored.get("saliency"),
        "written_to": stored.get("report"),  # where ocl evaluate wrote the page (its pictures are beside it)
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def study_file(settings: SweepSettings) -> str:
    """The study's search space as a study file (TOML) for ``ocl sweep --config``."""
    lines = ["[space]"]
    for key, value in settings.space.as_dict().items():
        if value is not None:  # TOML has no null: an unset option keeps its default
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _file_name(study: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", study) + ".toml"


def reproduce_command(study: str, storage_url: str, settings: SweepSettings, target: int) -> str:
    """The ``ocl sweep`` command that reruns the study with :func:`study_file` saved beside it."""
    import shlex

    parts = ["ocl", "sweep", "--config", _file_name(study)]
    if settings.data_options.data:
        parts += ["--data", _shared_path(settings.data_options.data)]
    parts += ["--task", settings.task, "--image-size", str(settings.image_size), "--seed", str(settings.data_options.seed)]
    if settings.data_options.split != "given":
        parts += ["--split", settings.data_options.split]
    if settings.data_options.positive:
        parts += ["--positive", settings.data_options.positive]
    cv = getattr(settings, "cv", None)
    if cv:
        parts += ["--cv", str(cv)]
    parts += ["--trials", str(max(target, 1)), "--study", study, "--storage", shared_url(storage_url)]
    return " ".join(shlex.quote(p) for p in parts)
