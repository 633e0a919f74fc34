"""Screenshots of the pages a person reads, for docs/: the study report, the dictionary plot and optuna-dashboard.

Runs what a user runs, on the embedded NIH sample: a small real sweep (64 px, ``--weights none``,
16 trials, feature extraction and fine-tuning at one layer per dense block), ``ocl dictionary build``,
``ocl report``, ``ocl dictionary plot`` and ``ocl dashboard``; then photographs each page in
headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium) at 1366 px
wide. The report and the dictionary plot are photographed whole, the dashboard as its first
screen. Each PNG is reduced to a 256-colour palette, and scaled down if it still exceeds 300 KB.

Takes about three minutes on two CPU cores. Usage:

    python scripts/screenshots.py [--output docs] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1366, 768
MAX_BYTES = 300_000
STUDY_FILE = """# The screenshots' study: both strategies at one layer per dense block, short budgets and no
# pruning, so that 16 trials give several candidates the 3 completed trials an answer needs.
[space]
strategies = ["feature_extraction", "fine_tuning"]
cut_layers = ["conv2_block6_concat", "conv3_block12_concat", "conv4_block24_concat", "relu"]
head_units = [0, 128]
epochs = 4
fine_tuning_epochs = 2
patience = 2
bank_views = 1
pruner = "none"
"""


def ocl(workdir: Path, *args: str) -> str:
    """Run an ``ocl`` command as a user would; stop with its own error output when it fails."""
    print("$ ocl " + " ".join(args), flush=True)
    env = dict(os.environ, OCL_CACHE_DIR=str(workdir / "cache"), COLUMNS="160")
    done = subprocess.run([sys.executable, "-m", "sweep", *args], cwd=workdir, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: ocl {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr}")
    return done.stdout


def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        sys.exit("error: selenium is not installed; pip install -e '.[dev]'")
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(binary).exists() and Path(driver).exists()):
        sys.exit("error: no Chromium with chromedriver; apt-get install chromium chromium-driver")
    options = Options()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(driver))


def viewport(driver, height: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}
    )


def wait_for(driver, script: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            sys.exit(f"error: {driver.current_url} did not finish drawing within {timeout:.0f} s")
        time.sleep(0.25)


DRAWN = (
    "const plots = [...document.querySelectorAll('.js-plotly-plot')];"
    "return plots.length > 0 && plots.every(g => g.querySelector('svg.main-svg .trace'));"
)


def photograph(driver, url: str, path: Path, *, whole: bool, ready: str = DRAWN) -> None:
    viewport(driver, HEIGHT)
    driver.get(url)
    wait_for(driver, ready)
    if whole:
        viewport(driver, int(driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")))
        time.sleep(1)  # let responsive plots settle at the final size
    else:
        time.sleep(1)
    save_small(driver.get_screenshot_as_png(), path)


def save_small(png: bytes, path: Path) -> None:
    """A 256-colour PNG under MAX_BYTES: palette first (text and flat plots survive it), then scale if needed."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    scale = 1.0
    while True:
        sized = image if scale == 1.0 else image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        buffer = io.BytesIO()
        sized.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES or scale < 0.3:
            break
        scale *= 0.85
    path.write_bytes(buffer.getvalue())
    print(f"wrote {path} ({sized.width}x{sized.height}, {buffer.tell() / 1000:.0f} KB)", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs", help="folder for the PNGs (default: docs/)")
    parser.add_argument("--workdir", type=Path, help="where the sweep's storage and pages go (default: a temporary folder)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ocl-screenshots-"))
    workdir.mkdir(parents=True, exist_ok=True)
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{workdir / 'ocl.db'}"
    (workdir / "screenshots.toml").write_text(STUDY_FILE)

    driver = browser()  # fail before the sweep when there is nothing to photograph with
    try:
        common = ("--storage", storage, "--image-size", "64", "--weights", "none")
        ocl(workdir, "sweep", "--trials", "16", "--workers", "2", *common, "--config", "screenshots.toml")
        ocl(workdir, "dictionary", "build", *common)
        ocl(workdir, "report", "--storage", storage, "--output", "report.html")
        ocl(workdir, "dictionary", "plot", "--storage", storage, "--output", "dictionary.html")
        photograph(driver, (workdir / "report.html").as_uri(), output / "report.png", whole=True)
        photograph(driver, (workdir / "dictionary.html").as_uri(), output / "dictionary.png", whole=True)

        port = free_port()
        with open(workdir / "dashboard.log", "w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "sweep", "dashboard", "--storage", storage, "--port", str(port)],
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        sys.exit(f"error: ocl dashboard did not start: {(workdir / 'dashboard.log').read_text()}")
                    time.sleep(0.25)
            ready = (
                "const plots = [...document.querySelectorAll('.js-plotly-plot')];"
                "return plots.length >= 2 && plots.every(g => g.querySelector('svg.main-svg .trace'));"
            )
            photograph(driver, f"http://127.0.0.1:{port}/dashboard/studies/1", output / "dashboard.png", whole=False, ready=ready)
        finally:
            server.terminate()
            server.wait(timeout=10)
    finally:
        driver.quit()
    print(f"pages and storage in {workdir}")


if __name__ == "__main__":
    main()
