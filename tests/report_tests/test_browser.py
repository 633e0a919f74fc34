"""The pages a person reads, opened in a real browser: the study report, the dictionary plot and
optuna-dashboard, on the storage of a real sweep.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``, which ``.ci/run`` installs) is
driven through Selenium with the system chromedriver, so nothing is downloaded. Each page must
load without a console error, every plot must have drawn (an SVG with traces in each plotly
div), and the report must name the answer's layer. A screenshot of each page is kept, in
``OCL_SCREENSHOT_DIR`` when set, else in the test's tmp folder, so a failure can be looked at.
Without Chromium or Selenium the tests skip and say what to install.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from small_sweep import STUDY, own_copy, run_ocl

from sweep.results import study_answer

pytestmark = pytest.mark.slow

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
SCREEN = (1366, 768)


def _first(paths: tuple[str, ...], name: str) -> str | None:
    return next((p for p in paths if Path(p).exists()), None) or shutil.which(name)


def _browser() -> tuple[str, str]:
    """The Chromium and chromedriver to use, or a skip that says what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[dev]'")
    binary, driver = _first(CHROMIUM, "chromium"), _first(CHROMEDRIVER, "chromedriver")
    if not binary or not driver:
        pytest.skip("no Chromium with chromedriver: apt-get install chromium chromium-driver (.ci/run installs them)")
    return binary, driver


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _browser()
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={SCREEN[0]},{SCREEN[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("OCL_SCREENSHOT_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Pages:
    root: Path
    storage: str
    answer: dict
    report: Path
    dictionary: Path


@pytest.fixture(scope="module")
def pages(small_sweep, tmp_path_factory) -> Pages:
    """The session's real sweep at 32 px, a dictionary build, and the pages written from them by the CLI."""
    _browser()  # skip before building when there is no browser to look with
    root, env, storage = own_copy(small_sweep, tmp_path_factory.mktemp("browser-sweep"))
    common = ("--storage", storage, "--image-size", "32", "--weights", "none")
    built = run_ocl(root, env, "dictionary", "build", *common)
    assert built.returncode == 0, built.stderr
    reported = run_ocl(root, env, "report", "--storage", storage, "--output", "pages/report.html")
    assert reported.returncode == 0, reported.stderr
    plotted = run_ocl(root, env, "dictionary", "plot", "--storage", storage, "--output", "pages/dictionary.html")
    assert plotted.returncode == 0, plotted.stderr
    answer = study_answer(optuna.load_study(study_name=STUDY, storage=storage), storage).to_dict()
    return Pages(root, storage, answer, root / "pages" / "report.html", root / "pages" / "dictionary.html")


# --- looking at a page ------------------------------------------------------------------------------

PLOTS = """
return [...document.querySelectorAll('.plotly-graph-div, .js-plotly-plot')].filter((g, i, all) => all.indexOf(g) === i)
  .map(g => ({
    id: g.id,
    height: g.getBoundingClientRect().height,
    width: g.getBoundingClientRect().width,
    svgs: g.querySelectorAll('svg.main-svg').length,
    traces: g.querySelectorAll('svg.main-svg .trace').length,
    points: g.querySelectorAll('svg.main-svg path, svg.main-svg rect').length,
  }));
"""


def wait_for(driver, script: str, timeout: float = 30) -> object:
    """Poll a script until it returns something truthy (plots draw after the page's load event)."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def look(driver, url: str, shot: Path, *, ready: str, full_page: bool = True) -> list[dict]:
    """Open a page at 1366x768, wait until ``ready`` holds, keep a screenshot, return its SEVERE console entries."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": SCREEN[0], "height": SCREEN[1], "deviceScaleFactor": 1, "mobile": False}
    )
    driver.get_log("browser")  # forget what earlier pages logged
    driver.get(url)
    ready_now = wait_for(driver, ready)
    try:
        if full_page:
            height = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": SCREEN[0], "height": min(int(height), 8000), "deviceScaleFactor": 1, "mobile": False},
            )
            time.sleep(0.5)
        driver.save_screenshot(str(shot))
    finally:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": SCREEN[0], "height": SCREEN[1], "deviceScaleFactor": 1, "mobile": False},
        )
    assert ready_now, f"{url} never became ready ({ready!r}); see {shot}"
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def assert_every_plot_drew(plots: list[dict], shot: Path, *, at_least: int) -> None:
    assert len(plots) >= at_least, f"{len(plots)} plot(s), expected {at_least}+; see {shot}"
    for plot in plots:
        assert plot["svgs"] >= 1 and plot["traces"] >= 1 and plot["points"] > 5, f"plot {plot} drew nothing; see {shot}"
        assert plot["height"] >= 200 and plot["width"] >= 300, f"plot {plot} is squashed; see {shot}"


