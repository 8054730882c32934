"""Random valid programs, for differential testing of the simulators.

A program is a sequence of phases; each phase loads inputs and weights (load
module), computes (uop and acc loads, GEMM, ALU: compute module) and stores
results (store module). Tokens order the phases completely, so programs are
race-free; within a phase, fields are drawn to reach corners: padding on
each side, stride 0 and gaps, empty transfers, accesses that end exactly at a
buffer's end, repeated destinations, every ALU operation, shifts both ways.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vta.isa import AluOp, Config, Insn, MemType, Opcode, Program, Segment
from vta.isa.spec import ITER_BITS, PAD_BITS

_SEG_ELEMS = {MemType.INP: 96, MemType.WGT: 24, MemType.ACC: 48}


@dataclass
class _Builder:
    cfg: Config
    rng: np.random.Generator
    insns: list[Insn]
    uop_rows: list[tuple[int, int, int]]
    uop_buf: dict[int, tuple[int, int, int]]  # what the generator has loaded into the uop buffer
    written: list[int] = field(default_factory=list)  # acc entries the last compute instructions wrote

    def r(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return int(self.rng.integers(lo, hi + 1))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)


def _segment_data(cfg: Config, rng: np.random.Generator) -> list[Segment]:
    segs, addr = [], 0
    align = max(cfg.elem_bytes(m) for m in MemType)

    def add(name: str, dtype: str, values: np.ndarray, output: bool = False) -> None:
        nonlocal addr
        seg = Segment(name, addr, dtype, values, output)
        segs.append(seg)
        addr = -(-(addr + seg.nbytes(cfg)) // align) * align

    for mem, n in _SEG_ELEMS.items():
        shape = (n, *cfg.elem_shape(mem))
        bits = cfg.elem_width(mem)
        lim = 1 << (bits - 1)
        if mem == MemType.ACC and rng.random() < 0.5:
            lim = 1 << 12  # small accumulators keep later multiplies from saturating everything
        add(mem.name.lower(), f"int{bits}", rng.integers(-lim, lim, shape))
    add("out", f"int{cfg.out_width}", np.zeros((64, *cfg.elem_shape(MemType.OUT)), np.int64), output=True)
    add("accout", f"int{cfg.acc_width}", np.zeros((32, *cfg.elem_shape(MemType.ACC)), np.int64), output=True)
    return segs


_WINDOW = 24  # most accesses fall in the first entries of each buffer, so phases feed each other


def _sram_base(b: _Builder, depth: int, n: int) -> int:
    """A buffer base for ``n`` entries: usually in the shared window, sometimes ending at the buffer's end."""
    p = b.rng.random()
    if p < 0.1:
        return depth - n
    if p < 0.2:
        return b.r(0, depth - n)
    return b.r(0, max(0, min(_WINDOW, depth - n)))


def _mem_rows(b: _Builder, mem: MemType, seg_elems: int, depth: int, padded: bool) -> dict[str, int]:
    """Sizes, stride and pads for one DMA that fits both the DRAM segment and the buffer."""
    pmax = (1 << PAD_BITS) - 1 if padded else 0
    for _ in range(100):
        y, x = b.r(1, 4), b.r(1, 6)
        stride = b.rng.choice([x, x, 0, x + b.r(1, 3)]) if y > 1 else x
        pads = [b.r(0, min(2, pmax)) if b.chance(0.3) else 0 for _ in range(4)]
        if b.chance(0.05) and padded:
            pads[b.r(0, 3)] = pmax
        rows, cols = pads[0] + y + pads[1], pads[2] + x + pads[3]
        span = (y - 1) * stride + x
        if rows * cols <= depth and span <= seg_elems:
            dram_off = b.r(0, seg_elems - span)
            return dict(y=y, x=x, stride=int(stride), pads=pads, dram_off=dram_off,
                        sram=_sram_base(b, depth, rows * cols))
    raise AssertionError("no DMA shape fits")


def _load(b: _Builder, mem: MemType, segs: dict[str, Segment]) -> Insn:
    seg = segs[mem.name.lower()]
    elem = b.cfg.elem_bytes(mem)
    d = _mem_rows(b, mem, len(seg.values), b.cfg.depth(mem), padded=True)
    if b.chance(0.05):  # an empty transfer: tokens only
        d["y"] = 0 if b.chance(0.5) else d["y"]
        d["x"] = 0 if d["y"] else d["x"]
    pad_value = b.r(-128, 127) if any(d["pads"]) and b.chance(0.5) else 0
    return Insn.load(mem, d["sram"], seg.addr // elem + d["dram_off"], d["y"], d["x"], d["stride"],
                     tuple(d["pads"]), pad_value)  # type: ignore[arg-type]


