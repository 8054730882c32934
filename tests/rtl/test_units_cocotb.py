# amaranth: UnusedElaboratable=no
"""RTL units under cocotb and Verilator (the same units tests/rtl/test_units.py checks
under Amaranth's simulator): the GEMM core against numpy on random tiles issued with
random gaps, every ALU operation on random and edge operands against the ISA's scalar
reference, and a token queue under random pushes and pops.

``WAVES=1`` writes a VCD per test next to its cocotb log; ``VTA_WAVE_FORMAT=fst`` an FST.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

from vta.isa import PRESETS, AluOp, Config
from vta.isa.values import pack_values, unpack_values, wrap


def _pack(values: np.ndarray, bits: int) -> int:
    """Lanes (first lane least significant) as one integer, as an Amaranth ArrayLayout holds them."""
    return int.from_bytes(pack_values(values.reshape(-1), bits).tobytes(), "little")


def _unpack(word: int, bits: int, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape))
    raw = np.frombuffer(word.to_bytes(n * bits // 8, "little"), np.uint8)
    return unpack_values(raw, bits).astype(np.int64).reshape(shape)


def _config() -> Config:
    return PRESETS[os.environ["VTA_CONFIG"]]


# ---- inside the simulator --------------------------------------------------------

async def gemm_core_cocotb(dut) -> None:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import RisingEdge, Timer

    c = _config()
    rng = np.random.default_rng(3)
    n = 200
    lo_i, lo_w = 1 << (c.inp_width - 1), 1 << (c.wgt_width - 1)
    inps = rng.integers(-lo_i, lo_i, (n, c.batch, c.block_in))
    wgts = rng.integers(-lo_w, lo_w, (n, c.block_out, c.block_in))
    inps[0], wgts[0] = -lo_i, -lo_w  # the largest products
    want = wrap(np.einsum("nbk,nok->nbo", inps, wgts), c.acc_width)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.valid.value = 0
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    gaps = random.Random(4)
    got: list[np.ndarray] = []
    sent = 0
    for _ in range(4 * n):
        if sent < n and gaps.random() < 0.7:
            dut.inp.value = _pack(inps[sent], c.inp_width)
            dut.wgt.value = _pack(wgts[sent], c.wgt_width)
            dut.valid.value = 1
            sent += 1
        else:
            dut.valid.value = 0
        await RisingEdge(dut.clk)
        await Timer(1, unit="ns")
        if int(dut.valid_out.value):
            got.append(_unpack(int(dut.dot.value), c.acc_width, (c.batch, c.block_out)))
        if len(got) == n:
            break
    assert sent == n and len(got) == n, (sent, len(got))
    bad = [i for i in range(n) if not np.array_equal(got[i], want[i])]
    assert not bad, f"{len(bad)} of {n} tiles differ from numpy, first {bad[0]}"


async def alu_core_cocotb(dut) -> None:
    from cocotb.triggers import Timer

    from test_fsim_semantics import _alu_ref

    c = _config()
    lanes = c.batch * c.block_out
    w = c.acc_width
    edges = [0, 1, -1, (1 << (w - 1)) - 1, -(1 << (w - 1)), 127, -128, 31, 32, 33, w - 1, w, -w, -(w - 1), -40]
    rng = np.random.default_rng(5)
    pairs = [(a, b) for a in edges for b in edges]
    pairs += [tuple(int(v) for v in rng.integers(-(1 << (w - 1)), 1 << (w - 1), 2)) for _ in range(400)]
    pairs += [(int(rng.integers(-(1 << (w - 1)), 1 << (w - 1))), int(rng.integers(-2 * w, 2 * w))) for _ in range(200)]
    for op in AluOp:
        dut.op.value = int(op)
        for i in range(0, len(pairs), lanes):
            chunk = pairs[i : i + lanes] + [(0, 0)] * (lanes - len(pairs[i : i + lanes]))
            dut.a.value = _pack(np.array([p[0] for p in chunk]), w)
            dut.b.value = _pack(np.array([p[1] for p in chunk]), w)
            await Timer(1, unit="ns")
            got = _unpack(int(dut.result.value), w, (lanes,))
            for (a, b), r in zip(chunk, got):
                assert r == _alu_ref(op, a, b, w), (op.name, a, b, int(r))


async def token_queue_cocotb(dut) -> None:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import RisingEdge, Timer

    depth = int(os.environ["VTA_DEPTH"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.push.value = dut.pop.value = 0
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    rng = random.Random(6)
    count = 0
    for cycle in range(3000):
        # phases of mostly pushing and mostly popping drive the queue to both ends
        bias = 0.8 if (cycle // 200) % 2 == 0 else 0.2
        push, pop = rng.random() < bias, rng.random() < 1 - bias
        dut.push.value, dut.pop.value = int(push), int(pop)
        await Timer(1, unit="ns")
        assert int(dut.count.value) == count and int(dut.full.value) == (count == depth)
        assert int(dut.has_token.value) == (count > 0)
        await RisingEdge(dut.clk)
        # a refused push (full) or pop (empty) changes nothing; both together keep the count
        count += int(push and count < depth) - int(pop and count > 0)


try:  # cocotb tests, found when the simulator imports this module
    import cocotb

    gemm_core_cocotb = cocotb.test()(gemm_core_cocotb)
    alu_core_cocotb = cocotb.test()(alu_core_cocotb)
    token_queue_cocotb = cocotb.test()(token_queue_cocotb)
except ImportError:  # pragma: no cover - without cocotb the tests below skip
    pass


# ---- pytest ----------------------------------------------------------------------

def _run(design: object, top: str, testcase: str, tmp_path: Path, **env: str) -> None:
    from cocotb_util import run_cocotb, verilator_missing

    reason = verilator_missing()
    if reason:
        pytest.skip(reason)
    waves = run_cocotb(design, top, "test_units_cocotb", tmp_path, testcase=testcase, extra_env=env)
    if waves:
        print(f"waveform: {waves}")


@pytest.mark.parametrize("name", ["default", "batch4", "nonsquare"])
def test_gemm_core(name: str, tmp_path: Path) -> None:
    from vta.hw.gemm import GemmCore

    _run(GemmCore(PRESETS[name]), "gemm_core", "gemm_core_cocotb", tmp_path, VTA_CONFIG=name)


def test_alu_core(tmp_path: Path) -> None:
    from vta.hw.alu import AluCore

    _run(AluCore(PRESETS["tiny"]), "alu_core", "alu_core_cocotb", tmp_path, VTA_CONFIG="tiny")


def test_token_queue_under_back_pressure(tmp_path: Path) -> None:
    from vta.hw.tokens import TokenQueue

    _run(TokenQueue(5), "token_queue", "token_queue_cocotb", tmp_path, VTA_DEPTH="5")


def test_lane_packing_round_trips() -> None:
    v = np.random.default_rng(0).integers(-(1 << 31), 1 << 31, (4, 8))
    assert np.array_equal(_unpack(_pack(v, 32), 32, (4, 8)), v)
    assert _pack(np.array([1, -1]), 8) == 0xFF01


@pytest.mark.parametrize("mode", ["vcd", "fst"])
def test_waveforms_on_request(mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """WAVES=1 writes a VCD, VTA_WAVE_FORMAT=fst an FST (or says clearly what it needs)."""
    from cocotb_util import fst_missing, run_cocotb, verilator_missing

    from vta.hw.tokens import TokenQueue

    if verilator_missing():
        pytest.skip(verilator_missing())
    if mode == "vcd":
        monkeypatch.setenv("WAVES", "1")
    else:
        monkeypatch.setenv("VTA_WAVE_FORMAT", "fst")
    args = (TokenQueue(5), "token_queue", "test_units_cocotb", tmp_path)
    if mode == "fst" and fst_missing():
        with pytest.raises(AssertionError, match="liblz4-dev"):
            run_cocotb(*args, testcase="token_queue_cocotb", extra_env={"VTA_DEPTH": "5"})
        return
    path = run_cocotb(*args, testcase="token_queue_cocotb", extra_env={"VTA_DEPTH": "5"})
    assert path is not None and path.suffix == (".fst" if mode == "fst" else ".vcd") and path.stat().st_size > 1000
