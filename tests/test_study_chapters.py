"""The study chapters run through papermill with their parameters: on the smoke profile, a tiny
benchmark and an empty results store, ``train_missing=True`` trains the requested run, and the
chapter's tables and figures show it."""

import re
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
from tiny_benchmark import write_tiny_benchmark

from mpm.runs.studies import is_stored, study_configs

BOOK = Path(__file__).resolve().parents[1] / "book"

CHAPTERS = {
    "ablation": ("ablation", {"rows": ["(1) Baseline"]}, "(1) Baseline", "sq-map"),
    "thresholds": ("thresholds", {"thresholds": [0.5], "readings": ["gated"]}, "t=0.5 + gate",
                   "four-mode-scores"),
    "part_counts": ("parts", {"part_counts": [3]}, "3 parts", "sq-map"),
    "triplet_selection": ("selection", {"selectors": ["random"]}, "random", "sq-map"),
}
"""Chapter → (study, the parameters choosing one setting, its label, the figure that shows it)."""

LEFT_OUT = {"triplet_selection": {"long_seeds": []}}
"""Chapter → parameters that leave out a part of it too slow for a test (the factorial's 10-epoch stage 3)."""


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory) -> Path:
    return write_tiny_benchmark(tmp_path_factory.mktemp("tiny"))


def output_text(notebook: nbformat.NotebookNode) -> str:
    """Everything the code cells printed or displayed as text."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_a_study_chapter_trains_the_missing_run_and_shows_it(chapter, benchmark, tmp_path, monkeypatch):
    study, choice, label, figure = CHAPTERS[chapter]
    figures, results = tmp_path / "figures", tmp_path / "runs"
    monkeypatch.setenv("MPM_FIGURES", str(figures))
    parameters = {"profile_name": "smoke", "seeds": [0], "data_root": str(benchmark),
                  "results_root": str(results), "train_missing": True, **choice, **LEFT_OUT.get(chapter, {})}
    # run outside the project, so that the runs' checkpoints go to tmp_path/.cache
    papermill.execute_notebook(str(BOOK / f"{chapter}.ipynb"), str(tmp_path / "out.ipynb"),
                               parameters=parameters, cwd=str(tmp_path), progress_bar=False,
                               kernel_name="python3")
    runs = study_configs(study, "smoke", [0], data_root=str(benchmark), **choice)
    assert len(runs) == 1 and is_stored(runs[0].config, results)
    text = output_text(nbformat.read(tmp_path / "out.ipynb", as_version=4))
    assert f"1 of 1 requested runs of the {study} study are stored in {results}" in text
    assert re.search(r"\b0 of \d requested runs missing", text)
    shown = pd.read_csv(figures / chapter / f"{figure}.csv")
    assert shown[["setting", "seeds"]].drop_duplicates().values.tolist() == [[label, 1]]
