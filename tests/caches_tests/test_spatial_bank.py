"""The spatial bank: banked block tensors are the layers' own outputs, and fine-tuning from them
scores validation (and exports a model) like fine-tuning on images."""

from __future__ import annotations

import dataclasses
import errno
import json

import numpy as np
import pytest

from sweep.caches import BLOCKS, ViewSpec, bank_plan, block_shape, load_image_cache, load_spatial_bank
from sweep.caches import _spatial_bank as spatial
from sweep.data import load_dataset
from sweep.errors import OCLError
from sweep.model import Weights, build_backbone, predict_in_batches
from sweep.training import TrialConfig, TrialData, run_trial

pytestmark = pytest.mark.slow  # DenseNet banks and trainings: minutes on 2 cores, not for the inner loop

SIZE = 64


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    dataset = load_dataset()
    cache = load_image_cache(dataset.paths, SIZE)
    data = TrialData.from_dataset(dataset, dataset.task("any"), cache)
    backbone = build_backbone(SIZE, Weights("none"))
    bank = load_spatial_bank(cache, Weights("none"), cache_dir=tmp_path_factory.mktemp("spatial"), backbone=backbone)
    return data, cache, backbone, bank


def test_banked_block_slices_are_the_layers_own_outputs(setup):
    import keras

    data, cache, backbone, bank = setup
    assert bank.banked == ("conv3_block12_concat", "conv4_block24_concat", "conv5_block16_concat")
    assert "conv2_block6_concat" in bank.skipped
    layers = ["conv3_block5_concat", "conv4_block20_concat", "conv4_block24_concat", "conv5_block1_concat"]
    model = keras.Model(backbone.input, [backbone.get_layer(name).output for name in layers])
    rows = np.arange(8)
    outputs = model.predict_on_batch(np.asarray(cache.images[rows], np.float32)[..., None])
    for name, output in zip(layers, outputs):
        block = bank.source(name)
        assert block == BLOCKS[int(name[4]) - 2]
        banked = np.asarray(bank.clean(block)[rows, ..., : output.shape[-1]], np.float32)
        np.testing.assert_allclose(banked, output, rtol=2e-3, atol=1e-3)  # float16 storage
    assert bank.source("pool3_pool") == "conv3_block12_concat"  # the transition is recomputed from it
    assert bank.source("pool3_conv") is None and bank.source("conv4_block3_1_conv") is None
    assert bank.source("conv2_block3_concat") is None  # block 1 is not banked


def test_block_shapes_follow_the_network():
    for size in (32, 64, 65, 224):
        backbone = build_backbone(size, Weights("none")) if size != 224 else None
        for block in BLOCKS:
            expected = {32: 8, 64: 16, 65: 17, 224: 56}[size] // 2 ** (int(block[4]) - 2)
            assert block_shape(size, block)[:2] == (expected, expected)
            if backbone is not None:
                assert tuple(backbone.get_layer(block).output.shape[1:]) == block_shape(size, block)


def _pair(setup, cut="conv4_block24_concat", boundary="conv4_block21_concat", **options):
    data, _, backbone, bank = setup
    config = TrialConfig(
        "fine_tuning",
        cut,
        unfreeze_from=boundary,
        epochs=3,
        batch_size=16,
        learning_rate=1e-3,
        **options,
    )
    factory = lambda: build_backbone(SIZE, Weights("none"))  # noqa: E731
    plain = run_trial(config, data, backbone_factory=factory)
    banked = run_trial(config, data, backbone_factory=factory, spatial_bank=bank)
    return data, plain, banked


def test_fine_tuning_from_the_bank_scores_validation_like_the_images(setup):
    data, plain, banked = _pair(setup, head_units=16, dropout=0.2)
    assert plain.prefix is None and banked.prefix == "conv4_block24_concat[:928]"
    assert banked.best_epoch == plain.best_epoch
    assert abs(banked.val.mean_auroc - plain.val.mean_auroc) <= 0.002
    np.testing.assert_allclose(banked.history, plain.history, atol=0.002)
    # The exported model is the whole network, from raw X-rays, and scores test as the trial does.
    model = banked.export()
    assert model.input.shape[1:] == (SIZE, SIZE, 1)
    test = data.test
    np.testing.assert_allclose(predict_in_batches(model, data.images, test), banked.predict(test), rtol=1e-3, atol=1e-4)


def test_a_transition_boundary_trains_from_the_bank_through_the_frozen_transition(setup):
    data, plain, banked = _pair(setup, cut="conv5_block2_concat", boundary="pool4_pool")
    assert banked.prefix == "conv4_block24_concat[:1024] through the frozen pool4 transition"
    assert banked.best_epoch == plain.best_epoch
    assert abs(banked.val.mean_auroc - plain.val.mean_auroc) <= 0.002
    # float16 inputs to the recomputed transition: later epochs may swap one pair of 69 images (0.0033)
    np.testing.assert_allclose(banked.history, plain.history, atol=0.005)
    test = data.test
    np.testing.assert_allclose(predict_in_batches(banked.export(), data.images, test), banked.predict(test), rtol=1e-3, atol=1e-4)


