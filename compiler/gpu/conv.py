"""Default GPU schedules for NCHW float convolutions (`vta.compiler.tir.nn.conv2d`).

`conv2d_pattern` recognizes the convolution block ``Y[n, o, y, x] += D[n, c(o, i), y·sh +
ky·dh, x·sw + kx·dw] · W[o, i, ky, kx]`` over loops ``(n, o, y, x, i, ky, kx)``; ``D`` is the
input or its padded copy (the ``Xp`` stage `nn.conv2d` makes when it pads).

- Dense convolutions (one group, at least `DENSE_MIN_CHANNELS` input channels) get a tiled,
  implicit-GEMM-like schedule (`conv2d_dense`): a thread block per tile of output channels ×
  output rows × output columns (``blockIdx.x`` over column tiles, ``blockIdx.y`` over row
  tiles, ``blockIdx.z`` over channel tiles or images, each block looping over the other:
  `ConvTile.batch_on_grid`); for each step of `ConvTile.ic` input channels, the
  input window of the tile (halo included) and the weights of its channels are staged in
  shared memory by all the block's threads (the padding stage is inlined into that copy:
  out-of-image taps read as zero, nothing padded is written to global memory), then each
  thread accumulates a register tile of ``ro`` channels × ``rx`` columns, ``to`` and ``tx``
  apart (so that global writes coalesce), its kernel window unrolled. Tails (channels,
  rows, columns, input channels that the tile does not divide) are predicated.
  A batch (with enough blocks) gets a larger register tile, two columns per thread
  (`BATCH_TILE_ORDER`); a dense convolution with few input channels (the ResNet stem's 3)
  stages all its input channels at once, the whole window and the weights of a channel tile
  (`FEW_TILE`), when they fit in shared memory.
- Depthwise and grouped convolutions (and few-channel ones whose tiles do not fit) get one
  thread per output with the kernel window unrolled in registers (`conv2d_direct`): a
  depthwise output reads a small window of one plane (neighbouring threads share it through
  L1), so there is no reuse for shared memory to capture.
"""

from __future__ import annotations

from dataclasses import dataclass

from vta.compiler.tir.compact import compact
from vta.compiler.tir.expr import Expr, IntImm, Mul, Var, free_vars
from vta.compiler.tir.schedule import Schedule, ScheduleError
from vta.compiler.tir.simplify import linear_form, simplify
from vta.compiler.tir.stmt import Block, BlockRealize, BufferLoad, BufferStore, Cast
from vta.compiler.tir.transform import walk_stmt

from .primitives import bind, reduction_parts, try_inline

DENSE_MIN_CHANNELS = 8  # fewer input channels per group: the direct schedule
DIRECT_THREADS = 256
MAX_UNROLL = 64  # kernel window taps unrolled in the direct schedule
# Dense tiles, measured on an H200 over the ResNet-18 layers (batch 1): 8 channel threads with
# 4, 2 or 1 channels each, one output pixel per thread (a second column per thread was
# slower everywhere), and the largest register tile that still gives ~3/4 of the SMs a block.
TILE_ORDER = ((8, 4), (8, 2), (8, 1), (4, 1))  # (channel threads, channels per thread), preferred first
MIN_BLOCKS = 96
# Batches (n > 1) with at least `MIN_BLOCKS` blocks: (channel threads, channels per thread), two
# columns per thread, preferred first. Measured on an H200, 8x64x56x56 3x3 to 64: 88 us, against
# 153 us with `TILE_ORDER`'s (8, 4) one pixel per thread (the same 2 columns with 4 channels: 134).
BATCH_TILE_ORDER = ((8, 8), (8, 4))
# Fewer than `DENSE_MIN_CHANNELS` input channels: (channel threads, channels per thread), one pixel
# per thread, all the input channels staged in one step. Measured on an H200, the ResNet stem
# (1x3x224x224 7x7 stride 2 to 64): 24 us, against 49 us with the direct schedule.
FEW_TILE = (4, 4)
FEW_SHARED_BYTES = 40 * 1024  # the most `ConvTile.fetch_bytes` the few-channel tile may take


@dataclass(frozen=True)
class ConvInfo:
    """What `conv2d_pattern` found: the block, the indices of the data and weight reads in
    its read regions, the extents and the strides/dilations of the window."""

    block: str
    data: int  # index into the block's reads
    weight: int
    n: int
    oc: int
    oh: int
    ow: int
    ic: int
    kh: int
    kw: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    grouped: bool  # the input channel depends on the output channel (groups > 1)


