"""Every chapter's pair (MyST text + notebook) comes back byte for byte when jupytext syncs it or
JupyterLab saves it, so working in Lab leaves a clean checkout clean and nbval's outputs in place.

Each test works in a temporary copy of the book and of ``jupytext.toml`` (file times kept)."""

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from jupytext.async_contentsmanager import AsyncTextFileContentsManager
from jupytext.cli import jupytext

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(path.stem for path in (ROOT / "book").glob("*.ipynb"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "book", tmp_path / "book")
    shutil.copy2(ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    return tmp_path


def book_files(project: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (project / "book").iterdir() if path.is_file()}


def changed(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    """The files added, removed or rewritten with other bytes."""
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def lab_save(project: Path, path: str, edit=None) -> None:
    """Open ``path`` and save it as JupyterLab does: through jupytext's contents manager, the
    notebook travelling as JSON both ways; ``edit`` may change it in between."""
    manager = AsyncTextFileContentsManager(root_dir=str(project))
    notebook = json.loads(json.dumps(asyncio.run(manager.get(path))["content"]))
    if edit:
        edit(notebook)
    asyncio.run(manager.save({"type": "notebook", "format": "json", "content": notebook}, path))


def test_sync_over_every_chapter_changes_nothing(project):
    before = book_files(project)
    assert jupytext(["--sync", "--quiet", *(str(project / "book" / f"{name}.md") for name in CHAPTERS)]) == 0
    assert changed(before, book_files(project)) == set()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_lab_save_rewrites_the_pair_unchanged(project, chapter):
    before = book_files(project)
    lab_save(project, f"book/{chapter}.ipynb")
    assert changed(before, book_files(project)) == set()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_lab_save_of_an_edit_changes_that_cell_only(project, chapter):
    text, notebook = (project / "book" / f"{chapter}.md").read_text(), project / "book" / f"{chapter}.ipynb"
    cells = json.loads(notebook.read_text())["cells"]
    first = next(index for index, cell in enumerate(cells) if cell["cell_type"] == "code")
    source = "".join(cells[first]["source"])

    def edit(opened: dict) -> None:
        opened["cells"][first]["source"] = source + "\n# edited"

    lab_save(project, f"book/{chapter}.ipynb", edit)
    assert (project / "book" / f"{chapter}.md").read_text() == text.replace(source, source + "\n# edited", 1)
    saved = json.loads(notebook.read_text())["cells"]
    assert [cell.get("outputs") for cell in saved] == [cell.get("outputs") for cell in cells]
    assert ["".join(cell["source"]) for cell in saved] == [
        "".join(cell["source"]) + ("\n# edited" if index == first else "") for index, cell in enumerate(cells)]
