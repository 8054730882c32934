"""STORE execution: read accumulators, narrow them (OUT) or not (ACC), and write
them through the write DMA (docs/isa.md, STORE)."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from vta.isa import Config, ErrorCode, MemType
from vta.isa.spec import ERROR_CODE_BITS, INSN_BITS, STORE_MEMTYPES

from .compute import read_port
from .dma import DmaCmd
from .layouts import elem_bits, elem_layout, insn_views

_SKID = 4  # entries read ahead of the DMA: covers the buffer's read latency at full rate


def write_dma_client(bits: int) -> wiring.Signature:
    return wiring.Signature({
        "cmd": Out(stream.Signature(DmaCmd)), "elem": Out(stream.Signature(bits)),
        "error": In(ERROR_CODE_BITS), "busy": In(1),
    })


class StoreEngine(wiring.Component):
    """Executes the STORE in ``insn`` on ``go``; ``done`` after the last write response."""

    def __init__(self, config: Config) -> None:
        self.config = config
        c = config
        super().__init__({
            "go": In(1), "insn": In(INSN_BITS), "done": Out(1), "error": Out(ERROR_CODE_BITS), "busy": Out(1),
            "acc_rd": Out(read_port((c.acc_depth - 1).bit_length(), elem_bits(c, MemType.ACC))),
            **{f"{mem.name.lower()}_dma": Out(write_dma_client(elem_bits(c, mem))) for mem in STORE_MEMTYPES},
            **{f"{mem.name.lower()}_write": Out(1) for mem in STORE_MEMTYPES},
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.config
        insn = Signal(INSN_BITS)
        v = data.View(insn_views(c)["mem"], insn)
        n = Signal(32)
        issued = Signal(32)
        sent = Signal(32)
        m.d.comb += n.eq(v.y_size * v.x_size)
        m.submodules.skid = skid = fifo.SyncFIFOBuffered(width=elem_bits(c, MemType.ACC), depth=_SKID)
        in_flight = Signal()
        dmas = {mem: getattr(self, f"{mem.name.lower()}_dma") for mem in STORE_MEMTYPES}
        sel = {mem: v.memory_type == mem for mem in STORE_MEMTYPES}
        dma_error = Signal(ERROR_CODE_BITS)
        dma_busy = Signal()
        for mem, dma in dmas.items():
            with m.If(sel[mem]):
                m.d.comb += [dma_error.eq(dma.error), dma_busy.eq(dma.busy)]
            m.d.comb += [dma.cmd.payload.base.eq(v.dram_base), dma.cmd.payload.y_size.eq(v.y_size),
                         dma.cmd.payload.x_size.eq(v.x_size), dma.cmd.payload.x_stride.eq(v.x_stride)]
        # Narrowing to OUT keeps each lane's low bits (assignment to a narrower signed lane truncates).
        acc = data.View(elem_layout(c, MemType.ACC), skid.r_data)
        out = Signal(elem_layout(c, MemType.OUT))
        for b in range(c.batch):
            for o in range(c.block_out):
                m.d.comb += out[b][o].eq(acc[b][o])
        m.d.comb += [dmas[MemType.OUT].elem.payload.eq(out), dmas[MemType.ACC].elem.payload.eq(skid.r_data)]

        m.d.sync += in_flight.eq(0)
        m.d.comb += [skid.w_data.eq(self.acc_rd.data), skid.w_en.eq(in_flight)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.go):
                    m.d.sync += [insn.eq(self.insn), issued.eq(0), sent.eq(0)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.busy.eq(1)
                with m.If((v.x_size == 0) | (v.y_size == 0)):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Elif(v.sram_base + n > c.acc_depth):
                    m.d.sync += self.error.eq(ErrorCode.SRAM_BOUNDS)
                    m.next = "FAILED"
                with m.Else():
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += self.busy.eq(1)
                for mem, dma in dmas.items():
                    with m.If(sel[mem]):
                        m.d.comb += dma.cmd.valid.eq(1)
                        with m.If(dma.cmd.ready):
                            m.next = "STREAM"
            with m.State("STREAM"):
                m.d.comb += self.busy.eq(1)
                # Read ahead while the skid buffer has room for everything in flight.
                room = skid.level + in_flight < _SKID
                with m.If((issued != n) & room):
                    m.d.comb += self.acc_rd.addr.eq(v.sram_base + issued)
                    m.d.sync += [issued.eq(issued + 1), in_flight.eq(1)]
                for mem, dma in dmas.items():
                    with m.If(sel[mem]):
                        m.d.comb += [dma.elem.valid.eq(skid.r_rdy), skid.r_en.eq(dma.elem.ready)]
                        with m.If(skid.r_rdy & dma.elem.ready):
                            m.d.comb += getattr(self, f"{mem.name.lower()}_write").eq(1)
                            m.d.sync += sent.eq(sent + 1)
                            with m.If(sent == n - 1):
                                m.next = "DRAIN"
                with m.If(dma_error != 0):
                    m.d.sync += self.error.eq(dma_error)
                    m.next = "FAILED"
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If(dma_error != 0):
                    m.d.sync += self.error.eq(dma_error)
                    m.next = "FAILED"
                with m.Elif(~dma_busy):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
            with m.State("FAILED"):
                pass
        return m
