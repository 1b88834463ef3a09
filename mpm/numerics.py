"""The opt-in portable-numerics switch for CPU runs.

By default torch's CPU kernels (oneDNN, MKL, ATen's vectorised code) follow the CPU's widest
instruction set, so the same config and seed give the same digits on one machine but not on
another. Setting ``MPM_PORTABLE_NUMERICS=1`` before the ``mpm`` package is imported pins all three
to AVX2 code paths, which x86-64 machines since 2013 share; runs are then slower (see
``benchmarks/training.py``). The switch is an environment variable, not a config field, so no
config hash changes; every record's ``env.json`` says whether it was on.
"""

from __future__ import annotations

import os

PORTABLE_SWITCH = "MPM_PORTABLE_NUMERICS"
PORTABLE_SETTINGS = {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
NUMERICS_VARIABLES = tuple(PORTABLE_SETTINGS)


def portable_numerics() -> bool:
    """Whether the portable-numerics switch is on."""
    return os.environ.get(PORTABLE_SWITCH, "") not in ("", "0")


def apply_portable_numerics() -> None:
    """Pin the CPU kernels when the switch is on (must run before torch is imported)."""
    if portable_numerics():
        for name, value in PORTABLE_SETTINGS.items():
            os.environ.setdefault(name, value)
