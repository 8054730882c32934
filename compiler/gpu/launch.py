"""What a GPU kernel is in the loop IR, and how it is launched.

Each root statement (stage) of a function is one kernel. Its loops bound to ``blockIdx.*``
are the outermost loops of the stage, directly nested, each axis at most once: their
extents are the grid. Loops bound to ``threadIdx.*`` may appear anywhere below them, as
often as the stage likes (the cooperative copy of a tile, then the compute on it, then
its write-out are three loops bound to ``threadIdx.x``), but never one inside another of
the same axis; the block's extent on an axis is the largest extent of a loop bound to it.
`launch_of` checks this and derives the `Launch`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vta.compiler.cpu.codegen import CodegenError
from vta.compiler.tir.expr import IntImm
from vta.compiler.tir.stmt import For, Stmt
from vta.compiler.tir.transform import stmt_children

BLOCK_AXES = ("blockIdx.x", "blockIdx.y", "blockIdx.z")
THREAD_AXES = ("threadIdx.x", "threadIdx.y", "threadIdx.z")
MAX_GRID = (2**31 - 1, 65535, 65535)
MAX_BLOCK = (1024, 1024, 64)
MAX_THREADS = 1024  # threads per block
WARP = 32  # threads of a warp


@dataclass(frozen=True)
class Launch:
    """Grid and block dimensions (x, y, z) of one kernel."""

    grid: tuple[int, int, int]
    block: tuple[int, int, int]

    @property
    def threads(self) -> int:
        """Threads per block."""
        return math.prod(self.block)

    def extent(self, axis: str) -> int:
        """The launch extent of ``axis`` (``blockIdx.y``, ``threadIdx.x``, ...)."""
        dims = self.grid if axis.startswith("blockIdx") else self.block
        return dims["xyz".index(axis[-1])]

    def active(self) -> tuple[str, ...]:
        """The axes with more than one index (the ones a block not bound to them must be guarded on)."""
        return tuple(a for a in (*BLOCK_AXES, *THREAD_AXES) if self.extent(a) > 1)


def launch_of(stage: Stmt, where: str) -> Launch:
    """The launch of the kernel ``stage`` (``where`` names it in errors); `CodegenError` when
    the stage's loops are not a kernel (see the module docstring)."""
    grid = [1, 1, 1]
    s = stage
    seen: set[str] = set()
    while isinstance(s, For) and s.kind == "thread_binding" and s.thread in BLOCK_AXES:
        if s.thread in seen:
            raise CodegenError(f"{where}: {s.thread} is bound twice in its outer loops")
        seen.add(s.thread)
        grid["xyz".index(s.thread[-1])] = _extent(s, where)
        s = s.body
    block = [1, 1, 1]
    _threads(s, where, set(), block)
    if not seen and block == [1, 1, 1]:
        raise CodegenError(f"{where} has no loop bound to blockIdx or threadIdx: it would run on one GPU thread; "
                           "bind its loops (vta.compiler.gpu.default_schedule does)")
    for axis, n, cap in zip("xyz", grid, MAX_GRID):
        if n > cap:
            raise CodegenError(f"{where}: blockIdx.{axis} extent {n} exceeds the grid limit {cap}")
    for axis, n, cap in zip("xyz", block, MAX_BLOCK):
        if n > cap:
            raise CodegenError(f"{where}: threadIdx.{axis} extent {n} exceeds the block limit {cap}")
    if math.prod(block) > MAX_THREADS:
        raise CodegenError(f"{where}: {math.prod(block)} threads per block (block {tuple(block)}) exceed "
                           f"{MAX_THREADS}")
    return Launch((grid[0], grid[1], grid[2]), (block[0], block[1], block[2]))


def _extent(s: For, where: str) -> int:
    if not isinstance(s.extent, IntImm):
        raise CodegenError(f"{where}: loop {s.var.name} bound to {s.thread} has a non-constant extent {s.extent}")
    return s.extent.value


def _threads(s: Stmt, where: str, around: set[str], block: list[int]) -> None:
    if isinstance(s, For):
        if s.kind == "parallel":
            raise CodegenError(f"{where}: loop {s.var.name} is 'parallel' (CPU threads); on the GPU bind it to "
                               "blockIdx/threadIdx")
        if s.kind == "thread_binding":
            if s.thread == "vthread":
                raise CodegenError(f"{where}: loop {s.var.name} is bound to vthread, which the GPU backend does "
                                   "not lower yet")
            if s.thread in BLOCK_AXES:
                raise CodegenError(f"{where}: loop {s.var.name} is bound to {s.thread} but is not one of the "
                                   "stage's outermost loops (a kernel's block loops enclose everything in it)")
            if s.thread in around:
                raise CodegenError(f"{where}: loop {s.var.name} is bound to {s.thread} inside another loop bound to "
                                   f"{s.thread}")
            d = "xyz".index(s.thread[-1])  # type: ignore[index]
            block[d] = max(block[d], _extent(s, where))
            _threads(s.body, where, around | {s.thread}, block)  # type: ignore[operator]
            return
    for x in stmt_children(s):
        _threads(x, where, around, block)


__all__ = ["BLOCK_AXES", "MAX_THREADS", "THREAD_AXES", "Launch", "launch_of"]
