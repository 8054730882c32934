"""Dependency-token queues: tokens carry no data, so a queue is an up/down counter."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class TokenQueue(wiring.Component):
    """Counts tokens between two modules, up to ``depth``.

    The producer may ``push`` only when not ``full``; the consumer may ``pop``
    only when ``has_token``. A push and a pop in the same cycle cancel out.
    """

    def __init__(self, depth: int) -> None:
        self.depth = depth
        super().__init__({
            "push": In(1), "pop": In(1), "has_token": Out(1), "full": Out(1), "count": Out(range(depth + 1)),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        push = Signal()
        pop = Signal()
        m.d.comb += [
            push.eq(self.push & (self.count < self.depth)),
            pop.eq(self.pop & (self.count > 0)),
            self.has_token.eq(self.count > 0),
            self.full.eq(self.count == self.depth),
        ]
        with m.If(push & ~pop):
            m.d.sync += self.count.eq(self.count + 1)
        with m.Elif(pop & ~push):
            m.d.sync += self.count.eq(self.count - 1)
        return m
