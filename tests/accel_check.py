"""Shared by the accelerator tests and benchmarks: random operands for a workload, the
numpy fixed-point reference, and a run of the compiled kernel on a device."""

from __future__ import annotations

import numpy as np

from vta.compiler.accel.build import Built, build
from vta.compiler.accel.reference import operands, unpack
from vta.compiler.accel.schedules import Conv2d, Dense
from vta.compiler.tir.ops import Epilogue
from vta.isa import Config
from vta.runtime import open_device
from vta.runtime.execute import run_program


def run_built(built: Built, ins: list[np.ndarray], target: str = "fsim") -> tuple[np.ndarray, object]:
    k = built.kernel
    dev = open_device(target, k.config)
    res = run_program(k.program(*ins), dev)
    return res.outputs[k.outputs()[0]], res.stats


def check(wl: Conv2d | Dense, cfg: Config, epilogue: Epilogue | None = None, target: str = "fsim",
          seed: int = 0, **kw: object) -> tuple[Built, object]:
    built = build(wl, cfg, epilogue, **kw)  # type: ignore[arg-type]
    ins, expect = operands(wl, cfg, epilogue, seed)
    got, stats = run_built(built, ins, target)
    assert got.shape == expect.shape
    bad = np.argwhere(got != expect)
    assert not len(bad), f"{wl.key()} on {cfg.name} ({built.tiling}): {len(bad)} of {got.size} values differ, " \
        f"first at {bad[0].tolist()}: {got[tuple(bad[0])]} != {expect[tuple(bad[0])]}"
    return built, stats


__all__ = ["check", "operands", "run_built", "unpack"]
