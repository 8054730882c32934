"""The instruction stream a lowering emits: dependency tokens inserted from the scratchpad
ranges each instruction touches, and micro-kernels kept resident in the uop buffer.

Tokens. Every instruction carries its footprint (buffer, entry range, read or write).
Before an instruction of module ``m`` is appended, its footprint is checked against the
instructions of each neighbouring module not yet ordered before ``m``'s next
instruction; on a conflict (same buffer, overlapping entries, one of them writing) the
last conflicting instruction pushes a token, which the new instruction pops. The push
goes on the earliest instruction that is both at or after the conflict and after the
queue's previous push, so pushes and pops pair up in stream order (each pop takes the
token meant for it) and the producer signals as early as it can: with two slots, the
load of tile i+1 waits only for the GEMMs that read its slot two tiles ago.

Micro-kernels. A kernel is its tuple of micro-ops; the distinct kernels of a program
form one uop image in DRAM. A kernel is loaded into the uop buffer on first use and
stays resident until the buffer is full, when everything is evicted.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from vta.isa import Config, Insn, MemType, Module, Opcode

Footprint = tuple[tuple[MemType, int, int, bool], ...]  # (buffer, first entry, end entry, writes)

_NEIGHBOURS = {Module.LOAD: (Module.COMPUTE,), Module.COMPUTE: (Module.LOAD, Module.STORE),
               Module.STORE: (Module.COMPUTE,)}


def _conflict(a: Footprint, b: Footprint) -> bool:
    return any(ma == mb and (wa or wb) and lo_a < hi_b and lo_b < hi_a
               for ma, lo_a, hi_a, wa in a for mb, lo_b, hi_b, wb in b)


def _side(frm: Module, to: Module) -> str:
    return "next" if int(to) > int(frm) else "prev"


@dataclass
class Kernel:
    """A micro-kernel: rows of (dst, src, wgt), and where it sits in the uop image."""

    uops: np.ndarray
    image_offset: int


@dataclass
class Stream:
    """Instructions of one program under construction."""

    config: Config
    insns: list[Insn] = field(default_factory=list)
    kernels: dict[bytes, Kernel] = field(default_factory=dict)
    image: list[np.ndarray] = field(default_factory=list)  # uop image, in kernel order
    syncs: int = 0
    uop_loads: int = 0

    def __post_init__(self) -> None:
        self._pending: dict[tuple[Module, Module], list[tuple[int, Footprint]]] = {
            (a, b): [] for a in Module for b in _NEIGHBOURS[a]}
        self._last_push: dict[tuple[Module, Module], int] = {q: -1 for q in self._pending}
        self._of_module: dict[Module, list[int]] = {m: [] for m in Module}  # stream indices per module
        self._resident: dict[bytes, int] = {}
        self._uop_top = 0
        self._image_size = 0
        self.uop_refs: list[tuple[int, int]] = []  # (instruction index, kernel image offset) of each uop LOAD

    # ---- emitting with tokens ---------------------------------------------------------
    def emit(self, insn: Insn, footprint: Footprint = ()) -> Insn:
        m = insn.module
        for n in _NEIGHBOURS[m]:
            hits = [i for i, f in self._pending[(n, m)] if footprint and _conflict(footprint, f)]
            if hits:
                self._sync(n, m, insn, max(hits))
        self._append(insn)
        for n in _NEIGHBOURS[m]:
            if footprint:
                self._pending[(m, n)].append((len(self.insns) - 1, footprint))
        return insn

    def _append(self, insn: Insn) -> None:
        self._of_module[insn.module].append(len(self.insns))
        self.insns.append(insn)

    def _sync(self, frm: Module, to: Module, insn: Insn, after: int) -> None:
        """An instruction of ``frm`` at or after stream index ``after`` pushes a token that
        ``insn`` (on ``to``) pops."""
        q = (frm, to)
        own = self._of_module[frm]
        at = bisect.bisect_left(own, max(after, self._last_push[q] + 1))
        if at < len(own):
            idx = own[at]
        else:
            idx = len(self.insns)
            self._append(self._nop(frm))
        setattr(self.insns[idx], f"push_{_side(frm, to)}", 1)
        setattr(insn, f"pop_{_side(to, frm)}", 1)
        self._last_push[q] = idx
        self._pending[q] = [(i, f) for i, f in self._pending[q] if i > idx]
        self.syncs += 1

    @staticmethod
    def _nop(m: Module) -> Insn:
        if m == Module.LOAD:
            return Insn.load(MemType.INP, 0, 0, 0, 0)
        if m == Module.STORE:
            return Insn.store(0, 0, 0, 0)
        return Insn.gemm(0, 0)

    # ---- micro-kernels ----------------------------------------------------------------
    def kernel_base(self, uops: np.ndarray) -> int:
        """The uop buffer offset of the kernel ``uops``, loading it there if it is not resident."""
        n = len(uops)
        depth = self.config.uop_depth
        if n > depth:
            raise ValueError(f"a micro-kernel of {n} micro-ops does not fit the uop buffer ({depth} entries)")
        key = uops.astype(np.int64).tobytes()
        k = self.kernels.get(key)
        if k is None:
            k = self.kernels[key] = Kernel(uops.astype(np.int64), self._image_size)
            self.image.append(k.uops)
            self._image_size += n
        base = self._resident.get(key)
        if base is None:
            if self._uop_top + n > depth:  # full: evict everything
                self._resident.clear()
                self._uop_top = 0
            base = self._resident[key] = self._uop_top
            self._uop_top += n
            self.uop_refs.append((len(self.insns), k.image_offset))
            self.emit(Insn.load(MemType.UOP, base, k.image_offset, 1, n))  # dram_base relocated later
            self.uop_loads += 1
        return base

    # ---- closing ------------------------------------------------------------------------
    def finish(self) -> list[Insn]:
        """Close with FINISH, after every store has completed."""
        fin = Insn(Opcode.FINISH)
        pend = self._pending[(Module.STORE, Module.COMPUTE)]
        if pend:
            self._sync(Module.STORE, Module.COMPUTE, fin, pend[-1][0])
        self._append(fin)
        return self.insns

    def uop_image(self) -> np.ndarray:
        return np.concatenate(self.image) if self.image else np.zeros((0, 3), np.int64)
