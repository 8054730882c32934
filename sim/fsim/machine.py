"""The functional simulator: fetch, three modules, four token queues.

Instructions run one at a time, each as a handful of numpy operations, in an
order the dependency tokens allow. Alongside, the timing model computes when
each would start and end on the hardware.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vta.isa import (
    DEP_QUEUES,
    INSN_BYTES,
    Config,
    EncodingError,
    Insn,
    MemType,
    Module,
    Opcode,
    Queue,
    check_insn,
    decode_insns,
    format_insn,
)

from vta.isa.spec import ErrorCode

from ..errors import BoundsError, DeadlockError, InvalidInsnError
from .compute import exec_alu, exec_gemm
from .memory import exec_load, exec_store
from .races import RaceChecker
from .state import Scratchpads
from .timing import ReadBus, TimingParams, data_start, fetch_cycles, insn_cycles, read_beats

_MODULES = tuple(Module)
_POPS = ("pop_prev", "pop_next")
_PUSHES = ("push_prev", "push_next")


@dataclass
class RunStats:
    """Counters and the timing estimate of one run."""

    config: str
    macs_per_cycle: int = 1  # the GEMM core's peak
    insns: int = 0
    insns_per_module: dict[str, int] = field(default_factory=lambda: {m.name.lower(): 0 for m in Module})
    dram_read_bytes: dict[str, int] = field(default_factory=lambda: {m: 0 for m in ("uop", "wgt", "inp", "acc")})
    dram_write_bytes: dict[str, int] = field(default_factory=lambda: {"out": 0, "acc": 0})
    insn_fetch_bytes: int = 0
    pad_entries: int = 0
    gemm_uops: int = 0
    alu_uops: int = 0
    macs: int = 0
    cycles: int = 0
    busy_cycles: dict[str, int] = field(default_factory=lambda: {m.name.lower(): 0 for m in Module})
    token_wait_cycles: dict[str, int] = field(default_factory=lambda: {m.name.lower(): 0 for m in Module})
    # (module, instruction index, start cycle, end cycle) of every instruction, by the timing model
    timeline: list[tuple[str, int, int, int]] = field(default_factory=list, repr=False)

    @property
    def gemm_utilization(self) -> float:
        """MACs done over the GEMM core's peak for the estimated cycles (reset micro-ops do no MACs)."""
        return self.macs / (self.macs_per_cycle * self.cycles) if self.cycles else 0.0

    @property
    def dram_bytes(self) -> int:
        return sum(self.dram_read_bytes.values()) + sum(self.dram_write_bytes.values()) + self.insn_fetch_bytes

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "timeline"}
        d["gemm_utilization"] = self.gemm_utilization
        d["dram_bytes"] = self.dram_bytes
        return d


class Fsim:
    """Functional simulator of one accelerator with its DRAM.

    On-chip buffers keep their contents between runs, as the hardware's do.
    ``check_races`` (on by default) raises RaceError when two modules touch a
    buffer entry without a dependency token ordering them.
    """

    def __init__(self, config: Config, dram_bytes: int = 1 << 24, timing: TimingParams | None = None,
                 check_races: bool = True) -> None:
        self.config = config
        self.dram = np.zeros(dram_bytes, np.uint8)
        self.pads = Scratchpads(config)
        self.timing = timing or TimingParams()
        self.check_races = check_races

    def run(self, insn_addr: int, insn_count: int) -> RunStats:
        """Fetch ``insn_count`` instructions at DRAM byte address ``insn_addr`` and run them to FINISH."""
        insns, bad_opcode = self._fetch(insn_addr, insn_count)
        return _Run(self, insns, insn_count, bad_opcode).go()

    def _fetch(self, addr: int, count: int) -> tuple[list[Insn], tuple[int, str] | None]:
        """Decode the stream up to its first unknown opcode (whose index and message are returned).

        Like the hardware, the run reports an invalid instruction only when fetch reaches it.
        """
        if count <= 0:
            raise InvalidInsnError("the stream is empty; it must end with FINISH", 0, ErrorCode.BAD_FINISH)
        if addr % INSN_BYTES:
            raise InvalidInsnError(f"the stream address {addr:#x} is not a multiple of {INSN_BYTES}", 0)
        end = addr + count * INSN_BYTES
        if addr < 0 or end > self.dram.size:
            raise BoundsError(f"instruction fetch [{addr:#x}, {end:#x}) of {count} instructions is outside "
                              f"DRAM ({self.dram.size:#x} bytes)", 0, ErrorCode.DRAM_BOUNDS)
        raw = self.dram[addr:end]
        try:
            return decode_insns(raw, self.config), None
        except EncodingError as e:
            assert e.index is not None
            return decode_insns(raw[: e.index * INSN_BYTES], self.config), (e.index, e.detail)


