"""The image cache: pixels equal a direct PIL decode, odd PNGs are handled, the cache is reused
while the images are unchanged, rebuilt when they change or the file is damaged, and a failed
build leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import NIH_FULL_DIR, SAMPLE_IMAGES, files_under
from PIL import Image

from sweep.caches import _image_cache as image_cache
from sweep.caches import load_image_cache
from sweep.data import decode_image
from sweep.errors import OCLError

SIZE = 224


def pil_reference(path: Path, size: int) -> np.ndarray:
    """What the cache must hold: PIL's own grayscale conversion and Lanczos resize."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L").resize((size, size), Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def originals() -> list[Path]:
    paths = sorted(NIH_FULL_DIR.glob("*.png"))
    assert len(paths) == 40
    return paths


@pytest.fixture(scope="module")
def references(originals) -> list[np.ndarray]:
    return [pil_reference(p, SIZE) for p in originals]


@pytest.fixture
def copies(tmp_path: Path):
    """``copies(n)``: n sample images copied to a private folder (so they may be touched or damaged)."""

    def make(n: int = 6) -> list[str]:
        folder = tmp_path / "images"
        folder.mkdir(exist_ok=True)
        names = sorted(p.name for p in SAMPLE_IMAGES.glob("*.png"))[:n]
        for name in names:
            shutil.copyfile(SAMPLE_IMAGES / name, folder / name)
        return [str(folder / name) for name in names]

    return make


def test_full_size_originals_decode_like_pil(originals, references):
    for path, expected in zip(originals, references, strict=True):
        with Image.open(path) as image:
            assert image.size == (1024, 1024)
        pixels = decode_image(path, SIZE)
        assert pixels.dtype == np.uint8 and pixels.shape == (SIZE, SIZE)
        np.testing.assert_array_equal(pixels, expected, err_msg=path.name)


def test_cache_of_full_size_originals_equals_pil(originals, references, cache_dir):
    cache = load_image_cache([str(p) for p in originals], SIZE)
    assert cache.images.shape == (40, SIZE, SIZE) and cache.images.dtype == np.uint8
    assert cache.path.parent == cache_dir / "images"
    for index, expected in enumerate(references):
        np.testing.assert_array_equal(cache.images[index], expected, err_msg=originals[index].name)


def test_rgba_originals_keep_their_gray_values(originals):
    rgba = [p for p in originals if Image.open(p).mode == "RGBA"]
    assert len(rgba) == 2
    for path in rgba:
        channels = np.asarray(Image.open(path))
        # These files store the gray value in R=G=B with an opaque alpha: decoding at the original
        # size must give exactly that gray value back, not a blend with the alpha channel.
        np.testing.assert_array_equal(decode_image(path, 1024), channels[..., 0])
        np.testing.assert_array_equal(decode_image(path, SIZE), pil_reference(path, SIZE))


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    # It spans 0..65535, so its own range is the full 16-bit range: 65535 -> 255, like /257.
    wide = (np.arange(64 * 64, dtype=np.uint32) * 16 % 65536).astype(np.uint16).reshape(64, 64)
    wide[0, :4] = [0, 65535, 32896, 385]  # 0 -> 0, max -> 255, mid-gray -> 128, 385/257=1.498 -> 1
    path = tmp_path / "sixteen.png"
    Image.fromarray(wide).save(path)
    with Image.open(path) as image:
        assert image.mode.startswith("I")  # really a 16-bit grayscale PNG

    pixels = decode_image(path, 64)

    np.testing.assert_array_equal(pixels[0, :4], [0, 255, 128, 1])
    np.testing.assert_array_equal(pixels, np.rint(wide / 257).astype(np.uint8))
    cache = load_image_cache([str(path)], 64)
    np.testing.assert_array_equal(cache.images[0], pixels)


