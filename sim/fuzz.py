"""Differential fuzzing: random valid programs on fsim and on the RTL, compared
DRAM byte for DRAM byte. A counterexample is saved as an assembly file that
`vta run` and `vta asm` take directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vta.isa import Config, Program, Segment, disassemble

from .errors import SimError
from .fsim import Fsim
from .randprog import random_program
from .rtl import RtlSim


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


def _first_difference(segments: list[Segment], config: Config, a: np.ndarray, b: np.ndarray) -> str:
    diff = np.flatnonzero(a != b)
    if not diff.size:
        return ""
    at = int(diff[0])
    where = f"byte {at:#x}"
    for s in segments:
        if s.addr <= at < s.addr + s.nbytes(config):
            where += f" (segment '{s.name}' + {at - s.addr})"
    return f"DRAM differs at {diff.size} bytes; first at {where}: fsim {a[at]}, rtl {b[at]}"


def _run(sim: object, image: np.ndarray, insn_addr: int, insn_count: int,
         **opts: int) -> tuple[np.ndarray | None, SimError | None, object]:
    """DRAM after the run (or None), the error (or None), what ``run`` returned."""
    sim.dram[: image.size] = image  # type: ignore[attr-defined]
    try:
        result = sim.run(insn_addr, insn_count, **opts)  # type: ignore[attr-defined]
    except SimError as e:
        return None, e, None
    return np.array(sim.dram[: image.size]), None, result  # type: ignore[attr-defined]


def _describe(e: SimError | None) -> str:
    return f"{type(e).__name__} ({e.code.name}): {e}" if e is not None else "ok"


def compare_runs(config: Config, image: np.ndarray, insn_addr: int, insn_count: int, rtl: object,
                 segments: list[Segment] = ()) -> str:  # type: ignore[assignment]
    """Run the stream at ``insn_addr`` of the DRAM ``image`` on a fresh fsim and on ``rtl``
    (an `RtlSim`, or any object with ``dram`` and ``run``); return why they disagree, or
    "" when they agree.

    They agree when both finish with identical DRAM, or both stop with the same error
    code about the same instruction (the messages differ: the RTL knows less than fsim).
    ``segments`` only name the place of a difference.
    """
    fsim = Fsim(config, len(rtl.dram))  # type: ignore[attr-defined]
    a, err_a, stats = _run(fsim, image, insn_addr, insn_count)
    # A hang shows as a cycle limit far above what the timing model expects, not as a stalled test.
    estimate = stats.cycles if stats is not None else 0  # type: ignore[attr-defined]
    limit = {"max_cycles": max(100_000, 50 * estimate)} if isinstance(rtl, RtlSim) else {}
    b, err_b, _ = _run(rtl, image, insn_addr, insn_count, **limit)
    if err_a is not None or err_b is not None:
        same = err_a is not None and err_b is not None and err_a.code == err_b.code and \
            err_a.insn_index == err_b.insn_index
        return "" if same else f"fsim: {_describe(err_a)}; rtl: {_describe(err_b)}"
    return _first_difference(list(segments), config, a, b)  # type: ignore[arg-type]


def differential(program: Program, rtl: object) -> str:
    """`compare_runs` for a program: "" when fsim and ``rtl`` agree on it, else why not."""
    return compare_runs(program.config, program.dram_image(), program.insn_addr, len(program.insns), rtl,
                        program.segments)


def fuzz(config: Config, n: int, seed: int = 0, phases: int = 3, outdir: str | Path = ".",
         make_rtl: Callable[[Config, int], object] | None = None,
         progress: Callable[[int], None] | None = None) -> FuzzReport:
    """Run ``n`` random programs (seeds ``seed`` .. ``seed+n-1``) on both simulators.

    Each program starts from fresh simulators (zeroed buffers), so a saved
    counterexample reproduces on its own. They go to ``outdir/fuzz_<config>_<seed>.s``.
    """
    if make_rtl is None:
        make_rtl = lambda c, size: RtlSim(c, size)  # noqa: E731
    dram = 1 << 16
    report = FuzzReport(config.name)
    for i in range(n):
        s = seed + i
        program = random_program(config, s, phases)
        rtl = make_rtl(config, dram)
        before = getattr(rtl, "cycles", 0)
        reason = differential(program, rtl)
        report.programs += 1
        report.rtl_cycles += getattr(rtl, "cycles", 0) - before
        if reason:
            path = Path(outdir) / f"fuzz_{config.name}_{s}.s"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# vta fuzz counterexample, seed {s}: {reason}\n" + disassemble(program))
            report.mismatches.append(Mismatch(s, reason, path))
        if progress:
            progress(i + 1)
    return report