ALL_PLOTS_DRAWN = """
const plots = [...document.querySelectorAll('.plotly-graph-div')];
return plots.length > 0 && plots.every(g => g.querySelector('svg.main-svg .trace'));
"""


# --- the pages --------------------------------------------------------------------------------------


def test_the_study_report_draws_every_plot_and_names_the_answer(browser, pages, shots):
    shot = shots / "report.png"
    errors = look(browser, pages.report.as_uri(), shot, ready=ALL_PLOTS_DRAWN)
    assert not errors, f"console errors: {errors}; see {shot}"
    plots = browser.execute_script(PLOTS)
    assert_every_plot_drew(plots, shot, at_least=2)  # the layer profile and the history
    assert {p["id"] for p in plots} >= {"plot-profile", "plot-history"}
    top = pages.answer["best"] or pages.answer["candidates"][0]
    assert browser.find_element("id", "answer-layer").text == top["layer"]
    text = browser.execute_script("return document.body.innerText")
    assert top["layer"] in text and "confidence set" in text.lower() and f"ocl sweep --config {STUDY}.toml" in text
    assert "LogME" in text and "linear probe AUROC (dictionary)" in text  # the dictionary was built first
    # it reads on a 1366x768 screen: no sideways scrolling, and the answer is on the first screen
    assert browser.execute_script("return document.documentElement.scrollWidth") <= SCREEN[0]
    answer_box = browser.execute_script("return document.getElementById('answer').getBoundingClientRect().bottom")
    assert answer_box < SCREEN[1], f"the answer ends at {answer_box}px, below the first screen; see {shot}"
    assert all(p["height"] <= 700 for p in plots), f"a plot taller than the screen: {plots}"


def test_the_study_report_prints_with_every_plot_on_the_page_width(browser, pages, shots):

    look(browser, pages.report.as_uri(), shots / "report-screen.png", ready=ALL_PLOTS_DRAWN, full_page=False)
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        browser.execute_script("window.dispatchEvent(new Event('beforeprint'))")
        widths = wait_for(
            browser,
            "const w = [...document.querySelectorAll('.plotly-graph-div .main-svg')].map(g => g.getBoundingClientRect().width);"
            "return w.every(x => x <= 700) ? w : null;",
        )
        assert widths, "plots kept their screen width when printed"
        pdf = base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", {"printBackground": False})["data"])
        (shots / "report.pdf").write_bytes(pdf)
        pages_printed = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
        assert pdf.startswith(b"%PDF") and 2 <= pages_printed <= 12, pages_printed
        hidden = browser.execute_script("return getComputedStyle(document.querySelector('nav')).display")
        assert hidden == "none"  # links are no use on paper
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        browser.execute_script("window.dispatchEvent(new Event('afterprint'))")
    back = wait_for(
        browser,
        "const w = [...document.querySelectorAll('.plotly-graph-div .main-svg')].map(g => g.getBoundingClientRect().width);"
        "return w.every(x => x > 1000) ? w : null;",
    )
    assert back, "plots stayed at the print width after printing"


def test_a_report_with_both_strategies_two_weights_and_a_test_result_draws_every_plot(browser, shots, tmp_path):
    """Planted (no sweep): the shapes a small CPU sweep does not make, in the same page design."""
    from test_report import evaluation_of, planted_study

    from sweep.report import write_study_report

    _browser()
    url = f"sqlite:///{tmp_path / 'ocl.db'}"
    study = planted_study(url, weights=("imagenet", "none"))
    page = write_study_report(study, url, tmp_path / "planted.html", evaluation=evaluation_of(study))
    shot = shots / "report-planted.png"
    errors = look(browser, page.as_uri(), shot, ready=ALL_PLOTS_DRAWN)
    assert not errors, f"console errors: {errors}; see {shot}"
    plots = browser.execute_script(PLOTS)
    assert_every_plot_drew(plots, shot, at_least=3)
    assert [p["id"] for p in plots] == ["plot-profile", "plot-roc", "plot-history"]
    text = browser.execute_script("return document.body.innerText")
    assert "Held-out test" in text and "ImageNet − scratch" in text and "feature extraction − fine-tuning" in text
    assert browser.execute_script("return document.documentElement.scrollWidth") <= SCREEN[0]


CLINICAL_SECTIONS = """
return ['calibration', 'operating-points', 'subgroups', 'external', 'saliency'].map(id => {
  const e = document.getElementById(id);
  return e ? {id, visible: e.getBoundingClientRect().height > 0} : {id, visible: false};
});
"""

