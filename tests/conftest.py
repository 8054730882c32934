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


def _rtl_problem() -> str | None:
    from vta.sim.rtl.build import toolchain_problem

    return toolchain_problem()


RTL_PROBLEM = _rtl_problem()
needs_rtl = pytest.mark.skipif(RTL_PROBLEM is not None, reason=f"cannot build the RTL simulation: {RTL_PROBLEM}")
"""Skips a test that builds the core with Verilator where the toolchain is missing."""


class RtlCheck:
    """When ``enabled`` (tests/rtl/test_core_programs.py sets it), every program the fsim
    suites run is also run on the RTL under Verilator, and the two must agree: same DRAM
    bytes, or the same error about the same instruction."""

    enabled = False

    @classmethod
    def check(cls, config: Config, image: np.ndarray, insn_addr: int, insn_count: int,
              segments: list[Segment] = ()) -> None:  # type: ignore[assignment]
        if not cls.enabled:
            return
        from vta.sim.fuzz import compare_runs
        from vta.sim.rtl import RtlSim

        size = -(-image.size // 4096) * 4096
        reason = compare_runs(config, image, insn_addr, insn_count, RtlSim(config, size), segments)
        assert not reason, f"fsim and rtl disagree on {config.name}: {reason}"

    @classmethod
    def check_program(cls, prog: Program, dram_bytes: int) -> None:
        if cls.enabled:
            image = np.zeros(dram_bytes, np.uint8)
            base = prog.dram_image()
            image[: base.size] = base
            cls.check(prog.config, image, prog.insn_addr, len(prog.insns), prog.segments)


def run(config: Config, insns: list[Insn], segments: list[Segment], **device_opts: object) -> dict[str, np.ndarray]:
    """Run a program on a fresh fsim device and return its outputs (and check the RTL agrees, when enabled)."""
    prog = Program(config, insns, segments)
    dram = max(1 << 20, prog.dram_bytes)
    outputs = run_program(prog, FsimDevice(config, dram_bytes=dram, **device_opts)).outputs
    RtlCheck.check_program(prog, dram)
    return outputs


def seg_layout(config: Config, specs: list[tuple[str, str, np.ndarray, bool]]) -> list[Segment]:
    """Place segments one after another, aligned to every element size."""
    align = max(config.elem_bytes(m) for m in range(5))
    out, addr = [], 0
    for name, dtype, values, output in specs:
        s = Segment(name, addr, dtype, values, output)
        out.append(s)
        addr = -(-(addr + s.nbytes(config)) // align) * align
    return out
