"""Amaranth data layouts generated from the ISA declarations: the RTL decodes
instructions and micro-ops through these views, so no bit position is written
twice. Element layouts give the buffers' entries their lane structure."""

from __future__ import annotations

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from vta.isa import Config, MemType, insn_layouts, uop_layout
from vta.isa.layout import Layout
from vta.isa.spec import INSN_BITS


def _flexible(layout: Layout, size: int) -> data.FlexibleLayout:
    return data.FlexibleLayout(size, {
        f.name: data.Field(signed(f.width) if f.signed else unsigned(f.width), f.offset) for f in layout
    })


def insn_views(config: Config) -> dict[str, data.FlexibleLayout]:
    """One 128-bit layout per instruction kind ('mem', 'gemm', 'alu', 'finish')."""
    return {kind: _flexible(lay, INSN_BITS) for kind, lay in insn_layouts(config).items()}


def uop_view(config: Config) -> data.FlexibleLayout:
    return _flexible(uop_layout(config), config.uop_bits)


def elem_layout(config: Config, mem: MemType) -> data.Layout | Shape:
    """The layout of one buffer entry / DRAM element: rows of signed lanes (UOP: the micro-op)."""
    mem = MemType(mem)
    if mem == MemType.UOP:
        return uop_view(config)
    rows, cols = config.elem_shape(mem)
    return data.ArrayLayout(data.ArrayLayout(signed(config.elem_width(mem)), cols), rows)


def elem_bits(config: Config, mem: MemType) -> int:
    return config.elem_bytes(mem) * 8
