"""On-chip memory for a board: block RAM served to the core's AXI4 master, with a host port.

`AXI4Bram` is the core's "DRAM" on a board with no other memory: ``mem_bytes`` of block RAM,
one bus word wide, behind a small AXI4 slave that keeps to the subset the core uses
(`vta.hw.axi`: one ID, INCR bursts of full bus-width beats, one beat per cycle on each
channel). A beat outside the memory, or a burst of another kind or beat size, is answered
with SLVERR and touches nothing (the core then reports BUS_ERROR).

The host port (``host_*``, byte-wide, for the host link) owns the memory while ``host_sel``
is high; the board raises it only while the core is idle, when no AXI transfer is in flight.
The AXI side accepts new bursts only while ``enable`` is high.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2
from vta.isa.errors import VTAError

from .axi import ADDR_BITS, BURST_INCR, RESP_OKAY, AXI4Signature

RESP_SLVERR = 2


class AXI4Bram(wiring.Component):
    """``mem_bytes`` (a power of two, at least one bus word) of block RAM, ``bus_bits`` wide."""

    def __init__(self, mem_bytes: int, bus_bits: int) -> None:
        bus_bytes = bus_bits // 8
        if mem_bytes < 2 * bus_bytes or mem_bytes & (mem_bytes - 1):
            raise VTAError(f"board memory of {mem_bytes} bytes must be a power of two of at least two bus words "
                           f"({2 * bus_bytes} bytes)")
        self.mem_bytes, self.bus_bits, self.bus_bytes = mem_bytes, bus_bits, bus_bytes
        self.depth = mem_bytes // bus_bytes
        self.word_bits = exact_log2(self.depth)
        self.lane_bits = exact_log2(bus_bytes)
        super().__init__({
            "s_axi": In(AXI4Signature(bus_bits)),  # flipped: this side answers
            "enable": In(1),
            "host_sel": In(1),
            "host_addr": In(exact_log2(mem_bytes)),  # byte address
            "host_wdata": In(8),
            "host_we": In(1),
            "host_re": In(1),
            "host_rdata": Out(8),  # the byte at the host_addr of the last cycle with host_re
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        mem = m.submodules.mem = memory.Memory(shape=self.bus_bits, depth=self.depth, init=[])
        rp = mem.read_port()
        wp = mem.write_port(granularity=8)
        self._read_channel(m, rp)
        self._write_channel(m, wp)
        return m

    def _legal(self, size: Signal, burst: Signal) -> Signal:
        return (size == self.lane_bits) & (burst == BURST_INCR)

    def _in_range(self, word: Signal) -> Signal:
        return (word >> self.word_bits) == 0

    def _read_channel(self, m: Module, rp: memory.ReadPort) -> None:
        s = self.s_axi
        active = Signal()                  # a burst whose beats are not all fetched yet
        word = Signal(ADDR_BITS - self.lane_bits)
        left = Signal(9)                   # beats still to fetch
        bad = Signal()                     # the burst itself is illegal
        rvalid, rlast, rresp = Signal(), Signal(), Signal(2)
        advance = ~rvalid | s.rready       # the output register is free or being emptied
        fetch = active & advance
        m.d.comb += [s.arready.eq(self.enable & ~active), s.rvalid.eq(rvalid), s.rlast.eq(rlast),
                     s.rresp.eq(rresp), s.rdata.eq(rp.data), s.rid.eq(0)]
        with m.If(s.arvalid & s.arready):
            m.d.sync += [active.eq(1), word.eq(s.araddr[self.lane_bits:]), left.eq(s.arlen + 1),
                         bad.eq(~self._legal(s.arsize, s.arburst))]
        with m.If(advance):
            m.d.sync += [rvalid.eq(fetch), rlast.eq(fetch & (left == 1)),
                         rresp.eq(Mux(bad | ~self._in_range(word), RESP_SLVERR, RESP_OKAY))]
        with m.If(fetch):
            m.d.sync += [word.eq(word + 1), left.eq(left - 1)]
            with m.If(left == 1):
                m.d.sync += active.eq(0)
        lane = Signal(self.lane_bits)
        with m.If(self.host_re):
            m.d.sync += lane.eq(self.host_addr[: self.lane_bits])
        m.d.comb += [
            rp.addr.eq(Mux(self.host_sel, self.host_addr[self.lane_bits:], word[: self.word_bits])),
            rp.en.eq(Mux(self.host_sel, self.host_re, advance)),
            self.host_rdata.eq(rp.data.word_select(lane, 8)),
        ]

    def _write_channel(self, m: Module, wp: memory.WritePort) -> None:
        s = self.s_axi
        active = Signal()                  # AW accepted, W beats still to come
        word = Signal(ADDR_BITS - self.lane_bits)
        left = Signal(9)
        bad = Signal()                     # illegal burst, or a beat so far outside the memory
        bvalid = Signal()
        m.d.comb += [s.awready.eq(self.enable & ~active & ~bvalid), s.wready.eq(active), s.bvalid.eq(bvalid),
                     s.bresp.eq(Mux(bad, RESP_SLVERR, RESP_OKAY)), s.bid.eq(0)]
        beat = s.wvalid & s.wready
        ok = ~bad & self._in_range(word)
        with m.If(s.awvalid & s.awready):
            m.d.sync += [active.eq(1), word.eq(s.awaddr[self.lane_bits:]), left.eq(s.awlen + 1),
                         bad.eq(~self._legal(s.awsize, s.awburst))]
        with m.If(beat):
            m.d.sync += [word.eq(word + 1), left.eq(left - 1)]
            with m.If(~self._in_range(word)):
                m.d.sync += bad.eq(1)
            with m.If(left == 1):
                m.d.sync += [active.eq(0), bvalid.eq(1)]
        with m.If(bvalid & s.bready):
            m.d.sync += bvalid.eq(0)
        lane = self.host_addr[: self.lane_bits]
        host_en = Signal(self.bus_bytes)
        m.d.comb += host_en.eq(Mux(self.host_we, Const(1, self.bus_bytes) << lane, 0))
        m.d.comb += [
            wp.addr.eq(Mux(self.host_sel, self.host_addr[self.lane_bits:], word[: self.word_bits])),
            wp.data.eq(Mux(self.host_sel, Cat([self.host_wdata] * self.bus_bytes), s.wdata)),
            wp.en.eq(Mux(self.host_sel, host_en, Mux(beat & ok, s.wstrb, 0))),
        ]
