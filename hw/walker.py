"""LOAD execution: run the 2-D DMA and write every entry of the padded
``rows × cols`` grid, one per cycle (docs/isa.md, LOAD)."""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from vta.isa import Config, ErrorCode, MemType
from vta.isa.spec import ERROR_CODE_BITS, INSN_BITS

from .dma import DmaCmd
from .layouts import elem_bits, elem_layout, insn_views


def dma_client(bits: int) -> wiring.Signature:
    """What a module sees of its read DMA: commands out, elements and errors in."""
    return wiring.Signature({
        "cmd": Out(stream.Signature(DmaCmd)), "elem": In(stream.Signature(bits)), "error": In(ERROR_CODE_BITS),
    })


def write_port(addr_bits: int, bits: int) -> wiring.Signature:
    return wiring.Signature({"addr": Out(addr_bits), "data": Out(bits), "en": Out(1)})


class LoadWalker(wiring.Component):
    """Executes LOAD instructions into the buffers ``mems``.

    ``go`` starts the LOAD held in ``insn``; ``done`` pulses when its last entry
    is written (at once for an empty transfer). Errors: SRAM_BOUNDS when the
    grid passes the buffer's end (before any transfer), and whatever the DMA
    reports. ``data_write``/``pad_write`` pulse per entry written, for counters.
    """

    def __init__(self, config: Config, mems: tuple[MemType, ...]) -> None:
        self.config = config
        self.mems = mems
        members: dict = {
            "go": In(1), "insn": In(INSN_BITS), "done": Out(1), "error": Out(ERROR_CODE_BITS),
            "stop": In(1), "busy": Out(1),
        }
        for mem in mems:
            name = mem.name.lower()
            bits = elem_bits(config, mem)
            members[f"{name}_dma"] = Out(dma_client(bits))
            members[f"{name}_wr"] = Out(write_port((config.depth(mem) - 1).bit_length(), bits))
            members[f"{name}_data_write"] = Out(1)
        members["pad_write"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.config
        insn = Signal(INSN_BITS)
        v = data.View(insn_views(c)["mem"], insn)
        rows = Signal(17)
        cols = Signal(17)
        r = Signal(17)
        col = Signal(17)
        addr = Signal(32)
        m.d.comb += [
            rows.eq(v.y_pad_top + v.y_size + v.y_pad_bottom),
            cols.eq(v.x_pad_left + v.x_size + v.x_pad_right),
        ]
        total = Signal(34)
        m.d.comb += total.eq(rows * cols)
        is_pad = (r < v.y_pad_top) | (r >= v.y_pad_top + v.y_size) | (col < v.x_pad_left) | \
            (col >= v.x_pad_left + v.x_size)
        sel = {mem: v.memory_type == mem for mem in self.mems}
        depth = Signal(32)
        for mem in self.mems:
            with m.If(sel[mem]):
                m.d.comb += depth.eq(c.depth(mem))
        dma_error = Signal(ERROR_CODE_BITS)
        for mem in self.mems:
            with m.If(sel[mem]):
                m.d.comb += dma_error.eq(getattr(self, f"{mem.name.lower()}_dma").error)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.go):
                    m.d.sync += [insn.eq(self.insn), r.eq(0), col.eq(0)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += addr.eq(v.sram_base)
                with m.If((v.x_size == 0) | (v.y_size == 0)):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Elif(v.sram_base + total > depth):
                    m.d.sync += self.error.eq(ErrorCode.SRAM_BOUNDS)
                    m.next = "FAILED"
                with m.Else():
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += self.busy.eq(1)
                for mem in self.mems:
                    dma = getattr(self, f"{mem.name.lower()}_dma")
                    m.d.comb += [
                        dma.cmd.payload.base.eq(v.dram_base), dma.cmd.payload.y_size.eq(v.y_size),
                        dma.cmd.payload.x_size.eq(v.x_size), dma.cmd.payload.x_stride.eq(v.x_stride),
                    ]
                    with m.If(sel[mem]):
                        m.d.comb += dma.cmd.valid.eq(1)
                        with m.If(dma.cmd.ready):
                            m.next = "WALK"
            with m.State("WALK"):
                m.d.comb += self.busy.eq(1)
                advance = Signal()
                for mem in self.mems:
                    self._walk_mem(m, mem, sel[mem], is_pad, addr, v, advance)
                with m.If(dma_error != 0):
                    m.d.sync += self.error.eq(dma_error)
                    m.next = "FAILED"
                with m.Elif(advance):
                    m.d.sync += addr.eq(addr + 1)
                    last_col = col == cols - 1
                    m.d.sync += col.eq(Mux(last_col, 0, col + 1))
                    with m.If(last_col):
                        m.d.sync += r.eq(r + 1)
                        with m.If(r == rows - 1):
                            m.d.comb += self.done.eq(1)
                            m.next = "IDLE"
            with m.State("FAILED"):
                with m.If(self.go):  # a new run after the core was reset starts clean
                    m.d.sync += self.error.eq(0)
                    m.next = "IDLE"
        return m

    def _walk_mem(self, m: Module, mem: MemType, selected, is_pad, addr: Signal, v: data.View,
                  advance: Signal) -> None:
        """Drive one buffer's write port and DMA for the current grid position."""
        c = self.config
        name = mem.name.lower()
        dma = getattr(self, f"{name}_dma")
        wr = getattr(self, f"{name}_wr")
        m.d.comb += wr.addr.eq(addr)
        with m.If(selected & ~self.stop):
            with m.If(is_pad):
                if mem != MemType.UOP:  # uop loads have no padding (a static rule fetch checks)
                    pad = Signal(elem_layout(c, mem), name=f"{name}_pad")
                    for lanes in pad:
                        for i in range(len(lanes)):
                            m.d.comb += lanes[i].eq(v.pad_value)
                    m.d.comb += [wr.data.eq(pad), wr.en.eq(1), advance.eq(1), self.pad_write.eq(1)]
            with m.Else():
                m.d.comb += [wr.data.eq(dma.elem.payload), dma.elem.ready.eq(1)]
                with m.If(dma.elem.valid):
                    m.d.comb += [wr.en.eq(1), advance.eq(1), getattr(self, f"{name}_data_write").eq(1)]