@dataclass(frozen=True)
class ConvTile:
    """A thread block's tile of a dense convolution: ``to``·``ty``·``tx`` threads (channels,
    rows, columns), each ``ro`` channels × ``rx`` columns of registers; ``ic`` input channels
    staged per step."""

    to: int
    ty: int
    tx: int
    ro: int
    rx: int
    ic: int

    @property
    def threads(self) -> int:
        return self.to * self.ty * self.tx

    def pixel_tiles(self, info: ConvInfo) -> int:
        return -(-info.oh // self.ty) * -(-info.ow // (self.tx * self.rx))

    def channel_tiles(self, info: ConvInfo) -> int:
        return -(-info.oc // (self.to * self.ro))

    def batch_on_grid(self, info: ConvInfo) -> bool:
        """Whether the grid spans images (``blockIdx.z``) and each block loops over the channel
        tiles, rather than the grid spanning channel tiles and each block looping over images:
        three grid axes for four block loops, which cannot be fused (a fused index is not
        affine, and the tiles' regions must be). Images, where one channel tile covers the
        output channels or the images' pixel tiles alone give `MIN_BLOCKS` blocks."""
        return info.n > 1 and (self.channel_tiles(info) == 1 or info.n * self.pixel_tiles(info) >= MIN_BLOCKS)

    def blocks(self, info: ConvInfo) -> int:
        """Thread blocks in the grid."""
        return self.pixel_tiles(info) * (info.n if self.batch_on_grid(info) else self.channel_tiles(info))

    def shared_bytes(self, info: ConvInfo) -> int:
        sh, sw = info.stride
        dh, dw = info.dilation
        rows = (self.ty - 1) * sh + (info.kh - 1) * dh + 1
        cols = (self.tx * self.rx - 1) * sw + (info.kw - 1) * dw + 1
        ic = min(self.ic, info.ic)
        return 4 * ic * (rows * cols + self.to * self.ro * info.kh * info.kw)

    def fetch_bytes(self, info: ConvInfo) -> int:
        """An upper bound of the shared memory of one step's tiles as `_fetch` copies them: each
        copied dimension rounded up to whole rounds of its threads (which matters when a
        dimension is smaller than its thread count: few input channels)."""
        def up(a: int, b: int) -> int:
            return -(-a // b) * b

        sh, sw = info.stride
        dh, dw = info.dilation
        rows = (self.ty - 1) * sh + (info.kh - 1) * dh + 1
        cols = (self.tx * self.rx - 1) * sw + (info.kw - 1) * dw + 1
        ic = min(self.ic, info.ic)
        data = up(ic, self.to) * up(rows, self.ty) * up(cols, self.tx)
        weights = up(self.to * self.ro, self.to) * up(ic, self.ty) * up(info.kh * info.kw, self.tx)
        return 4 * (data + weights)


def _operand(e: object) -> BufferLoad | None:
    if isinstance(e, Cast):
        e = e.value
    return e if isinstance(e, BufferLoad) else None


def _realize(sch: Schedule, block: str) -> BlockRealize | None:
    return next((s for s in walk_stmt(sch.func.body) if isinstance(s, BlockRealize) and s.block.name == block), None)


def conv2d_pattern(sch: Schedule, block: str) -> ConvInfo | None:
    """The convolution ``block`` is (see the module docstring), or None."""
    real = _realize(sch, block)
    if real is None:
        return None
    blk = real.block
    parts = reduction_parts(blk)
    loops = sch._loops_above(block)
    if parts is None or parts[0] != "sum" or not isinstance(parts[1], Mul) or len(blk.iter_vars) != 7 or \
            list(real.iter_values) != loops:
        return None
    if [iv.kind for iv in blk.iter_vars] != ["S"] * 4 + ["R"] * 3:
        return None
    if not all(isinstance(sch._loop(v).extent, IntImm) for v in loops):
        return None
    vn, vo, vy, vx, vi, vky, vkx = (iv.var for iv in blk.iter_vars)
    a, b = _operand(parts[1].a), _operand(parts[1].b)
    if a is None or b is None or a.buffer is b.buffer:
        return None
    if tuple(b.indices) != (vo, vi, vky, vkx):
        a, b = b, a
    if tuple(b.indices) != (vo, vi, vky, vkx) or len(a.indices) != 4 or a.indices[0] is not vn:
        return None
    dtypes = {a.buffer.dtype, b.buffer.dtype, blk.body.buffer.dtype}  # type: ignore[attr-defined]
    if dtypes != {"float32"}:
        return None
    cin = a.indices[1]
    grouped = cin is not vi
    if grouped and vi not in free_vars(cin):
        return None

    def window(e: Expr, v: Var, k: Var) -> tuple[int, int] | None:
        lin = linear_form(simplify(e))
        if lin is None or set(lin.coeffs) != {v, k} and set(lin.coeffs) != {v} or lin.const != 0:
            return None
        return lin.coeffs[v], lin.coeffs.get(k, 1)

    wy, wx = window(a.indices[2], vy, vky), window(a.indices[3], vx, vkx)
    if wy is None or wx is None:
        return None
    reads = [r.buffer for r in blk.reads]
    if a.buffer not in reads or b.buffer not in reads:
        return None
    ext = [sch._loop(v).extent.value for v in loops]  # type: ignore[attr-defined]
    return ConvInfo(block, reads.index(a.buffer), reads.index(b.buffer), *ext, (wy[0], wx[0]),  # type: ignore[arg-type]
                    (wy[1], wx[1]), grouped)


def _side(n: int) -> int:
    """Threads along an output side: 8, or 7 where that divides it and 8 does not (no tail)."""
    if n <= 8:
        return n
    return 7 if n % 8 and n % 7 == 0 else 8


def conv_tile(info: ConvInfo) -> ConvTile:
    """The tile of a dense convolution: `TILE_ORDER`'s first (channel threads, channel
    registers) that gives at least `MIN_BLOCKS` blocks (the one with the most blocks when
    none does), one output row and column per thread (row and column threads: `_side`).
    A batch takes `BATCH_TILE_ORDER`'s first with two columns per thread that gives
    `MIN_BLOCKS` blocks, if one does; fewer than `DENSE_MIN_CHANNELS` input channels, `FEW_TILE`."""
    ty, tx = _side(info.oh), _side(info.ow)
    if info.ic < DENSE_MIN_CHANNELS:
        return ConvTile(FEW_TILE[0], ty, tx, FEW_TILE[1], 1, info.ic)
    ic = min(8, info.ic)
    if info.n > 1:
        tx2 = _side(-(-info.ow // 2))
        for to, ro in BATCH_TILE_ORDER:
            c = ConvTile(to, ty, tx2, ro, 2, ic)
            if c.shared_bytes(info) <= 40 * 1024 and c.blocks(info) >= MIN_BLOCKS:
                return c
    cands = [ConvTile(to, ty, tx, ro, 1, ic) for to, ro in TILE_ORDER]
    cands = [c for c in cands if c.shared_bytes(info) <= 40 * 1024] or cands[-1:]
    for c in cands:
        if c.blocks(info) >= MIN_BLOCKS:
            return c
    return max(cands, key=lambda c: (c.blocks(info), -cands.index(c)))


def _fetch(sch: Schedule, block: str, at: Var, threads: tuple[int, int, int], fuse_last: bool) -> list[Var]:
    """Spread the copy nest of ``block`` (below ``at``: four loops over a 4-D tile) over
    ``threads`` = (z, y, x) threads, each of the last three dimensions split by one thread
    count (with ``fuse_last``, the last two fused first: a weight tile's whole kernel
    window), so that the indices stay affine and the shared buffer compacts to the tile;
    returns the serial loops left to each thread."""
    loops = sch.get_loops(block)
    own = loops[loops.index(at) + 1:]
    if len(own) != 4:
        raise ScheduleError(f"conv fetch: block {block} has {len(own)} loops below {at.name}, not 4")
    if fuse_last:
        own = [own[0], own[1], sch.fuse(own[2], own[3])]
    tz, ty, tx = threads
    outer, inner = list(own[:-3]), []
    for v, cnt in zip(own[-3:], (tz, ty, tx)):
        o, i = sch.split(v, [None, cnt])
        outer.append(o)
        inner.append(i)
    sch.reorder(*outer, *inner)
    for v, axis, cnt in zip(inner, ("threadIdx.z", "threadIdx.y", "threadIdx.x"), (tz, ty, tx)):
        if cnt > 1:
            bind(sch, v, axis)
    return outer


def conv2d_dense(sch: Schedule, info: ConvInfo, tile: ConvTile | None = None) -> None:
    """The tiled schedule of a dense convolution (see the module docstring)."""
    from .schedule import _drop_stale_conditions

    t = tile or conv_tile(info)
    block = info.block
    blk = next(s for s in walk_stmt(sch.func.body) if isinstance(s, Block) and s.name == block)
    d_buf, w_buf = blk.reads[info.data].buffer, blk.reads[info.weight].buffer
    n, o, y, x, i, ky, kx = sch._loops_above(block)
    bo, ro, to = sch.split(o, [None, t.ro, t.to])
    by, ty = sch.split(y, [None, t.ty])
    bx, rx, tx = sch.split(x, [None, t.rx, t.tx])
    io, ii = sch.split(i, [None, t.ic])
    # three grid axes for four block loops (`ConvTile.batch_on_grid`); the other is a loop in each block
    grid = [(n if t.batch_on_grid(info) else bo, "blockIdx.z"), (by, "blockIdx.y"), (bx, "blockIdx.x")]
    serial = [v for v in (n, bo) if v not in [g for g, _ in grid]]
    sch.reorder(*[g for g, _ in grid], *serial, io, to, ty, tx, ii, ky, kx, ro, rx)
    at = serial[-1]
    out = sch.cache_write(block, 0, "local")
    sch.reverse_compute_at(out, at)
    init = sch.decompose_reduction(block, io)
    _drop_stale_conditions(sch, init)
    threads = (t.to, t.ty, t.tx)
    for src, fuse_last in ((d_buf, False), (w_buf, True)):
        reads = [r.buffer for r in next(s for s in walk_stmt(sch.func.body)
                                        if isinstance(s, Block) and s.name == block).reads]
        cache = sch.cache_read(block, reads.index(src), "shared")
        if src in sch.func.allocs:  # the padding stage: computed as the tile is copied
            producer = _producer(sch, src)
            if producer is not None:
                try_inline(sch, producer)
        sch.compute_at(cache, io)
        for v in _fetch(sch, cache, io, threads, fuse_last):
            sch.unroll(v)
    # the write-out: the same channels and columns per thread as the compute
    *_, a0, a1, a2, a3 = sch.get_loops(out)
    a1o, a1i = sch.split(a1, [t.ro, t.to])
    a3o, a3i = sch.split(a3, [t.rx, t.tx])
    sch.reorder(a0, a1i, a2, a3i, a1o, a3o)
    *_, to0, ty0, tx0, ro0, rx0 = sch.get_loops(init)
    for z_, y_, x_, regs in ((to, ty, tx, (ro, rx, ky, kx, ii)), (to0, ty0, tx0, (ro0, rx0)),
                             (a1i, a2, a3i, (a1o, a3o))):
        for v, axis, cnt in ((z_, "threadIdx.z", t.to), (y_, "threadIdx.y", t.ty), (x_, "threadIdx.x", t.tx)):
            if cnt > 1:
                bind(sch, v, axis)
        for r in regs:
            sch.unroll(r)
    for v, axis in grid:
        bind(sch, v, axis)
    if any(sch._loop(v).extent.value > 1 for v in serial):  # type: ignore[attr-defined]
        # the accumulators of one image (or channel tile) at a time
        sch.func = compact(sch.func, scopes=("local",))


def _producer(sch: Schedule, buf: object) -> str | None:
    for s in walk_stmt(sch.func.body):
        if isinstance(s, Block) and isinstance(s.body, BufferStore) and s.body.buffer is buf:
            return s.name
    return None


def conv2d_direct(sch: Schedule, info: ConvInfo) -> None:
    """One thread per output, the kernel window unrolled (see the module docstring)."""
    blk = next(s for s in walk_stmt(sch.func.body) if isinstance(s, Block) and s.name == info.block)
    d_buf = blk.reads[info.data].buffer
    producer = _producer(sch, d_buf) if d_buf in sch.func.allocs else None
    if producer is not None:  # the padding stage: each tap tests its bounds instead
        try_inline(sch, producer)
    n, o, y, x, i, ky, kx = sch._loops_above(info.block)
    f = sch.fuse(n, o, y, x)
    total = info.n * info.oc * info.oh * info.ow
    threads = min(DIRECT_THREADS, -(-total // 32) * 32)
    bx, tx = sch.split(f, [None, threads])
    bind(sch, bx, "blockIdx.x")
    bind(sch, tx, "threadIdx.x")
    if info.kh * info.kw <= MAX_UNROLL:
        sch.unroll(ky)
        sch.unroll(kx)
        if info.ic * info.kh * info.kw <= MAX_UNROLL:
            sch.unroll(i)


def few_channel_dense(info: ConvInfo) -> bool:
    """Whether a dense convolution with fewer than `DENSE_MIN_CHANNELS` input channels gets the
    dense schedule (`FEW_TILE`, all its input channels in one step): when the tiles fit."""
    return not info.grouped and conv_tile(info).fetch_bytes(info) <= FEW_SHARED_BYTES


def schedule_conv2d(sch: Schedule, block: str) -> bool:
    """Schedule ``block`` when it is a float32 NCHW convolution; False (untouched) otherwise."""
    info = conv2d_pattern(sch, block)
    if info is None:
        return False
    trial = Schedule(sch.func)
    try:
        if info.grouped or info.ic < DENSE_MIN_CHANNELS and not few_channel_dense(info):
            conv2d_direct(trial, info)
        else:
            conv2d_dense(trial, info)
    except ScheduleError:
        return False
    sch.func, sch.trace = trial.func, sch.trace + trial.trace
    return True


__all__ = ["ConvInfo", "ConvTile", "conv2d_dense", "conv2d_direct", "conv2d_pattern", "conv_tile", "few_channel_dense",
           "schedule_conv2d"]

