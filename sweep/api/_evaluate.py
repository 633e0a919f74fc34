"""After the sweep: retrain the answer's configuration, score it once on the test split, export it,
and score new images with the export (``ocl evaluate``, ``ocl predict``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sweep.errors import OCLError
from sweep.results import (
    EVALUATE_CONFIGS,
    report_path,
    study_answer,
)
from sweep.stats import OPERATING_POINTS
from sweep.study import (
    DatasetInfo,
    StudyResources,
    load_settings,
    open_study,
    records,
)


def evaluate_study(
    study_name: str | None = None,
    *,
    storage: str | None = None,
    output_dir: str | Path = "studies/reports",
    config: str = "best",
    operating_point: str = "youden",
    external: Sequence[str | Path] = (),
    label_map: str | Path | None = None,
    saliency: int = 2,
    subgroups: Sequence[str] = (),
) -> Any:
    """Retrain the answer's configuration, score it once on the test split, and write the study's
    report (with a test section) and the model folder ``STUDY.model/`` (``model.keras``, its model
    card as JSON and Markdown); the summary is stored on the study (``ocl:evaluation``).
    ``study_name`` defaults to the only study in the storage.

    ``config`` is ``best`` (the answer's best candidate) or ``cheapest`` (the cheapest candidate as
    good as it); ``operating_point`` names the threshold the summary leads with
    (:data:`sweep.stats.OPERATING_POINTS`). Either way the candidate's trial is retrained
    (:attr:`sweep.results.Candidate.trial`); the exported model returns calibrated scores, and its
    inference throughput is measured beside the full network's. ``external``, ``label_map``,
    ``saliency`` and ``subgroups`` are ``--external``, ``--map``, ``--saliency`` and
    ``--subgroup`` (:func:`sweep.results.evaluate_best`); the pictures go to ``STUDY.saliency/``.

    Returns:
        ``(evaluation, summary)``: the :class:`sweep.results.Evaluation` and the stored summary dict.
    """
    from sweep.data import read_label_map
    from sweep.results import MODEL_FILE, evaluate_best, evaluation_summary, model_card, write_model_card

    _check_evaluate_flags(config, operating_point, external, label_map, saliency)
    rows = read_label_map(label_map) if label_map is not None else {}
    the_study, storage_url = open_study(study_name, storage=storage)
    answer = study_answer(the_study, storage_url)
    candidate = _candidate_to_evaluate(answer, config)
    # The chosen candidate's configuration; the single best trial when nothing is judged yet.
    evaluation = evaluate_best(
        the_study,
        candidate.trial if candidate else None,
        operating_point=operating_point,
        external=external,
        label_map=rows,
        map_source=f"--map {label_map}",
        saliency=saliency,
        subgroups=subgroups,
    )
    report, folder = _write_evaluation(the_study, storage_url, evaluation, output_dir)
    summary = {
        **evaluation_summary(evaluation, str(report), str(folder / MODEL_FILE)),
        "model_dir": str(folder),
        "config": config,
        "candidate": candidate.name if candidate else None,
        "inference": _inference_cost(the_study, evaluation.model, candidate),
        "answer": answer.sentence(),
    }
    card = model_card(summary, load_settings(the_study), DatasetInfo.from_study(the_study), evaluation.config)
    write_model_card(folder, card)
    the_study.set_user_attr(records.EVALUATION, summary)
    return evaluation, summary


def _write_evaluation(study: Any, storage_url: str, evaluation: Any, output_dir: str | Path) -> tuple[Path, Path]:
    """The saliency pictures, the report (which embeds them) and the model folder's ``model.keras``."""
    from sweep.report import write_study_report
    from sweep.results import MODEL_FILE

    report = report_path(study.study_name, folder=output_dir)
    if evaluation.saliency is not None:  # the pictures first: the report embeds them from there
        evaluation.saliency.write(report.with_suffix(".saliency"))
    write_study_report(study, storage_url, report, evaluation=evaluation)
    folder = report.with_suffix(".model")  # model.keras, model_card.json, MODEL_CARD.md: the export stands alone
    folder.mkdir(parents=True, exist_ok=True)
    evaluation.model.save(folder / MODEL_FILE)
    return report, folder


