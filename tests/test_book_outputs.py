"""The committed notebooks as a real check: outputs present, few cells exempt from comparison, typed
parameters, the README's papermill example, and an nbval run that fails when a stored number changes."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from mpm.runs.studies import results_folder, study_configs

PROJECT = Path(__file__).resolve().parents[1]
BOOK = PROJECT / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
IGNORE_TAG = "nbval-ignore-output"
MAX_IGNORED = 3


def code_cells(path: Path) -> list:
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_carry_their_outputs(notebook):
    cells = code_cells(notebook)
    assert all(cell.execution_count is not None for cell in cells), f"run `make notebooks` for {notebook.name}"
    assert any(cell.outputs for cell in cells)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_at_most_three_cells_are_exempt_from_the_comparison(notebook):
    ignored = [cell for cell in code_cells(notebook) if IGNORE_TAG in cell.metadata.get("tags", [])]
    assert len(ignored) <= MAX_IGNORED


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_parameter_has_a_type_and_a_meaning(notebook):
    parameters = papermill.inspect_notebook(str(notebook))
    assert parameters
    for name, parameter in parameters.items():
        assert parameter["inferred_type_name"] not in ("None", ""), (notebook.name, name)
        assert parameter["help"], (notebook.name, name)


def test_the_readmes_papermill_example_runs(tmp_path):
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"`(papermill book/\S+\.ipynb out\.ipynb[^`]*)`", readme).group(1)
    words = command.split()
    out = tmp_path / "out.ipynb"
    words[2] = str(out)
    subprocess.run([sys.executable, "-m", *words], cwd=PROJECT, check=True, capture_output=True)
    executed = nbformat.read(out, as_version=4)
    injected = [cell for cell in executed.cells if "injected-parameters" in cell.metadata.get("tags", [])]
    assert len(injected) == 1 and "threshold = 0.6" in injected[0].source


def test_nbval_fails_when_a_stored_number_changes(tmp_path):
    """In a copy of the project, the Baseline's stored SQ mAP is changed in the record of every seed the
    ablation chapter reads (its ``seeds`` parameter); the chapter's table prints their mean, so nbval must
    report a mismatch that shows the new mean."""
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("pyproject.toml",):
        shutil.copy(PROJECT / name, copy / name)
    for name in ("mpm", "data"):
        (copy / name).symlink_to(PROJECT / name)
    shutil.copytree(PROJECT / "results", copy / "results")
    shutil.copytree(BOOK, copy / "book", ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
    chapter_seeds = ast.literal_eval(papermill.inspect_notebook(str(BOOK / "ablation.ipynb"))["seeds"]["default"])
    baseline = study_configs("ablation", "cpu", chapter_seeds, rows=["(1) Baseline"])
    folders = [results_folder(run.config, copy / "results" / "runs") for run in baseline]
    stored = [folder / "metrics.json" for folder in folders if (folder / "metrics.json").is_file()]
    assert stored, "the Baseline of the ablation has no stored record"
    for metrics in stored:
        record = json.loads(metrics.read_text())
        record["results"]["SQ"]["mAP"] = 0.987654
        metrics.write_text(json.dumps(record))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
               "--nbval-sanitize-with", "book/nbval_sanitize.cfg", "book/ablation.ipynb"]
    result = subprocess.run(command, cwd=copy, capture_output=True, text=True)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "98.8" in result.stdout
