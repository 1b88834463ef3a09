"""No committed notebook output and no file under results/ names a folder of the machine that made
it: records keep the data's root relative to the project, chapters print project-relative paths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
ABSOLUTE_PATH = re.compile(r"(?<![\w:/.<~-])/(?:home|root|tmp|work|Users|mnt|var|opt|srv|data|private)/[^\s\"'<>]*")
"""A POSIX path from the root of a machine's usual top-level folders (URLs and relative paths
do not match: a path is only absolute when nothing word-like precedes its first slash)."""
TEXT_SUFFIXES = {".json", ".csv", ".txt", ".yaml", ".yml", ".md"}


def absolute_paths(text: str) -> list[str]:
    return ABSOLUTE_PATH.findall(text)


def test_the_pattern_finds_machine_paths_and_nothing_else():
    assert absolute_paths('"root": "/work/main/data/synthetic"') == ["/work/main/data/synthetic"]
    assert absolute_paths("stored in /home/ana/mpm/results/runs\n") == ["/home/ana/mpm/results/runs"]
    assert absolute_paths("see https://example.org/tmp/x, data/synthetic, 1/2, person/background") == []


def _notebook_outputs(path: Path) -> str:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join(json.dumps(output) for cell in notebook["cells"] for output in cell.get("outputs", []))


@pytest.mark.parametrize("notebook", sorted((PROJECT / "book").glob("*.ipynb")), ids=lambda path: path.stem)
def test_committed_notebook_outputs_hold_no_absolute_path(notebook):
    assert absolute_paths(_notebook_outputs(notebook)) == []


def test_no_file_under_results_holds_an_absolute_path():
    found = {}
    for path in sorted((PROJECT / "results").rglob("*")):
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            paths = absolute_paths(path.read_text(encoding="utf-8", errors="replace"))
            if paths:
                found[str(path.relative_to(PROJECT))] = paths[:2]
    assert found == {}
