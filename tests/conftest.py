"""Shared fixtures: the configs every suite runs on, and program helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from vta.isa import PRESETS, Config, Insn, Program, Segment  # noqa: E402
from vta.runtime import FsimDevice, run_program  # noqa: E402

CONFIG_NAMES = ["default", "tiny", "batch4", "nonsquare"]


@pytest.fixture(params=CONFIG_NAMES)
def cfg(request: pytest.FixtureRequest) -> Config:
    return PRESETS[request.param]


def run(config: Config, insns: list[Insn], segments: list[Segment], **device_opts: object) -> dict[str, np.ndarray]:
    """Run a program on a fresh fsim device and return its outputs."""
    prog = Program(config, insns, segments)
    return run_program(prog, FsimDevice(config, dram_bytes=max(1 << 20, prog.dram_bytes), **device_opts)).outputs


def seg_layout(config: Config, specs: list[tuple[str, str, np.ndarray, bool]]) -> list[Segment]:
    """Place segments one after another, aligned to every element size."""
    align = max(config.elem_bytes(m) for m in range(5))
    out, addr = [], 0
    for name, dtype, values, output in specs:
        s = Segment(name, addr, dtype, values, output)
        out.append(s)
        addr = -(-(addr + s.nbytes(config)) // align) * align
    return out
