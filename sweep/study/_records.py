"""The typed contract between OCL's rooms: what a trial and a study record in the Optuna storage.

Optuna keeps free-form "user attributes" on studies and trials. OCL stores everything it knows
there, under the ``ocl:`` prefix, so one database holds a sweep's whole story and a person
browsing optuna-dashboard can read each trial without the code. Those attributes are the real
interface between the objective (which writes them) and the dictionary callback, the summaries,
``ocl evaluate`` and the report (which read them). This module owns that interface: the only
place that spells an attribute name. Writers build a :class:`TrialRecord` and call
:meth:`~TrialRecord.to_user_attrs`; readers call :meth:`TrialRecord.from_trial`. A renamed or
retyped field then breaks at one place, in every reader at once, instead of reading as ``None``.

The names below are the ones existing studies carry, so studies written before this module
still read.

Example:
    >>> record = TrialRecord.from_trial(study.best_trial)
    >>> record.cut_layer, record.layer_depth, record.val_mean_auroc
    ('conv4_block24_concat', 50, 0.71)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from sweep.model import LayerFacts

__all__ = [
    "DATASET_INFO",
    "EVALUATION",
    "FAIL_REASON",
    "PREFIX",
    "SETTINGS",
    "SURPLUS",
    "TARGET",
    "WARM_START",
    "DatasetInfo",
    "TrialRecord",
    "key_of",
]

PREFIX = "ocl:"


def _key(name: str) -> str:
    return PREFIX + name


# Study attributes.
SETTINGS = _key("settings")  # JSON of the sweep settings (data, task, size, seed, search space)
DATASET_INFO = _key("dataset_info")  # modality, images, patients, split fingerprint (for the dictionary)
TARGET = _key("target_trials")  # finished trials wanted in total
BACKEND = _key("backend")  # the Keras backend its trials ran on (tensorflow, jax or torch)
PSEUDONYM_KEY = _key("pseudonym_key")  # fingerprint of the key its patient pseudonyms were made with (never the key)
EVALUATION = _key("evaluation")  # the held-out test result of `ocl evaluate`

# Trial attributes that are not part of a trial's description or outcome.
FAIL_REASON = _key("fail_reason")  # why a trial failed, in one line
SURPLUS = _key("surplus")  # asked for after other workers had already reached the target
WARM_START = _key("warm_start")  # enqueued by `ocl sweep --warm-start` at a dictionary layer


@dataclass(frozen=True)
class TrialRecord:
    """What one trial was and, once finished, what it scored.

    The first block describes the trial and is written when it starts, so a running trial already
    reads in the dashboard; the second is its validation outcome, written when it finishes
    (``None`` until then, and for failed trials).
    """

    strategy: str
    cut_layer: str
    weights: str
    layer_depth: int | None  # position among the 63 candidate layers (None: another layer of the network)
    layer_index: int  # position among all layers of the network
    block: str | None
    channels: int | None
    stride: int | None  # input size / the layer's output size
    flops_fraction: float | None
    unfreeze_from: str | None
    augment: bool
    epochs_budget: int
    task: str
    dataset: str
    device: str
    host: str
    pid: int

    wall_seconds: float | None = None
    best_epoch: int | None = None
    epochs_run: int | None = None
    val_mean_auroc: float | None = None
    val_mean_auroc_low: float | None = None  # 95% patient-level bootstrap interval of val_mean_auroc
    val_mean_auroc_high: float | None = None
    val_mean_auprc: float | None = None
    val_mean_balanced_accuracy: float | None = None
    val_mean_sensitivity: float | None = None
    val_mean_specificity: float | None = None
    val_mean_accuracy: float | None = None
    val_mean_majority_accuracy: float | None = None
    val_auroc_per_class: dict[str, float | None] = field(default_factory=dict)
    prefix_cache: str | None = None  # fine-tuning: the banked tensor slice trained on (sweep.caches._spatial_bank), or "images"
    params: int | None = None  # weights of the network truncated at the cut layer (what a deployed model carries)
    device_used: str | None = None  # what the framework actually trained on: "gpu (NAME)" or "cpu" (``device`` is the assignment)
    inner_mean_auroc: float | None = None  # --selection inner: the AUROC on train's inner split that chose it (its value)

    @property
    def layer_facts(self) -> LayerFacts:
        """The cut layer's facts as every other record of a layer holds them (unknown ones as "other" / 0)."""
        block, channels, stride = self.block or "other", self.channels or 0, self.stride or 0
        return LayerFacts(self.cut_layer, self.layer_depth, self.layer_index, block, channels, stride)

    def description_attrs(self) -> dict[str, Any]:
        """The attributes known when the trial starts."""
        return {_key(f.name): getattr(self, f.name) for f in fields(self) if f.name in _DESCRIPTION}

    def to_user_attrs(self) -> dict[str, Any]:
        """Every attribute to store: the description, and the outcome fields that are set."""
        attrs = self.description_attrs()
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in _DESCRIPTION and value is not None and value != {}:
                attrs[_key(f.name)] = _finite(value)
        return attrs

    @classmethod
    def from_trial(cls, trial: Any) -> TrialRecord | None:
        """The record of an Optuna trial (``FrozenTrial``), or None for one OCL never described
        (a surplus trial, or a trial of another tool's study)."""
        attrs = trial.user_attrs
        if _key("cut_layer") not in attrs:
            return None
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = attrs.get(_key(f.name))
            if value is None and f.name in _DEFAULTS:
                value = _DEFAULTS[f.name]
            values[f.name] = value
        return cls(**values)


_FIELDS = [f.name for f in fields(TrialRecord)]
_DESCRIPTION = frozenset(_FIELDS[: _FIELDS.index("wall_seconds")])  # the fields without a default


def key_of(field_name: str) -> str:
    """The attribute name of one :class:`TrialRecord` field (for a value written on its own,
    such as a pruned trial's wall time)."""
    if field_name not in _FIELDS:
        raise ValueError(f"field_name={field_name!r}: TrialRecord has no such field; fields: {', '.join(_FIELDS)}")
    return _key(field_name)


_DEFAULTS: dict[str, Any] = {"layer_index": -1, "augment": False, "epochs_budget": 0, "pid": 0, "val_auroc_per_class": {}}


def _finite(value: Any) -> Any:
    """Optuna stores attributes as JSON, which has no NaN: an undefined score is stored as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class DatasetInfo:
    """What the dictionary needs to know about a study's dataset (stored on the study)."""

    modality: str
    images: int
    patients: int
    fingerprint: str
    cross_split_patients: int = 0  # patients with images in more than one split (leakage)
    warnings: tuple[str, ...] = ()  # what the dataset warned about when the study was made

    @classmethod
    def of(cls, dataset: Any) -> DatasetInfo:
        """The facts of a :class:`sweep.data.Dataset`."""
        return cls(
            dataset.modality,
            len(dataset),
            dataset.patient_count,
            dataset.fingerprint(),
            dataset.cross_split_patients,
            tuple(dataset.warnings),
        )

    def to_user_attrs(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {DATASET_INFO: {**values, "warnings": list(self.warnings)}}

    @classmethod
    def from_study(cls, study: Any) -> DatasetInfo:
        stored = study.user_attrs.get(DATASET_INFO) or {}
        return cls(
            modality=str(stored.get("modality", "chest x-ray")),
            images=int(stored.get("images", 0)),
            patients=int(stored.get("patients", 0)),
            fingerprint=str(stored.get("fingerprint", "")),
            cross_split_patients=int(stored.get("cross_split_patients", 0)),
            warnings=tuple(stored.get("warnings", ())),
        )
