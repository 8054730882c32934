"""DMA engines (hw/dma.py): ReadDMA + ReadArbiter and WriteDMA under Amaranth's simulator
against a Python AXI4 memory with random stalls and latency, checked byte for byte
against a numpy model of the 2-D strided transfer; one copy engine through Verilator
against cocotbext-axi's AxiRam."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth import Elaboratable, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from vta.hw.axi import BOUNDARY_BYTES, BURST_INCR, MAX_BURST_BEATS, AXI4Signature
from vta.hw.dma import Burst, DmaCmd, ReadArbiter, ReadDMA, WriteDMA, max_burst_beats, plan_bursts, split_bursts
from vta.isa.spec import ErrorCode

RESP_SLVERR = 2
Cmd = tuple[int, int, int, int]   # base, y_size, x_size, x_stride (elements)


# ---- numpy model of the transfers -------------------------------------------------


def row_starts(cmd: Cmd) -> list[int]:
    base, y, x, stride = cmd
    return [base + r * stride for r in range(y)] if x else []


def read_model(mem: np.ndarray, cmd: Cmd, e: int) -> list[int]:
    """Elements a read command delivers, as little-endian integers."""
    x = cmd[2]
    out = []
    for a in row_starts(cmd):
        rows = mem[a * e:(a + x) * e].reshape(x, e)
        out += [int.from_bytes(r.tobytes(), "little") for r in rows]
    return out


def write_model(mem: np.ndarray, cmd: Cmd, e: int, elems: list[int]) -> None:
    """Apply a write command in row order (a later row wins where rows overlap)."""
    x = cmd[2]
    for r, a in enumerate(row_starts(cmd)):
        raw = b"".join(v.to_bytes(e, "little") for v in elems[r * x:(r + 1) * x])
        mem[a * e:(a + x) * e] = np.frombuffer(raw, np.uint8)


# ---- AXI4 memory model ------------------------------------------------------------


class AxiChecker:
    """Protocol checks shared by the AR and AW channels: INCR bursts of full beats, at most
    MAX_BURST_BEATS, not crossing a BOUNDARY_BYTES boundary, valid held with stable values."""

    def __init__(self, bus_bytes: int, what: str) -> None:
        self.bus_bytes = bus_bytes
        self.what = what
        self.held: tuple[int, int] | None = None

    def check(self, valid: int, addr: int, length: int, size: int, burst: int, taken: bool) -> None:
        if not valid:
            assert self.held is None, f"{self.what}valid fell before the handshake"
            return
        if self.held is not None:
            assert (addr, length) == self.held, f"{self.what} changed while waiting: {self.held} -> {addr, length}"
        beats = length + 1
        assert size == self.bus_bytes.bit_length() - 1 and burst == BURST_INCR
        assert addr % self.bus_bytes == 0, f"unaligned {self.what} address {addr:#x}"
        assert beats <= MAX_BURST_BEATS
        assert addr % BOUNDARY_BYTES + beats * self.bus_bytes <= BOUNDARY_BYTES, \
            f"{self.what} burst {addr:#x}+{beats} crosses a {BOUNDARY_BYTES}-byte boundary"
        self.held = None if taken else (addr, length)


class AxiMemory:
    """An AXI4 slave over a numpy byte array: random ready stalls, random response
    latency, SLVERR for beats at or past the end of the array. Reads (``read_port``)
    and writes (``write_port``) are served in order; either port may be None."""

    def __init__(self, mem: np.ndarray, bus_bytes: int, rng: random.Random, *, read_port=None,
                 write_port=None, stall: float = 0.3, latency: tuple[int, int] = (1, 8)) -> None:
        self.mem, self.b, self.rng = mem, bus_bytes, rng
        self.rp, self.wp = read_port, write_port
        self.stall, self.latency = stall, latency
        self.ar_log: list[tuple[int, int]] = []
        self.aw_log: list[tuple[int, int]] = []
        self.r_cycles: list[int] = []
        self.w_cycles: list[int] = []
        self._ar_check = AxiChecker(bus_bytes, "ar")
        self._aw_check = AxiChecker(bus_bytes, "aw")
        self._reads: deque[list[int]] = deque()    # [ready cycle, addr, beats left]
        self._beat: tuple[int, int, int] | None = None
        self._writes: deque[list[int]] = deque()   # [addr, beats, beats seen, resp]
        self._w_held: tuple[int, int, int] | None = None
        self._bs: deque[list[int]] = deque()       # [ready cycle, resp]
        self._b: int | None = None

    @property
    def idle(self) -> bool:
        return not (self._reads or self._beat or self._writes or self._bs or self._b is not None)

    def _go(self) -> bool:
        return self.rng.random() >= self.stall

    def drive(self, ctx, cyc: int) -> None:
        if self.rp is not None:
            p = self.rp
            self._arready = self._go()
            ctx.set(p.arready, self._arready)
            if self._beat is None and self._reads and self._reads[0][0] <= cyc and self._go():
                _, addr, left = self._reads[0]
                if addr + self.b <= len(self.mem):
                    self._beat = (int.from_bytes(self.mem[addr:addr + self.b].tobytes(), "little"), 0, left == 1)
                else:
                    self._beat = (0, RESP_SLVERR, left == 1)
            if self._beat is not None:
                d, resp, last = self._beat
                ctx.set(p.rvalid, 1)
                ctx.set(p.rdata, d)
                ctx.set(p.rresp, resp)
                ctx.set(p.rlast, last)
            else:
                ctx.set(p.rvalid, 0)
        if self.wp is not None:
            p = self.wp
            self._awready = self._go()
            self._wready = self._go()
            ctx.set(p.awready, self._awready)
            ctx.set(p.wready, self._wready)
            if self._b is None and self._bs and self._bs[0][0] <= cyc and self._go():
                self._b = self._bs.popleft()[1]
            ctx.set(p.bvalid, self._b is not None)
            ctx.set(p.bresp, self._b or 0)

    def sample(self, ctx, cyc: int) -> None:
        if self.rp is not None:
            p = self.rp
            valid = ctx.get(p.arvalid)
            if valid:
                addr, length = ctx.get(p.araddr), ctx.get(p.arlen)
                self._ar_check.check(1, addr, length, ctx.get(p.arsize), ctx.get(p.arburst), self._arready)
                if self._arready:
                    self.ar_log.append((addr, length + 1))
                    self._reads.append([cyc + self.rng.randint(*self.latency), addr, length + 1])
            else:
                self._ar_check.check(0, 0, 0, 0, 0, False)
            if self._beat is not None and ctx.get(p.rready):
                self.r_cycles.append(cyc)
                self._beat = None
                head = self._reads[0]
                head[1] += self.b
                head[2] -= 1
                if head[2] == 0:
                    self._reads.popleft()
        if self.wp is not None:
            p = self.wp
            if ctx.get(p.awvalid):
                addr, length = ctx.get(p.awaddr), ctx.get(p.awlen)
                self._aw_check.check(1, addr, length, ctx.get(p.awsize), ctx.get(p.awburst), self._awready)
                if self._awready:
                    self.aw_log.append((addr, length + 1))
                    self._writes.append([addr, length + 1, 0, 0])
            else:
                self._aw_check.check(0, 0, 0, 0, 0, False)
            if ctx.get(p.wvalid):
                beat = (ctx.get(p.wdata), ctx.get(p.wstrb), ctx.get(p.wlast))
                if self._w_held is not None:
                    assert beat == self._w_held, "W beat changed while waiting"
                self._w_held = None if self._wready else beat
                if self._wready:
                    self.w_cycles.append(cyc)
                    self._write_beat(cyc, *beat)
            else:
                assert self._w_held is None, "wvalid fell before the handshake"
            if self._b is not None and ctx.get(p.bready):
                self._b = None

    def _write_beat(self, cyc: int, data: int, strb: int, last: int) -> None:
        assert self._writes, "W beat before its AW (this DMA never does that)"
        head = self._writes[0]
        addr = head[0] + head[2] * self.b
        head[2] += 1
        assert bool(last) == (head[2] == head[1]), f"wlast {last} on beat {head[2]} of {head[1]}"
        if addr + self.b > len(self.mem):
            head[3] = RESP_SLVERR
        else:
            raw = data.to_bytes(self.b, "little")
            for i in range(self.b):
                if strb >> i & 1:
                    self.mem[addr + i] = raw[i]
        if head[2] == head[1]:
            self._writes.popleft()
            self._bs.append([cyc + self.rng.randint(*self.latency), head[3]])


# ---- DMA command and element agents ------------------------------------------------


@dataclass
class Result:
    error: int
    elems: list[int] = field(default_factory=list)   # read: delivered; write: consumed
    cycles: list[int] = field(default_factory=list)  # when each element moved


class DmaDriver:
    """Feeds one DMA its commands one after another (with random gaps), consumes (read)
    or supplies (write) its elements with random stalls, and records each command's
    result when ``busy`` falls. ``writes[i]`` are the elements supplied for command i."""

    def __init__(self, dma, cmds: list[Cmd], rng: random.Random, *, writes: list[list[int]] | None = None,
                 stall: float = 0.3, strict: bool = True) -> None:
        self.dma, self.cmds, self.rng, self.writes = dma, cmds, rng, writes
        self.stall, self.strict = stall, strict
        self.results: list[Result] = []
        self._i = 0
        self._running = False
        self._start = 0
        self._accepted = -1
        self._cur = Result(0)
        self._src: deque[int] = deque()
        self._offer = False
        self._held: int | None = None

    @property
    def done(self) -> bool:
        return self._i == len(self.cmds) and not self._running

    def drive(self, ctx, cyc: int) -> None:
        d = self.dma
        self._cmd_valid = not self._running and self._i < len(self.cmds) and cyc >= self._start
        ctx.set(d.cmd.valid, self._cmd_valid)
        if self._cmd_valid:
            base, y, x, s = self.cmds[self._i]
            ctx.set(d.cmd.payload, {"base": base, "y_size": y, "x_size": x, "x_stride": s})
        if self.writes is None:
            self._ready = self.rng.random() >= self.stall
            ctx.set(d.elem.ready, self._ready)
        else:
            self._offer = bool(self._src) and (self._offer or self.rng.random() >= self.stall)
            ctx.set(d.elem.valid, self._offer)
            if self._offer:
                ctx.set(d.elem.payload, self._src[0])

    def sample(self, ctx, cyc: int) -> None:
        d = self.dma
        if self._cmd_valid and ctx.get(d.cmd.ready):
            self._running, self._accepted = True, cyc
            self._cur = Result(0)
            if self.writes is not None:
                self._src = deque(self.writes[self._i])
        if self.writes is None:
            valid = ctx.get(d.elem.valid)
            if valid:
                payload = ctx.get(d.elem.payload)
                if self.strict and self._held is not None:
                    assert payload == self._held, "element changed while waiting"
                if self._ready:
                    self._cur.elems.append(payload)
                    self._cur.cycles.append(cyc)
                self._held = None if self._ready else payload
            else:
                assert not (self.strict and self._held is not None), "elem.valid fell before the handshake"
                self._held = None
        elif self._offer and ctx.get(d.elem.ready):
            self._cur.elems.append(self._src.popleft())
            self._cur.cycles.append(cyc)
            self._offer = False
        if self._running and cyc > self._accepted and not ctx.get(d.busy):
            self._cur.error = ctx.get(d.error)
            self.results.append(self._cur)
            self._running, self._i = False, self._i + 1
            self._src, self._offer, self._held = deque(), False, None
            self._start = cyc + self.rng.randint(1, 4)


def simulate(dut, agents: list, max_cycles: int, inputs: list | None = None) -> int:
    """Run the agents cycle by cycle (all drive, then all sample) until every one is done;
    ``inputs`` are (signal, value) pairs set once at the start."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    finished = []

    async def bench(ctx):
        for sig, v in inputs or ():
            ctx.set(sig, v)
        for cyc in range(max_cycles):
            for a in agents:
                a.drive(ctx, cyc)
            for a in agents:
                a.sample(ctx, cyc)
            if all(getattr(a, "done", True) for a in agents) and all(getattr(a, "idle", True) for a in agents):
                finished.append(cyc)
                return
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    assert finished, f"did not finish in {max_cycles} cycles"
    return finished[0]


