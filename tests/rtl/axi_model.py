"""A cycle-level AXI4 slave memory for Amaranth's simulator, and a helper that
runs whole programs on `VTACore` with it. Slow (pure Python) but independent
of Verilator: it debugs the core on small programs and cross-checks the
Verilator harness's memory model."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

from vta.hw.core import VTACore
from vta.hw.csr import COUNTERS
from vta.isa import Program


@dataclass
class AxiMemory:
    """Byte memory behind an AXI4 slave port (``port`` is the DUT's ``m_axi``)."""

    data: np.ndarray
    read_latency: int = 8
    write_latency: int = 4
    stall_every: int = 0  # >0: drop ready/valid every n-th cycle, to exercise back-pressure
    reads: deque = field(default_factory=deque)   # [ready_cycle, addr, beats_left]
    writes: deque = field(default_factory=deque)  # [addr, beats_left]
    responses: deque = field(default_factory=deque)  # [ready_cycle, resp]
    cycle: int = 0

    def _resp(self, addr: int, nbytes: int) -> int:
        return 0 if 0 <= addr and addr + nbytes <= self.data.size else 2

    async def serve(self, ctx, port, bus_bytes: int) -> None:
        while True:
            stall = self.stall_every and self.cycle % self.stall_every == 0
            ctx.set(port.arready, int(not stall))
            ctx.set(port.awready, int(not stall))
            ctx.set(port.wready, int(bool(self.writes)) and int(not stall))
            head = self.reads[0] if self.reads and self.reads[0][0] <= self.cycle else None
            ctx.set(port.rvalid, int(head is not None and not stall))
            if head is not None:
                addr = head[1]
                resp = self._resp(addr, bus_bytes)
                beat = self.data[addr : addr + bus_bytes] if resp == 0 else np.zeros(bus_bytes, np.uint8)
                ctx.set(port.rdata, int.from_bytes(beat.tobytes(), "little"))
                ctx.set(port.rresp, resp)
                ctx.set(port.rlast, int(head[2] == 1))
            bhead = self.responses[0] if self.responses and self.responses[0][0] <= self.cycle else None
            ctx.set(port.bvalid, int(bhead is not None))
            if bhead is not None:
                ctx.set(port.bresp, bhead[1])
            # Handshakes that happen at this clock edge.
            if ctx.get(port.arvalid) and ctx.get(port.arready):
                self.reads.append([self.cycle + self.read_latency, ctx.get(port.araddr), ctx.get(port.arlen) + 1])
            if head is not None and ctx.get(port.rvalid) and ctx.get(port.rready):
                head[1] += bus_bytes
                head[2] -= 1
                if head[2] == 0:
                    self.reads.popleft()
            if ctx.get(port.awvalid) and ctx.get(port.awready):
                self.writes.append([ctx.get(port.awaddr), ctx.get(port.awlen) + 1, 0])
            if ctx.get(port.wvalid) and ctx.get(port.wready):
                w = self.writes[0]
                addr, strb = w[0], ctx.get(port.wstrb)
                resp = self._resp(addr, bus_bytes)
                if resp == 0:
                    raw = ctx.get(port.wdata).to_bytes(bus_bytes, "little")
                    for i in range(bus_bytes):
                        if strb >> i & 1:
                            self.data[addr + i] = raw[i]
                w[2] |= resp
                w[0] += bus_bytes
                w[1] -= 1
                if w[1] == 0:
                    self.writes.popleft()
                    self.responses.append([self.cycle + self.write_latency, w[2]])
            if bhead is not None and ctx.get(port.bready):
                self.responses.popleft()
            self.cycle += 1
            await ctx.tick()


@dataclass
class CoreRun:
    dram: np.ndarray
    error: int
    error_insn: int
    counters: dict[str, int]


def run_core(program: Program, max_cycles: int = 200_000, stall_every: int = 0, vcd: str | None = None) -> CoreRun:
    """Run a program on VTACore in Amaranth's simulator with an AxiMemory."""
    cfg = program.config
    dut = VTACore(cfg)
    mem = AxiMemory(program.dram_image(), stall_every=stall_every)
    result: dict = {}

    async def host(ctx) -> None:
        ctx.set(dut.insn_addr, program.insn_addr)
        ctx.set(dut.insn_count, len(program.insns))
        ctx.set(dut.dram_limit, program.dram_bytes)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(max_cycles):
            await ctx.tick()
            if ctx.get(dut.done):
                break
        else:
            raise TimeoutError(f"the core did not finish in {max_cycles} cycles")
        result["error"] = ctx.get(dut.error)
        result["error_insn"] = ctx.get(dut.error_insn)
        result["counters"] = {k: ctx.get(getattr(dut.counters, k)) for k in COUNTERS}

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    async def memory(ctx) -> None:
        await mem.serve(ctx, dut.m_axi, cfg.bus_bytes)

    sim.add_testbench(memory, background=True)
    sim.add_testbench(host)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return CoreRun(mem.data, result["error"], result["error_insn"], result["counters"])
