"""The environment files agree, and the command line starts."""

import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from mpm.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_the_package_with_its_dev_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert environment["dependencies"] == ["python=3.11", "pip", {"pip": ["-e .[dev]"]}]
    assert "dev" in extras


def test_cli_help_lists_the_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mpm")
