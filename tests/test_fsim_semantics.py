"""fsim instruction semantics against numpy, on the default, tiny, batch>1 and non-square configs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RtlCheck, run, seg_layout

from vta.isa import AluOp, Config, Insn, MemType, Program
from vta.isa.values import wrap
from vta.runtime import FsimDevice, run_program

PADS = {
    "none": (0, 0, 0, 0), "top": (2, 0, 0, 0), "bottom": (0, 3, 0, 0), "left": (0, 0, 1, 0),
    "right": (0, 0, 0, 2), "all": (1, 2, 3, 1),
}
FOUR_BIT = Config(block_in=8, block_out=8, inp_width=4, wgt_width=4, out_width=4, acc_width=16,
                  uop_buffer_bytes=1 << 12, inp_buffer_bytes=1 << 12, wgt_buffer_bytes=1 << 13,
                  acc_buffer_bytes=1 << 13)


def rand(rng: np.random.Generator, bits: int, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), shape)


def one_uop() -> tuple[str, str, np.ndarray, bool]:
    return ("K", "uop", np.array([[0, 0, 0]]), False)


def run_on_device(config: Config, insns: list[Insn], segments, **opts) -> tuple[dict, FsimDevice]:
    prog = Program(config, insns, segments)
    dev = FsimDevice(config, dram_bytes=1 << 20, **opts)
    outputs = run_program(prog, dev).outputs
    RtlCheck.check_program(prog, 1 << 20)
    return outputs, dev


# ---- LOAD / STORE ---------------------------------------------------------

@pytest.mark.parametrize("pad", list(PADS), ids=list(PADS))
@pytest.mark.parametrize("stride_kind", ["dense", "gap", "zero"])
def test_load_2d_strided_padded(cfg: Config, pad: str, stride_kind: str) -> None:
    rng = np.random.default_rng(1)
    rows, cols = 6, 7
    src = rand(rng, cfg.inp_width, (rows * cols, cfg.batch, cfg.block_in))
    segs = seg_layout(cfg, [("X", f"int{cfg.inp_width}", src, False)])
    y, x = 3, 4
    stride = {"dense": x, "gap": cols, "zero": 0}[stride_kind]
    off = 2
    t, b, l, r = PADS[pad]
    base = 5
    elem = cfg.elem_bytes(MemType.INP)
    insns = [Insn.load(MemType.INP, base, segs[0].addr // elem + off, y, x, stride, PADS[pad], pad_value=-3),
             Insn.finish()]
    _, dev = run_on_device(cfg, insns, segs)
    window = np.stack([src[off + i * stride: off + i * stride + x] for i in range(y)])
    expect = np.pad(window, ((t, b), (l, r), (0, 0), (0, 0)), constant_values=-3)
    n = expect.shape[0] * expect.shape[1]
    got = dev.sim.pads.inp[base: base + n].reshape(expect.shape)
    assert np.array_equal(got, expect)
    assert not dev.sim.pads.inp[base + n:].any() and not dev.sim.pads.inp[:base].any()


def test_load_wgt_to_buffer_end(cfg: Config) -> None:
    rng = np.random.default_rng(2)
    w = rand(rng, cfg.wgt_width, (3, cfg.block_out, cfg.block_in))
    segs = seg_layout(cfg, [("W", f"int{cfg.wgt_width}", w, False)])
    base = cfg.wgt_depth - 3
    _, dev = run_on_device(cfg, [Insn.load(MemType.WGT, base, segs[0].addr // cfg.elem_bytes(MemType.WGT), 1, 3),
                                 Insn.finish()], segs)
    assert np.array_equal(dev.sim.pads.wgt[base:], w)


def test_acc_load_move_narrowed_store(cfg: Config) -> None:
    """LOAD ACC, ALU MOV into another region, STORE OUT (truncated) and STORE ACC (full width)."""
    rng = np.random.default_rng(3)
    n = 6
    vals = rand(rng, cfg.acc_width, (n, cfg.batch, cfg.block_out))
    vals[0, 0, 0], vals[1, 0, 0] = 300, -129  # wrap visibly when narrowed to 8 bits
    zeros = np.zeros((n, cfg.batch, cfg.block_out), np.int64)
    segs = seg_layout(cfg, [("V", f"int{cfg.acc_width}", vals, False), ("K", "uop", np.array([[n, 0, 0]]), False),
                            ("O", f"int{cfg.out_width}", zeros, True), ("F", f"int{cfg.acc_width}", zeros, True)])
    v, k, o, f = segs
    acc_e, out_e = cfg.elem_bytes(MemType.ACC), cfg.elem_bytes(MemType.OUT)
    insns = [
        Insn.load(MemType.UOP, 0, k.addr // cfg.elem_bytes(MemType.UOP), 1, 1),
        Insn.load(MemType.ACC, 0, v.addr // acc_e, 1, n),
        Insn.alu(AluOp.MOV, 0, 1, 1, n, dst=(0, 1), src=(0, 1), push_next=1),  # acc[n + i] = acc[i]
        Insn.store(n, o.addr // out_e, 1, n, pop_prev=1),
        Insn.store(n, f.addr // acc_e, 1, n, mem=MemType.ACC),
        Insn.finish(),
    ]
    out = run(cfg, insns, segs)
    assert np.array_equal(out["F"], vals)
    assert np.array_equal(out["O"], wrap(vals, cfg.out_width))
    if cfg.out_width == 8:
        assert out["O"][0, 0, 0] == 44 and out["O"][1, 0, 0] == 127


@pytest.mark.parametrize("stride_kind", ["gap", "overlap"])
def test_store_strides(cfg: Config, stride_kind: str) -> None:
    rng = np.random.default_rng(4)
    vals = rand(rng, 8, (6, cfg.batch, cfg.block_out))
    y, x = 3, 2
    stride = 3 if stride_kind == "gap" else 1
    segs = seg_layout(cfg, [("V", f"int{cfg.acc_width}", vals, False),
                            ("O", f"int{cfg.out_width}", np.full((8, cfg.batch, cfg.block_out), 5), True)])
    v, o = segs
    insns = [Insn.load(MemType.ACC, 0, v.addr // cfg.elem_bytes(MemType.ACC), 1, 6, push_next=1),
             Insn.store(0, o.addr // cfg.elem_bytes(MemType.OUT), y, x, stride, pop_prev=1), Insn.finish()]
    out = run(cfg, insns, segs)
    expect = np.full((8, cfg.batch, cfg.block_out), 5)
    for row in range(y):  # rows are written in order; a later row overwrites an overlapping earlier one
        expect[row * stride: row * stride + x] = vals[row * x: row * x + x]
    assert np.array_equal(out["O"], expect)


def test_empty_transfer_is_token_only(cfg: Config) -> None:
    segs = seg_layout(cfg, [("O", f"int{cfg.out_width}", np.full((2, cfg.batch, cfg.block_out), 9), True)])
    insns = [Insn.load(MemType.INP, 0, 10 ** 6, 0, 5, push_next=1),  # x_size 0: no bounds check, no data
             Insn.load(MemType.ACC, 0, 0, 3, 0, pad=(1, 1, 1, 1), pop_prev=1, push_next=1),
             Insn.store(0, segs[0].addr // cfg.elem_bytes(MemType.OUT), 0, 2, pop_prev=1),
             Insn.finish()]
    out, dev = run_on_device(cfg, insns, segs)
    assert (out["O"] == 9).all() and not dev.sim.pads.acc.any()


# ---- GEMM -----------------------------------------------------------------

def gemm_program(cfg: Config, mb: int, kb: int, nb: int, seed: int = 5, bias: bool = True):
    """A (mb·batch × kb·block_in) times W (nb·block_out × kb·block_in)ᵀ, plus an optional bias, stored at
    full width. One GEMM with reset, one accumulating GEMM whose uops cover the reduction."""
    rng = np.random.default_rng(seed)
    a = rand(rng, cfg.inp_width, (mb, kb, cfg.batch, cfg.block_in))
    w = rand(rng, cfg.wgt_width, (nb, kb, cfg.block_out, cfg.block_in))
    b0 = rand(rng, 20, (mb * nb, cfg.batch, cfg.block_out)) if bias else np.zeros((mb * nb, cfg.batch,
                                                                                  cfg.block_out), np.int64)
    uops = np.array([[0, k, k] for k in range(kb)])  # one uop per reduction block
    segs = seg_layout(cfg, [
        ("A", f"int{cfg.inp_width}", a.reshape(-1, cfg.batch, cfg.block_in), False),
        ("W", f"int{cfg.wgt_width}", w.reshape(-1, cfg.block_out, cfg.block_in), False),
        ("B", f"int{cfg.acc_width}", b0, False), ("K", "uop", uops, False),
        ("C", f"int{cfg.acc_width}", np.zeros((mb * nb, cfg.batch, cfg.block_out), np.int64), True)])
    A, W, B, K, C = segs
    e = cfg.elem_bytes
    insns = [
        Insn.load(MemType.INP, 0, A.addr // e(MemType.INP), 1, mb * kb),
        Insn.load(MemType.WGT, 0, W.addr // e(MemType.WGT), 1, nb * kb, push_next=1),
        Insn.load(MemType.UOP, 0, K.addr // e(MemType.UOP), 1, kb, pop_prev=1),
        Insn.gemm(0, 1, mb, nb, dst=(nb, 1), reset=True),
        Insn.load(MemType.ACC, 0, B.addr // e(MemType.ACC), 1, mb * nb),
        Insn.gemm(0, kb, mb, nb, dst=(nb, 1), src=(kb, 0), wgt=(0, kb), push_next=1),
        Insn.store(0, C.addr // e(MemType.ACC), 1, mb * nb, mem=MemType.ACC, pop_prev=1),
        Insn.finish(),
    ]
    am = a.transpose(0, 2, 1, 3).reshape(mb * cfg.batch, kb * cfg.block_in)
    wm = w.transpose(0, 2, 1, 3).reshape(nb * cfg.block_out, kb * cfg.block_in)
    ref = am @ wm.T  # (M, N)
    ref_blocks = ref.reshape(mb, cfg.batch, nb, cfg.block_out).transpose(0, 2, 1, 3).reshape(-1, cfg.batch,
                                                                                              cfg.block_out)
    return insns, segs, wrap(ref_blocks + b0, cfg.acc_width)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 4, 2), (8, 2, 3)])
def test_blocked_gemm(cfg: Config, shape: tuple[int, int, int]) -> None:
    insns, segs, ref = gemm_program(cfg, *shape)
    assert np.array_equal(run(cfg, insns, segs)["C"], ref)


def test_four_bit_gemm_and_narrow_store() -> None:
    cfg = FOUR_BIT
    insns, segs, ref = gemm_program(cfg, 3, 2, 2, bias=False)
    assert np.array_equal(run(cfg, insns, segs)["C"], ref)


def test_gemm_accumulator_wraps() -> None:
    """16-bit accumulators wrap on overflow, as every accumulator width does."""
    cfg = Config(acc_width=16, out_width=16, acc_buffer_bytes=1 << 16)
    a = np.full((1, 1, 16), 127)
    w = np.full((1, 16, 16), 127)
    segs = seg_layout(cfg, [("A", "int8", a, False), ("W", "int8", w, False), one_uop(),
                            ("C", "int16", np.zeros((1, 1, 16), np.int64), True)])
    A, W, K, C = segs
    insns = [Insn.load(MemType.INP, 0, A.addr // 16, 1, 1), Insn.load(MemType.WGT, 0, W.addr // 256, 1, 1,
                                                                         push_next=1),
             Insn.load(MemType.UOP, 0, K.addr // 4, 1, 1, pop_prev=1),
             Insn.gemm(0, 1, 1, 3, dst=(0, 0)),  # the same uop three times: 3·16·127² = 774192
             Insn.store(0, C.addr // 32, 1, 1, mem=MemType.ACC, push_prev=0), Insn.finish()]
    insns[3].push_next, insns[4].pop_prev = 1, 1
    assert (run(cfg, insns, segs)["C"] == wrap(np.int64(3 * 16 * 127 * 127), 16)).all()


# ---- ALU ------------------------------------------------------------------

def _alu_ref(op: AluOp, a: int, b: int, bits: int) -> int:
    if op == AluOp.MIN:
        return min(a, b)
    if op == AluOp.MAX:
        return max(a, b)
    if op == AluOp.ADD:
        return int(wrap(np.int64(a + b), bits))
    if op == AluOp.MUL:
        return int(wrap(np.int64((a * b) % (1 << 62)), bits)) if bits <= 32 else a * b
    if op == AluOp.MOV:
        return b
    if b >= 0:
        return a >> min(b, bits - 1)
    return 0 if -b >= bits else int(wrap(np.int64(a << -b), bits))


def alu_program(cfg: Config, op: AluOp, a: np.ndarray, b: np.ndarray | None, imm: int | None):
    """acc[i] = op(acc[i], imm or acc[n + i]) for the n elements of ``a`` (and ``b``); stored at full width."""
    n = len(a)
    operand = b if b is not None else np.zeros_like(a)
    segs = seg_layout(cfg, [("A", f"int{cfg.acc_width}", np.concatenate([a, operand]), False),
                            ("K", "uop", np.array([[0, n, 0]]), False),
                            ("C", f"int{cfg.acc_width}", np.zeros_like(a), True)])
    A, K, C = segs
    acc_e = cfg.elem_bytes(MemType.ACC)
    insns = [Insn.load(MemType.UOP, 0, K.addr // cfg.elem_bytes(MemType.UOP), 1, 1),
             Insn.load(MemType.ACC, 0, A.addr // acc_e, 1, 2 * n),
             Insn.alu(op, 0, 1, 1, n, dst=(0, 1), src=(0, 1), imm=imm, push_next=1),
             Insn.store(0, C.addr // acc_e, 1, n, mem=MemType.ACC, pop_prev=1), Insn.finish()]
    return insns, segs


def _edge_values(cfg: Config, rng: np.random.Generator, n: int) -> np.ndarray:
    bits = cfg.acc_width
    v = rand(rng, bits, (n, cfg.batch, cfg.block_out))
    flat = v.reshape(-1)
    edges = [0, 1, -1, (1 << (bits - 1)) - 1, -(1 << (bits - 1)), 127, -128, 300]
    flat[: len(edges)] = edges
    return v


@pytest.mark.parametrize("op", list(AluOp), ids=lambda o: o.name)
@pytest.mark.parametrize("imm", [0, 1, -1, 7, -7, 100, 32767, -32768, 31, 32, 40, -31, -32, -40])
def test_alu_immediate(cfg: Config, op: AluOp, imm: int) -> None:
    rng = np.random.default_rng(7)
    a = _edge_values(cfg, rng, 4)
    insns, segs = alu_program(cfg, op, a, None, imm)
    got = run(cfg, insns, segs)["C"]
    expect = np.vectorize(lambda x: _alu_ref(op, int(x), imm, cfg.acc_width))(a)
    assert np.array_equal(got, expect)


@pytest.mark.parametrize("op", list(AluOp), ids=lambda o: o.name)
def test_alu_vector(cfg: Config, op: AluOp) -> None:
    rng = np.random.default_rng(8)
    a = _edge_values(cfg, rng, 5)
    b = _edge_values(cfg, rng, 5)[::-1].copy()
    if op == AluOp.SHR:  # shift amounts in both directions, up to past the width
        b = rng.integers(-40, 41, b.shape)
    insns, segs = alu_program(cfg, op, a, b, None)
    got = run(cfg, insns, segs)["C"]
    expect = np.vectorize(lambda x, y: _alu_ref(op, int(x), int(y), cfg.acc_width))(a, b)
    assert np.array_equal(got, expect)


def _chain(cfg: Config, a: np.ndarray, steps: list[tuple[AluOp, int]]) -> np.ndarray:
    segs = seg_layout(cfg, [("A", f"int{cfg.acc_width}", a, False), one_uop(),
                            ("C", f"int{cfg.out_width}", np.zeros_like(a), True)])
    A, K, C = segs
    n = len(a)
    insns = [Insn.load(MemType.UOP, 0, K.addr // 4, 1, 1),
             Insn.load(MemType.ACC, 0, A.addr // cfg.elem_bytes(MemType.ACC), 1, n)]
    insns += [Insn.alu(op, 0, 1, 1, n, dst=(0, 1), imm=imm) for op, imm in steps]
    insns[-1].push_next = 1
    insns += [Insn.store(0, C.addr // cfg.elem_bytes(MemType.OUT), 1, n, pop_prev=1), Insn.finish()]
    return run(cfg, insns, segs)["C"]


def test_relu_and_clip(cfg: Config) -> None:
    a = _edge_values(cfg, np.random.default_rng(9), 6)
    got = _chain(cfg, a, [(AluOp.MAX, 0), (AluOp.MIN, 127)])
    assert np.array_equal(got, np.clip(a, 0, 127))
    got = _chain(cfg, a, [(AluOp.MAX, -128), (AluOp.MIN, 127)])
    assert np.array_equal(got, np.clip(a, -128, 127))


def test_add_then_shift_rounds(cfg: Config) -> None:
    """Requantization's rounding: (x + 2^(s-1)) >> s rounds half up."""
    a = np.random.default_rng(10).integers(-(1 << 20), 1 << 20, (6, cfg.batch, cfg.block_out))
    got = _chain(cfg, a, [(AluOp.ADD, 1 << 9), (AluOp.SHR, 10), (AluOp.MAX, -128), (AluOp.MIN, 127)])
    assert np.array_equal(got, np.clip(np.floor(a / 1024 + 0.5), -128, 127))