def _load_uops(b: _Builder, uop_seg_addr: int) -> Insn:
    c = b.cfg
    n = b.r(1, 6)
    base = c.uop_depth - n if b.chance(0.1) else b.r(0, min(c.uop_depth - n, 32))
    first = len(b.uop_rows)
    for k in range(n):
        # Mostly small indices (so loops have room), sometimes the last entry of a buffer.
        dst = c.acc_depth - 1 if b.chance(0.05) else b.r(0, min(c.acc_depth - 1, _WINDOW))
        src = b.r(0, min(c.inp_depth, c.acc_depth) - 1) if b.chance(0.05) else b.r(0, _WINDOW)
        wgt = c.wgt_depth - 1 if b.chance(0.05) else b.r(0, min(c.wgt_depth - 1, _WINDOW // 2))
        b.uop_rows.append((dst, src, wgt))
        b.uop_buf[base + k] = (dst, src, wgt)
    return Insn.load(MemType.UOP, base, uop_seg_addr // (c.uop_bits // 8) + first, 1, n)


def _loop(b: _Builder, gemm: bool) -> Insn | None:
    c = b.cfg
    loaded = sorted(b.uop_buf)
    if not loaded:
        return None
    start = b.rng.choice(loaded)
    end = start
    while end + 1 in b.uop_buf and end - start < 3 and b.chance(0.6):
        end += 1
    uops = [b.uop_buf[u] for u in range(start, end + 1)]
    depth_src = c.inp_depth if gemm else c.acc_depth
    slack = {
        "dst": c.acc_depth - 1 - max(u[0] for u in uops),
        "src": depth_src - 1 - max(u[1] for u in uops),
        "wgt": c.wgt_depth - 1 - max(u[2] for u in uops),
    }
    if not gemm:
        slack["wgt"] = 1 << 20
    if slack["src"] < 0:
        return None
    io, ii = b.r(1, 4), b.r(1, 6)
    if b.chance(0.03):
        io = 0 if b.chance(0.5) else io
    f: dict[str, tuple[int, int]] = {}
    for k, s in slack.items():
        # Small steps keep iterations inside the shared window; the full slack reaches buffer ends.
        room = s if b.chance(0.1) else min(s, _WINDOW)
        fo = b.r(0, room // max(1, io - 1) // 2) if io > 1 and b.chance(0.7) else 0
        fi = b.r(0, (room - fo * max(0, io - 1)) // max(1, ii - 1)) if ii > 1 and b.chance(0.8) else 0
        f[k] = (fo, fi)
    assert io < (1 << ITER_BITS)
    b.written = [u[0] + i * f["dst"][0] + j * f["dst"][1] for u in uops for i in range(max(io, 1))
                 for j in range(ii)]
    if gemm:
        return Insn.gemm(start, end + 1, io, ii, f["dst"], f["src"], f["wgt"], reset=b.chance(0.2))
    op = AluOp(b.r(0, len(AluOp) - 1))
    imm = None
    if b.chance(0.6):
        w = c.acc_width
        shift = int(b.rng.choice([b.r(-w - 8, w + 8), w - 1, w, -w, -(w - 1), w - 2, 0, -1]))
        imm = {AluOp.SHR: shift, AluOp.MUL: b.r(-300, 300)}.get(op, b.r(-(1 << 15), (1 << 15) - 1))
    return Insn.alu(op, start, end + 1, io, ii, f["dst"], f["src"], imm)


def _store(b: _Builder, segs: dict[str, Segment]) -> Insn:
    c = b.cfg
    mem = MemType.ACC if b.chance(0.3) else MemType.OUT
    seg = segs["accout" if mem == MemType.ACC else "out"]
    d = _mem_rows(b, mem, len(seg.values), c.acc_depth, padded=False)
    n = d["y"] * d["x"]
    if b.written and b.chance(0.6):  # read back what compute just wrote
        d["sram"] = max(0, min(int(b.rng.choice(b.written)) - b.r(0, n - 1), c.acc_depth - n))
    return Insn.store(d["sram"], seg.addr // c.elem_bytes(mem) + d["dram_off"], d["y"], d["x"], d["stride"], mem)


def random_program(config: Config, seed: int, phases: int = 3) -> Program:
    """A random, race-free program of ``phases`` load→compute→store phases."""
    rng = np.random.default_rng(seed)
    segs = _segment_data(config, rng)
    by_name = {s.name: s for s in segs}
    b = _Builder(config, rng, [], [], {})
    uop_addr = max(s.addr + s.nbytes(config) for s in segs)
    uop_addr = -(-uop_addr // 64) * 64
    for ph in range(phases):
        loads = [_load(b, MemType.INP if b.chance(0.6) else MemType.WGT, by_name) for _ in range(b.r(1, 3))]
        if ph:
            loads[0].pop_next = 1  # wait until the previous phase's compute is done with inp/wgt
        loads[-1].push_next = 1
        comp: list[Insn] = []
        if not b.uop_buf or b.chance(0.5):
            comp.append(_load_uops(b, uop_addr))
        for _ in range(b.r(1, 5)):
            kind = b.r(0, 9)
            insn = _load(b, MemType.ACC, by_name) if kind == 0 else (
                _load_uops(b, uop_addr) if kind == 1 else _loop(b, gemm=kind < 6))
            if insn is not None:
                comp.append(insn)
        comp[0].pop_prev = 1
        if ph:
            comp[0].pop_next = 1  # wait until the previous phase's stores have read acc
        comp[-1].push_next = 1
        if ph + 1 < phases:
            comp[-1].push_prev = 1
        stores = [_store(b, by_name) for _ in range(b.r(1, 2))]
        stores[0].pop_prev = 1
        if ph + 1 < phases:
            stores[-1].push_prev = 1
        b.insns += loads + comp + stores
    b.insns.append(Insn(Opcode.FINISH))
    uops = Segment("uops", uop_addr, "uop", np.array(b.uop_rows, np.int64).reshape(-1, 3))
    return Program(config, b.insns, segs + [uops])
