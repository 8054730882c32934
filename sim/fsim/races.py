"""Race detection: every pair of accesses to the same on-chip buffer entry by
two different modules, at least one a write, must be ordered by dependency
tokens. Otherwise the result depends on timing, and the simulator (which runs
modules one instruction at a time) could disagree with the hardware.

Happens-before is tracked with vector clocks: each module counts its
instructions; a token carries its pusher's clock and a pop merges it.
"""

from __future__ import annotations

import numpy as np

from vta.isa import Config, MemType, Module

from ..errors import RaceError

_TRACKED = (MemType.INP, MemType.WGT, MemType.ACC)  # buffers two modules share


def _distinct(idx: np.ndarray | slice) -> np.ndarray | slice:
    """The entries an index array touches, once each (a slice when they are contiguous).

    An entry's race state depends only on whether an instruction touched it, so
    micro-op executions that revisit entries need checking once."""
    if isinstance(idx, slice) or idx.size == 0:
        return idx
    lo = int(idx.min())
    touched = np.bincount(idx - lo)
    if touched.all():
        return slice(lo, lo + len(touched))
    return np.flatnonzero(touched) + lo


class RaceChecker:
    def __init__(self, config: Config) -> None:
        self.clock = np.zeros((3, 3), np.int64)  # clock[m]: what module m has seen of each module
        self.w_mod = {m: np.full(config.depth(m), -1, np.int8) for m in _TRACKED}
        self.w_evt = {m: np.zeros(config.depth(m), np.int64) for m in _TRACKED}
        self.w_insn = {m: np.full(config.depth(m), -1, np.int64) for m in _TRACKED}
        self.r_evt = {m: np.zeros((config.depth(m), 3), np.int64) for m in _TRACKED}
        self.r_insn = {m: np.full((config.depth(m), 3), -1, np.int64) for m in _TRACKED}

    # -- clocks ------------------------------------------------------------
    def begin(self, module: Module) -> np.ndarray:
        """Start an instruction on ``module``; returns the clock a token pushed at its end carries."""
        self.clock[module, module] += 1
        return self.clock[module]

    def merge(self, module: Module, token_clock: np.ndarray) -> None:
        np.maximum(self.clock[module], token_clock, out=self.clock[module])

    # -- accesses ----------------------------------------------------------
    def access(self, module: Module, mem: MemType, idx: np.ndarray | slice, write: bool, insn: int,
               describe: callable) -> None:
        """Record that instruction ``insn`` on ``module`` reads or writes entries ``idx`` of ``mem``."""
        if mem not in self.w_mod:
            return
        idx = _distinct(idx)
        seen = self.clock[module]
        wm = self.w_mod[mem][idx]
        prior = np.where(wm >= 0, self.w_evt[mem][idx], 0)
        unordered = (wm >= 0) & (wm != module) & (prior > seen[np.maximum(wm, 0)])
        if np.any(unordered):
            k = int(np.flatnonzero(unordered)[0])
            other = int(np.atleast_1d(self.w_insn[mem][idx])[k])
            self._fail(module, mem, idx, k, insn, other, "wrote", write, describe)
        if write:
            reads = self.r_evt[mem][idx]
            late = (reads > seen[None, :]) & (np.arange(3)[None, :] != module)
            if np.any(late):
                k, who = (int(x) for x in np.argwhere(late)[0])
                other = int(np.atleast_2d(self.r_insn[mem][idx])[k, who])
                self._fail(module, mem, idx, k, insn, other, "read", write, describe)
            self.w_mod[mem][idx] = module
            self.w_evt[mem][idx] = seen[module]
            self.w_insn[mem][idx] = insn
            self.r_evt[mem][idx] = 0
        else:
            self.r_evt[mem][idx, module] = seen[module]
            self.r_insn[mem][idx, module] = insn

    def _fail(self, module: Module, mem: MemType, idx: np.ndarray | slice, k: int, insn: int, other: int,
              verb: str, write: bool, describe: callable) -> None:
        entry = (idx.start + k) if isinstance(idx, slice) else int(np.asarray(idx).reshape(-1)[k])
        raise RaceError(
            f"{'writes' if write else 'reads'} {mem.name} entry {entry} ({describe(insn)}), which instruction "
            f"{other} ({describe(other)}) {verb} with no dependency token ordering the two; add a "
            f"push/pop pair between the {Module(module).name.lower()} module and the other module",
            insn)
