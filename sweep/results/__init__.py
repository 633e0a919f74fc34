"""What a study says: per-layer summaries, the answer with its uncertainty, the held-out test
evaluation, and the names studies and their reports go by.

- :func:`summarize_layers`: best and mean validation AUROC per layer (the naive view, for tables);
- :func:`study_answer`: the cross-fitted score of every candidate with its patient-level interval,
  the confidence set, and the sentence that says what the data can tell apart;
- :func:`evaluate_best`: the answer's configuration retrained and scored once on the test split,
  with calibration and operating points chosen on validation (:func:`clinical_evaluation`);
- :func:`prepare_external`, :func:`score_external`: the exported model on other datasets;
- :func:`saliency_maps`: Grad-CAM of chosen test images, with the model-randomisation check;
- :func:`default_study_name`, :func:`report_path`: where a study and its report are found.
"""

from sweep.results._answer import (
    Candidate,
    CandidateScorer,
    StudyAnswer,
    crossfit_score,
    patient_halves,
    recentre_tied,
    small_validation_warning,
    study_answer,
    study_folds,
)
from sweep.results._clinical import ClinicalEvaluation, clinical_evaluation
from sweep.results._evaluate import (
    CHEXNET_AUROC,
    EVALUATE_CONFIGS,
    Evaluation,
    best_trial,
    evaluate_best,
    evaluation_summary,
    images_per_second,
)
from sweep.results._external import ExternalData, auroc_with_intervals, predict_scores, prepare_external, score_external
from sweep.results._layer_summary import LayerSummary, completed_trials, summarize_layers
from sweep.results._model_card import CARD_FILE, MODEL_FILE, load_model_card, model_card, write_model_card
from sweep.results._naming import default_study_name, report_path
from sweep.results._saliency import KINDS, SIMILARITY_LIMIT, SaliencyMaps, choose_examples, map_similarity, saliency_maps
from sweep.results._subgroups import MIN_SUBGROUP, gap_lines, subgroup_analysis, subgroups_of

__all__ = [
    "CARD_FILE",
    "CHEXNET_AUROC",
    "EVALUATE_CONFIGS",
    "MIN_SUBGROUP",
    "MODEL_FILE",
    "Candidate",
    "CandidateScorer",
    "ClinicalEvaluation",
    "Evaluation",
    "ExternalData",
    "KINDS",
    "SIMILARITY_LIMIT",
    "SaliencyMaps",
    "auroc_with_intervals",
    "choose_examples",
    "crossfit_score",
    "map_similarity",
    "predict_scores",
    "prepare_external",
    "recentre_tied",
    "saliency_maps",
    "score_external",
    "LayerSummary",
    "StudyAnswer",
    "best_trial",
    "clinical_evaluation",
    "completed_trials",
    "default_study_name",
    "evaluate_best",
    "gap_lines",
    "images_per_second",
    "load_model_card",
    "model_card",
    "evaluation_summary",
    "patient_halves",
    "report_path",
    "small_validation_warning",
    "study_answer",
    "study_folds",
    "subgroup_analysis",
    "subgroups_of",
    "write_model_card",
    "summarize_layers",
]
