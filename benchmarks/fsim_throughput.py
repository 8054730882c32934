"""Functional-simulator throughput against numpy, on two workloads written with
the runtime API (CommandQueue) and checked bit for bit:

1. a blocked 256x256x256 int8 GEMM, C = A·Wᵀ, int32 results stored at full
   accumulator width (STORE of ACC);
2. a 3x3 convolution, 56x56 input, 64 -> 64 channels, stride 1, padding 1,
   done directly on the accelerator: the LOAD instruction's padding fields
   supply the spatial zeros, and one GEMM instruction per tile of output rows
   runs every (row, column) x (cout block, ky, kx, cin block) micro-op
   through the instruction's two affine loops.

Both are double-buffered with dependency tokens (falling back to single
buffering if two tiles do not fit a config). For each workload and race-check
mode the script reports the median over ``--repeat`` runs (after a warm-up) of

- the simulator end to end: lay out and copy the inputs into device DRAM,
  build the command queue, ``cq.run()``, read back and un-layout the result;
- ``cq.run()`` alone (encoding, fetch, simulation, timing model);
- the same integer arithmetic in numpy, from the same int8 inputs:
  (a) int32 ``np.matmul`` (for the convolution: im2col, then int32 matmul),
  (b) float64 BLAS matmul (exact at these sizes), converted back to int32;

plus MACs, simulated MACs per wall second, the time ratios, and the
simulator's estimated cycles and GEMM utilization.

Usage::

    .venv/bin/python benchmarks/fsim_throughput.py [--config NAME] [--repeat N] [--json] [--no-race-check]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
from vta.isa import PRESETS, Config, MemType, Module, VTAError, resolve
from vta.isa.spec import ITER_BITS, PAD_BITS, SIZE_BITS
from vta.isa.values import pack_values, storage_dtype, unpack_values, wrap
from vta.runtime import Buffer, CommandQueue, FsimDevice, KernelRecorder, UopKernel
from vta.sim.fsim import RunStats

MAX_ITER = (1 << ITER_BITS) - 1   # largest extent of a uop loop
MAX_PAD = (1 << PAD_BITS) - 1     # largest LOAD padding, in elements (x) or rows (y)
MAX_SIZE = (1 << SIZE_BITS) - 1   # largest LOAD/STORE x_size, y_size, x_stride
GOAL_RATIO = 3.0                  # the goal: fsim within 3x of numpy's int32 matmul


# ---- shapes and data ---------------------------------------------------------

@dataclass(frozen=True)
class GemmShape:
    """C (m x n) = A (m x k) · Wᵀ, W being (n x k)."""

    m: int = 256
    k: int = 256
    n: int = 256

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n

    def describe(self) -> str:
        return f"{self.m}x{self.k}x{self.n} GEMM"


@dataclass(frozen=True)
class ConvShape:
    """Convolution of a (batch, h, w, cin) NHWC input with (cout, cin, kh, kw) OIHW
    weights, stride 1, zero padding ``pad`` on every side (same-size output when
    ``kh == kw == 2 * pad + 1``)."""

    batch: int = 1
    h: int = 56
    w: int = 56
    cin: int = 64
    cout: int = 64
    kh: int = 3
    kw: int = 3
    pad: int = 1

    @property
    def out_h(self) -> int:
        return self.h + 2 * self.pad - self.kh + 1

    @property
    def out_w(self) -> int:
        return self.w + 2 * self.pad - self.kw + 1

    @property
    def macs(self) -> int:
        return self.batch * self.out_h * self.out_w * self.cout * self.cin * self.kh * self.kw

    def describe(self) -> str:
        return (f"{self.kh}x{self.kw} conv, {self.batch}x{self.h}x{self.w}x{self.cin} -> {self.cout} "
                f"channels, pad {self.pad}")


def random_operands(config: Config, rng: np.random.Generator, shape: tuple[int, ...],
                    mem: MemType) -> np.ndarray:
    """Uniform random values over the full signed range of ``mem``'s element width."""
    bits = config.elem_width(mem)
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), shape).astype(storage_dtype(bits))


