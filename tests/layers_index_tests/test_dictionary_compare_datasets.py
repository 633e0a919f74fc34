"""A second dataset in the dictionary, end to end, through the real CLI.

The second dataset is the embedded sample's Effusion question in another format: every sample
image with Effusion or No Finding written as a 12-bit DICOM (PatientID from NIH's table) into
``normal/`` and ``effusion/`` class folders. ``ocl dictionary build --weights none --image-size
32`` scores all 63 layers of both datasets into one SQLite storage (the test's own cache), and
``ocl dictionary compare`` reports how alike the two rank the layers.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from dicom_files import effusion_dicoms as write_effusion_dicoms
from scipy.stats import kendalltau, spearmanr

SIZE = "32"
NAME = "nih-effusion-dicom"


def effusion_dicoms(root: Path) -> int:
    """The sample's Effusion and No Finding images as 12-bit DICOM class folders; returns how many."""
    return len(write_effusion_dicoms(root, bits_stored=12, WindowCenter=2048, WindowWidth=4096))


@pytest.mark.slow
def test_two_datasets_in_the_dictionary_are_compared(tmp_path, ocl, cache_dir):
    dicoms = tmp_path / NAME
    images = effusion_dicoms(dicoms)
    assert images == 188
    storage = f"sqlite:///{tmp_path / 'ocl.db'}"

    for data in ([], ["--data", dicoms]):
        built = ocl("dictionary", "build", *data, "--weights", "none", "--image-size", SIZE, "--storage", storage, timeout=600)
        assert built.returncode == 0, built.stderr
        assert "scored 63 layers" in " ".join(built.stdout.split())

    compared = ocl("dictionary", "compare", "--data", "nih-cxr14-sample", "--data", dicoms, "--storage", storage)

    assert compared.returncode == 0, compared.stderr
    text = " ".join(compared.stdout.split())
    assert (
        f"probe_auroc over 63 common layers of nih-cxr14-sample (task any, weights none, {SIZE} px) and "
        f"{NAME} (task binary:effusion, weights none, {SIZE} px):"
    ) in text
    match = re.search(r"Spearman rho (-?[\d.]+) \(p ([\d.e+-]+)\), Kendall tau (-?[\d.]+) \(p ([\d.e+-]+)\)", text)
    assert match, text
    rho, tau = float(match.group(1)), float(match.group(3))
    assert -1 <= rho <= 1 and -1 <= tau <= 1

    # The printed correlations are those of the stored profiles.
    from layers_index import dictionary_frame

    frame = dictionary_frame(storage)
    profiles = {name: frame[frame["dataset"] == name].set_index("layer")["probe_auroc"] for name in ("nih-cxr14-sample", NAME)}
    layers = sorted(set(profiles["nih-cxr14-sample"].index) & set(profiles[NAME].index))
    assert len(layers) == 63
    a, b = (np.asarray(profiles[name].loc[layers], dtype=float) for name in ("nih-cxr14-sample", NAME))
    assert rho == pytest.approx(spearmanr(a, b).statistic, abs=5e-4)
    assert tau == pytest.approx(kendalltau(a, b).statistic, abs=5e-4)

    by_logme = ocl(
        "dictionary", "compare", "--data", "nih-cxr14-sample", "--data", NAME, "--metric", "logme", "--storage", storage
    )
    assert by_logme.returncode == 0, by_logme.stderr
    assert "logme over 63 common layers" in " ".join(by_logme.stdout.split())
