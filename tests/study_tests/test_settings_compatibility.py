"""Studies written before the house was rebuilt by concern (DataOptions nested in SweepSettings)
resume after it, under the same default names: the stored settings stay flat JSON.

The fixtures were written by the code of commit 39e2091 (before the restructuring):
``study-before-house.db`` by ``ocl sweep --trials 2 --weights none --image-size 32 --strategy
feature_extraction``, and ``study-names-before-house.json`` by that code's ``plan_sweep`` for
five flag sets (its stored settings and its default study name).
"""

from __future__ import annotations

import json
import shutil

import optuna
import pytest
from helpers import FIXTURES_DIR

from sweep.api import plan_sweep
from sweep.data import DataOptions
from sweep.results import default_study_name
from sweep.study import SweepSettings, records

OLD_STUDY = "nih-cxr14-sample-any-32px-fe-none"


@pytest.mark.parametrize("case", json.loads((FIXTURES_DIR / "study-names-before-house.json").read_text()))
def test_settings_stored_before_read_back_to_the_same_json_and_default_name(case):
    stored = json.dumps(case["settings"], sort_keys=True)
    settings = SweepSettings.from_json(stored)
    assert isinstance(settings.data_options, DataOptions)
    assert json.loads(settings.to_json()) == case["settings"]  # flat keys, today's names, nothing added
    assert default_study_name(settings) == case["name"]


@pytest.mark.parametrize("case", json.loads((FIXTURES_DIR / "study-names-before-house.json").read_text()))
def test_the_same_flags_plan_the_same_study_as_before(case, tmp_path):
    plan = plan_sweep(4, storage=f"sqlite:///{tmp_path / 'new.db'}", devices="cpu", **case["flags"])
    assert plan.study_name == case["name"]
    assert json.loads(plan.settings.to_json()) == case["settings"]


@pytest.mark.slow
def test_a_study_written_before_resumes_under_its_old_name(ocl, tmp_path):
    database = tmp_path / "before.db"
    shutil.copyfile(FIXTURES_DIR / "study-before-house.db", database)
    url = f"sqlite:///{database}"
    flags = ["--weights", "none", "--image-size", "32", "--strategy", "feature_extraction", "--storage", url]
    done = ocl("sweep", "--trials", "3", *flags, "--format", "json", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"study {OLD_STUDY}" in done.stderr  # the plan names the old study: it resumes, no new one
    summaries = optuna.get_all_study_summaries(url)
    assert [s.study_name for s in summaries] == [OLD_STUDY]
    study = optuna.load_study(study_name=OLD_STUDY, storage=url)
    finished = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) == 3 and json.loads(done.stdout)["finished"] == 3
    assert SweepSettings.from_json(study.user_attrs[records.SETTINGS]).data_options.task == "any"
