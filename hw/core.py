"""The accelerator: fetch, the load/compute/store modules, token queues,
buffers, DMA engines on one AXI4 master, run control, errors and counters
(docs/rtl.md)."""

from __future__ import annotations

from amaranth import Module, Mux, ResetInserter, Signal
from amaranth.lib import data, fifo, memory, wiring
from amaranth.lib.wiring import Out

from vta.isa import Config, ErrorCode, MemType, Opcode, Queue
from vta.isa.spec import ERROR_CODE_BITS, INSN_BITS, STORE_MEMTYPES

from .axi import AXI4Signature, read_members, write_members
from .compute import ComputeCore
from .csr import control_members
from .dma import ReadArbiter, ReadDMA, WriteDMA
from .fetch import INSN_BYTES, Fetch
from .layouts import elem_bits, insn_views
from .sequencer import CmdLayout, Sequencer
from .store import StoreEngine
from .tokens import TokenQueue
from .walker import LoadWalker

_READ_CLIENTS = (None, MemType.INP, MemType.WGT, MemType.UOP, MemType.ACC)  # None: instruction fetch
_HANDSHAKES_IN = ("awready", "wready", "bvalid")
# The two ends of each token queue: (module, flag) that pushes, (module, flag) that pops.
_QUEUE_ENDS = {
    Queue.L2C: (("load", "push_next"), ("compute", "pop_prev")),
    Queue.C2L: (("compute", "push_prev"), ("load", "pop_next")),
    Queue.C2S: (("compute", "push_next"), ("store", "pop_prev")),
    Queue.S2C: (("store", "push_prev"), ("compute", "pop_next")),
}


def _forward(m: Module, inner: object, outer: object, members: dict) -> None:
    """Pass a subset of a submodule's interface through to the same members of a port."""
    for name, member in members.items():
        a, b = getattr(inner, name), getattr(outer, name)
        m.d.comb += (b.eq(a) if member.flow == wiring.Flow.Out else a.eq(b))