def own_range(values: np.ndarray) -> np.ndarray:
    """Darkest pixel to 0, brightest to 255, linearly: what a 16-bit or float image is stored as."""
    wide = values.astype(np.float64)
    return np.rint((wide - wide.min()) * 255.0 / (wide.max() - wide.min())).astype(np.uint8)


SIXTEEN_BIT_SAVERS = {
    "PNG": lambda wide, path: Image.fromarray(wide).save(path.with_suffix(".png")) or path.with_suffix(".png"),
    "TIFF": lambda wide, path: Image.fromarray(wide).save(path.with_suffix(".tif")) or path.with_suffix(".tif"),
    "TIFF big-endian": lambda wide, path: (
        Image.fromarray(wide.astype(">u2")).save(path.with_suffix(".tiff")) or path.with_suffix(".tiff")
    ),
    "TIFF 32-bit float": lambda wide, path: (
        Image.fromarray(wide.astype(np.float32) / 4096).save(path.with_suffix(".tif")) or path.with_suffix(".tif")
    ),
}


@pytest.mark.parametrize("kind", list(SIXTEEN_BIT_SAVERS))
def test_wide_images_are_scaled_by_their_own_range(tmp_path, cache_dir, kind):
    """12-bit X-ray data in a 16-bit file (values 100..4180): 65535 -> 255 would store it nearly black."""
    names = sorted(p.name for p in SAMPLE_IMAGES.glob("*.png"))[:4]
    paths = []
    for index, name in enumerate(names):
        gray = np.asarray(Image.open(SAMPLE_IMAGES / name))
        wide = gray.astype(np.uint16) * 16 + 100
        path = SIXTEEN_BIT_SAVERS[kind](wide, tmp_path / f"{index}")
        with Image.open(path) as image:
            assert image.mode in ("I;16", "I;16B", "I", "F"), image.mode  # really wider than 8 bits
        pixels = decode_image(path, 256)

        np.testing.assert_array_equal(pixels, own_range(wide), err_msg=f"{kind} {name}")
        assert np.abs(pixels.astype(int) - own_range(gray).astype(int)).max() <= 1  # the 8-bit image, stretched
        assert float(pixels.mean()) > 4 * float(np.rint(wide / 257).mean())  # not the dark /257 image
        paths.append(str(path))
    cache = load_image_cache(paths, 64)
    for index, path in enumerate(paths):
        np.testing.assert_array_equal(cache.images[index], decode_image(path, 64))


def test_eight_bit_image_at_its_own_size_is_unchanged():
    path = SAMPLE_IMAGES / "00000001_000.png"
    np.testing.assert_array_equal(decode_image(path, 256), np.asarray(Image.open(path)))


