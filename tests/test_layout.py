"""The package's shape: the method at the root, the run pipeline in `runs/`, chapter helpers apart."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mpm"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_nothing_outside_analysis_imports_it():
    offenders = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                 if "analysis" not in path.relative_to(PACKAGE).parts
                 and any(name.startswith("mpm.analysis") for name in _imports(path))]
    assert offenders == []


def test_analysis_never_imports_the_command_line():
    offenders = [str(path.relative_to(PACKAGE)) for path in (PACKAGE / "analysis").rglob("*.py")
                 if any(name.startswith(("mpm.cli", "mpm.commands")) for name in _imports(path))]
    assert offenders == []


def test_the_root_holds_at_most_twelve_modules_and_build_model_lives_in_model():
    modules = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(modules) <= 12, modules
    assert "def build_model(" in (PACKAGE / "model.py").read_text(encoding="utf-8")


def test_the_method_does_not_import_the_run_pipeline_or_the_commands():
    method = ["config.py", "pooling.py", "backbones.py", "model.py", "losses.py", "mining.py", "io.py"]
    for name in method:
        assert not any(m.startswith(("mpm.runs", "mpm.commands", "mpm.data", "mpm.evaluation"))
                       for m in _imports(PACKAGE / name)), name
    for path in (PACKAGE / "runs").glob("*.py"):
        assert not any(m.startswith("mpm.commands") for m in _imports(path)), path.name


def test_figures_are_written_only_under_a_figures_root(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from mpm.analysis.figures import FIGURES_VARIABLE, save_figure

    figure, axis = plt.subplots()
    axis.plot([0, 1], [1, 0])
    monkeypatch.delenv(FIGURES_VARIABLE, raising=False)
    assert save_figure(figure, "chapter", "line") is None
    monkeypatch.setenv(FIGURES_VARIABLE, str(tmp_path))
    path = save_figure(figure, "chapter", "line", pd.DataFrame({"x": [0, 1], "y": [1, 0]}))
    assert path == tmp_path / "chapter" / "line.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "chapter" / "line.csv").read_text() == "x,y\n0,1\n1,0\n"
    first = path.read_bytes()
    save_figure(figure, "chapter", "line")
    assert path.read_bytes() == first
    plt.close(figure)
