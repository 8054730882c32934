"""Shared by the accelerator tests and benchmarks: random operands for a workload, the
numpy fixed-point reference, and a run of the compiled kernel on a device."""

from __future__ import annotations

import numpy as np

from vta.compiler.accel.build import Built, build
from vta.compiler.accel.reference import conv2d_nchw, pack, unpack, wrap32
from vta.compiler.accel.schedules import Conv2d, Dense
from vta.compiler.tir.ops import Epilogue
from vta.isa import Config
from vta.runtime import open_device
from vta.runtime.execute import run_program


def operands(wl: Conv2d | Dense, cfg: Config, epilogue: Epilogue | None, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Packed inputs (in parameter order) and the expected packed output."""
    rng = np.random.default_rng(seed)
    bn, bi, bo = cfg.batch, cfg.block_in, cfg.block_out
    if isinstance(wl, Conv2d):
        x = rng.integers(-128, 128, (wl.batch, wl.in_ch, wl.h, wl.w))
        w = rng.integers(-128, 128, (wl.out_ch, wl.in_ch // wl.groups, wl.kernel, wl.kernel))
        acc = wrap32(conv2d_nchw(x, w, wl.stride, wl.pad, wl.groups))
        ins = [pack(x, bn, bi).astype(np.int8), pack(w, bo, bi).astype(np.int8)]
        channels = wl.out_ch
    else:
        g = (wl.batches,) if wl.batches else ()
        a = rng.integers(-128, 128, (*g, wl.m, wl.k))
        w = rng.integers(-128, 128, (*g, wl.n, wl.k))
        acc = wrap32(np.einsum("...mk,...nk->...mn", a, w))
        if wl.batches:
            ins = [np.stack([pack(a[i], bn, bi) for i in range(wl.batches)]).astype(np.int8),
                   np.stack([pack(w[i], bo, bi) for i in range(wl.batches)]).astype(np.int8)]
        else:
            ins = [pack(a, bn, bi).astype(np.int8), pack(w, bo, bi).astype(np.int8)]
        channels = wl.n
    bias = None
    if epilogue is not None and epilogue.bias:
        bias = rng.integers(-5000, 5000, channels)
        packed_bias = np.repeat(epilogue.fold_bias(bias).reshape(channels // bo, 1, bo), bn, axis=1)
        ins.append(packed_bias)
    if isinstance(wl, Conv2d):
        expect = acc if epilogue is None else epilogue.reference(acc, None if bias is None else bias[None, :, None, None])
        out = pack(expect, bn, bo)
    else:
        expect = acc if epilogue is None else epilogue.reference(acc, bias)
        out = np.stack([pack(expect[i], bn, bo) for i in range(wl.batches)]) if wl.batches else pack(expect, bn, bo)
    return ins, out


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
