"""The part every module shares: take the next instruction from its command
FIFO, wait for the tokens it pops, start the module's engine, and after the
engine finishes wait for room in the queues it pushes to."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from vta.isa import Config
from vta.isa.spec import DEP_FLAGS, INSN_BITS

from .layouts import insn_views

CmdLayout = data.StructLayout({"insn": INSN_BITS, "index": 32})
"""A dispatched instruction and its index in the stream."""


def token_port() -> wiring.Signature:
    """One side of a token queue: ``ok`` is has_token (pop side) or not-full (push side)."""
    return wiring.Signature({"ok": In(1), "go": Out(1)})


class Sequencer(wiring.Component):
    """Instruction sequencing for one module.

    Each of ``pop_prev``, ``pop_next``, ``push_prev``, ``push_next`` is a token
    port; a module without that neighbour leaves it unconnected (``ok`` stays
    0, and fetch never dispatches an instruction that uses it). ``go`` pulses
    for one cycle when the instruction may run; the engine raises ``done`` for
    one cycle when it has finished. ``stop`` freezes the sequencer (after an
    error).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        super().__init__({
            "cmd": In(stream.Signature(CmdLayout)),
            **{flag: Out(token_port()) for flag in DEP_FLAGS},
            "insn": Out(INSN_BITS), "index": Out(32),
            "go": Out(1), "done": In(1), "stop": In(1),
            "executing": Out(1),   # between go and done
            "waiting": Out(1),     # an instruction waits for tokens or for room to push
            "blocked": Out(1),     # waiting, or idle with nothing to do
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        common = data.View(insn_views(self.config)["finish"], self.insn)  # fields every instruction has
        flags = {f: getattr(common, f) for f in DEP_FLAGS}
        pops_ready = Signal()
        pushes_ready = Signal()
        m.d.comb += [
            pops_ready.eq((~flags["pop_prev"] | self.pop_prev.ok) & (~flags["pop_next"] | self.pop_next.ok)),
            pushes_ready.eq((~flags["push_prev"] | self.push_prev.ok) & (~flags["push_next"] | self.push_next.ok)),
        ]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.cmd.ready.eq(~self.stop), self.blocked.eq(~self.cmd.valid)]
                with m.If(self.cmd.valid & ~self.stop):
                    m.d.sync += [self.insn.eq(self.cmd.payload.insn), self.index.eq(self.cmd.payload.index)]
                    m.next = "POP"
            with m.State("POP"):
                m.d.comb += [self.waiting.eq(~pops_ready), self.blocked.eq(~pops_ready)]
                with m.If(pops_ready & ~self.stop):
                    m.d.comb += [
                        self.go.eq(1),
                        self.pop_prev.go.eq(flags["pop_prev"]),
                        self.pop_next.go.eq(flags["pop_next"]),
                    ]
                    m.next = "EXEC"
            with m.State("EXEC"):
                m.d.comb += self.executing.eq(1)
                with m.If(self.done):
                    m.next = "PUSH"
            with m.State("PUSH"):
                m.d.comb += [self.waiting.eq(~pushes_ready), self.blocked.eq(~pushes_ready)]
                with m.If(pushes_ready & ~self.stop):
                    m.d.comb += [
                        self.push_prev.go.eq(flags["push_prev"]),
                        self.push_next.go.eq(flags["push_next"]),
                        self.cmd.ready.eq(1),  # take the next instruction in the same cycle
                    ]
                    with m.If(self.cmd.valid):
                        m.d.sync += [self.insn.eq(self.cmd.payload.insn), self.index.eq(self.cmd.payload.index)]
                        m.next = "POP"
                    with m.Else():
                        m.next = "IDLE"
        return m
