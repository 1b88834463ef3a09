"""Fixtures shared by the training-level tests: one torch thread, the tiny benchmark, the smoke config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mpm.config import ExperimentConfig, profile
from tiny_benchmark import write_tiny_benchmark


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: fast on a shared 2-core machine and the same numerics every time."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory) -> Path:
    """The tiny Market-layout benchmark of `tiny_benchmark`, written once per test module."""
    return write_tiny_benchmark(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def smoke(benchmark) -> ExperimentConfig:
    """The smoke profile on the tiny benchmark."""
    return profile("smoke").replace(root=str(benchmark))
