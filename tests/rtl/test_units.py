"""RTL units under Amaranth's simulator: GEMM core, ALU, token queues, against numpy and the ISA rules."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from vta.hw.alu import AluCore
from vta.hw.gemm import GemmCore
from vta.hw.tokens import TokenQueue
from vta.isa import PRESETS, AluOp, Config
from vta.isa.values import wrap

from test_fsim_semantics import _alu_ref  # the same scalar ISA reference the fsim tests use


def _run(dut, bench, clock: bool = True) -> None:
    sim = Simulator(dut)
    if clock:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def _set_tile(ctx, view, values: np.ndarray) -> None:
    for idx in np.ndindex(values.shape):
        lane = view
        for i in idx:
            lane = lane[i]
        ctx.set(lane, int(values[idx]))


def _get_tile(ctx, view, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, np.int64)
    for idx in np.ndindex(shape):
        lane = view
        for i in idx:
            lane = lane[i]
        out[idx] = ctx.get(lane)
    return out


@pytest.mark.parametrize("name", ["tiny", "batch4", "nonsquare"])
def test_gemm_core_matches_numpy(name: str) -> None:
    c = PRESETS[name]
    dut = GemmCore(c)
    rng = np.random.default_rng(0)
    n = 6
    inps = rng.integers(-(1 << (c.inp_width - 1)), 1 << (c.inp_width - 1), (n, c.batch, c.block_in))
    wgts = rng.integers(-(1 << (c.wgt_width - 1)), 1 << (c.wgt_width - 1), (n, c.block_out, c.block_in))
    inps[0], wgts[0] = -(1 << (c.inp_width - 1)), -(1 << (c.wgt_width - 1))  # the largest products
    got = []

    async def bench(ctx):
        for t in range(n + GemmCore.LATENCY):  # one tile per cycle, results LATENCY cycles later
            if t < n:
                _set_tile(ctx, dut.inp, inps[t])
                _set_tile(ctx, dut.wgt, wgts[t])
            ctx.set(dut.valid, int(t < n))
            await ctx.tick()
            if ctx.get(dut.valid_out):
                got.append(_get_tile(ctx, dut.dot, (c.batch, c.block_out)))

    _run(dut, bench)
    ref = wrap(np.einsum("nbk,nok->nbo", inps, wgts), c.acc_width)
    assert np.array_equal(np.array(got), ref)


def test_gemm_core_wraps_narrow_accumulators() -> None:
    c = Config(block_in=16, block_out=2, acc_width=16, out_width=8, acc_buffer_bytes=1 << 12,
               wgt_buffer_bytes=1 << 12, inp_buffer_bytes=1 << 12, uop_buffer_bytes=1 << 12)
    dut = GemmCore(c)

    async def bench(ctx):
        _set_tile(ctx, dut.inp, np.full((1, 16), -128))
        _set_tile(ctx, dut.wgt, np.full((2, 16), -128))
        ctx.set(dut.valid, 1)
        await ctx.tick().repeat(GemmCore.LATENCY)
        assert ctx.get(dut.valid_out)
        assert _get_tile(ctx, dut.dot, (1, 2)).tolist() == [[int(wrap(np.int64(16 * 128 * 128), 16))] * 2]

    _run(dut, bench)


EDGES = [0, 1, -1, 2**31 - 1, -2**31, 127, -128, 300, -7, 31, 32, 40, -31, -32, -33, -40, 12345678, -999]


@pytest.mark.parametrize("op", list(AluOp), ids=lambda o: o.name)
def test_alu_core_matches_isa(op: AluOp) -> None:
    c = PRESETS["tiny"]  # 4 lanes; a and b are swept over every pair of edge values
    dut = AluCore(c)
    pairs = [(a, b) for a in EDGES for b in EDGES]

    async def bench(ctx):
        ctx.set(dut.op, int(op))
        for i in range(0, len(pairs), 4):
            chunk = pairs[i : i + 4] + [(0, 0)] * (4 - len(pairs[i : i + 4]))
            _set_tile(ctx, dut.a, np.array([[p[0] for p in chunk]]))
            _set_tile(ctx, dut.b, np.array([[p[1] for p in chunk]]))
            await ctx.delay(1e-7)
            got = _get_tile(ctx, dut.result, (1, 4))[0]
            for (a, b), r in zip(chunk, got):
                assert r == _alu_ref(op, a, b, c.acc_width), (op.name, a, b, r)

    _run(dut, bench, clock=False)


def test_token_queue_counts_and_saturates() -> None:
    dut = TokenQueue(3)

    async def bench(ctx):
        assert not ctx.get(dut.has_token) and not ctx.get(dut.full)
        for _ in range(5):  # pushes beyond the depth are refused
            ctx.set(dut.push, 1)
            await ctx.tick()
        ctx.set(dut.push, 0)
        assert ctx.get(dut.count) == 3 and ctx.get(dut.full)
        ctx.set(dut.pop, 1)
        await ctx.tick()
        ctx.set(dut.push, 1)  # push and pop together: unchanged
        await ctx.tick()
        assert ctx.get(dut.count) == 2 and not ctx.get(dut.full)
        ctx.set(dut.push, 0)
        await ctx.tick().repeat(4)  # pops beyond empty are refused
        assert ctx.get(dut.count) == 0 and not ctx.get(dut.has_token)

    _run(dut, bench)
