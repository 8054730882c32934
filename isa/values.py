"""Signed integers of the ISA's widths (4, 8, 16, 32 bits) in numpy and in DRAM.

In DRAM, values are packed little-endian with no gaps: two 4-bit values per
byte (the first in the low nibble), one 8-bit value per byte, and so on.
"""

from __future__ import annotations

import numpy as np


def storage_dtype(bits: int) -> np.dtype:
    """Smallest numpy signed integer type holding ``bits``-bit values."""
    for dt in (np.int8, np.int16, np.int32, np.int64):
        if bits <= np.dtype(dt).itemsize * 8:
            return np.dtype(dt)
    raise ValueError(f"no storage type for {bits}-bit values")


def wrap(values: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap to ``bits`` (keep the low bits, sign-extend), as int64."""
    v = np.asarray(values, dtype=np.int64)
    if bits >= 64:
        return v
    half = np.int64(1 << (bits - 1))
    return ((v + half) & np.int64((1 << bits) - 1)) - half


def in_range(values: np.ndarray, bits: int) -> bool:
    v = np.asarray(values)
    return bool(v.size == 0 or (v.min() >= -(1 << (bits - 1)) and v.max() < (1 << (bits - 1))))


def pack_values(values: np.ndarray, bits: int) -> np.ndarray:
    """Pack values (flattened) into little-endian ``bits``-bit fields, keeping the low
    bits of each (two's-complement truncation)."""
    v = np.asarray(values).reshape(-1)
    if bits == 4:
        if v.size % 2:
            raise ValueError("4-bit values pack in pairs")
        u = (v.astype(np.int64) & 0xF).astype(np.uint8)
        return u[0::2] | (u[1::2] << np.uint8(4))
    dt = storage_dtype(bits).newbyteorder("<")
    return np.ascontiguousarray(v.astype(dt)).view(np.uint8)


def unpack_values(raw: np.ndarray, bits: int) -> np.ndarray:
    """Unpack little-endian bytes into signed values of ``bits`` (in their storage dtype)."""
    raw = np.ascontiguousarray(np.asarray(raw, dtype=np.uint8).reshape(-1))
    if bits == 4:
        lo = (raw & 0xF).astype(np.int8)
        hi = (raw >> 4).astype(np.int8)
        out = np.empty(raw.size * 2, np.int8)
        out[0::2], out[1::2] = lo, hi
        return np.where(out >= 8, out - 16, out).astype(np.int8)
    dt = storage_dtype(bits).newbyteorder("<")
    return raw.view(dt).astype(storage_dtype(bits))
