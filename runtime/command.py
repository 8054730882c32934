"""The command-queue builder: emit LOAD/STORE/GEMM/ALU/FINISH with dependency
tokens between modules, record micro-kernels with up to two affine loops, and
keep kernels resident in the uop buffer across instructions and runs.

Dependency tokens follow the VTA runtime's discipline: ``dep_push(a, b)``
sets the push flag on the last instruction issued to module ``a``;
``dep_pop(a, b)`` sets the pop flag on the next instruction issued to module
``b``. Where no instruction carries the flag, an empty instruction of that
module is inserted.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from typing import Hashable, Iterator

import numpy as np

from vta.isa import AluOp, Insn, MemType, Module, Opcode, encode_insns, encode_uops
from vta.isa.errors import VTAError
from vta.sim.fsim import RunStats

from .device import Buffer, Device


@dataclass(frozen=True)
class Loop:
    """One affine uop loop: extent and the index step of dst, src and wgt per iteration."""

    extent: int
    dst: int = 0
    src: int = 0
    wgt: int = 0


@dataclass(frozen=True)
class UopKernel:
    """Micro-ops (rows of dst, src, wgt) run inside up to two loops (outermost first)."""

    uops: tuple[tuple[int, int, int], ...]
    loops: tuple[Loop, ...] = ()
    signature: Hashable = None

    def __post_init__(self) -> None:
        if not self.uops:
            raise VTAError("a micro-kernel needs at least one micro-op")
        if len(self.loops) > 2:
            raise VTAError(f"a micro-kernel has at most two loops, got {len(self.loops)}")
        if self.signature is None:
            digest = hashlib.sha1(repr((self.uops, self.loops)).encode()).hexdigest()
            object.__setattr__(self, "signature", ("auto", digest))

    @property
    def iters(self) -> tuple[Loop, Loop]:
        """(outer, inner) loops, padded with extent-1 loops."""
        ls = (Loop(1),) * (2 - len(self.loops)) + self.loops
        return ls[0], ls[1]


class KernelRecorder:
    """Records a micro-kernel: ``with rec.loop(n, dst=.., src=..):`` nests loops, ``rec.uop(d, s, w)`` adds
    micro-ops (all at the innermost level)."""

    def __init__(self) -> None:
        self._loops: list[Loop] = []
        self._open = 0
        self._uops: list[tuple[int, int, int]] = []
        self._uop_depth: int | None = None

    @contextlib.contextmanager
    def loop(self, extent: int, dst: int = 0, src: int = 0, wgt: int = 0) -> Iterator[None]:
        if self._uops:
            raise VTAError("loops must be opened before the micro-ops they contain")
        if len(self._loops) == 2:
            raise VTAError("a micro-kernel has at most two loops")
        self._loops.append(Loop(extent, dst, src, wgt))
        self._open += 1
        yield
        self._open -= 1

    def uop(self, dst: int, src: int = 0, wgt: int = 0) -> None:
        if self._open != len(self._loops):
            raise VTAError("micro-ops must be inside every loop of the kernel")
        self._uops.append((dst, src, wgt))

    def kernel(self, signature: Hashable = None) -> UopKernel:
        return UopKernel(tuple(self._uops), tuple(self._loops), signature)


@dataclass
class _Resident:
    dram: Buffer
    offset: int | None  # uop buffer offset while resident


@dataclass
class CommandQueue:
    """Builds an instruction stream for a device and runs it.

    Example::

        cq = CommandQueue(dev)
        cq.load(MemType.INP, 0, a_buf, 0, y=1, x=16)
        cq.dep_push(Module.LOAD, Module.COMPUTE); cq.dep_pop(Module.LOAD, Module.COMPUTE)
        cq.gemm(kernel)
        ...
        stats = cq.run()
    """

    device: Device
    insns: list[Insn] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config = self.device.config
        self._last: dict[Module, Insn | None] = {m: None for m in Module}
        self._pending_pop: dict[Module, set[str]] = {m: set() for m in Module}
        self._kernels: dict[Hashable, _Resident] = {}
        self._uop_top = 0  # next free uop buffer entry
        self.uop_loads = 0

    # ---- emitting --------------------------------------------------------
    def _emit(self, insn: Insn) -> Insn:
        m = insn.module
        for flag in self._pending_pop[m]:
            setattr(insn, flag, 1)
        self._pending_pop[m].clear()
        self.insns.append(insn)
        self._last[m] = insn
        return insn

    def load(self, mem: MemType, sram: int, buf: Buffer, offset: int, y: int, x: int, stride: int | None = None,
             pad: tuple[int, int, int, int] = (0, 0, 0, 0), pad_value: int = 0) -> Insn:
        """LOAD ``y`` rows of ``x`` elements from ``buf`` (element ``offset``, row stride ``stride``)."""
        return self._emit(Insn.load(mem, sram, buf.elem(mem, offset), y, x, stride, pad, pad_value))

    def store(self, sram: int, buf: Buffer, offset: int, y: int, x: int, stride: int | None = None,
              mem: MemType = MemType.OUT) -> Insn:
        """STORE ``y`` rows of ``x`` accumulator entries from ``sram`` to ``buf``."""
        return self._emit(Insn.store(sram, buf.elem(mem, offset), y, x, stride, mem))

    def gemm(self, kernel: UopKernel, reset: bool = False) -> Insn:
        base = self._resident(kernel)
        o, i = kernel.iters
        return self._emit(Insn.gemm(base, base + len(kernel.uops), o.extent, i.extent, (o.dst, i.dst),
                                    (o.src, i.src), (o.wgt, i.wgt), reset))

    def alu(self, kernel: UopKernel, op: AluOp, imm: int | None = None) -> Insn:
        base = self._resident(kernel)
        o, i = kernel.iters
        return self._emit(Insn.alu(op, base, base + len(kernel.uops), o.extent, i.extent, (o.dst, i.dst),
                                   (o.src, i.src), imm))

    # ---- dependencies ----------------------------------------------------
    @staticmethod
    def _side(a: Module, b: Module) -> str:
        if abs(int(a) - int(b)) != 1:
            raise VTAError(f"no token queue between {a.name.lower()} and {b.name.lower()}")
        return "next" if int(b) > int(a) else "prev"

    def dep_push(self, src: Module, dst: Module) -> None:
        """Module ``src`` gives a token to ``dst`` when its last instruction so far completes."""
        flag = f"push_{self._side(src, dst)}"
        last = self._last[src]
        if last is None or getattr(last, flag):
            last = self._emit(self._nop(src))
        setattr(last, flag, 1)

    def dep_pop(self, src: Module, dst: Module) -> None:
        """Module ``dst``'s next instruction waits for a token from ``src``."""
        flag = f"pop_{self._side(dst, src)}"
        if flag in self._pending_pop[dst]:
            self._emit(self._nop(dst))
        self._pending_pop[dst].add(flag)

    def _nop(self, m: Module) -> Insn:
        if m == Module.LOAD:
            return Insn.load(MemType.INP, 0, 0, 0, 0)
        if m == Module.STORE:
            return Insn.store(0, 0, 0, 0)
        return Insn.gemm(0, 0)

    # ---- kernels ---------------------------------------------------------
    def _resident(self, kernel: UopKernel) -> int:
        """The uop buffer offset of ``kernel``, emitting a uop LOAD if it is not resident."""
        n = len(kernel.uops)
        depth = self.config.uop_depth
        if n > depth:
            raise VTAError(f"micro-kernel of {n} micro-ops exceeds the uop buffer ({depth} entries)")
        entry = self._kernels.get(kernel.signature)
        if entry is None:
            u = np.asarray(kernel.uops, np.int64)
            raw = encode_uops(u[:, 0], u[:, 1], u[:, 2], self.config).reshape(-1)
            buf = self.device.alloc(raw.size)
            buf.write(raw)
            entry = self._kernels[kernel.signature] = _Resident(buf, None)
        if entry.offset is None:
            if self._uop_top + n > depth:  # full: evict everything, start again at 0
                for e in self._kernels.values():
                    e.offset = None
                self._uop_top = 0
            entry.offset = self._uop_top
            self._uop_top += n
            self._emit(Insn.load(MemType.UOP, entry.offset, entry.dram.elem(MemType.UOP), 1, n))
            self.uop_loads += 1
        return entry.offset

    def invalidate_kernels(self) -> None:
        """Forget which kernels are resident (after something else used the uop buffer)."""
        for e in self._kernels.values():
            e.offset = None
        self._uop_top = 0

    # ---- finishing and running -------------------------------------------
    def finish(self) -> list[Insn]:
        """Close the stream with FINISH (flushing pending pops) and return it."""
        for m in Module:
            if self._pending_pop[m] and m != Module.COMPUTE:
                self._emit(self._nop(m))
        self._emit(Insn(Opcode.FINISH))
        return self.insns

    def run(self) -> RunStats:
        """Finish the stream, run it on the device and start a new stream."""
        insns = self.finish()
        raw = encode_insns(insns, self.config).reshape(-1)
        buf = self.device.alloc(raw.size)
        try:
            buf.write(raw)
            self.device.run(buf, len(insns))
            return self.device.synchronize()
        except BaseException:
            # The stream stopped part way: its uop loads may not have run, so nothing is known resident.
            self.invalidate_kernels()
            raise
        finally:
            self.device.free(buf)
            self.insns = []
            self._last = {m: None for m in Module}
            self._pending_pop = {m: set() for m in Module}

    def close(self) -> None:
        """Free the device memory holding kernels."""
        for e in self._kernels.values():
            self.device.free(e.dram)
        self._kernels.clear()
