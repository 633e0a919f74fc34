"""Generate a ChestX-ray14-sized dataset in NIH's exact layout: the stand-in for the real download here.

The label table is NIH's own (``tests/fixtures/Data_Entry_2017_v2020_full.csv.gz``, all 112,120
rows and every column), so the finding frequencies, the heavy tail of images per patient (up to
184), ages, sexes and views are NIH's. ``--images N`` keeps whole patients, drawn in a seeded
order, until N images are reached (all of them at 112,120); NIH's official ``train_val_list.txt``
and ``test_list.txt`` are written for the kept images. The pixels are generated: a smooth random
background per image plus, for each of its findings, a faint blob at that finding's own place, so a
classifier head can beat chance but not by much.

Written to ``OUT``::

    Data_Entry_2017.csv  images/NNNNNNNN_NNN.png  train_val_list.txt  test_list.txt

Images are grayscale PNGs of ``--size`` px (32 by default), written by all cores.

Run: .venv/bin/python benchmarks/make_chestxray14.py OUT [--images 112120] [--size 32] [--seed 0] [--patient-offset 0]
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from _smoke import parse_args as parse_with_smoke

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
LABEL_TABLE = FIXTURES / "Data_Entry_2017_v2020_full.csv.gz"
LISTS = ("train_val_list.txt", "test_list.txt")
FINDINGS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)  # fmt: skip
SIGNAL = 28.0  # a finding's blob, in grey levels over a background of spread about 40: weak on purpose
CHUNK = 2_000


def keep_patients(table: pd.DataFrame, images: int, seed: int) -> pd.DataFrame:
    """Whole patients in a seeded order until ``images`` rows are kept (every row when there are that many)."""
    if images >= len(table):
        return table
    counts = table.groupby("Patient ID", sort=False).size()
    order = counts.sample(frac=1.0, random_state=seed)
    kept = order.index[: int(np.searchsorted(order.cumsum().to_numpy(), images)) + 1]
    return table[table["Patient ID"].isin(kept)]


def blob_centres(size: int, seed: int) -> np.ndarray:
    """Each finding's place in the image, fixed per seed: (finding, 2) in pixels."""
    rng = np.random.default_rng(seed + 1_000)
    return rng.uniform(0.2 * size, 0.8 * size, (len(FINDINGS), 2))


def write_images(job: tuple[Path, list[str], np.ndarray, int, int, int]) -> int:
    """Write one chunk of PNGs (one process each): background, then each finding's faint blob."""
    from PIL import Image

    folder, names, labels, size, seed, chunk = job
    rng = np.random.default_rng([seed, chunk])
    centres = blob_centres(size, seed)
    yy, xx = np.mgrid[0:size, 0:size]
    distance = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    blobs = np.exp(-distance / (0.02 * size**2))  # (finding, size, size)
    coarse = max(1, size // 8)
    for name, row in zip(names, labels):
        base = rng.normal(128, 40, (coarse, coarse))
        background = np.kron(base, np.ones((size // coarse + 1, size // coarse + 1)))[:size, :size]
        pixels = background + rng.normal(0, 12, (size, size)) + SIGNAL * np.tensordot(row, blobs, axes=1)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L").save(folder / name, optimize=False)
    return len(names)


def renumber(table: pd.DataFrame, offset: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """Patient IDs moved up by ``offset`` and the image names with them (``00040001_000.png``): a
    second dataset of other people, for ``--external``. Returns the table and old name -> new name."""
    table = table.copy()
    patients = table["Patient ID"].astype(int) + offset
    names = patients.map("{:08d}".format) + "_" + table["Image Index"].str.split("_", n=1).str[1]
    mapping = dict(zip(table["Image Index"], names))
    table["Patient ID"], table["Image Index"] = patients.astype(str), names
    return table, mapping


def generate(out: Path, images: int, size: int, seed: int, patient_offset: int = 0) -> pd.DataFrame:
    """Write the dataset; returns its label table."""
    table = pd.read_csv(LABEL_TABLE, dtype=str, keep_default_na=False)
    table, mapping = renumber(keep_patients(table, images, seed), patient_offset)
    (out / "images").mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "Data_Entry_2017.csv", index=False)
    for name in LISTS:
        with gzip.open(FIXTURES / "official_split" / f"{name}.gz", "rt") as listed:
            rows = [mapping[line.strip()] for line in listed if line.strip() in mapping]
        (out / name).write_text("".join(f"{row}\n" for row in rows))
    findings = table["Finding Labels"].str.split("|")
    labels = np.array([[f in row for f in FINDINGS] for row in findings], dtype=np.float64)
    names = table["Image Index"].tolist()
    jobs = [
        (out / "images", names[lo : lo + CHUNK], labels[lo : lo + CHUNK], size, seed, lo // CHUNK)
        for lo in range(0, len(names), CHUNK)
    ]
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        written = sum(pool.map(write_images, jobs))
    assert written == len(table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write (created; must be empty or absent)")
    parser.add_argument("--images", type=int, default=112_120, help="images to keep, as whole patients (NIH: 112,120)")
    parser.add_argument("--size", type=int, default=32, help="image size in pixels (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="which patients are kept, and the pixels (default 0)")
    parser.add_argument(
        "--patient-offset", type=int, default=0, help="add this to every Patient ID (e.g. 40000: other people, for --external)"
    )
    args = parse_with_smoke(parser, images=300)
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"error: {args.out} is not empty; pass a new folder")
    if args.images < 1 or args.size < 8:
        sys.exit("error: pass --images 1 or more and --size 8 or more")
    start = time.perf_counter()
    table = generate(args.out, args.images, args.size, args.seed, args.patient_offset)
    seconds = time.perf_counter() - start
    on_disk = sum(entry.stat().st_blocks * 512 for entry in os.scandir(args.out / "images"))  # as du counts it
    per_patient = table.groupby("Patient ID").size()
    print(
        f"{len(table):,} images of {len(per_patient):,} patients (up to {per_patient.max()} images each) at {args.size} px "
        f"in {args.out}: {on_disk / 1e6:,.0f} MB of PNGs, written in {seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
