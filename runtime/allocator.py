"""A first-fit allocator of DRAM physical addresses with alignment."""

from __future__ import annotations

import bisect

from vta.isa.errors import VTAError


class AllocError(VTAError, MemoryError):
    """Out of device memory, or a bad free/reserve."""


class DramAllocator:
    """Hands out aligned [addr, addr + nbytes) ranges of a DRAM of ``size`` bytes.

    Free ranges are kept sorted and coalesced, so fragmentation stays bounded
    by what the caller frees.
    """

    def __init__(self, size: int, align: int = 64) -> None:
        if size <= 0 or align <= 0 or align & (align - 1):
            raise ValueError("size must be positive and align a power of two")
        self.size = size
        self.align = align
        self._free: list[tuple[int, int]] = [(0, size)]  # sorted, disjoint, coalesced
        self._live: dict[int, int] = {}

    @property
    def used_bytes(self) -> int:
        return sum(self._live.values())

    def alloc(self, nbytes: int, align: int | None = None) -> int:
        """Reserve ``nbytes`` at an address aligned to ``align`` (default: the allocator's)."""
        align = align or self.align
        if nbytes <= 0:
            raise AllocError(f"allocation of {nbytes} bytes")
        if align & (align - 1):
            raise AllocError(f"alignment {align} is not a power of two")
        for start, end in self._free:
            addr = -(-start // align) * align
            if addr + nbytes <= end:
                self._take(addr, nbytes)
                return addr
        largest = max((e - s for s, e in self._free), default=0)
        raise AllocError(f"out of DRAM: {nbytes} bytes (aligned to {align}) requested, {self.size - self.used_bytes}"
                         f" of {self.size} free, largest free range {largest}")

    def reserve(self, addr: int, nbytes: int) -> None:
        """Take the exact range [addr, addr + nbytes), which must be free."""
        if nbytes <= 0:
            return
        for start, end in self._free:
            if start <= addr and addr + nbytes <= end:
                self._take(addr, nbytes)
                return
        raise AllocError(f"DRAM range [{addr:#x}, {addr + nbytes:#x}) is not free (DRAM is {self.size:#x} bytes)")

    def free(self, addr: int) -> None:
        nbytes = self._live.pop(addr, None)
        if nbytes is None:
            raise AllocError(f"free of {addr:#x}, which is not an allocated address")
        i = bisect.bisect(self._free, (addr, addr))
        self._free.insert(i, (addr, addr + nbytes))
        merged: list[tuple[int, int]] = []
        for s, e in self._free:
            if merged and merged[-1][1] == s:
                merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        self._free = merged

    def _take(self, addr: int, nbytes: int) -> None:
        for i, (s, e) in enumerate(self._free):
            if s <= addr and addr + nbytes <= e:
                pieces = [(s, addr), (addr + nbytes, e)]
                self._free[i : i + 1] = [p for p in pieces if p[1] > p[0]]
                self._live[addr] = nbytes
                return
        raise AssertionError("range not free")
