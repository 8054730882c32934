"""Differential fuzzing: random valid programs on fsim and on the RTL, compared
DRAM byte for DRAM byte. A counterexample is saved as an assembly file that
`vta run` and `vta asm` take directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vta.isa import Config, Program, disassemble

from .errors import SimError
from .fsim import Fsim
from .randprog import random_program


@dataclass
class Mismatch:
    seed: int
    reason: str
    path: Path | None = None


@dataclass
class FuzzReport:
    config: str
    programs: int = 0
    rtl_cycles: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _first_difference(program: Program, a: np.ndarray, b: np.ndarray) -> str:
    diff = np.flatnonzero(a != b)
    if not diff.size:
        return ""
    at = int(diff[0])
    where = f"byte {at:#x}"
    for s in program.segments:
        if s.addr <= at < s.addr + s.nbytes(program.config):
            where += f" (segment '{s.name}' + {at - s.addr})"
    return f"DRAM differs at {diff.size} bytes; first at {where}: fsim {a[at]}, rtl {b[at]}"


def _run(sim: object, program: Program, image: np.ndarray) -> tuple[np.ndarray | None, str]:
    sim.dram[: image.size] = image  # type: ignore[attr-defined]
    try:
        sim.run(program.insn_addr, len(program.insns))  # type: ignore[attr-defined]
    except SimError as e:
        return None, f"{type(e).__name__} ({e.code.name}): {e}"
    return np.array(sim.dram[: image.size]), ""  # type: ignore[attr-defined]


def fuzz(config: Config, n: int, seed: int = 0, phases: int = 3, outdir: str | Path = ".",
         make_rtl: Callable[[Config, int], object] | None = None,
         progress: Callable[[int], None] | None = None) -> FuzzReport:
    """Run ``n`` random programs (seeds ``seed`` .. ``seed+n-1``) on both simulators.

    Each program starts from fresh simulators (zeroed buffers), so a saved
    counterexample reproduces on its own. They go to ``outdir/fuzz_<config>_<seed>.s``.
    """
    if make_rtl is None:
        from .rtl import RtlSim

        make_rtl = lambda c, size: RtlSim(c, size)  # noqa: E731
    dram = 1 << 16
    report = FuzzReport(config.name)
    for i in range(n):
        s = seed + i
        program = random_program(config, s, phases)
        image = program.dram_image()
        fsim, rtl = Fsim(config, dram), make_rtl(config, dram)
        before = getattr(rtl, "cycles", 0)
        a, err_a = _run(fsim, program, image)
        b, err_b = _run(rtl, program, image)
        report.programs += 1
        report.rtl_cycles += getattr(rtl, "cycles", 0) - before
        reason = ""
        if err_a or err_b:
            reason = f"fsim: {err_a or 'ok'}; rtl: {err_b or 'ok'}"
        elif a is not None and b is not None:
            reason = _first_difference(program, a, b)
        if reason:
            path = Path(outdir) / f"fuzz_{config.name}_{s}.s"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# vta fuzz counterexample, seed {s}: {reason}\n" + disassemble(program))
            report.mismatches.append(Mismatch(s, reason, path))
        if progress:
            progress(i + 1)
    return report
