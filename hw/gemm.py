"""The GEMM core: BATCH × BLOCK_OUT dot products of length BLOCK_IN per cycle."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from vta.isa import Config, MemType

from .layouts import elem_layout


class GemmCore(wiring.Component):
    """Fully pipelined dot products.

    Each cycle it takes an input tile ``inp`` (batch × block_in) and a weight
    tile ``wgt`` (block_out × block_in); ``LATENCY`` cycles later ``dot`` holds
    ``Σ_k inp[b][k] · wgt[o][k]`` for every (b, o), wrapped to the accumulator
    width (the exact sum's low bits, which is what wrapping addition gives).
    Stage 1 registers the products, stage 2 the sums.
    """

    LATENCY = 2

    def __init__(self, config: Config) -> None:
        self.config = config
        super().__init__({
            "valid": In(1),
            "inp": In(elem_layout(config, MemType.INP)),
            "wgt": In(elem_layout(config, MemType.WGT)),
            "valid_out": Out(1),
            "dot": Out(elem_layout(config, MemType.ACC)),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.config
        prods = [[[Signal(c.inp_width + c.wgt_width, name=f"p_{b}_{o}_{k}") for k in range(c.block_in)]
                  for o in range(c.block_out)] for b in range(c.batch)]
        for b in range(c.batch):
            for o in range(c.block_out):
                for k in range(c.block_in):
                    m.d.sync += prods[b][o][k].eq(self.inp[b][k] * self.wgt[o][k])
                # Signed products, summed exactly in a wide enough width, then wrapped to the lane.
                total = sum(p.as_signed() for p in prods[b][o])
                m.d.sync += self.dot[b][o].eq(total)
        valid1 = Signal()
        m.d.sync += [valid1.eq(self.valid), self.valid_out.eq(valid1)]
        return m