def _check_evaluate_flags(
    config: str, operating_point: str, external: Sequence[str | Path], label_map: str | Path | None, saliency: int
) -> None:
    if config not in EVALUATE_CONFIGS:
        raise OCLError(f"--config {config}: expected one of {', '.join(EVALUATE_CONFIGS)}")
    if operating_point not in OPERATING_POINTS:
        raise OCLError(f"--operating-point {operating_point}: expected one of {', '.join(OPERATING_POINTS)}")
    if label_map is not None and not external:
        raise OCLError(f"--map {label_map}: a label map is for --external data; add --external DATA or drop --map")
    if saliency < 0:
        raise OCLError(f"--saliency {saliency}: expected 0 (no maps) or more images per output and kind")


def _candidate_to_evaluate(answer: Any, config: str) -> Any:
    """The answer's best candidate, or its cheapest as good one; ``cheapest`` needs a judged set."""
    if config == "best":
        return answer.best
    if answer.cheapest is None:
        raise OCLError(
            f"--config cheapest: study {answer.study} has no judged candidate with a recorded cost yet "
            f"(each needs {answer.min_trials}+ completed trials); run more trials or use --config best"
        )
    return answer.cheapest


def _inference_cost(study: Any, model: Any, candidate: Any) -> dict[str, Any]:
    """The exported model's measured throughput on test images beside the full DenseNet-121's, on
    this machine's device, with the candidate's FLOPs and parameters against the full network."""
    from sweep._keras import device_in_use
    from sweep.results import images_per_second

    context = StudyResources.from_settings(load_settings(study))
    images = context.data.images[context.data.test[:32]]
    full = context.backbone("none")
    cut, whole = images_per_second(model, images), images_per_second(full, images)
    return {
        "images_per_second": round(cut, 1),
        "full_network_images_per_second": round(whole, 1),
        "speedup": round(cut / whole, 2),
        "flops_fraction": candidate.flops_fraction if candidate else None,
        "params": candidate.params if candidate else None,
        "full_network_params": int(full.count_params()),
        "device": device_in_use(),
        "image_size": int(images.shape[1]),
    }


def predict_images(model_dir: str | Path, images: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Score image files (PNG, JPEG, DICOM, ...) with an exported model folder (``ocl evaluate``'s
    ``STUDY.model/``), as ``ocl predict`` does: per image and output, the calibrated probability and
    the call at the model card's operating point. Every file is decoded before the model loads, so
    a bad one stops the command before anything else.

    Raises:
        OCLError: for a folder that is no exported model, or a file that is not a readable image.
    """
    import numpy as np

    from sweep.data import decode_image
    from sweep.results import MODEL_FILE, load_model_card

    card = load_model_card(model_dir)
    size = int(card["input"]["image_size"])
    if not images:
        raise OCLError("ocl predict: no image given; pass one or more image files after --model DIR")
    fix = "pass PNG, JPEG, TIFF, BMP, WebP or DICOM image files"
    try:
        pixels = np.stack([decode_image(path, size, fix=fix) for path in images]).astype(np.float32)[..., None]
    except OCLError as exc:
        raise OCLError(f"ocl predict: {exc}") from None
    from sweep._keras import keras_module
    from sweep.model import TemperatureScaling  # noqa: F401 (registers OCL's layers for loading)

    model = keras_module().saving.load_model(Path(model_dir) / MODEL_FILE, compile=False)
    scores = np.asarray(model.predict_on_batch(pixels), np.float64)
    thresholds = card.get("thresholds") or {}
    return [
        {
            "image": Path(path).name,
            "scores": {output: float(scores[i, k]) for k, output in enumerate(card["outputs"])},
            "calls": {
                output: bool(scores[i, k] >= thresholds[output])
                for k, output in enumerate(card["outputs"])
                if output in thresholds
            },
            "operating_point": card.get("operating_point"),
        }
        for i, path in enumerate(images)
    ]