class _Run:
    """State of one run: module queues, tokens, the timing schedule and counters."""

    def __init__(self, sim: Fsim, insns: list[Insn], count: int, bad_opcode: tuple[int, str] | None) -> None:
        self.sim, self.cfg, self.insns = sim, sim.config, insns
        self.count, self.bad_opcode = count, bad_opcode
        self.mods = [insn.module for insn in insns]
        self.queue: dict[Module, deque[int]] = {m: deque() for m in _MODULES}
        self.tokens: dict[Queue, deque[tuple[int, np.ndarray | None]]] = {q: deque() for q in Queue}
        self.fetched = 0
        self.stats = RunStats(self.cfg.name, self.cfg.macs_per_cycle, insns=len(insns))
        # Timing state.
        self.fetch_t = sim.timing.dram_latency + sim.timing.fetch_start
        self.fetch_cost = fetch_cycles(self.cfg, sim.timing)
        self.dispatch_t = [0] * len(insns)
        self.free_t = {m: 0 for m in _MODULES}
        self.starts: dict[Module, list[int]] = {m: [] for m in _MODULES}
        self.dispatched = {m: 0 for m in _MODULES}
        self.races = RaceChecker(self.cfg) if sim.check_races else None
        self.read_bus = ReadBus()

    def go(self) -> RunStats:
        n = self.count
        while True:
            progress = self._fetch_some()
            for m in _MODULES:
                while self.queue[m] and self._try_execute(m):
                    progress = True
            if self.fetched == n and not any(self.queue.values()):
                break
            if not progress:
                raise DeadlockError(self._deadlock_report(), self._oldest_waiting())
        self.stats.cycles = max(self.free_t.values()) + self.sim.timing.finish_tail
        self.stats.insn_fetch_bytes = n * INSN_BYTES
        return self.stats

    # -- fetch -------------------------------------------------------------
    def _fetch_some(self) -> bool:
        depth = self.cfg.insn_queue_depth
        progress = False
        while self.fetched < self.count:
            k = self.fetched
            self._check(k)
            m = self.mods[k]
            if len(self.queue[m]) >= depth:
                break
            t = self.fetch_t + self.fetch_cost
            c = self.dispatched[m]
            if c >= depth:  # the slot frees when the instruction `depth` earlier in this queue starts
                t = max(t, self.starts[m][c - depth])
            self.fetch_t = self.dispatch_t[k] = t
            self.dispatched[m] += 1
            self.queue[m].append(k)
            self.fetched += 1
            progress = True
        return progress

    def _check(self, k: int) -> None:
        """The static rules, checked as fetch reaches instruction ``k`` (as the hardware does)."""
        if self.bad_opcode is not None and k == self.bad_opcode[0]:
            raise InvalidInsnError(self.bad_opcode[1], k, ErrorCode.BAD_OPCODE)
        insn = self.insns[k]
        why = check_insn(insn, self.cfg)
        if why:
            raise InvalidInsnError(f"{why}: {format_insn(insn)}", k)
        last = k == self.count - 1
        if insn.opcode == Opcode.FINISH and not last:
            raise InvalidInsnError("FINISH before the end of the stream", k, ErrorCode.BAD_FINISH)
        if last and insn.opcode != Opcode.FINISH:
            raise InvalidInsnError("the stream does not end with FINISH", k, ErrorCode.BAD_FINISH)

    # -- execute -----------------------------------------------------------
    def _try_execute(self, m: Module) -> bool:
        k = self.queue[m][0]
        insn = self.insns[k]
        flags = insn.fields()
        pops = [DEP_QUEUES[m][f] for f in _POPS if flags[f]]
        pushes = [DEP_QUEUES[m][f] for f in _PUSHES if flags[f]]
        if any(not self.tokens[q] for q in pops):
            return False
        if any(len(self.tokens[q]) >= self.cfg.token_queue_depth for q in pushes):
            return False
        self.queue[m].popleft()
        ready = max(self.free_t[m], self.dispatch_t[k])
        token_t = ready
        if self.races:
            self.races.begin(m)
        for q in pops:
            t, vc = self.tokens[q].popleft()
            token_t = max(token_t, t)
            if self.races and vc is not None:
                self.races.merge(m, vc)
        self.stats.token_wait_cycles[m.name.lower()] += token_t - ready
        self._execute(k, insn, m)
        cost = insn_cycles(insn, self.cfg, self.sim.timing)
        beats = read_beats(insn, self.cfg)
        if beats:  # the transfer may wait for the read channel, shared with the other module's loads
            first = token_t + data_start(self.sim.timing)
            cost = max(cost, self.read_bus.reserve(first, beats) - token_t)
        self.starts[m].append(token_t)
        self.free_t[m] = token_t + cost
        self.stats.timeline.append((m.name.lower(), k, token_t, token_t + cost))
        self.stats.busy_cycles[m.name.lower()] += cost
        self.stats.insns_per_module[m.name.lower()] += 1
        clock = self.races.clock[m].copy() if self.races else None
        for q in pushes:
            self.tokens[q].append((self.free_t[m], clock))
        return True

    def _describe(self, k: int) -> str:
        return format_insn(self.insns[k])

    def _execute(self, k: int, insn: Insn, m: Module) -> None:
        sim, cfg, st, rc = self.sim, self.cfg, self.stats, self.races
        op = insn.opcode
        if op == Opcode.LOAD:
            mem = MemType(insn.memory_type)
            nbytes, pad = exec_load(insn, k, sim.pads, sim.dram, cfg)
            st.dram_read_bytes[mem.name.lower()] += nbytes
            st.pad_entries += pad
            if rc and insn.x_size and insn.y_size:
                rows = insn.y_pad_top + insn.y_size + insn.y_pad_bottom
                cols = insn.x_pad_left + insn.x_size + insn.x_pad_right
                rc.access(m, mem, slice(insn.sram_base, insn.sram_base + rows * cols), True, k, self._describe)
        elif op == Opcode.STORE:
            st.dram_write_bytes[MemType(insn.memory_type).name.lower()] += exec_store(insn, k, sim.pads, sim.dram, cfg)
            if rc and insn.x_size and insn.y_size:
                n = insn.x_size * insn.y_size
                rc.access(m, MemType.ACC, slice(insn.sram_base, insn.sram_base + n), False, k, self._describe)
        elif op == Opcode.GEMM:
            t = exec_gemm(insn, k, sim.pads, cfg)
            st.gemm_uops += t.dst.size
            if not insn.reset:
                st.macs += t.dst.size * cfg.macs_per_cycle
            if rc and t.dst.size:
                if not insn.reset:
                    rc.access(m, MemType.INP, t.src, False, k, self._describe)
                    assert t.wgt is not None
                    rc.access(m, MemType.WGT, t.wgt, False, k, self._describe)
                rc.access(m, MemType.ACC, t.dst, True, k, self._describe)
        elif op == Opcode.ALU:
            t = exec_alu(insn, k, sim.pads, cfg)
            st.alu_uops += t.dst.size
            if rc and t.dst.size:
                rc.access(m, MemType.ACC, t.dst, True, k, self._describe)

    # -- deadlock ----------------------------------------------------------
    def _oldest_waiting(self) -> int:
        """The index the hardware reports with DEADLOCK: the oldest instruction that waits."""
        heads = [self.queue[m][0] for m in _MODULES if self.queue[m]]
        if self.fetched < self.count:
            heads.append(self.fetched)
        return min(heads)

    def _deadlock_report(self) -> str:
        lines = ["deadlock: no module can proceed"]
        for m in _MODULES:
            name = m.name.lower()
            if not self.queue[m]:
                lines.append(f"  {name}: idle")
                continue
            k = self.queue[m][0]
            insn = self.insns[k]
            waits = []
            for f in _POPS:
                q = DEP_QUEUES[m][f]
                if insn.fields()[f] and q is not None and not self.tokens[q]:
                    waits.append(f"a token from {q.src.name.lower()} ({q.name} is empty)")
            for f in _PUSHES:
                q = DEP_QUEUES[m][f]
                if insn.fields()[f] and q is not None and len(self.tokens[q]) >= self.cfg.token_queue_depth:
                    waits.append(f"room in {q.name} (full at {self.cfg.token_queue_depth})")
            lines.append(f"  {name}: instruction {k} `{format_insn(insn)}` waits for {' and '.join(waits)}")
        if self.fetched < self.count:
            k = self.fetched
            lines.append(f"  fetch: instruction {k} `{format_insn(self.insns[k])}` waits for room in the "
                         f"{self.mods[k].name.lower()} command queue (depth {self.cfg.insn_queue_depth})")
        lines.append("  tokens: " + ", ".join(f"{q.name}={len(self.tokens[q])}" for q in Queue))
        return "\n".join(lines)
