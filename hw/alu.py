"""The ALU: one operation on every accumulator lane, as docs/isa.md specifies."""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from vta.isa import AluOp, Config, MemType
from vta.isa.spec import ALU_OP_BITS

from .layouts import elem_layout


class AluCore(wiring.Component):
    """Combinational: ``result[b][o] = op(a[b][o], b[b][o])`` with the accumulator width's wrapping.

    SHR shifts right arithmetically by ``b`` (at most width-1) when ``b ≥ 0`` and left by ``-b``
    otherwise (0 once ``-b ≥ width``).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        acc = elem_layout(config, MemType.ACC)
        super().__init__({"op": In(ALU_OP_BITS), "a": In(acc), "b": In(acc), "result": Out(acc)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.config
        w = c.acc_width
        for bi in range(c.batch):
            for o in range(c.block_out):
                a, b, r = self.a[bi][o], self.b[bi][o], self.result[bi][o]
                right = Signal(range(w), name=f"shr_{bi}_{o}")
                left = Signal(range(w + 1), name=f"shl_{bi}_{o}")
                m.d.comb += [
                    right.eq(Mux(b > w - 1, w - 1, b)),
                    left.eq(Mux(-b > w, w, -b)),
                ]
                with m.Switch(self.op):
                    with m.Case(AluOp.MIN):
                        m.d.comb += r.eq(Mux(a < b, a, b))
                    with m.Case(AluOp.MAX):
                        m.d.comb += r.eq(Mux(a > b, a, b))
                    with m.Case(AluOp.ADD):
                        m.d.comb += r.eq(a + b)
                    with m.Case(AluOp.SHR):
                        m.d.comb += r.eq(Mux(b < 0, (a << left)[:w], a >> right))
                    with m.Case(AluOp.MUL):
                        m.d.comb += r.eq(a * b)
                    with m.Case(AluOp.MOV):
                        m.d.comb += r.eq(b)
        return m
