"""Bit layouts of instructions and micro-ops, placed from the declarations in
`spec.py` for one configuration.

Placement rule: fields are laid out in declaration order from bit 0; a field
that would straddle bit 64 starts at bit 64 instead, so every field lies in
one 64-bit word. A configuration whose fields do not fit in 128 bits (or in
the micro-op) is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Iterator

from .errors import ConfigError
from .spec import INSN_BITS, LAYOUT_DECLS, UOP_DECL, WORD_BITS, FieldDecl

if TYPE_CHECKING:
    from .config import Config


@dataclass(frozen=True)
class Field:
    """A placed field: bit offset within the instruction (or micro-op) and width."""

    name: str
    offset: int
    width: int
    signed: bool
    doc: str

    @property
    def word(self) -> int:
        return self.offset // WORD_BITS

    @property
    def shift(self) -> int:
        return self.offset % WORD_BITS

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    @property
    def lo(self) -> int:
        """Smallest encodable value."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        """Largest encodable value."""
        return (1 << (self.width - 1)) - 1 if self.signed else self.mask


@dataclass(frozen=True)
class Layout:
    """The placed fields of one instruction kind ('mem', 'gemm', 'alu', 'finish') or the micro-op ('uop')."""

    kind: str
    fields: tuple[Field, ...]
    bits: int

    def __getitem__(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.kind} has no field '{name}'")

    def __contains__(self, name: str) -> bool:
        return any(f.name == name for f in self.fields)

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def used_bits(self) -> int:
        return max(f.offset + f.width for f in self.fields)


def _width(decl: FieldDecl, config: Config) -> int:
    return decl.width if isinstance(decl.width, int) else int(getattr(config, decl.width))


def _place(kind: str, decls: tuple[FieldDecl, ...], config: Config, total: int) -> Layout:
    placed: list[Field] = []
    pos = 0
    for d in decls:
        w = _width(d, config)
        if pos // WORD_BITS != (pos + w - 1) // WORD_BITS:
            pos = (pos // WORD_BITS + 1) * WORD_BITS
        if pos + w > total:
            need = sum(_width(x, config) for x in decls)
            sized = ", ".join(f"{x.name}={_width(x, config)}" for x in decls if isinstance(x.width, str))
            raise ConfigError(
                "buffer sizes",
                f"the {kind} {'micro-op' if kind == 'uop' else 'instruction'} does not fit in {total} bits: "
                f"field '{d.name}' would end at bit {pos + w} ({need} bits of fields; buffer-dependent "
                f"widths {sized}). Use fewer buffer entries (smaller buffers or larger blocks).",
            )
        placed.append(Field(d.name, pos, w, d.signed, d.doc))
        pos += w
    return Layout(kind, tuple(placed), total)


@lru_cache(maxsize=64)
def insn_layouts(config: Config) -> dict[str, Layout]:
    """The instruction layouts for a config, keyed by kind ('mem', 'gemm', 'alu', 'finish')."""
    return {kind: _place(kind, decls, config, INSN_BITS) for kind, decls in LAYOUT_DECLS.items()}


@lru_cache(maxsize=64)
def uop_layout(config: Config) -> Layout:
    """The micro-op layout for a config."""
    return _place("uop", UOP_DECL, config, config.uop_bits)


def check_encodings(config: Config) -> None:
    """Raise ConfigError if any layout does not fit (called by Config validation)."""
    for kind, decls in LAYOUT_DECLS.items():
        _place(kind, decls, config, INSN_BITS)
    _place("uop", UOP_DECL, config, config.uop_bits)
