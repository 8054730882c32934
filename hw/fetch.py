"""Fetch: read the instruction stream, check each instruction's static rules in
order, and dispatch it to its module's command FIFO."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from vta.isa import AluOp, Config, ErrorCode, MemType, Module as Unit, Opcode
from vta.isa.spec import DEP_FLAGS, DEP_QUEUES, ERROR_CODE_BITS, INSN_BITS, LOAD_MEMTYPES, STORE_MEMTYPES

from .dma import DmaCmd
from .layouts import insn_views
from .sequencer import CmdLayout

INSN_BYTES = INSN_BITS // 8
INSN_SHIFT = INSN_BYTES.bit_length() - 1  # byte address → instruction (element) address
CHUNK = 4096  # instructions per DMA command (x_size is 16 bits)
_PADS = ("y_pad_top", "y_pad_bottom", "x_pad_left", "x_pad_right", "pad_value")


class Fetch(wiring.Component):
    """Reads ``insn_count`` instructions from ``insn_addr`` and dispatches them.

    Errors (stream address, count, DRAM range, and each instruction's static
    rules, as `vta.isa.check_insn` states them) appear on ``error`` with the
    instruction index; fetch then stops. ``blocked`` is high while the next
    instruction waits for room in its module's FIFO, or once everything has
    been dispatched; ``pending`` is the index of the next instruction.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        cmd = stream.Signature(CmdLayout)
        super().__init__({
            "start": In(1), "insn_addr": In(32), "insn_count": In(32), "dram_limit": In(32), "stop": In(1),
            "dma_cmd": Out(stream.Signature(DmaCmd)), "dma_elem": In(stream.Signature(INSN_BITS)),
            "load": Out(cmd), "compute": Out(cmd), "store": Out(cmd),
            "error": Out(ERROR_CODE_BITS), "error_insn": Out(32),
            "finished": Out(1), "blocked": Out(1), "pending": Out(32), "dispatch": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.config
        views = insn_views(c)
        word = self.dma_elem.payload
        mem, gemm, alu = (data.View(views[k], word) for k in ("mem", "gemm", "alu"))
        op = mem.opcode

        base = Signal(32)
        count = Signal(32)
        requested = Signal(32)
        index = self.pending
        running = Signal()

        # ---- static checks of the instruction at the head --------------------
        unit = Signal(2)  # which module: values of vta.isa.Module
        is_mem_load = op == Opcode.LOAD
        m.d.comb += unit.eq(Mux(op == Opcode.STORE, Unit.STORE,
                                Mux(is_mem_load & mem.memory_type.matches(MemType.INP, MemType.WGT), Unit.LOAD,
                                    Unit.COMPUTE)))
        bad_field = Signal()
        padded = Cat(*(getattr(mem, f) for f in _PADS)).any()
        loop_range_bad = (gemm.uop_bgn > gemm.uop_end) | (gemm.uop_end > c.uop_depth)
        alu_range_bad = (alu.uop_bgn > alu.uop_end) | (alu.uop_end > c.uop_depth)
        flag_bad = Signal()
        for u in Unit:
            illegal = [getattr(mem, f) for f in DEP_FLAGS if DEP_QUEUES[u][f] is None]
            if illegal:
                with m.If(unit == u):
                    m.d.comb += flag_bad.eq(Cat(*illegal).any())
        with m.Switch(op):
            with m.Case(Opcode.LOAD):
                m.d.comb += bad_field.eq(~mem.memory_type.matches(*LOAD_MEMTYPES) |
                                         ((mem.memory_type == MemType.UOP) & padded))
            with m.Case(Opcode.STORE):
                m.d.comb += bad_field.eq(~mem.memory_type.matches(*STORE_MEMTYPES) | padded)
            with m.Case(Opcode.GEMM):
                m.d.comb += bad_field.eq(loop_range_bad)
            with m.Case(Opcode.ALU):
                m.d.comb += bad_field.eq(alu_range_bad | ~alu.alu_op.matches(*AluOp))
        last = index == count - 1
        code = Signal(ERROR_CODE_BITS)
        with m.If(~op.matches(*Opcode)):
            m.d.comb += code.eq(ErrorCode.BAD_OPCODE)
        with m.Elif(bad_field | flag_bad):
            m.d.comb += code.eq(ErrorCode.BAD_FIELD)
        with m.Elif((op == Opcode.FINISH) != last):
            m.d.comb += code.eq(ErrorCode.BAD_FINISH)

        # ---- run control ------------------------------------------------------
        with m.If(self.start & ~running):
            end = self.insn_addr + self.insn_count * INSN_BYTES  # 64-bit: cannot overflow
            m.d.sync += [base.eq(self.insn_addr >> INSN_SHIFT), count.eq(self.insn_count), requested.eq(0),
                         index.eq(0), self.error.eq(0), self.error_insn.eq(0)]
            with m.If(self.insn_addr[:INSN_SHIFT].any()):
                m.d.sync += self.error.eq(ErrorCode.BAD_FIELD)
            with m.Elif(self.insn_count == 0):
                m.d.sync += self.error.eq(ErrorCode.BAD_FINISH)
            with m.Elif(end > self.dram_limit):
                m.d.sync += self.error.eq(ErrorCode.DRAM_BOUNDS)
            with m.Else():
                m.d.sync += running.eq(1)

        m.d.comb += self.finished.eq(~running | (index == count))
        with m.If(running & ~self.stop & (self.error == 0)):
            # Request the stream in chunks as the DMA accepts commands.
            left = count - requested
            n = Mux(left > CHUNK, CHUNK, left)
            m.d.comb += [
                self.dma_cmd.valid.eq(requested != count),
                self.dma_cmd.payload.base.eq(base + requested),
                self.dma_cmd.payload.y_size.eq(1),
                self.dma_cmd.payload.x_size.eq(n),
                self.dma_cmd.payload.x_stride.eq(n),
            ]
            with m.If(self.dma_cmd.valid & self.dma_cmd.ready):
                m.d.sync += requested.eq(requested + n)
            # Dispatch the instruction at the head.
            with m.If(self.dma_elem.valid):
                with m.If(code != 0):
                    m.d.sync += [self.error.eq(code), self.error_insn.eq(index), running.eq(0)]
                with m.Else():
                    outs = {Unit.LOAD: self.load, Unit.COMPUTE: self.compute, Unit.STORE: self.store}
                    for u, port in outs.items():
                        m.d.comb += [port.payload.insn.eq(word), port.payload.index.eq(index)]
                        with m.If(unit == u):
                            m.d.comb += [port.valid.eq(1), self.dma_elem.ready.eq(port.ready),
                                         self.blocked.eq(~port.ready)]
                    with m.If(self.dma_elem.ready):
                        m.d.comb += self.dispatch.eq(1)
                        m.d.sync += index.eq(index + 1)
                        with m.If(last):
                            m.d.sync += running.eq(0)
        with m.If(~running):
            m.d.comb += self.blocked.eq(1)
        return m