class VTACore(wiring.Component):
    """The whole accelerator for one config; ports as docs/rtl.md lists them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        super().__init__({**control_members(), "m_axi": Out(AXI4Signature(config.bus_width))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.config
        start = Signal()
        stop = Signal()
        # `clear` resets every module's per-run state in the cycle a run ends, so the next run
        # starts clean even after an error left instructions queued or half executed. The
        # buffers keep their contents; the token queues are emptied by `start`.
        clear = Signal()
        scoped = ResetInserter(clear)
        m.d.comb += [start.eq(self.start & ~self.busy), stop.eq(self.error != 0)]

        bufs = self._buffers(m)
        fetch, seqs = self._fetch_and_sequencers(m, start, stop, scoped)
        self._tokens(m, seqs, start)
        rdmas, wdmas = self._dmas(m, scoped)
        for d in (*rdmas.values(), *wdmas.values()):  # after an error, transfers in flight are wound down
            m.d.comb += d.abort.eq(stop)
        m.d.comb += fetch.dram_limit.eq(self.dram_limit)
        wiring.connect(m, fetch.dma_cmd, rdmas[None].cmd)
        wiring.connect(m, rdmas[None].elem, fetch.dma_elem)

        # ---- load module: LOAD INP/WGT ------------------------------------------------------
        lw = LoadWalker(c, (MemType.INP, MemType.WGT))
        m.submodules.load_walker = scoped(lw)
        self._attach_walker(m, lw, (MemType.INP, MemType.WGT), rdmas, bufs)
        m.d.comb += [lw.go.eq(seqs["load"].go), lw.insn.eq(seqs["load"].insn), lw.stop.eq(stop),
                     seqs["load"].done.eq(lw.done)]

        # ---- compute module: LOAD UOP/ACC, GEMM, ALU, FINISH ---------------------------------------
        cw = LoadWalker(c, (MemType.UOP, MemType.ACC))
        m.submodules.compute_walker = scoped(cw)
        self._attach_walker(m, cw, (MemType.UOP, MemType.ACC), rdmas, bufs)
        core = ComputeCore(c)
        m.submodules.compute_core = scoped(core)
        cs = seqs["compute"]
        op = data.View(insn_views(c)["finish"], cs.insn).opcode
        finished = Signal()
        finish_now = Signal()  # FINISH completes the cycle after it starts
        is_finish = op == Opcode.FINISH
        m.d.sync += finish_now.eq(cs.go & is_finish)
        m.d.comb += [
            cw.go.eq(cs.go & (op == Opcode.LOAD)), cw.insn.eq(cs.insn), cw.stop.eq(stop),
            core.go.eq(cs.go & op.matches(Opcode.GEMM, Opcode.ALU)), core.insn.eq(cs.insn),
            cs.done.eq(cw.done | core.done | finish_now),
        ]
        with m.If(finish_now):
            m.d.sync += finished.eq(1)
        with m.If(clear):
            m.d.sync += [finished.eq(0), finish_now.eq(0)]
        uop_wp, acc_wp = bufs["wp"][MemType.UOP], bufs["wp"][MemType.ACC]
        m.d.comb += [core.uop_rd.data.eq(bufs["uop_rp"].data), bufs["uop_rp"].addr.eq(core.uop_rd.addr),
                     core.inp_rd.data.eq(bufs["inp_rp"].data), bufs["inp_rp"].addr.eq(core.inp_rd.addr),
                     core.wgt_rd.data.eq(bufs["wgt_rp"].data), bufs["wgt_rp"].addr.eq(core.wgt_rd.addr),
                     core.acc_rd.data.eq(bufs["acc_rp"].data), bufs["acc_rp"].addr.eq(core.acc_rd.addr)]
        # The walker (LOAD ACC) and the core (GEMM/ALU) never run at once: OR their write requests.
        with m.If(core.acc_wr.en):
            m.d.comb += [acc_wp.addr.eq(core.acc_wr.addr), acc_wp.data.eq(core.acc_wr.data), acc_wp.en.eq(1)]

        # ---- store module ---------------------------------------------------------------------------
        se = StoreEngine(c)
        m.submodules.store_engine = scoped(se)
        m.d.comb += [se.go.eq(seqs["store"].go), se.insn.eq(seqs["store"].insn), seqs["store"].done.eq(se.done),
                     se.acc_rd.data.eq(bufs["acc_rp2"].data), bufs["acc_rp2"].addr.eq(se.acc_rd.addr)]
        for mem, d in wdmas.items():
            client = getattr(se, f"{mem.name.lower()}_dma")
            wiring.connect(m, client.cmd, d.cmd)
            wiring.connect(m, client.elem, d.elem)
            m.d.comb += [client.error.eq(d.error), client.busy.eq(d.busy)]
        store_mem = data.View(insn_views(c)["mem"], seqs["store"].insn).memory_type
        self._write_mux(m, wdmas, store_mem)

        # ---- run control, errors, counters ------------------------------------------------------------
        dma_busy = Signal()
        data_dma_busy = Signal()  # every DMA but fetch's
        data_dmas = [d for k, d in rdmas.items() if k is not None] + list(wdmas.values())
        m.d.comb += [dma_busy.eq(rdmas[None].busy | data_dma_busy),
                     data_dma_busy.eq(sum(d.busy for d in data_dmas) != 0)]
        # A sequencer idle with nothing to do also means its command FIFO is empty.
        idle = {n: s.blocked & ~s.waiting for n, s in seqs.items()}
        complete = finished & fetch.finished & (fetch.error == 0) & ~dma_busy & \
            idle["load"] & idle["compute"] & idle["store"]
        # Fetch's own DMA may still hold prefetched instructions while fetch waits for room in
        # a full command queue: that is no progress, so it does not count against a deadlock.
        stuck = fetch.blocked & ~data_dma_busy & ~(lw.busy | cw.busy | core.busy | se.busy) & \
            seqs["load"].blocked & seqs["compute"].blocked & seqs["store"].blocked & ~complete
        stuck_for = Signal(2)
        m.d.sync += stuck_for.eq(Mux(stuck & self.busy, Mux(stuck_for == 3, 3, stuck_for + 1), 0))

        errors = [  # (code, instruction index), in priority order
            (fetch.error, fetch.error_insn),
            (rdmas[None].error, fetch.pending),  # an error response to the instruction fetch
            (lw.error, seqs["load"].index),
            (cw.error, seqs["compute"].index), (core.error, seqs["compute"].index),
            (se.error, seqs["store"].index),
            (Mux(stuck_for == 2, ErrorCode.DEADLOCK, 0), _stuck_index(m, seqs, fetch)),
        ]
        with m.If(start):
            m.d.sync += [self.busy.eq(1), self.done.eq(0), self.error.eq(0), self.error_insn.eq(0),
                         finished.eq(0)]
        with m.Elif(self.busy & stop):
            # Stopping after an error: done once the transfers in flight have been wound down.
            with m.If(~dma_busy):
                m.d.comb += clear.eq(1)
                m.d.sync += [self.busy.eq(0), self.done.eq(1)]
        with m.Elif(self.busy):
            with m.If(complete):
                m.d.comb += clear.eq(1)
                m.d.sync += [self.busy.eq(0), self.done.eq(1)]
            for code, index in reversed(errors):  # the first listed wins
                with m.If(code != 0):
                    m.d.sync += [self.error.eq(code), self.error_insn.eq(index)]
        self._counters(m, start, seqs, lw, cw, core, se, fetch)
        # Handles on the parts, for testbenches that look inside.
        self.parts = {"fetch": fetch, **{f"{k}_seq": v for k, v in seqs.items()}, "load_walker": lw,
                      "compute_walker": cw, "compute_core": core, "store_engine": se,
                      **{f"rdma_{k.name.lower() if k else 'fetch'}": v for k, v in rdmas.items()},
                      **{f"wdma_{k.name.lower()}": v for k, v in wdmas.items()}}
        return m

    # ---- pieces ---------------------------------------------------------------------------------------
    def _buffers(self, m: Module) -> dict:
        c = self.config
        mems = {}
        for mem in (MemType.UOP, MemType.INP, MemType.WGT, MemType.ACC):
            mems[mem] = m.submodules[f"{mem.name.lower()}_buf"] = memory.Memory(
                shape=elem_bits(c, mem), depth=c.depth(mem), init=[])
        wp = {mem: mems[mem].write_port() for mem in mems}
        return {
            "wp": wp,
            "uop_rp": mems[MemType.UOP].read_port(),
            "inp_rp": mems[MemType.INP].read_port(),
            "wgt_rp": mems[MemType.WGT].read_port(),
            # compute's accumulator reads see same-cycle writes (see compute.py); the store's need not.
            "acc_rp": mems[MemType.ACC].read_port(transparent_for=(wp[MemType.ACC],)),
            "acc_rp2": mems[MemType.ACC].read_port(),
        }

    def _fetch_and_sequencers(self, m: Module, start: Signal, stop: Signal, scoped: ResetInserter
                              ) -> tuple[Fetch, dict]:
        c = self.config
        fetch = Fetch(c)
        m.submodules.fetch = scoped(fetch)
        m.d.comb += [fetch.start.eq(start), fetch.insn_addr.eq(self.insn_addr), fetch.insn_count.eq(self.insn_count),
                     fetch.stop.eq(stop)]
        seqs = {}
        for name in ("load", "compute", "store"):
            s = seqs[name] = Sequencer(c)
            q = fifo.SyncFIFOBuffered(width=CmdLayout.size, depth=c.insn_queue_depth)
            m.submodules[f"{name}_seq"], m.submodules[f"{name}_fifo"] = scoped(s), scoped(q)
            src = getattr(fetch, name)
            m.d.comb += [q.w_data.eq(src.payload), q.w_en.eq(src.valid), src.ready.eq(q.w_rdy),
                         s.cmd.payload.eq(q.r_data), s.cmd.valid.eq(q.r_rdy), q.r_en.eq(s.cmd.ready),
                         s.stop.eq(stop)]
        return fetch, seqs

    def _tokens(self, m: Module, seqs: dict, start: Signal) -> None:
        for q, ((pm, pf), (cm, cf)) in _QUEUE_ENDS.items():
            # Every run starts with empty queues, as in the simulator.
            tq = m.submodules[f"tok_{q.name.lower()}"] = ResetInserter(start)(TokenQueue(self.config.token_queue_depth))
            push, pop = getattr(seqs[pm], pf), getattr(seqs[cm], cf)
            m.d.comb += [tq.push.eq(push.go), push.ok.eq(~tq.full), tq.pop.eq(pop.go), pop.ok.eq(tq.has_token)]

    def _dmas(self, m: Module, scoped: ResetInserter) -> tuple[dict, dict]:
        c = self.config
        bus = c.bus_width
        rdmas = {}
        for mem in _READ_CLIENTS:
            bits = INSN_BITS if mem is None else elem_bits(c, mem)
            name = "fetch" if mem is None else mem.name.lower()
            d = rdmas[mem] = ReadDMA(bits, bus)
            m.submodules[f"{name}_rdma"] = scoped(d)
            m.d.comb += d.dram_limit.eq(self.dram_limit)
        arb = ReadArbiter(len(_READ_CLIENTS), bus)
        m.submodules.arbiter = scoped(arb)
        for i, mem in enumerate(_READ_CLIENTS):
            wiring.connect(m, rdmas[mem].axi, getattr(arb, f"client{i}"))
        _forward(m, arb.axi, self.m_axi, read_members(bus))
        wdmas = {}
        for mem in STORE_MEMTYPES:
            d = wdmas[mem] = WriteDMA(elem_bits(c, mem), bus)
            m.submodules[f"{mem.name.lower()}_wdma"] = scoped(d)
            m.d.comb += d.dram_limit.eq(self.dram_limit)
        return rdmas, wdmas

    def _attach_walker(self, m: Module, walker: LoadWalker, mems: tuple, rdmas: dict, bufs: dict) -> None:
        for mem in mems:
            name = mem.name.lower()
            client, dma, wp = getattr(walker, f"{name}_dma"), rdmas[mem], bufs["wp"][mem]
            wiring.connect(m, client.cmd, dma.cmd)
            wiring.connect(m, dma.elem, client.elem)
            wr = getattr(walker, f"{name}_wr")
            m.d.comb += [client.error.eq(dma.error), wp.addr.eq(wr.addr), wp.data.eq(wr.data), wp.en.eq(wr.en)]

    def _write_mux(self, m: Module, wdmas: dict, store_mem: Signal) -> None:
        """Both write DMAs share the AXI write channels; the store module uses one at a time."""
        bus = self.config.bus_width
        for name, member in write_members(bus).items():
            port = getattr(self.m_axi, name)
            if member.flow == wiring.Flow.Out:
                m.d.comb += port.eq(Mux(store_mem == MemType.ACC, getattr(wdmas[MemType.ACC].axi, name),
                                        getattr(wdmas[MemType.OUT].axi, name)))
            else:
                for mem, d in wdmas.items():
                    value = port & (store_mem == mem) if name in _HANDSHAKES_IN else port
                    m.d.comb += getattr(d.axi, name).eq(value)

    def _counters(self, m: Module, start: Signal, seqs: dict, lw: LoadWalker, cw: LoadWalker,
                  core: ComputeCore, se: StoreEngine, fetch: Fetch) -> None:
        c = self.config
        k = self.counters
        events = {
            "cycles": self.busy,
            "gemm_uops": core.gemm_uop, "gemm_mac_uops": core.gemm_mac, "alu_uops": core.alu_uop,
            "pad_entries": lw.pad_write + cw.pad_write,
        }
        for name, s in seqs.items():
            events[f"{name}_insns"] = s.go
            events[f"{name}_busy"] = s.executing
            events[f"{name}_wait"] = s.waiting
        amounts = {
            "read_inp_bytes": lw.inp_data_write * c.elem_bytes(MemType.INP),
            "read_wgt_bytes": lw.wgt_data_write * c.elem_bytes(MemType.WGT),
            "read_uop_bytes": cw.uop_data_write * c.elem_bytes(MemType.UOP),
            "read_acc_bytes": cw.acc_data_write * c.elem_bytes(MemType.ACC),
            "write_out_bytes": se.out_write * c.elem_bytes(MemType.OUT),
            "write_acc_bytes": se.acc_write * c.elem_bytes(MemType.ACC),
            "fetch_bytes": fetch.dispatch * INSN_BYTES,
        }
        for name, value in {**events, **amounts}.items():
            counter = getattr(k, name)
            with m.If(start):
                m.d.sync += counter.eq(0)
            with m.Elif(self.busy):
                m.d.sync += counter.eq(counter + value)


def _stuck_index(m: Module, seqs: dict, fetch: Fetch) -> Signal:
    """For a deadlock: the oldest instruction that waits (a module's, or the one fetch cannot dispatch)."""
    best = Signal(32, init=(1 << 32) - 1, name="stuck_index")
    candidates = [(s.waiting, s.index) for s in seqs.values()] + [(~fetch.finished, fetch.pending)]
    value = best.init
    for valid, index in candidates:
        value = Mux(valid & (index < value), index, value)
    m.d.comb += best.eq(value)
    return best
