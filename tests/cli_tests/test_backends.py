"""Keras backends: chosen per sweep, recorded on the study, and the sweep runs on JAX with
TensorFlow unimportable (the GPU machine has PyTorch and JAX but no TensorFlow)."""

from __future__ import annotations

import json
import os

import optuna
import pytest

from sweep.api import plan_sweep
from sweep.errors import OCLError
from sweep.storage import open_storage
from sweep.study import create_or_resume, records

FLAGS = {"weights": "none", "image_size": 32, "strategy": "feature_extraction", "devices": "cpu"}


def test_a_study_is_resumed_on_another_backend_only_when_asked(tmp_path):
    url = f"sqlite:///{tmp_path / 'ocl.db'}"
    plan = plan_sweep(4, storage=url, **FLAGS)
    assert plan.backend == "tensorflow"  # KERAS_BACKEND unset: the default
    study = create_or_resume(open_storage(url, heartbeat=False), plan.study_name, plan.settings, 4)
    study.set_user_attr(records.BACKEND, "tensorflow")
    with pytest.raises(OCLError, match=r"--backend jax: study .* ran its trials on the tensorflow backend; pass --backend"):
        plan_sweep(4, storage=url, backend="jax", **FLAGS)
    assert plan_sweep(4, storage=url, backend="jax", allow_backend_change=True, **FLAGS).backend == "jax"
    assert plan_sweep(4, storage=url, backend="TensorFlow", **FLAGS).backend == "tensorflow"


def test_an_unknown_backend_is_one_clear_line(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'ocl.db'}"
    with pytest.raises(OCLError, match="--backend theano: pass one of tensorflow, jax, torch"):
        plan_sweep(4, storage=url, backend="theano", **FLAGS)
    monkeypatch.setenv("KERAS_BACKEND", "mxnet")
    with pytest.raises(OCLError, match="KERAS_BACKEND mxnet: pass one of"):
        plan_sweep(4, storage=url, **FLAGS)


@pytest.mark.slow
def test_both_strategies_sweep_on_jax_in_mixed_precision_with_tensorflow_unimportable(ocl, tmp_path, monkeypatch, cache_dir):
    """One sweep for two promises CI keeps: JAX without TensorFlow, and ``--precision mixed`` on a CPU."""
    pytest.importorskip("jax", reason="the dev extra installs jax for this check")
    shim = tmp_path / "no-tensorflow" / "tensorflow"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("TensorFlow is made unimportable for this test")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(shim.parent), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    database = tmp_path / "jax.db"
    # Two early cut layers and two epochs: JAX compiles every fine-tuning model afresh on the CPU, and
    # what is checked here is that both strategies run, not how well.
    (tmp_path / "tiny.toml").write_text('[space]\ncut_layers = ["pool2_pool", "pool3_pool"]\nepochs = 2\npatience = 1\n')
    done = ocl(
        "sweep", "--backend", "jax", "--trials", "4", "--weights", "none", "--image-size", "32", "--strategy", "both",
        "--precision", "mixed", "--config", "tiny.toml", "--storage", f"sqlite:///{database}", "--format", "json",
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["finished"] == 4
    name = optuna.get_all_study_summaries(f"sqlite:///{database}")[0].study_name
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{database}")
    assert study.user_attrs[records.BACKEND] == "jax"
    assert {t.user_attrs.get("ocl:device_used") for t in study.trials if t.state.name == "COMPLETE"} == {"cpu"}
    assert {t.user_attrs.get("ocl:strategy") for t in study.trials} == {"feature_extraction", "fine_tuning"}
    assert "(jax)" in done.stderr  # the plan says which backend runs
    assert json.loads(study.user_attrs[records.SETTINGS])["precision"] == "mixed"
    assert [p.name for p in (cache_dir / "bank").iterdir()] == ["none-seed0-mixed_bfloat16"]