SALIENCY_PICTURES = """
return [...document.querySelectorAll('figure.saliency img')].map(i => ({
  loaded: i.complete && i.naturalWidth > 0, width: i.getBoundingClientRect().width,
  caption: i.parentElement.querySelector('figcaption').innerText,
}));
"""

OVERFLOWING_TABLES = """
return [...document.querySelectorAll('#test .scroll')].filter(s => s.scrollWidth > s.clientWidth + 1)
  .map(s => s.previousElementSibling ? s.previousElementSibling.innerText : '?');
"""


def test_the_evaluated_report_shows_its_clinical_sections_on_screen_and_in_print(browser, evaluated_64px, shots):
    """ocl evaluate's real page at 64 px: calibration, operating points, subgroups, external validation and
    saliency each a visible section; every Grad-CAM picture loads at a readable size with its caption;
    no table needs a scroll bar at 1366 px; printed, the pictures shrink and the page count stays sane."""
    page = evaluated_64px.path(evaluated_64px.summary["report"])
    shot = shots / "report-evaluated.png"
    errors = look(browser, page.as_uri(), shot, ready=ALL_PLOTS_DRAWN)
    assert not errors, f"console errors: {errors}; see {shot}"
    hidden = [s["id"] for s in browser.execute_script(CLINICAL_SECTIONS) if not s["visible"]]
    assert not hidden, f"sections not shown: {hidden}; see {shot}"
    pictures = browser.execute_script(SALIENCY_PICTURES)
    assert len(pictures) == len(evaluated_64px.summary["saliency"]["examples"])
    for picture in pictures:
        assert picture["loaded"] and 150 <= picture["width"] <= 200, picture
        assert re.match(r"(true positive|false negative|false positive)\s+score 0\.\d\d", picture["caption"]), picture
    assert not browser.execute_script(OVERFLOWING_TABLES), f"tables wider than the page; see {shot}"
    assert browser.execute_script("return document.documentElement.scrollWidth") <= SCREEN[0]
    text = browser.execute_script("return document.body.innerText")
    assert "External validation" in text and "hospital" in text and "Sanity check" in text
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        printed = browser.execute_script(SALIENCY_PICTURES)
        assert all(p["width"] <= 125 for p in printed), printed
        pdf = base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", {"printBackground": False})["data"])
        assert pdf.startswith(b"%PDF") and 2 <= len(re.findall(rb"/Type\s*/Page[^s]", pdf)) <= 16
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def test_the_dictionary_plot_draws_every_panel(browser, pages, shots):
    shot = shots / "dictionary.png"
    errors = look(browser, pages.dictionary.as_uri(), shot, ready=ALL_PLOTS_DRAWN)
    assert not errors, f"console errors: {errors}; see {shot}"
    plots = browser.execute_script(PLOTS)
    assert_every_plot_drew(plots, shot, at_least=1)
    text = browser.execute_script("return document.body.innerText")
    for panel in ("linear probe AUROC", "LogME", "sweep AUROC, feature extraction", "dense block 1"):
        assert panel in text, f"no {panel!r} on the dictionary plot; see {shot}"
    assert browser.title == "OCL dictionary"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dashboard(pages) -> Iterator[str]:
    """``ocl dashboard`` on the sweep's storage, on a free port; its base URL."""
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is not installed: pip install -e '.[dashboard]'")
    port = free_port()
    log = pages.root / "dashboard.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "sweep", "dashboard", "--storage", pages.storage, "--port", str(port)],
            cwd=pages.root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, f"ocl dashboard exited: {log.read_text()}"
                assert time.monotonic() < deadline, f"ocl dashboard did not listen within 60 s: {log.read_text()}"
                time.sleep(0.25)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_optuna_dashboard_shows_the_studys_plots(browser, pages, dashboard, shots):
    from sweep.storage import open_storage

    study_id = open_storage(pages.storage, heartbeat=False).get_study_id_from_name(STUDY)
    shot = shots / "dashboard.png"
    ready = (
        "const plots = [...document.querySelectorAll('.js-plotly-plot')];"
        f"return document.body.innerText.includes('{STUDY}') && plots.length >= 2 && "
        "plots.every(g => g.querySelector('svg.main-svg .trace'));"
    )
    errors = look(browser, f"{dashboard}/dashboard/studies/{study_id}", shot, ready=ready, full_page=False)
    assert not errors, f"console errors: {errors}; see {shot}"
    plots = browser.execute_script(PLOTS)
    assert_every_plot_drew(plots, shot, at_least=2)
    assert len(optuna.load_study(study_name=STUDY, storage=pages.storage).trials) >= 10
