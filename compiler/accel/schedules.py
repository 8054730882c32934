"""Automatic accelerator schedules for conv2d and dense (and batch matmul): tilings that fit
any valid config's scratchpads, an analytic cost to rank them, and the schedule that
applies a tiling with the loop-IR primitives (the trace shows every step).

A conv2d tiling is ``(tco, th, tw, tci)``: output-channel blocks, output rows, output
columns per tile, and input-channel blocks per reduction step; a dense tiling is
``(ti, tj, tk)`` in row, column and reduction blocks. ``slots`` copies of each
scratchpad tile rotate (2: loads of the next tile overlap the current one's GEMMs).
Tiles divide their dimensions, so every tile is whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vta.compiler.tir.intrin import gemm_intrin
from vta.compiler.tir.ops import Epilogue, batch_matmul_packed, conv2d_packed, with_epilogue
from vta.compiler.tir.schedule import Schedule
from vta.compiler.tir.stmt import PrimFunc
from vta.isa import Config, MemType
from vta.isa.errors import VTAError


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


# ---- workloads ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Conv2d:
    """A 2-D convolution: NCHW sizes, square kernel, stride, padding, groups."""

    batch: int
    in_ch: int
    h: int
    w: int
    out_ch: int
    kernel: int
    stride: int = 1
    pad: int = 0
    groups: int = 1
    pad_value: int = 0  # what the padding reads: the input's zero point

    @property
    def out_hw(self) -> tuple[int, int]:
        k, s, p = self.kernel, self.stride, self.pad
        return (self.h + 2 * p - k) // s + 1, (self.w + 2 * p - k) // s + 1

    @property
    def macs(self) -> int:
        oh, ow = self.out_hw
        return self.batch * self.out_ch * oh * ow * (self.in_ch // self.groups) * self.kernel ** 2

    def key(self) -> str:
        return (f"conv2d_n{self.batch}_c{self.in_ch}_{self.h}x{self.w}_o{self.out_ch}_k{self.kernel}"
                f"_s{self.stride}_p{self.pad}_g{self.groups}" + (f"_z{self.pad_value}" if self.pad_value else ""))

    def func(self, config: Config, epilogue: Epilogue | None = None) -> PrimFunc:
        f = conv2d_packed(self.batch, self.in_ch, self.h, self.w, self.out_ch, self.kernel, self.stride, self.pad,
                          self.groups, (config.batch, config.block_in, config.block_out), pad_value=self.pad_value)
        return with_epilogue(f, epilogue) if epilogue is not None else f


@dataclass(frozen=True)
class Dense:
    """``C[batches?][m, n] = A[m, k] · W[n, k]ᵀ`` (``batches > 0``: batch matmul)."""

    m: int
    n: int
    k: int
    batches: int = 0

    @property
    def macs(self) -> int:
        return max(1, self.batches) * self.m * self.n * self.k

    def key(self) -> str:
        return f"dense_b{self.batches}_m{self.m}_n{self.n}_k{self.k}"

    def func(self, config: Config, epilogue: Epilogue | None = None) -> PrimFunc:
        f = batch_matmul_packed(self.batches, self.m, self.n, self.k,
                                (config.batch, config.block_in, config.block_out))
        return with_epilogue(f, epilogue, channel_dim=2 if self.batches else 1) if epilogue is not None else f


@dataclass(frozen=True)
class ConvTiling:
    tco: int
    th: int
    tw: int
    tci: int
    slots: int = 2


@dataclass(frozen=True)
class DenseTiling:
    ti: int
    tj: int
    tk: int
    slots: int = 2


# ---- capacity and cost -------------------------------------------------------------------------

def _conv_blocks(wl: Conv2d, cfg: Config) -> tuple[int, int, int, int]:
    """(batch blocks, output-channel blocks, input-channel blocks per group, output blocks per group)."""
    return (wl.batch // cfg.batch, wl.out_ch // cfg.block_out, wl.in_ch // wl.groups // cfg.block_in,
            wl.out_ch // wl.groups // cfg.block_out)


def conv_needs(wl: Conv2d, cfg: Config, t: ConvTiling, epilogue: Epilogue | None = None) -> dict[str, int]:
    """Scratchpad entries (and GEMM micro-ops) a tiling uses."""
    k, s = wl.kernel, (1 if wl.kernel == 1 else wl.stride)  # a 1x1 kernel reads only the pixels it uses
    rows, cols = (t.th - 1) * s + k, (t.tw - 1) * s + k
    acc = t.tco * t.th * t.tw + t.tco * _vectors(epilogue)
    return {"inp": t.slots * t.tci * rows * cols, "wgt": t.slots * t.tco * t.tci * k * k, "acc": t.slots * acc,
            "uop": kernel_uops([t.tco, t.th, t.tw, t.tci, k, k])}


def _vectors(epilogue: Epilogue | None) -> int:
    """Per-channel vectors an epilogue loads into acc (bias, multipliers)."""
    return 0 if epilogue is None else int(epilogue.bias) + int(epilogue.per_channel)


def kernel_uops(extents: list[int]) -> int:
    """Micro-ops of a GEMM kernel over loops of these extents: the two longest fold."""
    return math.prod(sorted(extents)[:-2]) if len(extents) > 2 else 1


def _fits(needs: dict[str, int], cfg: Config) -> bool:
    return needs["inp"] <= cfg.inp_depth and needs["wgt"] <= cfg.wgt_depth and needs["acc"] <= cfg.acc_depth and \
        needs["uop"] <= cfg.uop_depth // 4


def conv_tilings(wl: Conv2d, cfg: Config, epilogue: Epilogue | None = None, slots: tuple[int, ...] = (2, 1)) -> list[ConvTiling]:
    """Every whole-tile tiling that fits ``cfg``."""
    _, co, ci, cog = _conv_blocks(wl, cfg)
    oh, ow = wl.out_hw
    out = []
    for sl in slots:
        for tco in ([cog] if wl.groups > 1 else divisors(co)):  # a tile holds whole groups: affine indices
            for tci in divisors(ci):
                for th in divisors(oh):
                    for tw in divisors(ow):
                        t = ConvTiling(tco, th, tw, tci, sl)
                        if _fits(conv_needs(wl, cfg, t, epilogue), cfg):
                            out.append(t)
    return out


def conv_cost(wl: Conv2d, cfg: Config, t: ConvTiling) -> float:
    """Estimated cycles: GEMM micro-ops plus per-instruction overheads, against the DRAM
    traffic at the bus width; with two slots they overlap."""
    nb, co, ci, _ = _conv_blocks(wl, cfg)
    oh, ow = wl.out_hw
    k, s = wl.kernel, (1 if wl.kernel == 1 else wl.stride)
    tiles = nb * (co // t.tco) * (oh // t.th) * (ow // t.tw)
    steps = tiles * (ci // t.tci)
    rows, cols = (t.th - 1) * s + k, (t.tw - 1) * s + k
    gemm = nb * co * oh * ow * ci * k * k + steps * 40
    bus = cfg.bus_bytes
    inp = steps * t.tci * rows * cols * cfg.elem_bytes(MemType.INP)
    wgt = steps * t.tco * t.tci * k * k * cfg.elem_bytes(MemType.WGT)
    out = tiles * t.tco * t.th * t.tw * cfg.elem_bytes(MemType.OUT)
    dma = (inp + wgt + out) / bus + steps * (t.tci + t.tco) * 12
    return max(gemm, dma) if t.slots > 1 else gemm + dma


def dense_needs(wl: Dense, cfg: Config, t: DenseTiling, epilogue: Epilogue | None = None) -> dict[str, int]:
    acc = t.ti * t.tj + t.tj * _vectors(epilogue)
    return {"inp": t.slots * t.ti * t.tk, "wgt": t.slots * t.tj * t.tk, "acc": t.slots * acc,
            "uop": kernel_uops([t.ti, t.tj, t.tk])}


def dense_tilings(wl: Dense, cfg: Config, epilogue: Epilogue | None = None, slots: tuple[int, ...] = (2, 1)) -> list[DenseTiling]:
    mi, nj, kk = wl.m // cfg.batch, wl.n // cfg.block_out, wl.k // cfg.block_in
    out = []
    for sl in slots:
        for ti in divisors(mi):
            for tj in divisors(nj):
                for tk in divisors(kk):
                    t = DenseTiling(ti, tj, tk, sl)
                    if _fits(dense_needs(wl, cfg, t, epilogue), cfg):
                        out.append(t)
    return out


def dense_cost(wl: Dense, cfg: Config, t: DenseTiling) -> float:
    mi, nj, kk = wl.m // cfg.batch, wl.n // cfg.block_out, wl.k // cfg.block_in
    g = max(1, wl.batches)
    tiles = g * (mi // t.ti) * (nj // t.tj)
    steps = tiles * (kk // t.tk)
    gemm = g * mi * nj * kk + steps * 40
    inp = steps * t.ti * t.tk * cfg.elem_bytes(MemType.INP)
    wgt = steps * t.tj * t.tk * cfg.elem_bytes(MemType.WGT)
    out = tiles * t.ti * t.tj * cfg.elem_bytes(MemType.OUT)
    dma = (inp + wgt + out) / cfg.bus_bytes + steps * 2 * 12
    return max(gemm, dma) if t.slots > 1 else gemm + dma


def default_conv_tiling(wl: Conv2d, cfg: Config, epilogue: Epilogue | None = None) -> ConvTiling:
    ts = conv_tilings(wl, cfg, epilogue)
    if not ts:
        raise VTAError(f"{wl.key()}: no tiling fits {cfg.name} (even one output element per tile)")
    return min(ts, key=lambda t: (conv_cost(wl, cfg, t), -t.th * t.tw * t.tco))


def default_dense_tiling(wl: Dense, cfg: Config, epilogue: Epilogue | None = None) -> DenseTiling:
    ts = dense_tilings(wl, cfg, epilogue)
    if not ts:
        raise VTAError(f"{wl.key()}: no tiling fits {cfg.name}")
    return min(ts, key=lambda t: (dense_cost(wl, cfg, t), -t.ti * t.tj))


# ---- schedules ---------------------------------------------------------------------------------

def _outputs(sch: Schedule, main: str, epilogue: bool) -> tuple[list[str], list[str]]:
    """Accumulate in acc: the epilogue's input set to acc scope and its output cached there
    (without an epilogue, the main block's output cached in acc). Returns the stages to move
    under the tile loop, in order, and the bias copy (if any) to compute there."""
    if not epilogue:
        return [sch.cache_write(main, 0, "acc")], []
    sch.set_scope("Acc", "acc")
    vectors = []
    for name in ("Bias", "Mult"):  # per-channel vectors: loaded into acc next to each tile
        reads = [r.buffer.name for r in sch._block_node("epilogue").reads]
        if name in reads:
            vectors.append(sch.cache_read("epilogue", reads.index(name), "acc"))
    return ["epilogue", sch.cache_write("epilogue", 0, "acc")], vectors  # type: ignore[return-value]


def _place_outputs(sch: Schedule, stages: tuple[list[str], list[str]], tile_loop: object) -> None:
    for st in stages[0]:
        sch.reverse_compute_at(st, tile_loop)  # type: ignore[arg-type]
    for vec in stages[1]:
        sch.compute_at(vec, tile_loop)  # type: ignore[arg-type]


def conv2d_schedule(wl: Conv2d, cfg: Config, t: ConvTiling, epilogue: Epilogue | None = None) -> Schedule:
    """The conv2d (with ``epilogue``) for ``cfg`` scheduled with tiling ``t``."""
    sch = Schedule(wl.func(cfg, epilogue))
    conv = sch.get_block("conv2d")
    n0, o0, y, x, n1, o1, c0, ky, kx, c1 = sch.get_loops(conv)
    o0_0, o0_1 = sch.split(o0, [None, t.tco])
    y_0, y_1 = sch.split(y, [None, t.th])
    x_0, x_1 = sch.split(x, [None, t.tw])
    c0_0, c0_1 = sch.split(c0, [None, t.tci])
    sch.reorder(n0, o0_0, y_0, x_0, c0_0, o0_1, y_1, x_1, c0_1, ky, kx, n1, o1, c1)
    stages = _outputs(sch, conv, epilogue is not None)
    staged = [("Dp", "pad")] * bool(wl.pad) + [("Ds", "subsample")] * (wl.kernel == 1 and wl.stride > 1)
    if staged:  # the stage reading D becomes the DMA; any other is computed inline into it
        for buf, blk in staged[:-1]:
            sch.compute_inline(blk)
        sch.set_scope(staged[-1][0], "inp")
        sch.compute_at(staged[-1][1], c0_0)
    else:
        sch.compute_at(sch.cache_read(conv, 1, "inp"), c0_0)
    sch.compute_at(sch.cache_read(conv, 2, "wgt"), c0_0)
    _place_outputs(sch, stages, x_0)
    sch.decompose_reduction(conv, c0_0)
    sch.tensorize(n1, gemm_intrin(cfg))
    return sch


def dense_schedule(wl: Dense, cfg: Config, t: DenseTiling, epilogue: Epilogue | None = None) -> Schedule:
    """The dense / batch matmul (with ``epilogue``) for ``cfg`` scheduled with tiling ``t``."""
    sch = Schedule(wl.func(cfg, epilogue))
    blk = sch.get_block("dense")
    loops = sch.get_loops(blk)
    g = loops[:1] if wl.batches else []
    i0, j0, i1, j1, k0, k1 = loops[len(g):]
    i0_0, i0_1 = sch.split(i0, [None, t.ti])
    j0_0, j0_1 = sch.split(j0, [None, t.tj])
    k0_0, k0_1 = sch.split(k0, [None, t.tk])
    sch.reorder(*g, i0_0, j0_0, k0_0, i0_1, j0_1, k0_1, i1, j1, k1)
    stages = _outputs(sch, blk, epilogue is not None)
    sch.compute_at(sch.cache_read(blk, 1, "inp"), k0_0)
    sch.compute_at(sch.cache_read(blk, 2, "wgt"), k0_0)
    _place_outputs(sch, stages, j0_0)
    sch.decompose_reduction(blk, k0_0)
    sch.tensorize(i1, gemm_intrin(cfg))
    return sch


RESNET18 = {  # H, W, Cin, Cout, kernel, pad, stride: the convolution layers C2-C11
    "C2": (56, 56, 64, 64, 3, 1, 1), "C3": (56, 56, 64, 128, 3, 1, 2), "C4": (56, 56, 64, 128, 1, 0, 2),
    "C5": (28, 28, 128, 128, 3, 1, 1), "C6": (28, 28, 128, 256, 3, 1, 2), "C7": (28, 28, 128, 256, 1, 0, 2),
    "C8": (14, 14, 256, 256, 3, 1, 1), "C9": (14, 14, 256, 512, 3, 1, 2), "C10": (14, 14, 256, 512, 1, 0, 2),
    "C11": (7, 7, 512, 512, 3, 1, 1),
}


def resnet18_layer(name: str, batch: int = 1) -> Conv2d:
    """ResNet-18's convolution layer ``name`` (C2-C11) with ``batch`` images."""
    if name not in RESNET18:
        raise VTAError(f"no ResNet-18 layer {name!r}; layers: {', '.join(RESNET18)}")
    h, w, ci, co, k, p, s = RESNET18[name]
    return Conv2d(batch, ci, h, w, co, k, s, p)
