"""One name per network: what ``--weights`` accepts, and the label trials and the dictionary store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sweep.errors import OCLError
from sweep.model import Weights, parse_weights, weights_label


@pytest.mark.parametrize("text", ["none", "NONE", " None ", "imagenet", "ImageNet"])
def test_the_two_words_get_one_label_in_any_case(text: str):
    word = text.strip().lower()
    assert parse_weights(text, seed=3).label == word
    assert weights_label(text) == word  # a filter means what a sweep or a build stored


@pytest.mark.parametrize("text", ["random", "Random", " RANDOM "])
def test_random_is_refused_in_one_line_that_says_to_use_none(text: str):
    for parse in (parse_weights, weights_label):
        with pytest.raises(OCLError) as caught:
            parse(text)
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"--weights {text}: ") and "pass none" in message


def test_a_weights_file_is_labelled_by_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "densenet.weights.h5").write_bytes(b"not read by the parser")
    monkeypatch.chdir(tmp_path)
    absolute = str((tmp_path / "models" / "densenet.weights.h5").resolve())
    for text in ("models/densenet.weights.h5", "./models/../models/densenet.weights.h5", absolute):
        weights = parse_weights(text)
        assert weights.kind == "file" and weights.label == absolute
        assert weights_label(text) == absolute
    assert Weights("file", path=Path("models/densenet.weights.h5")).label == absolute


def test_the_strict_parser_refuses_what_the_filter_keeps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OCLError, match=r"^--weights gone\.h5: no such file; pass imagenet, none, or the path"):
        parse_weights("gone.h5")
    assert weights_label("gone.h5") == "gone.h5"  # a filter: the file may be gone, its rows are not
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(OCLError, match=r"^--weights notes\.txt: not a Keras weights file; expected one of \.weights\.h5"):
        parse_weights("notes.txt")


def test_weights_of_another_kind_are_a_bug_not_a_label():
    with pytest.raises(ValueError):
        Weights("random")
    with pytest.raises(ValueError):
        Weights("file")


def test_importing_the_dictionary_or_the_weights_loads_no_keras():
    script = (
        "import sys; import sweep.model._weights, layers_index, layers_index._views, layers_index._build, layers_index._store; "
        "from layers_index import dictionary_frame, build_dictionary, SCORE_KINDS; "
        "import sweep.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow'}))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_show_refuses_random_before_it_opens_anything(ocl, tmp_path: Path):
    result = ocl("dictionary", "show", "--weights", "random")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --weights random: ") and "pass none" in lines[0]
    assert not (tmp_path / "studies").exists()
