"""The one dataset-root rule: a config's relative root is from the project root, a root typed on the
command line is from the working directory and stored project-relative."""

from __future__ import annotations

from pathlib import Path

from mpm.cli import build_parser
from mpm.commands.train import load_config
from mpm.config import profile
from mpm.runs.paths import dataset_root, project_root

PROJECT = Path(__file__).resolve().parents[1]


def test_a_relative_root_is_taken_from_the_project_root(monkeypatch):
    monkeypatch.chdir(PROJECT / "book")
    assert dataset_root("data/synthetic") == project_root() / "data/synthetic" == PROJECT / "data/synthetic"
    assert dataset_root(profile("cpu")) == PROJECT / "data/synthetic"
    assert dataset_root("/elsewhere/market") == Path("/elsewhere/market")


def test_train_takes_a_typed_root_from_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(PROJECT / "book")
    parse = build_parser().parse_args
    assert load_config(parse(["train", "--profile", "cpu", "--set", "root=../data/other"])).root == "data/other"
    assert load_config(parse(["train", "--profile", "cpu", "--set", f"root={tmp_path}"])).root == str(tmp_path)
    assert load_config(parse(["train", "--profile", "cpu"])).root == "data/synthetic"
    config = tmp_path / "config.yaml"
    config.write_text("profile: cpu\nroot: data/kept\n", encoding="utf-8")
    assert load_config(parse(["train", "--config", str(config)])).root == "data/kept"
