"""One real ``ocl evaluate`` at 64 px on the embedded sample, with an external DICOM folder: shared by
the tests that read what it writes (the CLI's, the report's in a browser). Made once per session by
the ``evaluated_64px`` fixture (tests/conftest.py).

The sweep is four feature-extraction trials; the external folder ``hospital/`` holds 16 sample
images as DICOM class folders (``No Finding/``, ``Effusion/``) whose PatientIDs are known strings
(``HOSP-...``), plus three of the study's own PNGs, which evaluation must leave out.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from dicom_files import png, write_dicom
from helpers import SAMPLE_IMAGES, sample_names_with
from small_sweep import run_ocl

STUDY = "clinical"
EXTERNAL_IDS = tuple(f"HOSP-{cls}-{i:03d}" for cls in ("NF", "EF") for i in range(8))
OWN_IMAGES = 3


@dataclass(frozen=True)
class Evaluated:
    """The study, the command's JSON summary and where everything was written."""

    root: Path
    env: dict
    storage: str
    summary: dict
    stdout: str

    def path(self, value: str) -> Path:
        return Path(value) if Path(value).is_absolute() else self.root / value


def write_hospital(folder: Path) -> Path:
    """16 sample images as DICOM class folders with known PatientIDs, and three of the study's own PNGs."""
    effusion, normal = sample_names_with("Effusion")[:8], sample_names_with("No Finding")[:8]
    for label, code, names in (("No Finding", "NF", normal), ("Effusion", "EF", effusion)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            write_dicom(
                folder / label / f"IM{i:04d}", png(name), patient_id=f"HOSP-{code}-{i:03d}",
                PatientSex="F" if i % 2 else "M", PatientAge=f"{40 + i:03d}Y", ViewPosition="PA",
            )  # fmt: skip
    for name in sample_names_with("No Finding")[8 : 8 + OWN_IMAGES]:  # NIH names: the study's own patients
        shutil.copyfile(SAMPLE_IMAGES / name, folder / "No Finding" / name)
    return folder


def make_evaluated(root: Path) -> Evaluated:
    (root / "clinical.toml").write_text('[space]\ncut_layers = ["pool3_pool", "conv4_block24_concat"]\nepochs = 4\n')
    env = {**os.environ, "OCL_CACHE_DIR": str(root / "cache"), "COLUMNS": "200"}
    storage = f"sqlite:///{root / 'ocl.db'}"
    swept = run_ocl(
        root, env, "sweep", "--trials", "4", "--image-size", "64", "--weights", "none", "--strategy", "feature_extraction",
        "--config", "clinical.toml", "--study", STUDY, "--storage", storage,
    )  # fmt: skip
    assert swept.returncode == 0, swept.stderr[-3000:]
    write_hospital(root / "hospital")
    done = run_ocl(
        root, env, "evaluate", "--storage", storage, "--external", "hospital", "--saliency", "1", "--format", "json",
        "--output-dir", "shared",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return Evaluated(root, env, storage, json.loads(done.stdout), done.stdout)