def test_a_boundary_outside_a_banked_block_trains_on_images(setup):
    data, _, _, bank = setup
    config = TrialConfig("fine_tuning", "pool3_conv", unfreeze_from="pool3_bn", epochs=1, batch_size=32)
    result = run_trial(config, data, backbone_factory=lambda: build_backbone(SIZE, Weights("none")), spatial_bank=bank)
    assert result.prefix is None


def test_augmented_trials_train_on_the_banked_views(tmp_path):
    dataset = load_dataset()
    cache = load_image_cache(dataset.paths, 32)
    data = TrialData.from_dataset(dataset, dataset.task("any"), cache)
    views = ViewSpec(2, tuple(int(i) for i in data.train), seed=0)
    bank = load_spatial_bank(cache, Weights("none"), views=views, cache_dir=tmp_path)
    tensors = bank.view_tensors("conv5_block16_concat")
    assert tensors.shape == (2, len(data.train), 1, 1, 1024) and tensors.dtype == np.float16
    assert not np.array_equal(tensors[0], tensors[1])
    config = TrialConfig(
        "fine_tuning", "conv5_block16_concat", unfreeze_from="conv5_block14_concat", augment=True, epochs=2, batch_size=32
    )
    result = run_trial(config, data, backbone_factory=lambda: build_backbone(32, Weights("none")), spatial_bank=bank)
    assert result.prefix == "conv5_block16_concat[:960] with the bank's augmented views"
    # Reopening finds everything banked: nothing is rebuilt.
    again = load_spatial_bank(cache, Weights("none"), views=views, cache_dir=tmp_path, backbone=object())
    assert again.banked == bank.banked


def test_the_budget_banks_the_deepest_blocks_that_fit():
    per_image = {b: int(np.prod(block_shape(224, b))) * 2 for b in BLOCKS}
    plan = bank_plan(224, 1000, 0, None, budget=per_image["conv5_block16_concat"] * 1000 + 1, free=10**15)
    assert plan.clean == ("conv5_block16_concat",) and plan.views == ()
    assert "OCL_CACHE_MAX_GB" in plan.why_not["conv4_block24_concat"]
    plan = bank_plan(224, 1000, 0, ["conv3_block4_concat"], budget=10**15, free=10**15)
    assert plan.clean == ("conv3_block12_concat",) and "no cut layer" in plan.why_not["conv5_block16_concat"]
    assert bank_plan(224, 1000, 0, None, budget=0, free=10**15).clean == ()
    plan = bank_plan(224, 1000, 0, None, budget=10**15, free=per_image["conv5_block16_concat"] * 1000 + 1)
    assert plan.clean == ("conv5_block16_concat",) and "free disk space" in plan.why_not["conv4_block24_concat"]


def test_at_full_chestxray14_size_the_budget_decides_clean_tensors_before_views():
    # 112,120 images at 224 px with 2 augmented views of the 78,468 official-split training images.
    images, view_rows = 112_120, 2 * 78_468
    plan = bank_plan(224, images, view_rows, None, budget=20_000_000_000, free=10**15)  # the default budget
    assert plan.clean == ("conv5_block16_concat",) and plan.views == ()  # 11.3 GB; its views would add 15.7 GB
    assert "augmented trials compute it on the fly" in plan.why_not["conv5_block16_concat views"]
    assert "45.0 GB would pass OCL_CACHE_MAX_GB" in plan.why_not["conv4_block24_concat"]
    plan = bank_plan(224, images, view_rows, None, budget=150_000_000_000, free=10**15)
    assert plan.clean == ("conv4_block24_concat", "conv5_block16_concat") and plan.views == plan.clean
    assert "conv3_block12_concat" in plan.why_not


def test_a_budget_for_clean_tensors_only_serves_unaugmented_trials_from_the_bank(tmp_path):
    dataset = load_dataset()
    cache = load_image_cache(dataset.paths, 32)
    data = TrialData.from_dataset(dataset, dataset.task("any"), cache)
    views = ViewSpec(2, tuple(int(i) for i in data.train), seed=0)
    clean_bytes = len(cache.images) * int(np.prod(block_shape(32, "conv5_block16_concat"))) * 2
    bank = load_spatial_bank(cache, Weights("none"), views=views, cache_dir=tmp_path, max_bytes=clean_bytes + 4096)
    assert bank.banked == ("conv5_block16_concat",) and bank.banked_views == ()
    assert bank.view_tensors("conv5_block16_concat") is None
    assert bank.summary().startswith("prefix cache: banked conv5_block16_concat;")
    assert "conv5_block16_concat views not banked (dense block 4's augmented views" in bank.summary()
    factory = lambda: build_backbone(32, Weights("none"))  # noqa: E731
    config = TrialConfig("fine_tuning", "conv5_block16_concat", unfreeze_from="conv5_block14_concat", epochs=1, batch_size=64)
    assert run_trial(config, data, backbone_factory=factory, spatial_bank=bank).prefix == "conv5_block16_concat[:960]"
    augmented = dataclasses.replace(config, augment=True)
    assert run_trial(augmented, data, backbone_factory=factory, spatial_bank=bank).prefix is None  # trains on images


