"""Bad input to ``ocl sweep``/``worker``/``evaluate`` through the real CLI.

Each case must give exit code 2, exactly one ``error:`` line on stderr naming what is wrong,
where, and how to fix it, no traceback, and leave both the storage and the caches untouched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
from helpers import SAMPLE_IMAGES, files_under

pytestmark = pytest.mark.slow

STORAGE = "ocl.db"


def write(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return name


def class_folders_with_a_broken_image(tmp: Path) -> str:
    root = tmp / "folders"
    images = sorted(SAMPLE_IMAGES.iterdir())
    for split in ("train", "val", "test"):
        for label, offset in (("normal", 0), ("nodule", 1)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for image in images[offset::2][:4]:
                shutil.copyfile(image, folder / image.name)
    (root / "train" / "nodule" / "broken.png").write_bytes(b"")
    return str(root)


def folders_without_patient_ids(tmp: Path) -> str:
    """Given split folders whose file names carry no patient (real sample pixels, renamed)."""
    root = tmp / "anonymous"
    images = sorted(SAMPLE_IMAGES.iterdir())
    for split in ("train", "val", "test"):
        for label, offset in (("normal", 0), ("nodule", 1)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for n, image in enumerate(images[offset::2][:4]):
                shutil.copyfile(image, folder / f"{split}-{label}-{n}.png")
    return str(root)


def resnet_weights(tmp: Path) -> str:
    import keras

    path = tmp / "resnet.weights.h5"
    keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(path)
    return str(path)


CASES = {
    "missing data folder": (lambda t: ["--data", str(t / "nowhere")], r"--data .*nowhere: no such file or directory"),
    "label file that is not a CSV": (
        lambda t: ["--data", write(t, "labels.csv", "\x00\x01\x02garbage")],
        r"label file .*labels.csv (cannot be read|lacks the column)",
    ),
    "broken image": (
        lambda t: ["--data", class_folders_with_a_broken_image(t)],
        r"image .*broken.png cannot be decoded \(empty file\)",
    ),
    "unknown finding": (
        lambda t: ["--task", "binary:Pneumonitis"],
        r"--task binary:Pneumonitis: unknown finding 'Pneumonitis'; did you mean binary:Pneumonia",
    ),
    "unknown task": (
        lambda t: ["--task", "multiclass"],
        r"--task multiclass: unknown task; valid tasks: any, binary:<class>, multilabel",
    ),
    "misspelt cut layer": (
        lambda t: ["--config", write(t, "s.toml", '[space]\ncut_layers = ["conv5_block16_2_cnov"]\n')],
        r"cut_layers conv5_block16_2_cnov: DenseNet-121 has no such layer; did you mean conv5_block16_2_conv",
    ),
    "malformed study file": (
        lambda t: ["--config", write(t, "s.toml", "[space\nstrategies = \n")],
        r"--config s.toml: not valid TOML",
    ),
    "unknown optimizer": (
        lambda t: ["--config", write(t, "s.toml", '[space]\noptimizers = ["adam", "adagrad"]\n')],
        r"--config s.toml: optimizers = 'adagrad' is unknown; valid: adam, sgd, rmsprop, adamw",
    ),
    "empty search space": (
        lambda t: ["--config", write(t, "s.toml", "[space]\nstrategies = []\n")],
        r"--config s.toml: strategies = \[\] is empty",
    ),
    "negative epoch rows": (
        lambda t: ["--config", write(t, "s.toml", "[space]\nepoch_rows = -1\n")],
        r"--config s.toml: epoch_rows = -1 must be a whole number of rows, or 0 for a whole pass each epoch",
    ),
    "unknown study file key": (
        lambda t: ["--config", write(t, "s.toml", "[space]\nlearning_rates = [1e-4, 1e-2]\n")],
        r"unknown key 'learning_rates' in \[space\]",
    ),
    "missing study file": (lambda t: ["--config", "studies/nope.toml"], r"--config studies/nope.toml: no such file"),
    "zero trials": (lambda t: ["--trials", "0"], r"Invalid value for '--trials'"),
    "unsupported storage": (
        lambda t: ["--storage", "redis://localhost/0"],
        r"--storage redis://localhost/0: unsupported database 'redis'",
    ),
    "unreachable storage": (
        lambda t: ["--storage", "postgresql://ocl@127.0.0.1:9/ocl"],
        r"--storage postgresql://ocl@127.0.0.1:9/ocl: cannot connect",
    ),
    "missing GPU": (lambda t: ["--devices", "5"], r"--devices 5: GPU 5 is not visible"),
    "devices and workers": (lambda t: ["--devices", "cpu,cpu", "--workers", "2"], r"pass one of them"),
    "missing weights file": (lambda t: ["--weights", "densenet.h5"], r"--weights densenet.h5: no such file"),
    "weights of another architecture": (
        lambda t: ["--weights", resnet_weights(t)],
        r"not DenseNet-121 weights \(its layers do not match DenseNet-121's\)",
    ),
    "image size below 32": (lambda t: ["--image-size", "16"], r"--image-size 16: DenseNet-121 needs at least 32 px"),
    "unknown warm-start dataset": (
        lambda t: ["--warm-start-from", "chexpert"],
        r"--warm-start-from chexpert: the OCL dictionary in .* has no such dataset \(datasets: none yet\)",
    ),
    "unknown strategy": (
        lambda t: ["--strategy", "sideways"],
        r"^error: Invalid value for '--strategy': 'sideways' is not one of 'feature_extraction', 'fine_tuning', 'both'",
    ),
    "one fold": (lambda t: ["--cv", "1"], r"--cv 1: K-fold cross-validation needs 2 or more folds"),
    "zero folds": (lambda t: ["--cv", "0"], r"--cv 0: K-fold cross-validation needs 2 or more folds"),
    "more folds than patients with a positive": (
        lambda t: ["--cv", "40", "--task", "binary:Edema"],
        r"--cv 40: only 15 patient\(s\) in train\+val have a positive finding of task binary:Edema, too few for 40 "
        r"folds with a positive each; pass --cv 15 or less",
    ),
    "patient split without patient ids": (
        lambda t: ["--data", folders_without_patient_ids(t), "--split", "patient"],
        r"--split patient: .* has no patient IDs",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_sweep_input_is_one_clear_line_and_changes_nothing(case, ocl, tmp_path, cache_dir):
    make_args, message = CASES[case]
    args = make_args(tmp_path)
    defaults = {"--trials": "3", "--weights": "none", "--image-size": "32", "--storage": f"sqlite:///{STORAGE}"}
    for flag, value in defaults.items():
        if flag not in args:
            args = [flag, value, *args]
    result = ocl("sweep", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert pytest.importorskip("re").search(message, lines[0]), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / STORAGE).exists(), "the storage was created"
    assert files_under(cache_dir) == [], "something was written to the cache"


@pytest.fixture
def other_study(tmp_path):
    storage = f"sqlite:///{tmp_path / STORAGE}"
    optuna.create_study(study_name="other", storage=storage)
    return storage


@pytest.mark.parametrize(
    "command, message",
    [
        (["worker"], "error: --study nope: no such study in this storage (studies: other)"),
        (["evaluate"], "error: --study nope: no OCL study in {url}; run `ocl sweep` first, or pass the --storage it used"),
        (["report"], "error: --study nope: no OCL study in {url}; run `ocl sweep` first, or pass the --storage it used"),
    ],
)
def test_an_unknown_study_names_the_studies_there(command, message, ocl, other_study):
    result = ocl(*command, "--study", "nope", "--storage", other_study)
    assert result.returncode == 2
    assert result.stderr.strip() == message.format(url=other_study)
    assert [s.study_name for s in optuna.get_all_study_summaries(other_study)] == ["other"]