# ---- micro-op ordering ----------------------------------------------------

def test_alu_repeated_destination_runs_in_order(cfg: Config) -> None:
    """acc[0] += acc[1] three times (dst step 0), then acc[2] = acc[2] + acc[1]: sequential semantics."""
    a = np.zeros((3, cfg.batch, cfg.block_out), np.int64)
    a[0], a[1], a[2] = 5, 7, 11
    segs = seg_layout(cfg, [("A", f"int{cfg.acc_width}", a, False),
                            ("K", "uop", np.array([[0, 1, 0], [2, 0, 0]]), False),
                            ("C", f"int{cfg.acc_width}", np.zeros_like(a), True)])
    A, K, C = segs
    acc_e = cfg.elem_bytes(MemType.ACC)
    insns = [Insn.load(MemType.UOP, 0, K.addr // 4, 1, 2), Insn.load(MemType.ACC, 0, A.addr // acc_e, 1, 3),
             Insn.alu(AluOp.ADD, 0, 1, 1, 3),  # acc[0] += acc[1], three times
             Insn.alu(AluOp.ADD, 0, 2, 1, 1),  # acc[0] += acc[1]; acc[2] += acc[0] (reads the new acc[0])
             Insn.store(0, C.addr // acc_e, 1, 3, mem=MemType.ACC), Insn.finish()]
    insns[3].push_next, insns[4].pop_prev = 1, 1
    out = run(cfg, insns, segs)["C"]
    assert (out[0] == 5 + 4 * 7).all() and (out[1] == 7).all() and (out[2] == 11 + 5 + 4 * 7).all()


def test_gemm_repeated_destination_accumulates(cfg: Config) -> None:
    insns, segs, ref = gemm_program(cfg, 2, 3, 2, bias=False)
    assert np.array_equal(run(cfg, insns, segs)["C"], ref)  # every dst is written by kb uops
