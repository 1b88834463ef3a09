"""The book's chapters: every text file has its notebook twin, in sync, with a parameters cell."""

from pathlib import Path

import jupytext
import pytest
import yaml

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(path for path in BOOK.glob("*.md") if jupytext.read(path).cells
                  and any(cell.cell_type == "code" for cell in jupytext.read(path).cells))


def code_sources(notebook) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def test_every_chapter_in_the_table_of_contents_exists():
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = [toc["root"]] + [chapter["file"] for chapter in toc["chapters"]]
    for name in files:
        assert (BOOK.parent / f"{name}.md").is_file(), name
    assert {f"book/{path.stem}" for path in CHAPTERS} <= set(files)


@pytest.mark.parametrize("text_file", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_twin_matches_the_text_file(text_file):
    twin = text_file.with_suffix(".ipynb")
    assert twin.is_file(), f"{twin} is missing: run `jupytext --sync {text_file}`"
    text, notebook = jupytext.read(text_file), jupytext.read(twin)
    assert code_sources(text) == code_sources(notebook), f"run `jupytext --sync {text_file}`"


@pytest.mark.parametrize("text_file", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_one_parameters_cell_first_among_code_cells(text_file):
    cells = [cell for cell in jupytext.read(text_file).cells if cell.cell_type == "code"]
    tagged = [i for i, cell in enumerate(cells) if "parameters" in cell.metadata.get("tags", [])]
    assert tagged == [0]
