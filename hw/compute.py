"""The compute module: LOAD UOP/ACC, GEMM, ALU and FINISH.

GEMM pipeline (one micro-op per cycle):
  0 loop: read the micro-op          1 indices, bounds; read inp and wgt
  2 GEMM core in (products)          3 (sums); read acc[dst]
  4 write acc[dst] = acc + dot (or 0 with reset)
ALU pipeline (one micro-op per cycle with an immediate, per two cycles with an acc operand):
  0 loop: read the micro-op          1 indices, bounds; read acc[src] (operand b)
  2 read acc[dst]                    3 write acc[dst] = op(acc[dst], b)
The accumulator read port is transparent to the write port and every read is
issued no earlier than the cycle in which the previous micro-op writes, so
micro-ops see their predecessors' results (the ISA's sequential semantics).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from vta.isa import Config, ErrorCode, MemType, Opcode
from vta.isa.spec import ERROR_CODE_BITS, INSN_BITS

from .alu import AluCore
from .gemm import GemmCore
from .layouts import elem_bits, elem_layout, insn_views, uop_view
from .walker import write_port


def read_port(addr_bits: int, bits: int) -> wiring.Signature:
    """A synchronous memory read port seen from its user: data arrives the cycle after addr."""
    return wiring.Signature({"addr": Out(addr_bits), "data": In(bits)})


def _abits(n: int) -> int:
    return (n - 1).bit_length()


class UopLoop(wiring.Component):
    """Issues the (micro-op, offsets) of ``for i < iter_out: for j < iter_in: for u in [bgn, end)``.

    Offsets are ``i·factor_out + j·factor_in`` for dst, src and wgt, kept as
    running sums. With ``pace2`` it issues every other cycle. ``idle`` is high
    when nothing is left to issue.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        factors = {f"{k}_{d}": In(32) for k in ("dst", "src", "wgt") for d in ("out", "in")}
        super().__init__({
            "go": In(1), "bgn": In(32), "end": In(32), "iter_out": In(32), "iter_in": In(32), "pace2": In(1),
            "halt": In(1), **factors,
            "valid": Out(1), "u": Out(32), "dst": Out(32), "src": Out(32), "wgt": Out(32), "idle": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        active = Signal()
        u, i, j = Signal(32), Signal(32), Signal(32)
        oi = {k: Signal(32, name=f"oi_{k}") for k in ("dst", "src", "wgt")}
        oj = {k: Signal(32, name=f"oj_{k}") for k in ("dst", "src", "wgt")}
        skip = Signal()  # the pause cycle of pace2
        m.d.comb += self.idle.eq(~active)
        with m.If(self.go):
            empty = (self.bgn == self.end) | (self.iter_out == 0) | (self.iter_in == 0)
            m.d.sync += [active.eq(~empty), u.eq(self.bgn), i.eq(0), j.eq(0), skip.eq(0)]
            m.d.sync += [o.eq(0) for o in (*oi.values(), *oj.values())]
        with m.Elif(active & ~self.halt):
            m.d.comb += self.u.eq(u)
            for k in ("dst", "src", "wgt"):
                m.d.comb += getattr(self, k).eq(oi[k] + oj[k])
            with m.If(skip):
                m.d.sync += skip.eq(0)
            with m.Else():
                m.d.comb += self.valid.eq(1)
                m.d.sync += skip.eq(self.pace2)
                with m.If(u == self.end - 1):
                    m.d.sync += u.eq(self.bgn)
                    with m.If(j == self.iter_in - 1):
                        m.d.sync += [j.eq(0)] + [o.eq(0) for o in oj.values()]
                        m.d.sync += [i.eq(i + 1)] + [oi[k].eq(oi[k] + getattr(self, f"{k}_out")) for k in oi]
                        with m.If(i == self.iter_out - 1):
                            m.d.sync += active.eq(0)
                    with m.Else():
                        m.d.sync += [j.eq(j + 1)] + [oj[k].eq(oj[k] + getattr(self, f"{k}_in")) for k in oj]
                with m.Else():
                    m.d.sync += u.eq(u + 1)
        return m


class ComputeCore(wiring.Component):
    """Executes one GEMM or ALU instruction (``go`` with ``insn``), ``done`` when drained."""

    def __init__(self, config: Config) -> None:
        self.config = config
        c = config
        acc_bits = elem_bits(c, MemType.ACC)
        super().__init__({
            "go": In(1), "insn": In(INSN_BITS), "done": Out(1), "error": Out(ERROR_CODE_BITS), "busy": Out(1),
            "uop_rd": Out(read_port(_abits(c.uop_depth), c.uop_bits)),
            "inp_rd": Out(read_port(_abits(c.inp_depth), elem_bits(c, MemType.INP))),
            "wgt_rd": Out(read_port(_abits(c.wgt_depth), elem_bits(c, MemType.WGT))),
            "acc_rd": Out(read_port(_abits(c.acc_depth), acc_bits)),
            "acc_wr": Out(write_port(_abits(c.acc_depth), acc_bits)),
            "gemm_uop": Out(1), "gemm_mac": Out(1), "alu_uop": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.config
        views = insn_views(c)
        insn = Signal(INSN_BITS)
        gemm = data.View(views["gemm"], insn)
        alu = data.View(views["alu"], insn)
        is_alu = Signal()
        m.submodules.loop = loop = UopLoop(c)
        m.submodules.core = core = GemmCore(c)
        assert GemmCore.LATENCY == 2, "the stage numbering below assumes products, then sums"
        m.submodules.alu = alu_core = AluCore(c)
        failed = Signal()

        with m.If(self.go):
            m.d.sync += [insn.eq(self.insn), is_alu.eq(data.View(views["finish"], self.insn).opcode == Opcode.ALU)]
        started = Signal()
        m.d.sync += started.eq(self.go)
        # The loop starts one cycle after go, once the instruction is registered.
        m.d.comb += [
            loop.go.eq(started),
            loop.bgn.eq(Mux(is_alu, alu.uop_bgn, gemm.uop_bgn)),
            loop.end.eq(Mux(is_alu, alu.uop_end, gemm.uop_end)),
            loop.iter_out.eq(Mux(is_alu, alu.iter_out, gemm.iter_out)),
            loop.iter_in.eq(Mux(is_alu, alu.iter_in, gemm.iter_in)),
            loop.pace2.eq(is_alu & ~alu.use_imm),
            loop.halt.eq(failed),
        ]
        for k in ("dst", "src"):
            for d in ("out", "in"):
                m.d.comb += getattr(loop, f"{k}_{d}").eq(
                    Mux(is_alu, getattr(alu, f"{k}_factor_{d}"), getattr(gemm, f"{k}_factor_{d}")))
        m.d.comb += [loop.wgt_out.eq(gemm.wgt_factor_out), loop.wgt_in.eq(gemm.wgt_factor_in)]

        # ---- stage 0 → 1: read the micro-op, carry the offsets ------------------
        m.d.comb += self.uop_rd.addr.eq(loop.u)
        s1 = Signal()
        s1_off = {k: Signal(32, name=f"s1_{k}") for k in ("dst", "src", "wgt")}
        m.d.sync += [s1.eq(loop.valid)] + [s1_off[k].eq(getattr(loop, k)) for k in s1_off]

        # ---- stage 1: indices and bounds -----------------------------------------
        uop = data.View(uop_view(c), self.uop_rd.data)
        dst = Signal(33)
        src = Signal(33)
        wgt = Signal(33)
        m.d.comb += [dst.eq(uop.dst_idx + s1_off["dst"]), src.eq(uop.src_idx + s1_off["src"]),
                     wgt.eq(uop.wgt_idx + s1_off["wgt"])]
        src_depth = Mux(is_alu, c.acc_depth, c.inp_depth)
        checks_src = ~is_alu | ~alu.use_imm
        checks_ops = ~is_alu & ~gemm.reset
        bad = (dst >= c.acc_depth) | (checks_src & (src >= src_depth) & (is_alu | checks_ops)) | \
            (checks_ops & (wgt >= c.wgt_depth))
        ok1 = s1 & ~bad & ~failed
        with m.If(s1 & bad & ~failed):
            m.d.sync += [failed.eq(1), self.error.eq(ErrorCode.SRAM_BOUNDS)]
        m.d.comb += [self.inp_rd.addr.eq(src), self.wgt_rd.addr.eq(wgt)]

        # ---- GEMM stages 2-4 ------------------------------------------------------
        s2, s3, s4 = Signal(), Signal(), Signal()
        d2, d3, d4 = Signal(32), Signal(32), Signal(32)
        m.d.sync += [s2.eq(ok1 & ~is_alu), d2.eq(dst), s3.eq(s2), d3.eq(d2), s4.eq(s3), d4.eq(d3)]
        m.d.comb += [core.valid.eq(s2), core.inp.eq(self.inp_rd.data), core.wgt.eq(self.wgt_rd.data)]
        total = Signal(elem_layout(c, MemType.ACC))
        acc_now = data.View(elem_layout(c, MemType.ACC), self.acc_rd.data)
        for b in range(c.batch):
            for o in range(c.block_out):
                m.d.comb += total[b][o].eq(acc_now[b][o] + core.dot[b][o])
        m.d.comb += [self.gemm_uop.eq(s2), self.gemm_mac.eq(s2 & ~gemm.reset)]

        # ---- ALU stages 2-3 -----------------------------------------------------
        a2, a3 = Signal(), Signal()
        ad2, ad3 = Signal(32), Signal(32)
        b3 = Signal(elem_layout(c, MemType.ACC))
        m.d.sync += [a2.eq(ok1 & is_alu), ad2.eq(dst), a3.eq(a2), ad3.eq(ad2)]
        imm = Signal(elem_layout(c, MemType.ACC))
        for lanes in imm:
            for o in range(c.block_out):
                m.d.comb += lanes[o].eq(alu.imm)
        with m.If(a2):
            m.d.sync += b3.eq(Mux(alu.use_imm, imm.as_value(), self.acc_rd.data))
        m.d.comb += [alu_core.op.eq(alu.alu_op), alu_core.a.eq(self.acc_rd.data), alu_core.b.eq(b3),
                     self.alu_uop.eq(a2)]

        # ---- the shared accumulator ports ------------------------------------------
        with m.If(is_alu):
            m.d.comb += self.acc_rd.addr.eq(Mux(a2, ad2, src))  # stage 2 reads dst, stage 1 reads src
            m.d.comb += [self.acc_wr.addr.eq(ad3), self.acc_wr.data.eq(alu_core.result), self.acc_wr.en.eq(a3)]
        with m.Else():
            m.d.comb += self.acc_rd.addr.eq(d3)
            m.d.comb += [self.acc_wr.addr.eq(d4), self.acc_wr.en.eq(s4),
                         self.acc_wr.data.eq(Mux(gemm.reset, 0, total.as_value()))]

        # ---- completion -------------------------------------------------------------
        in_flight = s1 | s2 | s3 | s4 | a2 | a3
        running = Signal()
        with m.If(self.go):
            m.d.sync += running.eq(1)
        with m.Elif(running & ~started & loop.idle & ~in_flight):
            m.d.sync += running.eq(0)
            m.d.comb += self.done.eq(~failed)
        m.d.comb += self.busy.eq(running)
        return m
