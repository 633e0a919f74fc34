"""What a reportable model needs beyond AUROC: calibration before and after temperature scaling,
operating points chosen on validation with their test sensitivity, specificity, PPV and NPV, and
the same per subgroup of sex, age and view (:mod:`sweep.results._subgroups`).

Everything that is *chosen* (each output's temperature, each operating point's threshold) is
chosen on the validation split; the test split only scores those choices, once, with
patient-level bootstrap intervals (:mod:`sweep.stats._calibration`, :mod:`sweep.stats._operating_points`).
Thresholds are stated on the calibrated scale: a temperature is monotone, so the images each
threshold calls positive are the same on either scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sweep.results._subgroups import subgroup_analysis
from sweep.stats import (
    OPERATING_POINTS,
    apply_temperature,
    choose_thresholds,
    ece,
    ece_resampled,
    fit_temperature,
    interval,
    rates_at,
    reliability_curve,
)

__all__ = ["ClinicalEvaluation", "clinical_evaluation"]


@dataclass(frozen=True)
class ClinicalEvaluation:
    """Per output: its temperature, ECE before and after (with intervals and reliability curves),
    and every operating point's threshold with its validation and test rates."""

    outputs: tuple[str, ...]
    temperatures: tuple[float, ...]
    calibration: dict[str, dict[str, Any]] = field(repr=False)
    operating_points: dict[str, dict[str, Any]] = field(repr=False)
    operating_point: str = "youden"  # the point the subgroups' false-negative rates are read at
    subgroups: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # output -> grouping -> ...

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """Raw sigmoid scores ``(images, outputs)`` on the calibrated scale."""
        return apply_temperature(scores, np.asarray(self.temperatures))

    def thresholds(self, point: str) -> dict[str, float]:
        """Each output's threshold at the operating point ``point`` (outputs where it exists)."""
        return {output: points[point]["threshold"] for output, points in self.operating_points.items() if point in points}

    def to_dict(self) -> dict[str, Any]:
        return {
            "temperatures": dict(zip(self.outputs, self.temperatures)),
            "calibration": self.calibration,
            "operating_points": self.operating_points,
            "operating_point": self.operating_point,
            "subgroups": self.subgroups,
        }


def _ece_with_interval(y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    ci = interval(ece(y, p), ece_resampled(y, p, weights))
    return {"estimate": ci.estimate, "low": ci.low, "high": ci.high}


def clinical_evaluation(
    outputs: tuple[str, ...],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    weights: np.ndarray,
    *,
    groups: dict[str, np.ndarray] | None = None,
    operating_point: str = "youden",
) -> ClinicalEvaluation:
    """Fit each output's temperature and thresholds on ``val`` (targets, scores) and score them on
    ``test``, with ``weights`` the test split's patient-level bootstrap weights; with ``groups``
    (each test image's sex, age band, view: :func:`sweep.results.subgroups_of`), per subgroup too,
    the false-negative rate read at ``operating_point``."""
    (y_val, p_val), (y_test, p_test) = val, test
    temperatures, calibration, points, subgroups = [], {}, {}, {}
    for k, output in enumerate(outputs):
        temperature = fit_temperature(y_val[:, k], p_val[:, k])
        temperatures.append(temperature)
        calibrated_val = apply_temperature(p_val[:, k], temperature)
        calibrated_test = apply_temperature(p_test[:, k], temperature)
        calibration[output] = {
            "temperature": temperature,
            "ece_before": _ece_with_interval(y_test[:, k], p_test[:, k], weights),
            "ece_after": _ece_with_interval(y_test[:, k], calibrated_test, weights),
            "reliability_before": reliability_curve(y_test[:, k], p_test[:, k]),
            "reliability_after": reliability_curve(y_test[:, k], calibrated_test),
        }
        thresholds = choose_thresholds(y_val[:, k], calibrated_val)
        points[output] = {
            name: {
                "threshold": thresholds[name],
                "validation": {
                    key: value["estimate"]
                    for key, value in rates_at(y_val[:, k], calibrated_val, thresholds[name], np.ones((1, len(y_val)))).items()
                },
                "test": rates_at(y_test[:, k], calibrated_test, thresholds[name], weights),
            }
            for name in OPERATING_POINTS
            if np.isfinite(thresholds[name])
        }
        if groups and np.isfinite(thresholds[operating_point]):
            subgroups[output] = subgroup_analysis(y_test[:, k], calibrated_test, thresholds[operating_point], groups, weights)
    return ClinicalEvaluation(tuple(outputs), tuple(temperatures), calibration, points, operating_point, subgroups)
