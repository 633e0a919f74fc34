"""A sweep on a CheXpert-style table with uncertain labels ignored: unknown cells leave the loss,
the AUROC and the stored validation split, end to end through the real CLI."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from chexpert_tables import chexpert_rows, write_chexpert

from sweep.storage import load_validation

pytestmark = pytest.mark.slow


def test_a_u_ignore_sweep_keeps_unknown_labels_unknown(tmp_path, ocl):
    csv_path = write_chexpert(tmp_path, chexpert_rows(400))
    (tmp_path / "fast.toml").write_text('[space]\ncut_layers = ["pool2_pool", "pool3_pool"]\nepochs = 3\nbank_views = 0\n')
    storage = f"sqlite:///{tmp_path / 'ocl.db'}"
    args = ["--data", str(csv_path), "--uncertain", "ignore", "--task", "multilabel", "--image-size", "32"]
    result = ocl(
        "sweep",
        "--trials",
        "4",
        "--weights",
        "none",
        "--config",
        "fast.toml",
        "--storage",
        storage,
        "--study",
        "u-ignore",
        "--format",
        "json",
        *args,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["finished"] == 4 and answer["failed"] == 0
    study = optuna.load_study(study_name="u-ignore", storage=storage)
    assert all(np.isfinite(t.value) for t in study.trials)
    split = load_validation(storage, "u-ignore")
    assert np.isnan(split.targets).any()  # the ignored cells stay unknown, not negative
    settings = json.loads(study.user_attrs["ocl:settings"])
    assert (settings["labels"], settings["uncertain"]) == (None, "ignore")