class ArMonitor:
    """Records the AR requests a DMA's own port hands to the arbiter."""

    def __init__(self, dma) -> None:
        self.dma = dma
        self.log: list[tuple[int, int]] = []

    def drive(self, ctx, cyc: int) -> None:
        pass

    def sample(self, ctx, cyc: int) -> None:
        p = self.dma.axi
        if ctx.get(p.arvalid) and ctx.get(p.arready):
            self.log.append((ctx.get(p.araddr), ctx.get(p.arlen) + 1))


# ---- designs under test ------------------------------------------------------------


class ReadPair(Elaboratable):
    """Two read DMAs on one ReadArbiter: the arbiter's ``axi`` is the memory port."""

    def __init__(self, elem_bits: tuple[int, int], bus_bits: int) -> None:
        self.dmas = [ReadDMA(e, bus_bits) for e in elem_bits]
        self.arb = ReadArbiter(len(self.dmas), bus_bits)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.arb = self.arb
        for i, d in enumerate(self.dmas):
            m.submodules[f"dma{i}"] = d
            wiring.connect(m, d.axi, getattr(self.arb, f"client{i}"))
        return m


# ---- command sets --------------------------------------------------------------------


def command_set(e: int, b: int, mem_bytes: int, rng: random.Random) -> list[Cmd]:
    """Strides equal, greater, smaller and zero; rows crossing a 4 KiB boundary, rows
    longer than the longest burst; empty commands. Sizes scale with the element."""
    per_page = BOUNDARY_BYTES // e or 1                 # elements per 4 KiB
    long_x = -(-(max_burst_beats(b) * b + 3 * e) // e)   # longer than the longest burst
    small = max(2, 3 * b // e)                          # a few beats
    near_page = max(0, per_page - small // 2)           # a row straddling the first 4 KiB boundary
    cmds = [
        (rng.randrange(8), 2, small, small),                        # dense
        (near_page, 3, small, small + rng.randint(1, 3)),           # skip; crosses 4 KiB
        (rng.randrange(8), 3, small + 2, max(1, small // 2)),       # rows overlap
        (rng.randrange(8) + 1, 3, small - 1, 0),                    # one row repeated
        (rng.randrange(4), 1, long_x, long_x),                      # longer than a burst
        (5, 0, 4, 4), (5, 4, 0, 4),                                 # empty
        (1, 2, 1, 3),                                               # single elements
    ]
    for c in cmds:
        assert (c[0] + max(c[1] - 1, 0) * c[3] + c[2]) * e <= mem_bytes, c
    return cmds


def random_cmds(e: int, mem_bytes: int, rng: random.Random, n: int, max_bytes: int = 1536) -> list[Cmd]:
    """Random geometry: any stride (0, overlapping, dense, sparse), rows of up to
    ``max_bytes``; about one in eight commands ends past ``mem_bytes``."""
    cmds = []
    limit = mem_bytes // e
    for _ in range(n):
        x = rng.randint(1, max(1, min(40, max_bytes // e)))
        y = rng.randint(1, max(1, min(6, max_bytes // (x * e))))
        stride = rng.choice([0, x, rng.randint(0, x), rng.randint(x, 3 * x + 5)])
        span = (y - 1) * stride + x
        if rng.random() < 0.125:
            base = rng.randint(max(0, limit - span + 1), limit)          # runs past the end
        else:
            base = rng.randint(0, max(0, limit - span))
        cmds.append((base, y, x, stride))
    return cmds


def bounds_cmds(e: int, mem_bytes: int) -> list[Cmd]:
    """Commands ending one element past the limit (rejected), and exactly at it (accepted)."""
    last = mem_bytes // e
    return [(last - 3, 2, 3, 1), (last - 4, 2, 3, 1), (last, 1, 1, 1), (2**32 - 1, 2, 2, 2**16 - 1)]


# ---- tests: burst plan ---------------------------------------------------------------


def test_split_bursts_rules() -> None:
    assert split_bursts(0, 256, 8) == [(0, 256)]
    assert split_bursts(0, 300, 8) == [(0, 256), (2048, 44)]
    assert split_bursts(4096 - 16, 4, 8) == [(4080, 2), (4096, 2)]
    assert split_bursts(0, 200, 32) == [(0, 128), (4096, 72)]
    assert split_bursts(64, 1, 64) == [(64, 1)]
    rng = random.Random(1)
    for _ in range(500):
        b = rng.choice([8, 32, 64])
        addr = rng.randrange(0, 1 << 16) // b * b
        beats = rng.randint(1, 2000)
        parts = split_bursts(addr, beats, b)
        assert sum(n for _, n in parts) == beats and parts[0][0] == addr
        for (a, n), nxt in zip(parts, parts[1:] + [(addr + beats * b, 0)]):
            assert 1 <= n <= MAX_BURST_BEATS and a % BOUNDARY_BYTES + n * b <= BOUNDARY_BYTES
            assert nxt[0] == a + n * b


def test_plan_bursts_lanes() -> None:
    # 4-byte elements on an 8-byte bus: row of 3 from element 1 covers bytes 4..15 (beats 0, 1).
    assert plan_bursts(1, 1, 3, 3, 4, 8) == [Burst(0, 2, 1, 1)]
    # The same row cut at a 4 KiB boundary keeps its edge lanes on the outer bursts.
    assert plan_bursts(1023, 1, 3, 3, 4, 8) == [Burst(4088, 1, 1, 1), Burst(4096, 1, 0, 1)]
    assert plan_bursts(0, 3, 0, 1, 4, 8) == [] and plan_bursts(0, 0, 3, 1, 4, 8) == []
    assert plan_bursts(2, 2, 1, 0, 256, 8) == [Burst(512, 32), Burst(512, 32)]


# ---- tests: read -------------------------------------------------------------------------

PAIRS = [(64, (32, 2048)), (64, (128, 512)), (256, (32, 2048)), (256, (128, 512))]


@pytest.mark.parametrize("bus_bits,elems", PAIRS, ids=[f"bus{b}-e{x}+e{y}" for b, (x, y) in PAIRS])
def test_read_pair(bus_bits: int, elems: tuple[int, int]) -> None:
    """Two read DMAs through the arbiter, concurrently, with random stalls everywhere:
    every element, the exact burst plan, bounds errors, empty commands."""
    rng = random.Random(bus_bits * 7 + elems[0])
    b = bus_bits // 8
    mem = np.frombuffer(rng.randbytes(1 << 14), np.uint8).copy()
    dut = ReadPair(elems, bus_bits)
    drivers = []
    for d, eb in zip(dut.dmas, elems):
        e = eb // 8
        cmds = command_set(e, b, len(mem), rng) + bounds_cmds(e, len(mem))
        rng.shuffle(cmds)
        drivers.append(DmaDriver(d, cmds, rng))
    axi = AxiMemory(mem, b, rng, read_port=dut.arb.axi)
    monitors = [ArMonitor(d) for d in dut.dmas]
    simulate(dut, [axi, *drivers, *monitors], 30000, [(d.dram_limit, len(mem)) for d in dut.dmas])
    for drv, mon, eb in zip(drivers, monitors, elems):
        check_reads(drv, mon, mem, eb // 8, b)
    assert len(axi.ar_log) == sum(len(mon.log) for mon in monitors)


COMBOS = [(e, b) for b in (64, 256) for e in (32, 128, 512, 2048)] + [(8, 512), (4096, 128)]


def check_reads(drv: DmaDriver, mon: ArMonitor, mem: np.ndarray, e: int, b: int) -> None:
    """Each command's elements and bursts as the model says; DRAM_BOUNDS ones moved nothing."""
    assert len(drv.results) == len(drv.cmds)
    expect_ars = []
    for cmd, res in zip(drv.cmds, drv.results):
        end = (cmd[0] + max(cmd[1] - 1, 0) * cmd[3] + cmd[2]) * e
        if cmd[1] and cmd[2] and end > len(mem):
            assert res.error == ErrorCode.DRAM_BOUNDS and not res.elems, cmd
            continue
        assert res.error == ErrorCode.NONE, cmd
        want = read_model(mem, cmd, e)
        assert len(res.elems) == len(want), cmd
        bad = [i for i, (g, w) in enumerate(zip(res.elems, want)) if g != w]
        assert not bad, f"{cmd}: {len(bad)} wrong elements, first at {bad[0]}"
        expect_ars += [(p.addr, p.beats) for p in plan_bursts(*cmd, e, b)]
    assert mon.log == expect_ars


@pytest.mark.parametrize("elem_bits,bus_bits", COMBOS, ids=[f"e{e}-bus{b}" for e, b in COMBOS])
def test_read_random(elem_bits: int, bus_bits: int) -> None:
    """Random commands on one DMA while a second one (other element size) shares the arbiter."""
    rng = random.Random(elem_bits * 3 + bus_bits)
    b = bus_bits // 8
    other = 128 if elem_bits != 128 else 32
    mem = np.frombuffer(rng.randbytes(1 << 14), np.uint8).copy()
    dut = ReadPair((elem_bits, other), bus_bits)
    drivers = [DmaDriver(d, random_cmds(eb // 8, len(mem), rng, n), rng, stall=0.4)
               for d, eb, n in zip(dut.dmas, (elem_bits, other), (16, 6))]
    monitors = [ArMonitor(d) for d in dut.dmas]
    axi = AxiMemory(mem, b, rng, read_port=dut.arb.axi, stall=0.4, latency=(0, 12))
    simulate(dut, [axi, *drivers, *monitors], 40000, [(d.dram_limit, len(mem)) for d in dut.dmas])
    for drv, mon, eb in zip(drivers, monitors, (elem_bits, other)):
        check_reads(drv, mon, mem, eb // 8, b)


@pytest.mark.parametrize("elem_bits,bus_bits", [(32, 64), (128, 64), (2048, 64)])
def test_read_bus_error(elem_bits: int, bus_bits: int) -> None:
    """SLVERR beats past the memory's end: BUS_ERROR, the elements delivered before it are
    right, the engine drains and goes idle, and the next command works."""
    rng = random.Random(elem_bits)
    e, b = elem_bits // 8, bus_bits // 8
    mem = np.frombuffer(rng.randbytes(1 << 13), np.uint8).copy()
    n = len(mem) // e
    cmds = [(n - 6, 2, 5, 9), (3, 2, 5, 7), (n - 2, 1, 4, 4), (0, 1, 3, 3)]
    dut = ReadPair((elem_bits, elem_bits), bus_bits)
    drv = DmaDriver(dut.dmas[0], cmds, rng, strict=False)
    axi = AxiMemory(mem, b, rng, read_port=dut.arb.axi)
    idle = DmaDriver(dut.dmas[1], [], rng)
    simulate(dut, [axi, drv, idle], 20000, [(dut.dmas[0].dram_limit, 2 * len(mem))])
    for cmd, res in zip(cmds, drv.results):
        want = read_model(np.concatenate([mem, np.zeros(len(mem), np.uint8)]), cmd, e)
        if (cmd[0] + (cmd[1] - 1) * cmd[3] + cmd[2]) * e > len(mem):
            assert res.error == ErrorCode.BUS_ERROR, cmd
            assert len(res.elems) < len(want) and res.elems == want[:len(res.elems)]
        else:
            assert res.error == ErrorCode.NONE and res.elems == want, cmd


@pytest.mark.parametrize("elem_bits,bus_bits", [(32, 64), (128, 64), (512, 64), (128, 256)])
def test_read_throughput(elem_bits: int, bus_bits: int) -> None:
    """With a memory that never stalls: E ≥ B streams one beat per cycle across bursts and
    rows; E < B one element per cycle within a row."""
    e, b = elem_bits // 8, bus_bits // 8
    rng = random.Random(3)
    mem = np.frombuffer(rng.randbytes(1 << 16), np.uint8).copy()
    x = max(1, 600 * b // e)                    # 600 beats per row: three bursts or more
    cmds = [(0, 2, x, x)]
    dut = ReadPair((elem_bits, elem_bits), bus_bits)
    drv = DmaDriver(dut.dmas[0], cmds, rng, stall=0)
    axi = AxiMemory(mem, b, rng, read_port=dut.arb.axi, stall=0, latency=(6, 6))
    simulate(dut, [axi, drv, DmaDriver(dut.dmas[1], [], rng)], 20000, [(dut.dmas[0].dram_limit, len(mem))])
    res = drv.results[0]
    assert res.elems == read_model(mem, cmds[0], e)
    span = res.cycles[-1] - res.cycles[0] + 1
    if e >= b:
        assert len(axi.r_cycles) == axi.r_cycles[-1] - axi.r_cycles[0] + 1, "bubbles between R beats"
    else:
        assert span == len(res.elems), f"{len(res.elems)} elements took {span} cycles"


@pytest.mark.parametrize("n", [1, 3])
def test_arbiter_round_robin(n: int) -> None:
    """Clients that always request: grants rotate, the ownership FIFO fills and stalls AR,
    and every R beat reaches the client whose burst it belongs to."""
    bus_bits, b = 64, 8
    rng = random.Random(5)
    mem = np.frombuffer(rng.randbytes(1 << 12), np.uint8).copy()
    dut = ReadArbiter(n, bus_bits)
    clients = [ArClient(dut.clients[i], i, 6, b) for i in range(n)]
    axi = AxiMemory(mem, b, rng, read_port=dut.axi, stall=0.2)
    simulate(dut, [axi, *clients], 5000)
    owners = [a // 1024 for a, _ in axi.ar_log]
    assert owners[:2 * n] == list(range(n)) * 2
    for c in clients:
        want = [int.from_bytes(mem[a:a + b].tobytes(), "little") for a in range(c.base, c.base + 6 * 3 * b, b)]
        assert c.got == want


class ArClient:
    """A raw AXI read client: ``n`` bursts of 3 beats from 1024·index, always ready."""

    def __init__(self, port, index: int, n: int, b: int) -> None:
        self.p, self.base, self.n, self.b = port, 1024 * index, n, b
        self.sent = 0
        self.got: list[int] = []

    @property
    def done(self) -> bool:
        return len(self.got) == 3 * self.n

    def drive(self, ctx, cyc: int) -> None:
        p = self.p
        ctx.set(p.arvalid, self.sent < self.n)
        ctx.set(p.araddr, self.base + 3 * self.b * self.sent)
        ctx.set(p.arlen, 2)
        ctx.set(p.arsize, self.b.bit_length() - 1)
        ctx.set(p.arburst, BURST_INCR)
        ctx.set(p.rready, 1)

    def sample(self, ctx, cyc: int) -> None:
        p = self.p
        if self.sent < self.n and ctx.get(p.arready):
            self.sent += 1
        if ctx.get(p.rvalid):
            self.got.append(ctx.get(p.rdata))
            assert ctx.get(p.rlast) == (len(self.got) % 3 == 0)


# ---- tests: write ------------------------------------------------------------------------

WRITES = [(32, 64), (128, 64), (2048, 64), (32, 256), (128, 256), (512, 256)]


@pytest.mark.parametrize("elem_bits,bus_bits", WRITES, ids=[f"e{e}-bus{b}" for e, b in WRITES])
def test_write(elem_bits: int, bus_bits: int) -> None:
    """Every command's bytes land (later rows win where rows overlap), every other byte
    of memory is untouched, the burst plan is exact, bounds errors write nothing."""
    rng = random.Random(elem_bits + bus_bits)
    e, b = elem_bits // 8, bus_bits // 8
    mem = np.frombuffer(rng.randbytes(1 << 14), np.uint8).copy()
    cmds = command_set(e, b, len(mem), rng) + bounds_cmds(e, len(mem))
    rng.shuffle(cmds)
    writes = [[rng.getrandbits(elem_bits) for _ in range(c[1] * c[2])] for c in cmds]
    dut = WriteDMA(elem_bits, bus_bits)
    drv = DmaDriver(dut, cmds, rng, writes=writes)
    want = mem.copy()
    axi = AxiMemory(mem, b, rng, write_port=dut.axi)
    simulate(dut, [axi, drv], 30000, [(dut.dram_limit, len(mem))])
    check_writes(drv, axi, want, mem, e, b)


@pytest.mark.parametrize("elem_bits,bus_bits", COMBOS, ids=[f"e{e}-bus{b}" for e, b in COMBOS])
def test_write_random(elem_bits: int, bus_bits: int) -> None:
    """Random commands: memory matches the model everywhere; DRAM_BOUNDS writes nothing."""
    rng = random.Random(elem_bits * 5 + bus_bits)
    e, b = elem_bits // 8, bus_bits // 8
    mem = np.frombuffer(rng.randbytes(1 << 14), np.uint8).copy()
    cmds = random_cmds(e, len(mem), rng, 16)
    writes = [[rng.getrandbits(elem_bits) for _ in range(c[1] * c[2])] for c in cmds]
    dut = WriteDMA(elem_bits, bus_bits)
    drv = DmaDriver(dut, cmds, rng, writes=writes, stall=0.4)
    want = mem.copy()
    axi = AxiMemory(mem, b, rng, write_port=dut.axi, stall=0.4, latency=(0, 12))
    simulate(dut, [axi, drv], 40000, [(dut.dram_limit, len(mem))])
    check_writes(drv, axi, want, mem, e, b)


def check_writes(drv: DmaDriver, axi: AxiMemory, want: np.ndarray, mem: np.ndarray, e: int, b: int) -> None:
    """Apply the model to ``want`` (the memory before) and compare; bursts as planned."""
    assert len(drv.results) == len(drv.cmds)
    plan = []
    for cmd, data, res in zip(drv.cmds, drv.writes, drv.results):
        end = (cmd[0] + max(cmd[1] - 1, 0) * cmd[3] + cmd[2]) * e
        if cmd[1] and cmd[2] and end > len(mem):
            assert res.error == ErrorCode.DRAM_BOUNDS and not res.elems, cmd
            continue
        assert res.error == ErrorCode.NONE and res.elems == data, cmd
        write_model(want, cmd, e, data)
        plan += [(p.addr, p.beats) for p in plan_bursts(*cmd, e, b)]
    assert axi.aw_log == plan
    diff = np.flatnonzero(mem != want)
    assert not len(diff), f"{len(diff)} bytes differ, first at {diff[0]:#x}"


def test_write_bus_error() -> None:
    """bresp SLVERR: BUS_ERROR, the bursts issued complete, nothing outside the command's
    rows changes, the engine goes idle and the next command writes correctly."""
    rng = random.Random(11)
    e, b = 4, 8
    mem = np.frombuffer(rng.randbytes(1 << 12), np.uint8).copy()
    n = len(mem) // e
    cmds = [(n - 300, 2, 290, 299), (7, 3, 5, 6)]
    writes = [[rng.getrandbits(32) for _ in range(c[1] * c[2])] for c in cmds]
    dut = WriteDMA(32, 64)
    drv = DmaDriver(dut, cmds, rng, writes=writes)
    before = mem.copy()
    axi = AxiMemory(mem, b, rng, write_port=dut.axi)
    simulate(dut, [axi, drv], 20000, [(dut.dram_limit, 2 * len(mem))])
    assert [r.error for r in drv.results] == [ErrorCode.BUS_ERROR, ErrorCode.NONE]
    # Each byte of the failed command's rows is old or new; everything else as the model says.
    old = before.copy()
    new = np.concatenate([before, np.zeros_like(before)])
    write_model(new, cmds[0], e, writes[0])
    new = new[:len(mem)]
    for m in (old, new):
        write_model(m, cmds[1], e, writes[1])
    assert np.all((mem == old) | (mem == new))
    assert np.array_equal(mem[:cmds[0][0] * e], old[:cmds[0][0] * e])


@pytest.mark.parametrize("elem_bits,bus_bits", [(32, 64), (128, 64), (512, 64), (128, 256)])
def test_write_throughput(elem_bits: int, bus_bits: int) -> None:
    """Memory that never stalls and a producer that never stalls: one W beat per cycle for
    E ≥ B (across bursts), one element per cycle for E < B."""
    e, b = elem_bits // 8, bus_bits // 8
    rng = random.Random(4)
    mem = np.zeros(1 << 16, np.uint8)
    x = max(1, 600 * b // e)
    cmds = [(0, 2, x, x)]
    writes = [[rng.getrandbits(elem_bits) for _ in range(2 * x)]]
    dut = WriteDMA(elem_bits, bus_bits)
    drv = DmaDriver(dut, cmds, rng, writes=writes, stall=0)
    axi = AxiMemory(mem, b, rng, write_port=dut.axi, stall=0, latency=(4, 4))
    simulate(dut, [axi, drv], 20000, [(dut.dram_limit, len(mem))])
    if e >= b:
        w = axi.w_cycles
        assert len(w) == w[-1] - w[0] + 1, "bubbles between W beats"
    else:
        c = drv.results[0].cycles
        assert len(c) == c[-1] - c[0] + 1, "bubbles between elements"


# ---- Verilator + cocotbext-axi: a copy engine ----------------------------------------------

COPY_ELEM, SIDE_ELEM, COPY_BUS = 32, 128, 64


def axi_with_ids(data_bits: int) -> wiring.Signature:
    """AXI4Signature plus the ID signals cocotbext-axi requires (the DMAs use one ID, 0)."""
    ids = {"arid": Out(1), "rid": In(1), "awid": Out(1), "bid": In(1)}
    return wiring.Signature(dict(AXI4Signature(data_bits).members.items()) | ids)


class CopyEngine(wiring.Component):
    """Reads with ``rd`` (ReadDMA) and writes its elements back with ``wr`` (WriteDMA);
    ``side`` is a second ReadDMA whose elements leave on ``side_elem``. The two readers
    share the port through a ReadArbiter; ``m_axi`` is the full AXI4 master."""

    def __init__(self) -> None:
        super().__init__({
            "rd_cmd": In(stream.Signature(DmaCmd)), "wr_cmd": In(stream.Signature(DmaCmd)),
            "side_cmd": In(stream.Signature(DmaCmd)), "side_elem": Out(stream.Signature(SIDE_ELEM)),
            "dram_limit": In(32), "busy": Out(1), "errors": Out(12),
            "m_axi": Out(axi_with_ids(COPY_BUS)),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.rd = rd = ReadDMA(COPY_ELEM, COPY_BUS)
        m.submodules.side = side = ReadDMA(SIDE_ELEM, COPY_BUS)
        m.submodules.wr = wr = WriteDMA(COPY_ELEM, COPY_BUS)
        m.submodules.arb = arb = ReadArbiter(2, COPY_BUS)
        wiring.connect(m, rd.axi, arb.client0)
        wiring.connect(m, side.axi, arb.client1)
        wiring.connect(m, rd.elem, wr.elem)
        wiring.connect(m, wiring.flipped(self.rd_cmd), rd.cmd)
        wiring.connect(m, wiring.flipped(self.wr_cmd), wr.cmd)
        wiring.connect(m, wiring.flipped(self.side_cmd), side.cmd)
        wiring.connect(m, side.elem, wiring.flipped(self.side_elem))
        for name, member in arb.axi.signature.members.items():
            if member.flow == Out:
                m.d.comb += getattr(self.m_axi, name).eq(getattr(arb.axi, name))
            else:
                m.d.comb += getattr(arb.axi, name).eq(getattr(self.m_axi, name))
        for name, member in wr.axi.signature.members.items():
            if member.flow == Out:
                m.d.comb += getattr(self.m_axi, name).eq(getattr(wr.axi, name))
            else:
                m.d.comb += getattr(wr.axi, name).eq(getattr(self.m_axi, name))
        m.d.comb += [
            rd.dram_limit.eq(self.dram_limit), wr.dram_limit.eq(self.dram_limit), side.dram_limit.eq(self.dram_limit),
            self.busy.eq(rd.busy | wr.busy | side.busy),
            self.errors.eq(rd.error | (wr.error << 4) | (side.error << 8)),
        ]
        return m


COPY_MEM = 1 << 16
# (src, dst, y, x, src_stride, dst_stride) in 4-byte elements; side reads (base, y, x, stride) of 16-byte elements
COPIES = [
    (3, 5000, 4, 37, 40, 37),
    (1000, 9000, 2, 700, 700, 701),       # rows over 256 beats, crossing 4 KiB, unaligned
    (20, 12000, 6, 9, 0, 5),              # one row repeated into overlapping rows
]
SIDE_READS = [(10, 3, 100, 120), (1500, 1, 300, 300)]


async def copy_engine_cocotb(dut) -> None:  # run inside the simulator by test_copy_engine_verilator
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge
    from cocotbext.axi import AxiBus, AxiRam

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=COPY_MEM)
    rng = np.random.default_rng(9)
    init = rng.integers(0, 256, COPY_MEM, np.uint8)
    ram.write(0, init.tobytes())
    for sig in (dut.rd_cmd__valid, dut.wr_cmd__valid, dut.side_cmd__valid, dut.side_elem__ready):
        sig.value = 0
    dut.dram_limit.value = COPY_MEM
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0

    def pack(base: int, y: int, x: int, stride: int) -> int:
        return DmaCmd.const({"base": base, "y_size": y, "x_size": x, "x_stride": stride}).as_value().value

    async def send(stream_prefix: str, cmd: Cmd) -> None:
        valid, payload = getattr(dut, f"{stream_prefix}__valid"), getattr(dut, f"{stream_prefix}__payload")
        ready = getattr(dut, f"{stream_prefix}__ready")
        payload.value = pack(*cmd)
        valid.value = 1
        while True:
            await RisingEdge(dut.clk)
            if int(ready.value):
                break
        valid.value = 0

    side_got: list[int] = []

    async def side_sink() -> None:
        flip = random.Random(2)
        while True:
            dut.side_elem__ready.value = int(flip.random() < 0.7)
            await RisingEdge(dut.clk)
            if int(dut.side_elem__valid.value) and int(dut.side_elem__ready.value):
                side_got.append(int(dut.side_elem__payload.value))

    cocotb.start_soon(side_sink())
    want = init.copy()
    side_want: list[int] = []
    for i, (src, dst, y, x, ss, ds) in enumerate(COPIES):
        if i < len(SIDE_READS):
            await send("side_cmd", SIDE_READS[i])
            side_want += read_model(init, SIDE_READS[i], SIDE_ELEM // 8)
        await send("wr_cmd", (dst, y, x, ds))
        await send("rd_cmd", (src, y, x, ss))
        while True:
            await RisingEdge(dut.clk)
            if not int(dut.busy.value):
                break
        assert int(dut.errors.value) == 0, hex(int(dut.errors.value))
        write_model(want, (dst, y, x, ds), COPY_ELEM // 8, read_model(init, (src, y, x, ss), COPY_ELEM // 8))
    got = np.frombuffer(ram.read(0, COPY_MEM), np.uint8)
    diff = np.flatnonzero(got != want)
    assert not len(diff), f"{len(diff)} bytes differ, first at {diff[0]:#x}"
    assert side_got == side_want


try:  # make it a cocotb test, found when the simulator imports this module
    import cocotb

    copy_engine_cocotb = cocotb.test()(copy_engine_cocotb)
except ImportError:  # pragma: no cover - without cocotb the Verilator test skips
    pass


def test_copy_engine_verilator(tmp_path) -> None:
    """The copy engine built by Verilator against cocotbext-axi's AxiRam: copies with
    overlapping and repeated rows, plus concurrent reads through the arbiter."""
    from cocotb_util import run_cocotb, verilator_missing

    reason = verilator_missing()
    if reason:
        pytest.skip(reason)
    run_cocotb(CopyEngine(), "copy_engine", "test_dma", tmp_path, testcase="copy_engine_cocotb")