@pytest.mark.parametrize("value", ["-1", "abc", "nan"])
def test_a_bad_cache_budget_is_one_line_naming_the_variable(monkeypatch, value):
    from sweep._env import cache_max_bytes

    monkeypatch.setenv("OCL_CACHE_MAX_GB", value)
    with pytest.raises(OCLError, match=f"^OCL_CACHE_MAX_GB={value}: expected a number of gigabytes") as info:
        cache_max_bytes()
    assert "\n" not in str(info.value)
    monkeypatch.setenv("OCL_CACHE_MAX_GB", "0.5")
    assert cache_max_bytes() == 500_000_000


def test_a_full_disk_leaves_nothing_and_goes_on_uncached(tmp_path, monkeypatch):
    dataset = load_dataset()
    cache = load_image_cache(dataset.paths, 32)

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spatial.os, "posix_fallocate", full)
    bank = load_spatial_bank(cache, Weights("none"), cache_dir=tmp_path / "bank")
    assert bank.banked == ()
    assert "disk full" in bank.notes[0] and "uncached" in bank.notes[0]
    assert not [p for p in (tmp_path / "bank").rglob("*.npy*")]
    assert not (bank.directory / "manifest.json").exists()
    assert "banked none" in bank.summary()


@pytest.mark.parametrize("value", ["-1", "abc"])
def test_ocl_sweep_refuses_a_bad_cache_budget_writing_nothing(ocl, tmp_path, cache_files, monkeypatch, value):
    monkeypatch.setenv("OCL_CACHE_MAX_GB", value)
    result = ocl("sweep", "--trials", "1", "--strategy", "fine_tuning", "--image-size", "32", "--weights", "none")
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "OCL_CACHE_MAX_GB" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert cache_files() == [] and not (tmp_path / "studies").exists()


def test_the_sweep_context_builds_the_spatial_bank_only_for_fine_tuning(monkeypatch):
    from sweep.api import plan_sweep
    from sweep.study import StudyResources

    plan = plan_sweep(1, image_size=32, weights="none", strategy="both", devices="cpu")
    assert plan.settings.prefix_cache
    context = StudyResources.from_settings(plan.settings)
    disk, *lines = context.prepare()  # outside a terminal, the disk line comes first, with the caches' lines
    assert disk.startswith("disk: the caches write ")
    assert lines[0].startswith("prefix cache: banked conv3_block12_concat, conv4_block24_concat, conv5_block16_concat")
    assert context.spatial_bank("none").banked
    off = plan_sweep(1, image_size=32, weights="none", strategy="both", devices="cpu", prefix_cache=False)
    assert StudyResources.from_settings(off.settings).spatial_bank("none") is None
    extraction = plan_sweep(1, image_size=32, weights="none", strategy="feature_extraction", devices="cpu")
    assert [line.split(":")[0] for line in StudyResources.from_settings(extraction.settings).prepare()] == ["disk"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 6 MB filesystem (tmpfs), or a skip where this machine cannot mount one (needs root)."""
    import os
    import shutil
    import subprocess

    mount = tmp_path / "tiny-disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_that_fills_up_during_the_bank_build_leaves_nothing_and_the_sweep_goes_on_uncached(
    ocl, tmp_path, tiny_disk, monkeypatch
):
    # The cache lives on a 6 MB filesystem: the image cache fits, the spatial bank (about 40 MB at
    # 32 px with its views) does not. Another job fills the disk between the bank's free-space check
    # and its build: the check is told the disk has room (sitecustomize, in every process the sweep
    # starts); the build then meets the filesystem's real ENOSPC.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import shutil\n"
        "_real = shutil.disk_usage\n"
        "shutil.disk_usage = lambda path: _real(path)._replace(free=_real(path).free + 10**12)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(hook))
    monkeypatch.setenv("OCL_CACHE_DIR", str(tiny_disk))
    result = ocl(
        *("sweep", "--trials", "2", "--strategy", "fine_tuning", "--image-size", "32", "--weights", "none"),
        *("--format", "json"),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["finished"] == 2  # the sweep went on, uncached
    assert "disk full while banking conv3_block12_concat, conv4_block24_concat, conv5_block16_concat" in result.stderr
    assert "uncached" in result.stderr and "prefix cache: banked none" in result.stderr
    assert result.stderr.index("study ") < result.stderr.index("prefix cache:")  # the plan first, then what the caches hold
    assert "Traceback" not in result.stderr
    left = [p.name for p in (tiny_disk / "spatial").rglob("*") if p.is_file()]
    assert not [name for name in left if ".npy" in name or name == "manifest.json"], left  # nothing half-written