def blocked(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(R·rows, C·cols) -> (R, C, rows, cols): a matrix as rows of accelerator elements."""
    r, c = x.shape[0] // rows, x.shape[1] // cols
    return x.reshape(r, rows, c, cols).transpose(0, 2, 1, 3)


def write_elements(device: FsimDevice, values: np.ndarray, mem: MemType) -> Buffer:
    """Allocate device DRAM for ``values`` (already in element order) and copy them in, packed."""
    c = device.config
    count = values.size // int(np.prod(c.elem_shape(mem)))
    buf = device.alloc(count * c.elem_bytes(mem))
    buf.write(pack_values(values, c.elem_width(mem)))
    return buf


def read_elements(buf: Buffer, config: Config, mem: MemType) -> np.ndarray:
    """The values of a buffer of ``mem`` elements, as a flat array of their storage type."""
    return unpack_values(buf.read(), config.elem_width(mem))


# ---- tiling ------------------------------------------------------------------

def divisors_desc(n: int) -> list[int]:
    """The divisors of ``n``, largest first."""
    return [d for d in range(n, 0, -1) if n % d == 0]


@dataclass(frozen=True)
class GemmTiling:
    """Output tiles of ``tm`` x ``tn`` blocks with the whole reduction (``kb`` blocks) resident;
    ``nbuf`` copies of the inp/wgt/acc regions (2: double-buffered)."""

    mb: int
    kb: int
    nb: int
    tm: int
    tn: int
    nbuf: int

    @property
    def tiles(self) -> int:
        return (self.mb // self.tm) * (self.nb // self.tn)

    @property
    def weights_resident(self) -> bool:
        """All of W fits at once: it is loaded once, before the first tile."""
        return self.tn == self.nb

    def describe(self) -> str:
        return (f"{self.tiles} tiles of {self.tm}x{self.tn} blocks (k {self.kb} blocks), "
                f"{'double' if self.nbuf == 2 else 'single'}-buffered, "
                f"weights {'resident' if self.weights_resident else 'streamed'}")


def gemm_tiling(config: Config, shape: GemmShape) -> GemmTiling:
    """The tiling with the fewest tiles that fits the buffers, double-buffered if possible."""
    c = config
    if shape.m % c.batch or shape.k % c.block_in or shape.n % c.block_out:
        raise ValueError(f"{shape.describe()} is not a whole number of {c.name} blocks")
    mb, kb, nb = shape.m // c.batch, shape.k // c.block_in, shape.n // c.block_out
    for nbuf in (2, 1):
        fits = []
        for tn in divisors_desc(nb):
            wgt = nb * kb if tn == nb else nbuf * tn * kb
            for tm in divisors_desc(mb):
                if (nbuf * tm * kb <= c.inp_depth and wgt <= c.wgt_depth and nbuf * tm * tn <= c.acc_depth
                        and max(tm, tn, tm * tn) <= MAX_ITER and nbuf * (kb + 1) <= c.uop_depth
                        and max(kb, tn, tm * kb) <= MAX_SIZE):
                    fits.append(GemmTiling(mb, kb, nb, tm, tn, nbuf))
        if fits:
            return min(fits, key=lambda t: (t.tiles, not t.weights_resident))
    raise ValueError(f"{shape.describe()} with the whole reduction resident does not fit config {c.name}")


@dataclass(frozen=True)
class ConvTiling:
    """Tiles of ``rows`` output rows (full width, all channels); ``nbuf`` inp/acc regions."""

    shape: ConvShape
    cib: int   # input-channel blocks
    cob: int   # output-channel blocks
    rows: int
    nbuf: int

    @property
    def tiles(self) -> int:
        return self.shape.out_h // self.rows

    @property
    def in_rows(self) -> int:
        """Input rows (padding included) that one tile of output rows reads."""
        return self.rows + self.shape.kh - 1

    @property
    def in_cols(self) -> int:
        """Input columns (padding included) of every tile."""
        return self.shape.w + 2 * self.shape.pad

    @property
    def inp_entries(self) -> int:
        return self.in_rows * self.in_cols * self.cib

    @property
    def acc_entries(self) -> int:
        return self.rows * self.shape.out_w * self.cob

    @property
    def wgt_entries(self) -> int:
        return self.cob * self.shape.kh * self.shape.kw * self.cib

    def describe(self) -> str:
        return (f"{self.tiles} tiles of {self.rows} output rows, "
                f"{'double' if self.nbuf == 2 else 'single'}-buffered, weights resident")


def conv_tiling(config: Config, shape: ConvShape) -> ConvTiling:
    """The tiling with the fewest tiles that fits the buffers, double-buffered if possible."""
    c = config
    if shape.batch != c.batch or shape.cin % c.block_in or shape.cout % c.block_out:
        raise ValueError(f"{shape.describe()} is not a whole number of {c.name} blocks")
    cib, cob = shape.cin // c.block_in, shape.cout // c.block_out
    if shape.pad * cib > MAX_PAD or shape.pad > MAX_PAD:
        raise ValueError(f"padding of {shape.pad} pixels is {shape.pad * cib} elements of {c.name}; "
                         f"LOAD pads at most {MAX_PAD}")
    for nbuf in (2, 1):
        for rows in divisors_desc(shape.out_h):
            t = ConvTiling(shape, cib, cob, rows, nbuf)
            if (nbuf * t.inp_entries <= c.inp_depth and t.wgt_entries <= c.wgt_depth
                    and nbuf * t.acc_entries <= c.acc_depth and nbuf * (t.wgt_entries + 1) <= c.uop_depth
                    and max(rows, shape.out_w, t.acc_entries) <= MAX_ITER
                    and max(shape.w * cib, shape.out_w * cob, t.wgt_entries) <= MAX_SIZE):
                return t
    raise ValueError(f"{shape.describe()} does not fit config {c.name} even one output row at a time")


# ---- the pipeline shared by both workloads ------------------------------------

TileStep = Callable[[int, int], None]  # (tile index, buffer region) -> emits instructions


def emit_pipeline(cq: CommandQueue, tiles: int, nbuf: int, load: TileStep, compute: TileStep,
                  store: TileStep) -> None:
    """Emit load -> compute -> store for each tile, tile ``t`` using buffer region ``t % nbuf``.

    Tokens: load hands each tile to compute (L2C), compute hands it to store
    (C2S); before reusing a region, load waits for compute to release it (C2L)
    and compute waits for store to drain its accumulators (S2C).
    """
    for t in range(tiles):
        region = t % nbuf
        if t >= nbuf:
            cq.dep_pop(Module.COMPUTE, Module.LOAD)
        load(t, region)
        cq.dep_push(Module.LOAD, Module.COMPUTE)
        cq.dep_pop(Module.LOAD, Module.COMPUTE)
        if t >= nbuf:
            cq.dep_pop(Module.STORE, Module.COMPUTE)
        compute(t, region)
        if t + nbuf < tiles:
            cq.dep_push(Module.COMPUTE, Module.LOAD)
        cq.dep_push(Module.COMPUTE, Module.STORE)
        cq.dep_pop(Module.COMPUTE, Module.STORE)
        store(t, region)
        if t + nbuf < tiles:
            cq.dep_push(Module.STORE, Module.COMPUTE)


def reset_kernel(acc_base: int, entries: int, name: str) -> UopKernel:
    """One micro-op in a loop over ``entries`` accumulators from ``acc_base`` (for GEMM reset)."""
    rec = KernelRecorder()
    with rec.loop(entries, dst=1):
        rec.uop(acc_base)
    return rec.kernel((name, "reset", acc_base, entries))


@dataclass
class FsimRun:
    """The result of one simulator run: output, statistics and the time of ``cq.run()``."""

    output: np.ndarray
    stats: RunStats
    run_s: float


def run_queue(cq: CommandQueue) -> tuple[RunStats, float]:
    """Run the queue; returns its statistics and the wall time of ``cq.run()``."""
    t0 = time.perf_counter()
    stats = cq.run()
    return stats, time.perf_counter() - t0


# ---- workload 1: GEMM ------------------------------------------------------

def gemm_fsim(device: FsimDevice, a: np.ndarray, w: np.ndarray, tiling: GemmTiling) -> FsimRun:
    """C = A·Wᵀ on the device, stored at full accumulator width; returns C as (m, n)."""
    c = device.config
    tg = tiling
    mb, kb, nb, tm, tn = tg.mb, tg.kb, tg.nb, tg.tm, tg.tn
    n_tiles = nb // tn
    a_buf = write_elements(device, blocked(a, c.batch, c.block_in), MemType.INP)
    w_buf = write_elements(device, blocked(w, c.block_out, c.block_in), MemType.WGT)
    c_buf = device.alloc(mb * nb * c.elem_bytes(MemType.ACC))
    inp_region, wgt_region, acc_region = tm * kb, (0 if tg.weights_resident else tn * kb), tm * tn

    def kernel(region: int) -> UopKernel:
        rec = KernelRecorder()
        with rec.loop(tm, dst=tn, src=kb), rec.loop(tn, dst=1, wgt=kb):
            for k in range(kb):
                rec.uop(region * acc_region, region * inp_region + k, region * wgt_region + k)
        return rec.kernel(("bench-gemm", region, tm, tn, kb))

    kernels = [kernel(r) for r in range(tg.nbuf)]
    resets = [reset_kernel(r * acc_region, tm * tn, "bench-gemm") for r in range(tg.nbuf)]
    cq = CommandQueue(device)

    def load(t: int, r: int) -> None:
        mi, ni = divmod(t, n_tiles)
        cq.load(MemType.INP, r * inp_region, a_buf, mi * tm * kb, y=tm, x=kb)
        if not tg.weights_resident:
            cq.load(MemType.WGT, r * wgt_region, w_buf, ni * tn * kb, y=tn, x=kb)
        elif t == 0:
            cq.load(MemType.WGT, 0, w_buf, 0, y=nb, x=kb)

    def compute(t: int, r: int) -> None:
        cq.gemm(resets[r], reset=True)
        cq.gemm(kernels[r])

    def store(t: int, r: int) -> None:
        mi, ni = divmod(t, n_tiles)
        cq.store(r * acc_region, c_buf, mi * tm * nb + ni * tn, y=tm, x=tn, stride=nb, mem=MemType.ACC)

    emit_pipeline(cq, tg.tiles, tg.nbuf, load, compute, store)
    stats, run_s = run_queue(cq)
    out = read_elements(c_buf, c, MemType.ACC).reshape(mb, nb, c.batch, c.block_out)
    for b in (a_buf, w_buf, c_buf):
        device.free(b)
    cq.close()
    return FsimRun(out.transpose(0, 2, 1, 3).reshape(mb * c.batch, nb * c.block_out), stats, run_s)


def gemm_numpy_int32(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """C = A·Wᵀ with numpy's int32 matmul (wraps like a 32-bit accumulator)."""
    return np.matmul(a.astype(np.int32), w.astype(np.int32).T)


def gemm_numpy_float64(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """C = A·Wᵀ with float64 BLAS (exact while |C| < 2^53), back to int32."""
    return np.matmul(a.astype(np.float64), w.astype(np.float64).T).astype(np.int32)


# ---- workload 2: convolution ---------------------------------------------

def conv_fsim(device: FsimDevice, x: np.ndarray, w: np.ndarray, tiling: ConvTiling) -> FsimRun:
    """Direct convolution on the device; ``x`` NHWC, ``w`` OIHW; returns (batch, out_h, out_w, cout) int32.

    DRAM layouts: input (h, w, cin blocks) elements, weights (cout blocks, kh,
    kw, cin blocks) tiles, output (out_h, out_w, cout blocks) accumulators.
    """
    c, s, tg = device.config, tiling.shape, tiling
    cib, cob, rows = tg.cib, tg.cob, tg.rows
    bi, bo = c.block_in, c.block_out
    x_el = x.reshape(s.batch, s.h, s.w, cib, bi).transpose(1, 2, 3, 0, 4)
    w_el = w.reshape(cob, bo, cib, bi, s.kh, s.kw).transpose(0, 4, 5, 2, 1, 3)
    x_buf = write_elements(device, x_el, MemType.INP)
    w_buf = write_elements(device, w_el, MemType.WGT)
    o_buf = device.alloc(s.out_h * s.out_w * cob * c.elem_bytes(MemType.ACC))
    in_row = tg.in_cols * cib  # inp entries per (padded) input row in the buffer

    def kernel(region: int) -> UopKernel:
        inp, acc = region * tg.inp_entries, region * tg.acc_entries
        rec = KernelRecorder()
        with rec.loop(rows, dst=s.out_w * cob, src=in_row), rec.loop(s.out_w, dst=cob, src=cib):
            for ob in range(cob):
                for dy in range(s.kh):
                    for dx in range(s.kw):
                        for ib in range(cib):
                            rec.uop(acc + ob, inp + dy * in_row + dx * cib + ib,
                                    ((ob * s.kh + dy) * s.kw + dx) * cib + ib)
        return rec.kernel(("bench-conv", region, rows, s))

    kernels = [kernel(r) for r in range(tg.nbuf)]
    resets = [reset_kernel(r * tg.acc_entries, tg.acc_entries, "bench-conv") for r in range(tg.nbuf)]
    cq = CommandQueue(device)

    def load(t: int, r: int) -> None:
        first, last = t * rows - s.pad, t * rows - s.pad + tg.in_rows  # input rows [first, last)
        top, bottom = max(0, -first), max(0, last - s.h)
        lo = max(first, 0)
        cq.load(MemType.INP, r * tg.inp_entries, x_buf, lo * s.w * cib, y=min(last, s.h) - lo, x=s.w * cib,
                pad=(top, bottom, s.pad * cib, s.pad * cib))
        if t == 0:
            cq.load(MemType.WGT, 0, w_buf, 0, y=1, x=tg.wgt_entries)

    def compute(t: int, r: int) -> None:
        cq.gemm(resets[r], reset=True)
        cq.gemm(kernels[r])

    def store(t: int, r: int) -> None:
        cq.store(r * tg.acc_entries, o_buf, t * tg.acc_entries, y=rows, x=s.out_w * cob, mem=MemType.ACC)

    emit_pipeline(cq, tg.tiles, tg.nbuf, load, compute, store)
    stats, run_s = run_queue(cq)
    out = read_elements(o_buf, c, MemType.ACC).reshape(s.out_h, s.out_w, cob, s.batch, bo)
    for b in (x_buf, w_buf, o_buf):
        device.free(b)
    cq.close()
    return FsimRun(out.transpose(3, 0, 1, 2, 4).reshape(s.batch, s.out_h, s.out_w, s.cout), stats, run_s)


def im2col(x: np.ndarray, kh: int, kw: int, pad: int) -> np.ndarray:
    """NHWC input -> (batch·out_h·out_w, kh·kw·cin) patches, ordered (ky, kx, c), zero-padded."""
    b, h, w, ch = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh, ow = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
    cols = np.concatenate([xp[:, dy:dy + oh, dx:dx + ow, :] for dy in range(kh) for dx in range(kw)], axis=-1)
    return cols.reshape(b * oh * ow, kh * kw * ch)


def conv_weight_matrix(w: np.ndarray) -> np.ndarray:
    """OIHW weights -> (cout, kh·kw·cin), columns ordered like `im2col`'s."""
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def conv_numpy(x: np.ndarray, w: np.ndarray, shape: ConvShape, dtype: type) -> np.ndarray:
    """The convolution as im2col and one matmul in ``dtype``, returned as int32 NHWC."""
    cols = im2col(x, shape.kh, shape.kw, shape.pad).astype(dtype)
    out = np.matmul(cols, conv_weight_matrix(w).astype(dtype).T)
    return out.astype(np.int32).reshape(shape.batch, shape.out_h, shape.out_w, shape.cout)


# ---- measurement -----------------------------------------------------------

@dataclass
class Workload:
    """A workload: description, MAC count, the simulator run and the two numpy peers (all from the same data)."""

    name: str
    describe: str
    tiling: str
    macs: int
    fsim: Callable[[FsimDevice], FsimRun]
    numpy_int32: Callable[[], np.ndarray]
    numpy_float64: Callable[[], np.ndarray]


def gemm_workload(config: Config, seed: int) -> Workload:
    shape = GemmShape()
    tiling = gemm_tiling(config, shape)
    rng = np.random.default_rng(seed)
    a = random_operands(config, rng, (shape.m, shape.k), MemType.INP)
    w = random_operands(config, rng, (shape.n, shape.k), MemType.WGT)
    return Workload("gemm", shape.describe(), tiling.describe(), shape.macs,
                    lambda dev: gemm_fsim(dev, a, w, tiling),
                    lambda: gemm_numpy_int32(a, w), lambda: gemm_numpy_float64(a, w))


def conv_workload(config: Config, seed: int) -> Workload:
    shape = ConvShape(batch=config.batch)
    tiling = conv_tiling(config, shape)
    rng = np.random.default_rng(seed)
    x = random_operands(config, rng, (shape.batch, shape.h, shape.w, shape.cin), MemType.INP)
    w = random_operands(config, rng, (shape.cout, shape.cin, shape.kh, shape.kw), MemType.WGT)
    return Workload("conv3x3", shape.describe(), tiling.describe(), shape.macs,
                    lambda dev: conv_fsim(dev, x, w, tiling),
                    lambda: conv_numpy(x, w, shape, np.int32), lambda: conv_numpy(x, w, shape, np.float64))


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(wall seconds, result) of one call."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def check_equal(what: str, got: np.ndarray, want: np.ndarray) -> None:
    """Fail loudly unless ``got`` equals ``want`` bit for bit."""
    if got.shape != want.shape or got.dtype != want.dtype or not np.array_equal(got, want):
        bad = np.argwhere(got != want) if got.shape == want.shape else None
        where = f"; first mismatch at {tuple(bad[0])}: {got[tuple(bad[0])]} != {want[tuple(bad[0])]}" \
            if bad is not None and len(bad) else ""
        raise SystemExit(f"MISMATCH: {what}: got {got.dtype}{got.shape}, want {want.dtype}{want.shape}{where}")


def repeated(repeat: int, fn: Callable[[], object]) -> Iterator[tuple[float, object]]:
    """A warm-up call (not yielded), then ``repeat`` timed calls."""
    fn()
    for _ in range(repeat):
        yield timed(fn)


def measure(wl: Workload, config: Config, repeat: int, race_modes: list[bool]) -> list[dict]:
    """Time the numpy peers and the simulator (once per race-check mode); check every output."""
    acc_dtype = storage_dtype(config.acc_width)
    want = wrap(wl.numpy_int32(), config.acc_width).astype(acc_dtype)
    peers = {}
    for peer, fn in (("numpy_int32", wl.numpy_int32), ("numpy_float64", wl.numpy_float64)):
        times = []
        for t, out in repeated(repeat, fn):
            check_equal(f"{wl.name} {peer} vs numpy int32", wrap(out, config.acc_width).astype(acc_dtype), want)
            times.append(t)
        peers[peer] = statistics.median(times)
    rows = []
    for races in race_modes:
        device = FsimDevice(config, check_races=races)
        total, run, last = [], [], None
        for t, res in repeated(repeat, partial(wl.fsim, device)):
            check_equal(f"{wl.name} fsim (race check {'on' if races else 'off'}) vs numpy", res.output, want)
            total.append(t)
            run.append(res.run_s)
            last = res
        assert last is not None
        e2e, run_s = statistics.median(total), statistics.median(run)
        rows.append({
            "workload": wl.name, "shape": wl.describe, "tiling": wl.tiling, "race_check": races,
            "macs": wl.macs, "insns": last.stats.insns,
            "fsim_e2e_s": e2e, "fsim_run_s": run_s,
            "numpy_int32_s": peers["numpy_int32"], "numpy_float64_s": peers["numpy_float64"],
            "macs_per_s_e2e": wl.macs / e2e, "macs_per_s_run": wl.macs / run_s,
            "ratio_e2e_vs_int32": e2e / peers["numpy_int32"], "ratio_run_vs_int32": run_s / peers["numpy_int32"],
            "ratio_e2e_vs_float64": e2e / peers["numpy_float64"],
            "ratio_run_vs_float64": run_s / peers["numpy_float64"],
            "goal_met": e2e / peers["numpy_int32"] <= GOAL_RATIO,
            "cycles": last.stats.cycles, "gemm_utilization": last.stats.gemm_utilization,
            "bit_exact": True, "stats": last.stats.to_dict(),
        })
    return rows


# ---- reporting -------------------------------------------------------------

def machine_info() -> dict[str, object]:
    """What the numbers were measured on."""
    blas = None
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]["name"]  # numpy >= 1.26
    except (AttributeError, KeyError, TypeError):
        pass
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "blas": blas, "machine": platform.machine(), "system": platform.system(),
            "processor": platform.processor() or None,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def _ms(s: float) -> str:
    return f"{s * 1e3:.2f} ms"


def format_table(rows: list[dict]) -> str:
    """Metrics as table rows, one column per (workload, race-check mode)."""
    metrics: list[tuple[str, Callable[[dict], str]]] = [
        ("MACs", lambda r: f"{r['macs'] / 1e6:.1f} M"),
        ("instructions", lambda r: str(r["insns"])),
        ("fsim end to end", lambda r: _ms(r["fsim_e2e_s"])),
        ("fsim cq.run() only", lambda r: _ms(r["fsim_run_s"])),
        ("numpy int32 matmul", lambda r: _ms(r["numpy_int32_s"])),
        ("numpy float64 matmul", lambda r: _ms(r["numpy_float64_s"])),
        ("sim MAC/s (end to end)", lambda r: f"{r['macs_per_s_e2e'] / 1e9:.3f} G"),
        ("sim MAC/s (run only)", lambda r: f"{r['macs_per_s_run'] / 1e9:.3f} G"),
        ("fsim/int32 (end to end)", lambda r: f"{r['ratio_e2e_vs_int32']:.2f}x"),
        ("fsim/int32 (run only)", lambda r: f"{r['ratio_run_vs_int32']:.2f}x"),
        ("fsim/float64 (end to end)", lambda r: f"{r['ratio_e2e_vs_float64']:.1f}x"),
        ("fsim/float64 (run only)", lambda r: f"{r['ratio_run_vs_float64']:.1f}x"),
        (f"goal: <= {GOAL_RATIO:g}x int32", lambda r: "met" if r["goal_met"] else "NOT met"),
        ("estimated cycles", lambda r: f"{r['cycles']:,}"),
        ("GEMM utilization", lambda r: f"{r['gemm_utilization']:.1%}"),
        ("bit-exact vs numpy", lambda r: "yes" if r["bit_exact"] else "NO"),
    ]
    header = ["metric"] + [f"{r['workload']} (races {'on' if r['race_check'] else 'off'})" for r in rows]
    table = [header] + [[name] + [fmt(r) for r in rows] for name, fmt in metrics]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = []
    for n, line in enumerate(table):
        lines.append("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                               for i, cell in enumerate(line)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_report(config: Config, repeat: int, info: dict, workloads: list[Workload], rows: list[dict]) -> str:
    head = [f"fsim throughput: config {config.name}, median of {repeat} runs after a warm-up",
            "machine: " + ", ".join(f"{k} {v}" for k, v in info.items() if v is not None)]
    head += [f"{wl.name}: {wl.describe}; {wl.tiling}" for wl in workloads]
    head.append("end to end = DRAM layout + copy in, build the command queue, cq.run(), read back; "
                "numpy = the same result from the same int8 arrays (conv: im2col + matmul)")
    return "\n".join(head) + "\n\n" + format_table(rows)


# ---- command line --------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Functional-simulator speed on a 256^3 int8 GEMM and a 56x56x64->64 3x3 conv, "
                    "against numpy's int32 and float64 matmul, checked bit for bit.",
        epilog="example: .venv/bin/python benchmarks/fsim_throughput.py --repeat 5 --json")
    p.add_argument("--config", default="default",
                   help="preset (" + ", ".join(PRESETS) + "), canonical name or JSON/TOML file (default: default)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per measurement; the median is reported")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of the table")
    p.add_argument("--no-race-check", action="store_true",
                   help="measure only FsimDevice(config, check_races=False) (default: both modes, race "
                        "checking on being the device default)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the operands")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = resolve(args.config)
    except VTAError as e:  # a bad name or file: one line, non-zero exit
        print(f"error: {e}", file=sys.stderr)
        return 2
    race_modes = [False] if args.no_race_check else [True, False]
    workloads, rows, skipped = [], [], {}
    for make in (gemm_workload, conv_workload):
        try:
            wl = make(config, args.seed)
        except ValueError as e:  # the workload cannot be tiled for this config
            skipped[make.__name__.removesuffix("_workload")] = str(e)
            continue
        workloads.append(wl)
        rows += measure(wl, config, args.repeat, race_modes)
    info = machine_info()
    if args.json:
        print(json.dumps({"config": config.name, "repeat": args.repeat, "machine": info,
                          "goal_ratio_vs_int32": GOAL_RATIO, "results": rows, "skipped": skipped}, indent=2))
    else:
        print(format_report(config, args.repeat, info, workloads, rows))
        for name, why in skipped.items():
            print(f"skipped {name}: {why}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
