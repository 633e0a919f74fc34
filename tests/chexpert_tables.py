"""CheXpert-style label tables on real sample images, laid out as CheXpert publishes them (shared by the
data and CLI tests): ``CheXpert-v1.0-small/train/patientNNNNN/studyK/viewV_{frontal,lateral}.png`` and ``train.csv``."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from helpers import SAMPLE_IMAGES, sample_rows

from sweep.data import CHEXPERT_FINDINGS

HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_FINDINGS]


NIH_TO_CHEXPERT = {
    "Cardiomegaly": "Cardiomegaly",
    "Effusion": "Pleural Effusion",
    "Edema": "Edema",
    "Consolidation": "Consolidation",
    "Pneumonia": "Pneumonia",
    "Atelectasis": "Atelectasis",
    "Pneumothorax": "Pneumothorax",
    "Mass": "Lung Lesion",
    "Nodule": "Lung Lesion",
    "Infiltration": "Lung Opacity",
}


ROOT_NAME = "CheXpert-v1.0-small"


def chexpert_rows(count: int = 60) -> list[dict[str, str]]:
    """CheXpert rows for the first ``count`` sample images: one patient folder per NIH patient, one
    study per image; every fourth image is a lateral view; some labels uncertain, some 0, the rest blank."""
    _, rows = sample_rows()
    out = []
    studies: dict[str, int] = {}
    for position, row in enumerate(rows[:count]):
        name, findings, patient, age, sex, view_position = row[0], row[1], row[3], row[4], row[5], row[6]
        studies[patient] = studies.get(patient, 0) + 1
        lateral = position % 4 == 3
        view = "view2_lateral" if lateral else "view1_frontal"
        cells = dict.fromkeys(CHEXPERT_FINDINGS, "")
        positives = {NIH_TO_CHEXPERT[f] for f in findings.split("|") if f in NIH_TO_CHEXPERT}
        if findings == "No Finding":
            cells["No Finding"] = "1.0"
        for finding in positives:
            cells[finding] = "1.0"
        if position % 3 == 0 and "Atelectasis" not in positives:
            cells["Atelectasis"] = "-1.0"  # the report hedges
        if position % 5 == 0 and "Edema" not in positives:
            cells["Edema"] = "-1.0"
        if position % 7 == 0 and "Cardiomegaly" not in positives:
            cells["Cardiomegaly"] = "0.0"  # explicitly negative
        out.append(
            {
                "Path": f"{ROOT_NAME}/train/patient{int(patient):05d}/study{studies[patient]}/{view}.png",
                "Sex": {"M": "Male", "F": "Female"}[sex],
                "Age": str(int(age)),
                "Frontal/Lateral": "Lateral" if lateral else "Frontal",
                "AP/PA": "" if lateral else view_position,
                **cells,
                "_source": name,
            }
        )
    return out


def write_chexpert(base: Path, rows: list[dict[str, str]], *, header: list[str] = HEADER, name: str = "train.csv") -> Path:
    """Copy each row's sample image to its CheXpert path under ``base`` and write the CSV; returns its path."""
    root = base / ROOT_NAME
    root.mkdir(parents=True, exist_ok=True)
    for row in rows:
        target = base / row["Path"]
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SAMPLE_IMAGES / row["_source"], target)
    csv_path = root / name
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return csv_path
