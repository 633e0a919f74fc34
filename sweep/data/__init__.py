"""Datasets: where images, labels, patients and splits come from.

:func:`load_dataset` picks the adapter from what ``--data`` points at: an NIH ChestX-ray14 folder,
a class-folder directory (PNG, JPEG, BMP, TIFF, GIF, WebP or DICOM files), a ``path,label`` CSV or a
CheXpert-style CSV (``--labels``; detected from the header otherwise, and a note says so). Without
``--data`` it loads the embedded NIH sample (638 real images at 256 px), so ``ocl`` works with no
download. Patient IDs are keyed pseudonyms from then on (:mod:`sweep.data._pseudonyms`).
"""

from sweep.data._chestxray14 import LABEL_FILES, assign_splits, is_chestxray14, load_chestxray14, read_labels
from sweep.data._chexpert import CHEXPERT_FINDINGS, UNCERTAIN_POLICIES, VIEWS, load_chexpert
from sweep.data._dataset import RESPLIT, SPLIT_POLICIES, SPLITS, Dataset
from sweep.data._decode import IMAGE_FORMATS, IMAGE_SUFFIXES, RESIZE_METHODS, decode_image, formats_text
from sweep.data._demographics import AGE_BANDS, CSV_COLUMN, DEMOGRAPHICS, age_band, custom_groupings, parse_subgroup
from sweep.data._dicom import DICOM_SUFFIXES, dicom_gray, has_dicom_marker, is_dicom, min_max, read_dicom_header
from sweep.data._info import summarize
from sweep.data._label_map import NIH_CHEXPERT, LabelMap, read_label_map
from sweep.data._label_tasks import FINDINGS, NO_FINDING, Task, check_scorable, parse_task, task_names
from sweep.data._load import SAMPLE_DIR, SAMPLE_NAME, load_dataset
from sweep.data._options import LABEL_FORMATS, DataOptions
from sweep.data._positive import NEGATIVE_CLASS_NAMES, looks_negative
from sweep.data._pseudonyms import key_fingerprint, pseudonym_key, pseudonym_key_path, pseudonymise
from sweep.data._split import SEEDED_FRACTIONS, check_split_policy, patient_overlap, patient_split, resplit_by_patient

__all__ = [
    "AGE_BANDS",
    "CSV_COLUMN",
    "custom_groupings",
    "parse_subgroup",
    "DEMOGRAPHICS",
    "age_band",
    "key_fingerprint",
    "pseudonym_key",
    "pseudonym_key_path",
    "pseudonymise",
    "CHEXPERT_FINDINGS",
    "DICOM_SUFFIXES",
    "FINDINGS",
    "IMAGE_FORMATS",
    "IMAGE_SUFFIXES",
    "LABEL_FILES",
    "LABEL_FORMATS",
    "NEGATIVE_CLASS_NAMES",
    "NIH_CHEXPERT",
    "NO_FINDING",
    "RESIZE_METHODS",
    "RESPLIT",
    "SAMPLE_DIR",
    "SAMPLE_NAME",
    "SEEDED_FRACTIONS",
    "SPLITS",
    "SPLIT_POLICIES",
    "UNCERTAIN_POLICIES",
    "VIEWS",
    "DataOptions",
    "Dataset",
    "LabelMap",
    "Task",
    "assign_splits",
    "check_scorable",
    "check_split_policy",
    "decode_image",
    "dicom_gray",
    "formats_text",
    "has_dicom_marker",
    "is_chestxray14",
    "is_dicom",
    "load_chestxray14",
    "load_chexpert",
    "load_dataset",
    "looks_negative",
    "min_max",
    "parse_task",
    "patient_overlap",
    "patient_split",
    "read_dicom_header",
    "read_label_map",
    "read_labels",
    "resplit_by_patient",
    "summarize",
    "task_names",
]
