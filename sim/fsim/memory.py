"""LOAD and STORE: 2-D strided DMA between DRAM and the on-chip buffers."""

from __future__ import annotations

import numpy as np

from vta.isa import Config, Insn, MemType, decode_uops
from vta.isa.spec import ErrorCode
from vta.isa.values import pack_values, unpack_values, wrap

from ..errors import BoundsError
from .state import Scratchpads


def _elem_view(dram: np.ndarray, elem: int) -> np.ndarray:
    """DRAM as an (n, elem) byte array, element i at byte i*elem."""
    n = dram.size // elem
    return dram[: n * elem].reshape(n, elem)


def _dram_rows(insn: Insn, index: int, view: np.ndarray, what: str) -> np.ndarray:
    """Element indices (y, x) of a strided DRAM region, bounds-checked."""
    y, x, stride, base = insn.y_size, insn.x_size, insn.x_stride, insn.dram_base
    last = base + (y - 1) * stride + x - 1
    if last >= len(view):
        elem = view.shape[1]
        raise BoundsError(
            f"{what} DRAM elements up to {last} (bytes up to {(last + 1) * elem:#x}) are past the end of "
            f"DRAM ({len(view) * elem:#x} bytes usable for {elem}-byte elements)", index, ErrorCode.DRAM_BOUNDS)
    return base + np.arange(y)[:, None] * stride + np.arange(x)[None, :]


def _check_sram(mem: MemType, base: int, count: int, depth: int, index: int, what: str) -> None:
    if base + count > depth:
        raise BoundsError(f"{what} {mem.name} buffer entries [{base}, {base + count}) are past its end "
                          f"({depth} entries)", index)


def exec_load(insn: Insn, index: int, pads: Scratchpads, dram: np.ndarray, config: Config) -> tuple[int, int]:
    """Execute a LOAD. Returns (DRAM bytes read, padding entries written)."""
    mem = MemType(insn.memory_type)
    if insn.x_size == 0 or insn.y_size == 0:
        return 0, 0
    elem = config.elem_bytes(mem)
    rows = insn.y_pad_top + insn.y_size + insn.y_pad_bottom
    cols = insn.x_pad_left + insn.x_size + insn.x_pad_right
    _check_sram(mem, insn.sram_base, rows * cols, config.depth(mem), index, "LOAD writes")
    view = _elem_view(dram, elem)
    if insn.x_stride == insn.x_size:  # contiguous rows: one slice
        _dram_rows(insn, index, view, "LOAD reads")
        raw = view[insn.dram_base : insn.dram_base + insn.y_size * insn.x_size]
    else:
        raw = view[_dram_rows(insn, index, view, "LOAD reads").reshape(-1)]
    nbytes = raw.size
    base = insn.sram_base
    if mem == MemType.UOP:
        cols_ = decode_uops(raw, config)
        n = len(cols_["dst_idx"])
        pads.uop[0, base : base + n] = cols_["dst_idx"]
        pads.uop[1, base : base + n] = cols_["src_idx"]
        pads.uop[2, base : base + n] = cols_["wgt_idx"]
        return nbytes, 0
    buf = pads.array(mem)
    shape = config.elem_shape(mem)
    values = unpack_values(raw, config.elem_width(mem)).reshape(insn.y_size, insn.x_size, *shape)
    if rows == insn.y_size and cols == insn.x_size:
        buf[base : base + rows * cols] = values.reshape(-1, *shape)
        return nbytes, 0
    # The 8-bit pad value is sign-extended, then narrowed like any value to the element width.
    fill = int(wrap(np.int64(insn.pad_value), config.elem_width(mem)))
    block = np.full((rows, cols, *shape), fill, buf.dtype)
    block[insn.y_pad_top : insn.y_pad_top + insn.y_size, insn.x_pad_left : insn.x_pad_left + insn.x_size] = values
    buf[base : base + rows * cols] = block.reshape(-1, *shape)
    return nbytes, rows * cols - insn.y_size * insn.x_size


def exec_store(insn: Insn, index: int, pads: Scratchpads, dram: np.ndarray, config: Config) -> int:
    """Execute a STORE (OUT: narrowed by truncation; ACC: full width). Returns DRAM bytes written."""
    mem = MemType(insn.memory_type)
    if insn.x_size == 0 or insn.y_size == 0:
        return 0
    n = insn.y_size * insn.x_size
    _check_sram(MemType.ACC, insn.sram_base, n, config.acc_depth, index, "STORE reads")
    elem = config.elem_bytes(mem)
    view = _elem_view(dram, elem)
    where = _dram_rows(insn, index, view, "STORE writes")
    acc = pads.acc[insn.sram_base : insn.sram_base + n]
    # pack_values keeps the low bits: OUT narrowing truncates, as the ISA document specifies.
    raw = pack_values(acc, config.elem_width(mem)).reshape(insn.y_size, insn.x_size, elem)
    if insn.x_stride == insn.x_size:
        view[insn.dram_base : insn.dram_base + n] = raw.reshape(n, elem)
    elif insn.x_stride > insn.x_size or insn.y_size == 1:
        view[where] = raw
    else:  # overlapping rows: later rows win, as the DMA writes them in order
        for r in range(insn.y_size):
            view[where[r]] = raw[r]
    return n * elem