def test_cache_is_reused_while_images_are_unchanged(copies, cache_dir, monkeypatch):
    paths = copies()
    first = load_image_cache(paths, 32)
    stamps = {p: p.stat().st_mtime_ns for p in files_under(cache_dir)}
    assert sorted(p.suffix for p in stamps) == [".json", ".npy"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache was rebuilt although no image changed")

    monkeypatch.setattr(image_cache, "decode_image", no_decoding)
    second = load_image_cache(paths, 32)

    assert second.key == first.key and second.path == first.path
    assert {p: p.stat().st_mtime_ns for p in files_under(cache_dir)} == stamps
    np.testing.assert_array_equal(second.images, first.images)


def test_touched_or_replaced_image_rebuilds_the_cache(copies, cache_dir):
    paths = copies()
    first = load_image_cache(paths, 32)

    stat = os.stat(paths[2])
    os.utime(paths[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    touched = load_image_cache(paths, 32)
    assert touched.key != first.key
    np.testing.assert_array_equal(touched.images, first.images)

    # Replace one image's content: the new cache holds the new pixels.
    other = sorted(SAMPLE_IMAGES.glob("*.png"))[-1]
    shutil.copyfile(other, paths[3])
    replaced = load_image_cache(paths, 32)
    assert replaced.key not in {first.key, touched.key}
    np.testing.assert_array_equal(replaced.images[3], pil_reference(other, 32))
    assert not np.array_equal(replaced.images[3], first.images[3])

    resized = load_image_cache(paths, 48)
    assert resized.key != replaced.key and resized.images.shape == (6, 48, 48)


@pytest.mark.parametrize("damage", ["flipped bytes", "truncated", "manifest garbage"])
def test_damaged_cache_is_detected_and_rebuilt(copies, cache_dir, damage):
    paths = copies()
    expected = np.stack([pil_reference(Path(p), 32) for p in paths])
    cache = load_image_cache(paths, 32)
    np.testing.assert_array_equal(cache.images, expected)
    array_path, manifest_path = cache.path, cache.path.with_suffix(".json")
    del cache

    raw = bytearray(array_path.read_bytes())
    if damage == "flipped bytes":
        for offset in range(len(raw) - 600, len(raw) - 500):  # pixel data, not the .npy header
            raw[offset] ^= 0xFF
        array_path.write_bytes(bytes(raw))
    elif damage == "truncated":
        array_path.write_bytes(bytes(raw[: len(raw) // 2]))
    else:
        manifest_path.write_text("{ not json")

    rebuilt = load_image_cache(paths, 32)

    np.testing.assert_array_equal(rebuilt.images, expected)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["bytes"] == array_path.stat().st_size
    assert [p.name for p in files_under(cache_dir / "images")] == [manifest_path.name, array_path.name]


@pytest.mark.parametrize("damage", ["truncated", "zero bytes", "text"])
def test_failed_build_leaves_no_file(copies, cache_dir, damage):
    paths = copies()
    bad = Path(paths[4])
    if damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:1500])
    elif damage == "zero bytes":
        bad.write_bytes(b"")
    else:
        bad.write_text("not an image\n")

    with pytest.raises(OCLError, match=bad.name) as failure:
        load_image_cache(paths, 32)

    assert "\n" not in str(failure.value)
    assert files_under(cache_dir) == []
    # Once the user replaces the file, the build succeeds.
    shutil.copyfile(SAMPLE_IMAGES / bad.name, bad)
    assert load_image_cache(paths, 32).images.shape == (6, 32, 32)


def test_several_bad_images_are_counted(copies, cache_dir):
    paths = copies()
    for path in paths[1:4]:
        Path(path).write_bytes(b"")
    with pytest.raises(OCLError, match=r"2 more image\(s\) failed too") as failure:
        load_image_cache(paths, 32)
    assert files_under(cache_dir) == []
    # The first bad image in table order is named, whichever thread failed first.
    assert str(failure.value).startswith(f"image {paths[1]} cannot be decoded")


def test_missing_image_is_reported_before_any_decoding(copies, cache_dir):
    paths = copies()
    os.remove(paths[0])
    with pytest.raises(OCLError, match=Path(paths[0]).name):
        load_image_cache(paths, 32)
    assert files_under(cache_dir) == []


def test_too_small_size_is_refused(copies, cache_dir):
    with pytest.raises(OCLError, match="--image-size 16"):
        load_image_cache(copies(), 16)
    assert files_under(cache_dir) == []


def test_the_disk_a_build_will_write_is_known_before_and_is_zero_once_built(originals, cache_dir):
    """What ``ocl sweep`` states (and checks against the free space) before it decodes anything."""
    paths = [str(p) for p in originals[:6]]
    key, before = image_cache.image_cache_bytes(paths, 32)
    cache = load_image_cache(paths, 32)
    assert cache.key == key and before == cache.path.stat().st_size
    assert image_cache.image_cache_bytes(paths, 32) == (key, 0)
    with cache.path.open("r+b") as handle:  # a damaged cache is rebuilt, so it counts again
        handle.truncate(100)
    assert image_cache.image_cache_bytes(paths, 32)[1] == before
