"""Measures for the tuner: run a compiled kernel on a device and count its cycles (the
compiler builds kernels; running them belongs to the runtime, so the pairing is here)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vta.compiler.accel.build import Tiling, Workload
from vta.compiler.accel.lower import AccelKernel
from vta.compiler.accel.tune import TuningLog
from vta.compiler.accel.tune import tune as _tune
from vta.compiler.tir.ops import Epilogue
from vta.isa import Config
from vta.isa.errors import VTAError
from vta.runtime import open_device
from vta.runtime.execute import run_program


def cycles_on(target: str, kernel: AccelKernel) -> int:
    """Cycles of one run of ``kernel`` on ``target`` (fsim: timing model; rtl: exact), zero inputs."""
    zeros = {s.name: np.zeros(s.shape, np.int64) for s in kernel.segments if not s.output}
    prog = kernel.program(**zeros)
    opts: dict[str, object] = {"dram_bytes": max(1 << 24, prog.dram_bytes)}
    if target == "fsim":
        opts["check_races"] = False
    return run_program(prog, open_device(target, kernel.config, **opts)).stats.cycles


MEASURES: dict[str, Callable[[AccelKernel], int]] = {
    "fsim": lambda k: cycles_on("fsim", k), "rtl": lambda k: cycles_on("rtl", k)}


def tune(wl: Workload, config: Config, epilogue: Epilogue | None = None, trials: int = 24,
         log: TuningLog | None = None, target: str = "fsim",
         progress: Callable[[int, int, Tiling, int], None] | None = None) -> tuple[Tiling, int]:
    """`vta.compiler.accel.tune.tune` measuring on ``target`` (fsim or rtl)."""
    if target not in MEASURES:
        raise VTAError(f"tune: target {target!r} is not one of {', '.join(MEASURES)}")
    return _tune(wl, config, epilogue, trials, log, measure=MEASURES[target], target=target,  # type: ignore[arg-type]
                 progress=progress)
