"""``ocl report``: the study's answer on one page, checked as data first, then as the page and the CLI.

Most studies here are written through the real storage API with planted predictions (no
Keras): each test states what the study holds and so what the page must say. One slow test
runs a real ``ocl sweep`` and reports on it through the real CLI. ``ocl dashboard``'s one-line
error for a taken port is checked here too: it is the other page a study is read on.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score
from small_sweep import STUDY as SWEPT_STUDY
from small_sweep import TRIALS, own_copy
from small_sweep import run_ocl as run_swept

from sweep.data import DataOptions
from sweep.model import CANDIDATES, block_of
from sweep.report import render_html, report_data, write_study_report
from sweep.results import Evaluation, clinical_evaluation, study_answer
from sweep.stats import ScoreInterval, bootstrap_weights, score
from sweep.storage import ValidationSplit, open_storage, store_predictions, store_validation
from sweep.study import DatasetInfo, SearchSpace, SweepSettings, TrialRecord, create_or_resume, load_search_space
from sweep.study import _records as records

STUDY = "planted"
LAYERS = ("conv2_block6_concat", "pool3_pool", "conv4_block24_concat", "relu")
BEST = "conv4_block24_concat"
LEAK = "3 patients have images in more than one split (train and val); pass --split patient"


def planted_study(
    url: str,
    *,
    name: str = STUDY,
    strategies: tuple[str, ...] = ("feature_extraction", "fine_tuning"),
    weights: tuple[str, ...] = ("none",),
    trials_per_candidate: int = 3,
    signal: dict[tuple[str, str, str], float] | None = None,
    trials: dict[tuple[str, str, str], int] | None = None,
) -> optuna.Study:
    """A study whose candidates' validation scores carry ``signal[(strategy, layer, weights)]`` of the label.

    By default the feature-extraction candidate at :data:`BEST` is far better than every other.
    """
    space = SearchSpace(strategies=strategies, cut_layers=LAYERS, weights=weights, head_units=(0, 128), epochs=4)
    settings = SweepSettings(DataOptions(task="any"), "planted-cxr", 64, space)
    study = create_or_resume(open_storage(url, heartbeat=False), name, settings, target=24)
    info = DatasetInfo("chest x-ray", 400, 250, "f1e2d3c4b5a6", cross_split_patients=3, warnings=(LEAK,))
    for key, value in info.to_user_attrs().items():
        study.set_user_attr(key, value)
    if not trials_per_candidate:
        return study
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(150), 2)  # 300 validation images of 150 patients
    y = (rng.random(150) < 0.4)[patients].astype(np.uint8)[:, None]
    store_validation(url, name, ValidationSplit(("Any finding",), y, patients.astype(str), "f1e2d3c4b5a6"))
    for strategy in strategies:
        for layer in LAYERS:
            for label in weights:
                strength = (signal or {}).get(
                    (strategy, layer, label), 2.5 if (strategy, layer) == ("feature_extraction", BEST) else 0.4
                )
                for _ in range((trials or {}).get((strategy, layer, label), trials_per_candidate)):
                    scores = (strength * y + rng.normal(0, 1, y.shape)).astype(np.float32)
                    record = TrialRecord(
                        strategy=strategy,
                        cut_layer=layer,
                        weights=label,
                        layer_depth=CANDIDATES.index(layer),
                        layer_index=100 + CANDIDATES.index(layer),
                        block=block_of(layer),
                        channels=256,
                        stride=8,
                        flops_fraction=0.5,
                        unfreeze_from=None,
                        augment=False,
                        epochs_budget=4,
                        task="any",
                        dataset="planted-cxr",
                        device="cpu:0",
                        host="test",
                        pid=1,
                    )
                    study.add_trial(
                        optuna.trial.create_trial(
                            value=float(roc_auc_score(y[:, 0], scores[:, 0])), user_attrs=record.to_user_attrs()
                        )
                    )
                    store_predictions(url, name, study.trials[-1].number, scores)
    return study


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ocl.db'}"


@pytest.fixture
def study(url: str) -> optuna.Study:
    return planted_study(url)


# --- data first -----------------------------------------------------------------------------------


def test_the_answer_comes_from_the_study_answer_with_its_interval_and_confidence_set(study, url):
    data = report_data(study, url)
    answer = study_answer(study, url, seed=0)
    assert answer.best is not None and answer.best.layer == BEST and answer.distinguishable
    head = data.headline
    assert (head["layer"], head["strategy"], head["weights"]) == (BEST, "feature_extraction", "none")
    assert head["low"] <= head["score"] <= head["high"] and head["score"] == pytest.approx(answer.best.score)
    assert data.answer["answer"] == answer.sentence()
    assert data.answer["confidence_set"] == [c.name for c in answer.confidence_set] == [answer.best.name]
    assert data.counts["finished"] == 24 and data.counts["target"] == 24


def test_the_profile_has_one_curve_per_strategy_in_depth_order_with_intervals(study, url):
    data = report_data(study, url)
    curves = {c.strategy: c for c in data.profile if c.kind == "sweep"}
    assert set(curves) == {"feature_extraction", "fine_tuning"}
    for curve in curves.values():
        assert list(curve.depth) == sorted(CANDIDATES.index(layer) for layer in LAYERS)
        assert curve.layers == LAYERS
        assert all(lo <= v <= hi for lo, v, hi in zip(curve.low, curve.values, curve.high))
        assert all(curve.judged) and curve.n_trials == (3, 3, 3, 3)
    assert curves["feature_extraction"].in_set == tuple(layer == BEST for layer in LAYERS)
    blocks = {name: (first, last) for name, first, last in data.blocks}
    assert blocks == {"dense block 1": (1, 6), "dense block 2": (8, 19), "dense block 3": (21, 44), "dense block 4": (46, 61)}
    assert not [c for c in data.profile if c.kind != "sweep"]  # no dictionary in this storage


def test_feature_extraction_and_fine_tuning_are_compared_layer_by_layer(study, url):
    comparison = report_data(study, url).strategies
    assert (comparison.first, comparison.second) == ("feature_extraction", "fine_tuning")
    assert [row.layer for row in comparison.rows] == list(LAYERS)
    for row in comparison.rows:
        assert row.difference == pytest.approx(row.first["score"] - row.second["score"])
    best = next(row for row in comparison.rows if row.layer == BEST)
    assert best.difference > 0.2
    assert "swept only" in report_data(study, url).transfer.note  # one weights: nothing to compare


def test_transfer_and_scratch_are_compared_where_both_weights_were_swept(url):
    signal = {("feature_extraction", layer, "imagenet"): 1.5 for layer in LAYERS}
    study = planted_study(url, strategies=("feature_extraction",), weights=("imagenet", "none"), signal=signal)
    data = report_data(study, url)
    assert data.transfer.rows and all(row.fixed == "feature_extraction" for row in data.transfer.rows)
    assert all(row.first is not None and row.second is not None for row in data.transfer.rows)
    assert sum(row.difference > 0 for row in data.transfer.rows) >= 3  # planted: imagenet better but at BEST
    assert "swept only feature extraction" in data.strategies.note
    labels = {c.label for c in data.profile if c.kind == "sweep"}
    assert labels == {"feature extraction · weights imagenet", "feature extraction · weights none"}


def test_the_dictionary_adds_probe_and_logme_curves_of_this_study_and_split_only(study, url):
    from layers_index import DatasetKey, LayerKey, Score, upsert_scores

    def layer(name: str) -> LayerKey:
        return LayerKey(name, CANDIDATES.index(name), 100 + CANDIDATES.index(name), block_of(name), 256, 8)

    key = DatasetKey("planted-cxr", "any", "chest x-ray", 400, 250, "f1e2d3c4b5a6")
    scores = [Score(layer(name), "probe_auroc", 0.7, 0.6, 0.8) for name in CANDIDATES[::3]]
    scores += [Score(layer(name), "logme", -0.4) for name in CANDIDATES[::3]]
    upsert_scores(url, key, "none", 64, scores)
    other_split = DatasetKey("planted-cxr", "any", "chest x-ray", 400, 250, "000000000000")  # same name, another split
    upsert_scores(url, other_split, "none", 64, [Score(layer("relu"), "probe_auroc", 0.9)])
    upsert_scores(url, key, "none", 128, [Score(layer("relu"), "probe_auroc", 0.9)])  # another size: not this study's
    upsert_scores(url, key, "imagenet", 64, [Score(layer("relu"), "probe_auroc", 0.9)])  # weights this study never swept
    curves = {c.kind: c for c in report_data(study, url).profile if c.kind != "sweep"}
    assert set(curves) == {"probe_auroc", "logme"}
    assert curves["probe_auroc"].depth == tuple(range(0, 63, 3)) and set(curves["probe_auroc"].values) == {0.7}
    assert "relu" not in curves["probe_auroc"].layers  # depth 62 is not a multiple of 3: nothing leaked in
    assert set(curves["probe_auroc"].low) == {0.6} and set(curves["probe_auroc"].high) == {0.8}
    assert curves["logme"].low == ()


def test_the_answer_box_warns_of_chance_and_of_better_candidates_not_yet_judged(url):
    """As a tiny CPU sweep leaves it: the only judged candidate is poor, a better one has two trials."""
    weak = {(strategy, layer, "none"): 0.0 for strategy in ("feature_extraction", "fine_tuning") for layer in LAYERS}
    study = planted_study(
        url,
        signal={**weak, ("feature_extraction", BEST, "none"): 2.5},
        trials_per_candidate=1,
        trials={("fine_tuning", "relu", "none"): 3, ("feature_extraction", BEST, "none"): 2},
    )
    data = report_data(study, url)
    head = data.headline
    assert (head["layer"], head["strategy"], head["judged"]) == ("relu", "fine_tuning", True)
    assert head["at_chance"] and head["low"] <= 0.5
    assert [c["name"] for c in head["higher_unjudged"]][0] == f"{BEST} (feature extraction, weights none)"
    page = render_html(data)
    assert "cannot be told from guessing" in page and "Run more trials before trusting this answer" in page
    assert f"{BEST} (feature extraction, weights none)" in page.split("id='profile'")[0]  # in the answer box


def test_a_clear_answer_carries_no_caveat(study, url):
    head = report_data(study, url).headline
    assert not head["at_chance"] and head["higher_unjudged"] == []
    assert "class='warn caveat'" not in render_html(report_data(study, url))


def test_split_and_leakage_facts_come_from_the_study(study, url):
    dataset = report_data(study, url).dataset
    assert (dataset["images"], dataset["patients"], dataset["cross_split_patients"]) == (400, 250, 3)
    assert dataset["warnings"] == [LEAK]
    validation = dataset["validation"]
    assert validation["images"] == 300 and validation["patients"] == 150
    assert 0 < validation["positives"]["Any finding"] < 300


def test_the_reproduce_command_and_study_file_rebuild_the_same_settings(study, url, tmp_path):
    data = report_data(study, url)
    assert data.command.startswith("ocl sweep --config planted.toml ")
    shared = "--storage sqlite:///" + url.rsplit("/", 1)[1]  # the database's name: a report is made to be shared
    for part in ("--task any", "--image-size 64", "--seed 0", "--trials 24", "--study planted", shared):
        assert part in data.command
    assert "--data" not in data.command  # the embedded sample
    (tmp_path / "planted.toml").write_text(data.study_file)
    tomllib.loads(data.study_file)
    stored = SweepSettings.from_json(study.user_attrs[records.SETTINGS]).space
    assert load_search_space(tmp_path / "planted.toml") == stored


def test_no_password_user_host_or_folder_of_the_storage_url_reaches_the_page(study, url):
    data = report_data(study, url)
    from sweep.report import reproduce_command

    settings = SweepSettings.from_json(study.user_attrs[records.SETTINGS])
    command = reproduce_command(STUDY, "postgresql://ocl:s3cret@db.example:5433/ocl", settings, 10)
    assert "s3cret" not in command and "db.example" not in command and "postgresql://…/ocl" in command
    assert data.storage == "sqlite:///" + url.rsplit("/", 1)[1] and "/tmp" not in data.storage


def test_a_study_with_no_finished_trial_gives_a_page_that_says_so(url):
    study = planted_study(url, name="empty", trials_per_candidate=0)
    data = report_data(study, url)
    assert data.headline is None and not data.history and not data.profile
    page = render_html(data)
    assert "This study has no finished trial yet" in page
    assert 'class="plotly-graph-div"' not in page and "plotly.js" not in page  # nothing to draw, and no empty plot
    assert "ocl sweep --config empty.toml" in page


def test_a_stored_test_result_becomes_the_test_section(study, url):
    summary = {
        "trial": 7,
        "strategy": "feature_extraction",
        "cut_layer": BEST,
        "weights": "none",
        "val_mean_auroc": 0.9,
        "test": {"mean_auroc": 0.87, "mean_auroc_low": 0.8, "mean_auroc_high": 0.93, "auroc_per_class": {"Any finding": 0.87}},
    }
    study.set_user_attr(records.EVALUATION, summary)
    data = report_data(study, url)
    assert data.evaluation["low"] == 0.8 and data.evaluation["per_class"][0]["test_auroc"] == 0.87
    page = render_html(data)
    assert "Held-out test" in page and "0.870" in page and "[0.800, 0.930]" in page


def evaluation_of(study: optuna.Study) -> Evaluation:
    rng = np.random.default_rng(1)
    y = (rng.random((120, 2)) < 0.4).astype(np.uint8)
    p = expit(2 * (y - 0.5) + rng.normal(0, 0.8, y.shape)).astype(np.float32)  # sigmoid scores
    outputs = ["Effusion", "Nodule"]
    val = score(y, p, outputs)
    weights = bootstrap_weights(np.arange(len(y)).astype(str), 200, seed=0)
    return Evaluation(
        study=study.study_name,
        trial=3,
        config=SimpleNamespace(strategy="feature_extraction", cut_layer=BEST),
        weights="none",
        val=val,
        test=score(y, p, outputs, np.asarray(val.thresholds)),
        y_test=y,
        p_test=p,
        result=None,
        test_interval=ScoreInterval(0.8, 0.75, 0.85),
        clinical=clinical_evaluation(
            tuple(outputs), (y, p), (y, p), weights, groups={"sex": np.asarray(["F", "M"] * 60, dtype=object)}
        ),
    )


def test_ocl_evaluates_result_is_a_section_of_the_same_page_with_roc_curves(study, url, tmp_path):
    evaluation = evaluation_of(study)
    path = write_study_report(study, url, tmp_path / "new" / "folder" / "page.html", evaluation=evaluation)
    page = path.read_text()
    assert page.count("id='answer-layer'") == 1 and "Held-out test" in page
    assert "Effusion" in page and "0.9248" not in page  # per class; CheXNet's Cardiomegaly is not among the outputs
    assert 'id="plot-roc"' in page
    assert "id='calibration'" in page and "id='operating-points'" in page and "sens@spec90" in page
    assert "id='subgroups'" in page and "<td class=l>sex</td><td class=l>F</td><td>60</td>" in page
    data = report_data(study, url, evaluation=evaluation)
    assert set(data.evaluation["roc"]) == {"Effusion", "Nodule"}
    assert data.evaluation["clinical"]["calibration"]["Nodule"]["temperature"] > 0
    rendered = render_html(data)  # data first, picture second: the same page from the gathered data
    assert "Held-out test" in rendered and f">{BEST}<" in rendered


def test_external_validation_and_saliency_are_sections_of_the_test_result(study, url, tmp_path):
    """Planted: one external dataset that lacks one output, and two Grad-CAM pictures of which one
    is missing on disk; a failed sanity check is a warning, not a footnote."""
    import dataclasses

    from sweep.results import SaliencyMaps

    interval = {"estimate": 0.71, "low": 0.62, "high": 0.8}
    external = {
        "name": "hospital-b", "images": 40, "patients": 38, "left_out": 2, "mean_auroc": interval,
        "outputs": {
            "Effusion": {"counterpart": "Pleural Effusion", "images": 40, "positives": 12, "auroc": interval,
                         "ece": interval, "rates": {k: interval for k in ("sensitivity", "specificity", "ppv", "npv")}},
            "Nodule": {"counterpart": None, "images": 0, "positives": 0, "auroc": None},
        },
    }  # fmt: skip
    examples = [
        {"output": "Effusion", "kind": kind, "score": 0.9, "threshold": 0.5, "file": f"effusion-{i}.jpg"}
        for i, kind in enumerate(("true positive", "false positive"))
    ]
    sanity = {"images": 2, "mean": 0.81, "low": 0.7, "high": 0.9, "passed": False, "limit": 0.5}
    saliency = SaliencyMaps(examples, sanity, {"effusion-0.jpg": b"\xff\xd8\xff planted"})
    evaluation = dataclasses.replace(evaluation_of(study), external=(external,), saliency=saliency)
    output = tmp_path / "page.html"
    saliency.write(output.with_suffix(".saliency"))
    page = write_study_report(study, url, output, evaluation=evaluation).read_text()
    assert "id='external'" in page and "<th>hospital-b</th>" in page and "not in the data" in page
    assert "38 patients; 2 image(s) of the study's own patients left out" in page
    assert page.count("src='data:image/jpeg;base64,") == 1 and "picture not found" in page
    assert "Sanity check failed:" in page and "Do not read them as evidence" in page
    passed = dataclasses.replace(saliency, sanity={**sanity, "mean": 0.1, "low": 0.0, "high": 0.2, "passed": True})
    page = write_study_report(study, url, output, evaluation=dataclasses.replace(evaluation, saliency=passed)).read_text()
    assert "Sanity check passed:" in page and "Sanity check failed" not in page


# --- picture second ---------------------------------------------------------------------------------


def test_the_page_is_self_contained_with_plotly_once_and_fixed_plot_heights(study, url, tmp_path):
    page = write_study_report(study, url, tmp_path / "page.html").read_text()
    assert page.count("plotly.js v") == 1 and page.count("window.PlotlyConfig") == 1  # the bundle, once
    assert "<script src=" not in page  # opens offline
    assert re.findall(r'<div id="plot-(\w+)" class="plotly-graph-div"', page) == ["profile", "history"]
    # plotly wraps each plot in a div of the figure's height: fixed pixels, never a share of the window
    assert re.findall(r'<div style="height:([^;]*); width:100%;">', page) == ["440px", "340px"]
    first = page.index("id='answer'")
    assert first < page.index("id='profile'") < page.index("id='strategies'") < page.index("id='history'")
    assert page.index("id='history'") < page.index("id='data'") < page.index("id='reproduce'")
    assert f"<span class='layer' id='answer-layer'>{BEST}</span>" in page
    assert "each chosen on the other half" in page and "is the configuration ocl evaluate reuses" in page
    assert "@media print" in page and LEAK in page


# --- the CLI ----------------------------------------------------------------------------------------


def run_ocl(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "sweep", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def one_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_ocl_report_defaults_to_the_only_study_and_its_path(study, url, tmp_path):
    result = run_ocl(tmp_path, "report", "--storage", url)
    assert result.returncode == 0, result.stderr
    page = tmp_path / "studies" / "reports" / f"{STUDY}.html"
    assert page.exists() and f"wrote {Path('studies/reports') / f'{STUDY}.html'}" in result.stdout
    assert BEST in page.read_text()


def test_ocl_report_creates_a_missing_output_folder_and_writes_into_a_folder(study, url, tmp_path):
    result = run_ocl(tmp_path, "report", "--storage", url, "--study", STUDY, "--output", "a/b/answer.html")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a" / "b" / "answer.html").exists()
    result = run_ocl(tmp_path, "report", "--storage", url, "--output", "a")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a" / f"{STUDY}.html").exists()


def test_ocl_report_bad_input_is_one_error_line(url, tmp_path):
    planted_study(url, name="first", trials_per_candidate=0)
    planted_study(url, name="second", trials_per_candidate=0)
    optuna.create_study(study_name="not-ocl", storage=url)  # another tool's study is never offered
    unknown = one_error(run_ocl(tmp_path, "report", "--storage", url, "--study", "nope"))
    assert unknown == "error: --study nope: no such OCL study in this storage (studies: first, second)"
    several = one_error(run_ocl(tmp_path, "report", "--storage", url))
    assert "--study" in several and "first, second" in several and "not-ocl" not in several

    missing = one_error(run_ocl(tmp_path, "report", "--storage", f"sqlite:///{tmp_path / 'missing.db'}"))
    assert "no database at" in missing and not (tmp_path / "missing.db").exists()
    other = tmp_path / "other.db"
    optuna.create_study(study_name="not-ocl", storage=f"sqlite:///{other}")
    empty = one_error(run_ocl(tmp_path, "report", "--storage", f"sqlite:///{other}"))
    assert "no OCL study there" in empty and "ocl sweep" in empty
    assert not list(tmp_path.rglob("*.html"))


# --- ocl dashboard ----------------------------------------------------------------------------------


def test_ocl_dashboard_on_a_taken_port_names_the_port_and_the_flag(study, url, tmp_path):
    pytest.importorskip("optuna_dashboard")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = one_error(run_ocl(tmp_path, "dashboard", "--storage", url, "--port", str(port), timeout=60))
    assert f"--port {port}" in line and "already in use" in line and f"--port {port + 1}" in line


# --- a real sweep -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_ocl_report_on_a_real_sweep_states_the_sweeps_answer(small_sweep, tmp_path):
    root, env, storage = own_copy(small_sweep, tmp_path)
    printed = " ".join(small_sweep.result.stdout.split())  # the sweep's own closing lines, unwrapped
    answer = study_answer(optuna.load_study(study_name=SWEPT_STUDY, storage=storage), storage)
    assert f"answer: {answer.sentence()}" in printed
    result = run_swept(root, env, "report", "--storage", storage, "--output", "out/report.html")
    assert result.returncode == 0, result.stderr
    page = (root / "out" / "report.html").read_text()
    study = optuna.load_study(study_name=SWEPT_STUDY, storage=storage)
    data = report_data(study, storage)
    assert data.answer["answer"] == answer.sentence()
    assert html_text(answer.sentence()) in page
    top = answer.best or answer.candidates[0]
    assert f"id='answer-layer'>{top.layer}</span>" in page
    assert data.counts["finished"] == TRIALS and len(data.history) == TRIALS


def html_text(text: str) -> str:
    import html

    return html.escape(text)


@pytest.mark.parametrize("width", [80, 160])
def test_the_sweeps_terminal_table_keeps_each_layer_on_one_line(study, url, monkeypatch, width):
    """Both strategies side by side used to wrap every score over two lines in an 80-column terminal."""
    import io
    import re

    from rich.console import Console

    import sweep.cli._sweep as sweep_cli
    from sweep.api import sweep_result

    terminal = Console(width=width, record=True, file=io.StringIO())
    monkeypatch.setattr(sweep_cli, "console", terminal)
    sweep_cli._print_summary(sweep_result(study, url))
    lines = terminal.export_text().splitlines()
    assert max(len(line) for line in lines) <= width
    score = re.compile(r"\d\.\d{3} \[\d\.\d{2}, \d\.\d{2}\] ×\d+")
    for layer in LAYERS:
        (row,) = [line for line in lines if re.search(rf"\b{layer}\b", line) and score.search(line)]
        assert len(score.findall(row)) == 2, row  # feature extraction and fine-tuning, each whole
    assert ("depth" in "\n".join(lines)) == (width == 160)  # the narrow table drops the depth column


def test_a_later_ocl_report_shows_the_stored_calibration_operating_points_and_subgroups(study, url):
    from sweep.results import evaluation_summary

    stored = evaluation_summary(evaluation_of(study), "report.html", "model.keras")
    study.set_user_attr(records.EVALUATION, json.loads(json.dumps(stored)))  # as the storage keeps it
    page = render_html(report_data(study, url))
    assert "id='calibration'" in page and "id='operating-points'" in page and "id='subgroups'" in page
