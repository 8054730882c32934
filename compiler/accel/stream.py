"""The instruction stream a lowering emits: dependency tokens inserted from the scratchpad
ranges each instruction touches, and micro-kernels kept resident in the uop buffer.

Tokens. Every instruction carries its footprint (buffer, entry range, read or write).
Before an instruction of module ``m`` is appended, its footprint is checked against the
instructions of each neighbouring module issued since that module last gave ``m`` a
token; on a conflict (same buffer, overlapping entries, one of them writing) the
neighbour's latest instruction pushes a token and the new instruction pops it. Pushes
and pops are paired in stream order, so each pop takes exactly the token meant for it,
and instructions that touch disjoint entries (the other slot of a double buffer) are
left free to overlap.

Micro-kernels. A kernel is its tuple of micro-ops; the distinct kernels of a program
form one uop image in DRAM. A kernel is loaded into the uop buffer on first use and
stays resident until the buffer is full, when everything is evicted.
"""

from __future__ import annotations

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
        self._pending: dict[tuple[Module, Module], list[Footprint]] = {
            (a, b): [] for a in Module for b in _NEIGHBOURS[a]}
        self._last: dict[Module, Insn | None] = dict.fromkeys(Module)
        self._resident: dict[bytes, int] = {}
        self._uop_top = 0
        self._image_size = 0
        self.uop_refs: list[tuple[int, int]] = []  # (instruction index, kernel image offset) of each uop LOAD

    # ---- emitting with tokens ---------------------------------------------------------
    def emit(self, insn: Insn, footprint: Footprint = ()) -> Insn:
        m = insn.module
        for n in _NEIGHBOURS[m]:
            pend = self._pending[(n, m)]
            if footprint and any(_conflict(footprint, f) for f in pend):
                self._sync(n, m, insn)
        self.insns.append(insn)
        self._last[m] = insn
        for n in _NEIGHBOURS[m]:
            if footprint:
                self._pending[(m, n)].append(footprint)
        return insn

    def _sync(self, frm: Module, to: Module, insn: Insn) -> None:
        """``frm``'s latest instruction pushes a token that ``insn`` (on ``to``) pops."""
        flag = f"push_{_side(frm, to)}"
        last = self._last[frm]
        if last is None or getattr(last, flag):
            last = self._nop(frm)
            self.insns.append(last)
            self._last[frm] = last
        setattr(last, flag, 1)
        setattr(insn, f"pop_{_side(to, frm)}", 1)
        self._pending[(frm, to)].clear()
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
        if self._pending[(Module.STORE, Module.COMPUTE)]:
            self._sync(Module.STORE, Module.COMPUTE, fin)
        self.insns.append(fin)
        return self.insns

    def uop_image(self) -> np.ndarray:
        return np.concatenate(self.image) if self.image else np.zeros((0, 3), np.int64)
