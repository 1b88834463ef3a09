"""Typed chapter parameters: what ``papermill -p`` and ``-y`` pass is typed, or refused in one line
naming the parameter, the value and what is allowed (reliability round two, row 3)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mpm.analysis.parameters import (ParameterError, flag, integer, list_of, number, one_of, study_setting,
                                     text, typed_parameters)

BOOK = Path(__file__).resolve().parents[1] / "book"
FLAG_ALLOWED = "expected true or false (any case)"
SEEDS_ALLOWED = "expected a non-empty list (a YAML list such as [x, y], or one item), each item an integer ≥ 0"
THRESHOLDS_ALLOWED = ("expected a non-empty list (a YAML list such as [x, y], or one item), each item a number "
                      "in [0, 1]")


def refusal(value: object, rule) -> str:
    with pytest.raises(ParameterError) as caught:
        typed_parameters({"p": value}, p=rule)
    return str(caught.value)


@pytest.mark.parametrize("value, typed", [("false", False), ("FALSE", False), ("False", False), (" true ", True),
                                          ("TRUE", True), (True, True), (False, False)])
def test_a_flag_is_true_or_false_in_any_case(value, typed):
    assert typed_parameters({"train_missing": value}, train_missing=flag()) == {"train_missing": typed}


@pytest.mark.parametrize("value", ["maybe", "yes", "no", "1", "", 1, 0, None, [True]])
def test_a_flag_refuses_anything_else_naming_the_parameter(value):
    with pytest.raises(ParameterError) as caught:
        typed_parameters({"train_missing": value}, train_missing=flag())
    assert str(caught.value) == f"chapter parameter train_missing = {value!r} is not allowed: {FLAG_ALLOWED}"
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("value, typed", [([0.2, 1], [0.2, 1.0]), ("[0.2, 0.4]", [0.2, 0.4]), (0.4, [0.4]),
                                          (0, [0.0]), ((0.0, 1.0), [0.0, 1.0])])
def test_a_list_of_numbers_is_a_list_yaml_text_or_one_number(value, typed):
    assert typed_parameters({"thresholds": value}, thresholds=list_of(number(0, 1))) == {"thresholds": typed}


@pytest.mark.parametrize("value", ["abc", "[0.2, abc]", "[0.2,", [1.5], [-0.1], [True], [], "[]", "0.2, 0.4",
                                   [float("nan")], "[a: 1]"])
def test_a_bad_threshold_list_names_the_parameter(value):
    with pytest.raises(ParameterError) as caught:
        typed_parameters({"thresholds": value}, thresholds=list_of(number(0, 1)))
    assert str(caught.value) == f"chapter parameter thresholds = {value!r} is not allowed: {THRESHOLDS_ALLOWED}"


@pytest.mark.parametrize("value", [["a"], [0.5], ["1"], [-1], [False], "a"])
def test_seeds_are_integers(value):
    with pytest.raises(ParameterError) as caught:
        typed_parameters({"seeds": value}, seeds=list_of(integer(0)))
    assert str(caught.value) == f"chapter parameter seeds = {value!r} is not allowed: {SEEDS_ALLOWED}"
    assert typed_parameters({"seeds": "[0, 1]"}, seeds=list_of(integer(0))) == {"seeds": [0, 1]}


def test_a_list_that_may_be_empty_takes_none_and_still_checks_its_items():
    seeds = list_of(integer(0), empty=True)
    assert typed_parameters({"seeds": "[]"}, seeds=seeds) == {"seeds": []}
    assert typed_parameters({"seeds": []}, seeds=seeds) == {"seeds": []}
    assert typed_parameters({"seeds": "[2]"}, seeds=seeds) == {"seeds": [2]}
    assert refusal("[-1]", seeds) == (
        "chapter parameter p = '[-1]' is not allowed: expected a list ([] for none) (a YAML list such as "
        "[x, y], or one item), each item an integer ≥ 0")


def test_choices_and_rows_are_checked():
    readings = list_of(one_of(["text", "gated"]))
    assert typed_parameters({"readings": "gated"}, readings=readings) == {"readings": ["gated"]}
    assert refusal("[text, both]", readings) == (
        "chapter parameter p = '[text, both]' is not allowed: expected a non-empty list (a YAML list such as "
        "[x, y], or one item), each item one of ['text', 'gated']")
    assert refusal("6", one_of([3, 6])) == "chapter parameter p = '6' is not allowed: expected one of [3, 6]"
    rows = list_of(study_setting("ablation"))
    label = "input: RGB × mask (reference)"
    assert typed_parameters({"rows": label}, rows=rows) == {"rows": [label]}
    assert typed_parameters({"rows": '["(1) Baseline"]'}, rows=rows) == {"rows": ["(1) Baseline"]}
    assert "chapter parameter p = '(8) Unknown' is not allowed: expected one of ['(1) Baseline'," in refusal(
        "(8) Unknown", study_setting("ablation"))
    assert refusal(7, text()) == "chapter parameter p = 7 is not allowed: expected a string"
    assert refusal(9, integer(1, 8)) == "chapter parameter p = 9 is not allowed: expected an integer in [1, 8]"


def test_the_first_refused_parameter_is_reported_and_the_others_typed():
    rules = dict(train_missing=flag(), seed=integer(0))
    assert typed_parameters({"train_missing": "False", "seed": 3}, **rules) == {"train_missing": False, "seed": 3}
    with pytest.raises(ParameterError, match=r"^chapter parameter seed = 'x' is not allowed"):
        typed_parameters({"train_missing": "false", "seed": "x"}, **rules)


@pytest.mark.parametrize("arguments, line", [
    (["-p", "train_missing", "maybe"], f"chapter parameter train_missing = 'maybe' is not allowed: {FLAG_ALLOWED}"),
    (["-p", "thresholds", "abc"], f"chapter parameter thresholds = 'abc' is not allowed: {THRESHOLDS_ALLOWED}"),
    (["-y", "seeds: [a]"], f"chapter parameter seeds = ['a'] is not allowed: {SEEDS_ALLOWED}"),
])
def test_papermill_stops_the_thresholds_chapter_at_a_bad_parameter_before_any_run(arguments, line, tmp_path):
    output = tmp_path / "out.ipynb"
    command = [sys.executable, "-m", "papermill", str(BOOK / "thresholds.ipynb"), str(output), *arguments,
               "-p", "results_root", str(tmp_path / "runs"), "--cwd", str(tmp_path), "--no-progress-bar"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 1
    assert f"ParameterError: {line}" in finished.stderr
    cells = [cell for cell in nbformat.read(output, as_version=4).cells if cell.cell_type == "code"]
    injected = next(i for i, cell in enumerate(cells) if "injected-parameters" in cell.metadata.get("tags", []))
    failed = cells[injected + 1]
    assert [item.get("ename") for item in failed.outputs] == ["ParameterError"]
    assert "typed_parameters(" in failed.source
    assert all(cell.execution_count is None for cell in cells[injected + 2:])
    assert not (tmp_path / "runs").exists()
