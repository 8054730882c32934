"""Instructions as Python objects, and the numpy-vectorized encoder and
decoder between them (or columns of field values) and their binary form.

Binary form: an instruction is 16 bytes, little-endian (bits 0-63 in bytes
0-7); a micro-op is ``config.uop_bits / 8`` bytes, little-endian.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .config import Config
from .errors import EncodingError
from .layout import Layout, insn_layouts, uop_layout
from .spec import (
    DEP_FLAGS,
    DEP_QUEUES,
    INSN_BITS,
    LAYOUT_DECLS,
    LAYOUT_OF_OPCODE,
    LOAD_MEMTYPES,
    STORE_MEMTYPES,
    WORD_BITS,
    AluOp,
    MemType,
    Module,
    Opcode,
    module_of,
)

INSN_BYTES = INSN_BITS // 8
_FIELD_NAMES = {kind: tuple(d.name for d in decls) for kind, decls in LAYOUT_DECLS.items()}


class Insn:
    """One instruction: an opcode and the value of every field of its layout.

    Fields not given are zero. Attribute access reads and writes fields, so
    ``insn.push_next = 1`` sets a dependency flag. Values are range-checked
    when encoded, against the layout of a particular config.
    """

    __slots__ = ("opcode", "_v")

    def __init__(self, opcode: Opcode | int, **values: int) -> None:
        try:
            op = Opcode(opcode)
        except ValueError:
            raise EncodingError(f"unknown opcode {opcode}") from None
        object.__setattr__(self, "opcode", op)
        names = _FIELD_NAMES[LAYOUT_OF_OPCODE[op]]
        v = dict.fromkeys(names[1:], 0)
        for k, x in values.items():
            if k not in v:
                raise EncodingError(f"{op.name} has no field '{k}'; fields: {', '.join(names[1:])}")
            v[k] = int(x)
        object.__setattr__(self, "_v", v)

    # -- convenience constructors --------------------------------------------
    @classmethod
    def load(cls, mem: MemType | int, sram: int, dram: int, y: int, x: int, stride: int | None = None,
             pad: tuple[int, int, int, int] = (0, 0, 0, 0), pad_value: int = 0, **deps: int) -> Insn:
        """LOAD ``y`` rows of ``x`` elements (DRAM row stride ``stride``) into ``mem`` at ``sram``.
        ``pad`` is (top, bottom, left, right)."""
        t, b, l, r = pad
        return cls(Opcode.LOAD, memory_type=mem, sram_base=sram, dram_base=dram, y_size=y, x_size=x,
                   x_stride=x if stride is None else stride, y_pad_top=t, y_pad_bottom=b, x_pad_left=l,
                   x_pad_right=r, pad_value=pad_value, **deps)

    @classmethod
    def store(cls, sram: int, dram: int, y: int, x: int, stride: int | None = None,
              mem: MemType | int = MemType.OUT, **deps: int) -> Insn:
        """STORE ``y`` rows of ``x`` accumulator entries from ``sram`` (narrowed when mem is OUT)."""
        return cls(Opcode.STORE, memory_type=mem, sram_base=sram, dram_base=dram, y_size=y, x_size=x,
                   x_stride=x if stride is None else stride, **deps)

    @classmethod
    def gemm(cls, uop_bgn: int, uop_end: int, iter_out: int = 1, iter_in: int = 1,
             dst: tuple[int, int] = (0, 0), src: tuple[int, int] = (0, 0), wgt: tuple[int, int] = (0, 0),
             reset: bool = False, **deps: int) -> Insn:
        """GEMM over micro-ops [uop_bgn, uop_end) in an iter_out × iter_in loop; factors are (out, in)."""
        return cls(Opcode.GEMM, reset=int(reset), uop_bgn=uop_bgn, uop_end=uop_end, iter_out=iter_out,
                   iter_in=iter_in, dst_factor_out=dst[0], dst_factor_in=dst[1], src_factor_out=src[0],
                   src_factor_in=src[1], wgt_factor_out=wgt[0], wgt_factor_in=wgt[1], **deps)

    @classmethod
    def alu(cls, op: AluOp | int, uop_bgn: int, uop_end: int, iter_out: int = 1, iter_in: int = 1,
            dst: tuple[int, int] = (0, 0), src: tuple[int, int] = (0, 0), imm: int | None = None,
            **deps: int) -> Insn:
        """ALU ``op`` over micro-ops; operand b is ``imm`` if given, else acc[src]."""
        return cls(Opcode.ALU, alu_op=op, uop_bgn=uop_bgn, uop_end=uop_end, iter_out=iter_out,
                   iter_in=iter_in, dst_factor_out=dst[0], dst_factor_in=dst[1], src_factor_out=src[0],
                   src_factor_in=src[1], use_imm=int(imm is not None), imm=0 if imm is None else imm, **deps)

    @classmethod
    def finish(cls, **deps: int) -> Insn:
        return cls(Opcode.FINISH, **deps)

    # -- field access --------------------------------------------------------
    def __getattr__(self, name: str) -> int:
        try:
            return self._v[name]
        except KeyError:
            raise AttributeError(f"{self.opcode.name} has no field '{name}'") from None

    def __setattr__(self, name: str, value: int) -> None:
        if name not in self._v:
            raise AttributeError(f"{self.opcode.name} has no field '{name}'")
        self._v[name] = int(value)

    @property
    def kind(self) -> str:
        return LAYOUT_OF_OPCODE[self.opcode]

    @property
    def module(self) -> Module:
        return module_of(self.opcode, self._v.get("memory_type", 0))

    def fields(self) -> dict[str, int]:
        """All field values except the opcode."""
        return dict(self._v)

    def copy(self, **changes: int) -> Insn:
        return Insn(self.opcode, **{**self._v, **changes})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Insn) and self.opcode == other.opcode and self._v == other._v

    def __hash__(self) -> int:
        return hash((self.opcode, tuple(self._v.items())))

    def __repr__(self) -> str:
        nz = ", ".join(f"{k}={v}" for k, v in self._v.items() if v)
        return f"Insn({self.opcode.name}{', ' if nz else ''}{nz})"


# ---- column-wise (vectorized) packing ------------------------------------

def _words(layout: Layout) -> int:
    return -(-layout.bits // WORD_BITS)


def pack_columns(layout: Layout, columns: Mapping[str, Any], n: int | None = None,
                 what: str = "row") -> np.ndarray:
    """Encode columns of field values into an (N, bits/8) uint8 array.

    Missing fields are zero. A value outside its field's range raises
    EncodingError naming the field, the row and the allowed range.
    """
    cols = {k: np.asarray(v, dtype=np.int64).reshape(-1) for k, v in columns.items()}
    unknown = set(cols) - set(layout.names)
    if unknown:
        raise EncodingError(f"{layout.kind} has no field(s) {', '.join(sorted(unknown))}")
    if n is None:
        n = len(next(iter(cols.values()))) if cols else 0
    words = np.zeros((n, _words(layout)), dtype=np.uint64)
    for f in layout.fields:
        v = cols.get(f.name)
        if v is None:
            continue
        if len(v) != n:
            raise EncodingError(f"{layout.kind} field '{f.name}': {len(v)} values for {n} rows")
        bad = np.flatnonzero((v < f.lo) | (v > f.hi))
        if bad.size:
            i = int(bad[0])
            raise EncodingError(f"{layout.kind} field '{f.name}' = {int(v[i])} is outside "
                                f"[{f.lo}, {f.hi}] ({f.width} bits)", i, what)
        u = (v & f.mask).astype(np.uint64)
        words[:, f.word] |= u << np.uint64(f.shift)
    raw = words.astype("<u8").view(np.uint8).reshape(n, words.shape[1] * 8)
    return np.ascontiguousarray(raw[:, : layout.bits // 8])


def unpack_columns(layout: Layout, raw: np.ndarray) -> dict[str, np.ndarray]:
    """Decode an (N, bits/8) uint8 array into int64 columns, one per field."""
    raw = np.asarray(raw, dtype=np.uint8)
    n = raw.shape[0]
    nbytes = _words(layout) * 8
    if raw.shape[1] != nbytes:
        raw = np.concatenate([raw, np.zeros((n, nbytes - raw.shape[1]), np.uint8)], axis=1)
    words = np.ascontiguousarray(raw).view("<u8").reshape(n, nbytes // 8).astype(np.uint64)
    out: dict[str, np.ndarray] = {}
    for f in layout.fields:
        v = ((words[:, f.word] >> np.uint64(f.shift)) & np.uint64(f.mask)).astype(np.int64)
        if f.signed:
            v = np.where(v >= (1 << (f.width - 1)), v - (1 << f.width), v)
        out[f.name] = v
    return out


def _as_rows(data: bytes | bytearray | np.ndarray, width: int, what: str) -> np.ndarray:
    arr = np.frombuffer(bytes(data), np.uint8) if isinstance(data, (bytes, bytearray)) else np.asarray(data)
    if arr.dtype != np.uint8:
        arr = np.ascontiguousarray(arr).view(np.uint8)
    if arr.size % width:
        raise EncodingError(f"{what}: {arr.size} bytes is not a whole number of {width}-byte entries")
    return arr.reshape(arr.size // width, width)


# ---- instructions --------------------------------------------------------

def encode_insns(insns: Sequence[Insn], config: Config) -> np.ndarray:
    """Encode instructions into an (N, 16) uint8 array (each row one instruction)."""
    layouts = insn_layouts(config)
    out = np.zeros((len(insns), INSN_BYTES), np.uint8)
    by_kind: dict[str, list[int]] = {}
    for i, insn in enumerate(insns):
        by_kind.setdefault(insn.kind, []).append(i)
    for kind, rows in by_kind.items():
        layout = layouts[kind]
        cols = {"opcode": [int(insns[i].opcode) for i in rows]}
        for name in layout.names[1:]:
            cols[name] = [insns[i]._v[name] for i in rows]
        try:
            packed = pack_columns(layout, cols, len(rows), what="instruction")
        except EncodingError as e:
            # Name the index in the whole stream rather than within its kind.
            raise EncodingError(e.detail, rows[e.index] if e.index is not None else None) from None
        out[rows] = packed
    return out


def insn_columns(data: bytes | np.ndarray, config: Config) -> dict[str, np.ndarray]:
    """Decode a binary instruction stream into columns (fields absent from a row's kind are zero).

    Raises EncodingError naming the first instruction with an unknown opcode.
    """
    raw = _as_rows(data, INSN_BYTES, "instruction stream")
    layouts = insn_layouts(config)
    opcode = unpack_columns(layouts["finish"], raw)["opcode"]
    valid = np.isin(opcode, [int(o) for o in Opcode])
    if not valid.all():
        i = int(np.flatnonzero(~valid)[0])
        raise EncodingError(f"unknown opcode {int(opcode[i])}", i)
    cols: dict[str, np.ndarray] = {"opcode": opcode}
    for op, kind in LAYOUT_OF_OPCODE.items():
        rows = np.flatnonzero(opcode == int(op))
        if not rows.size:
            continue
        for name, v in unpack_columns(layouts[kind], raw[rows]).items():
            cols.setdefault(name, np.zeros(len(opcode), np.int64))[rows] = v
    return cols


def decode_insns(data: bytes | np.ndarray, config: Config) -> list[Insn]:
    """Decode a binary instruction stream into Insn objects."""
    cols = insn_columns(data, config)
    out: list[Insn] = []
    lists = {k: v.tolist() for k, v in cols.items()}
    for i, op in enumerate(lists["opcode"]):
        names = _FIELD_NAMES[LAYOUT_OF_OPCODE[Opcode(op)]][1:]
        out.append(Insn(op, **{n: lists[n][i] for n in names}))
    return out


# ---- micro-ops -----------------------------------------------------------

def encode_uops(dst: Iterable[int], src: Iterable[int], wgt: Iterable[int], config: Config) -> np.ndarray:
    """Encode micro-ops into an (N, uop_bits/8) uint8 array."""
    cols = {"dst_idx": np.asarray(list(dst) if not isinstance(dst, np.ndarray) else dst),
            "src_idx": np.asarray(list(src) if not isinstance(src, np.ndarray) else src),
            "wgt_idx": np.asarray(list(wgt) if not isinstance(wgt, np.ndarray) else wgt)}
    return pack_columns(uop_layout(config), cols, what="micro-op")


def decode_uops(data: bytes | np.ndarray, config: Config) -> dict[str, np.ndarray]:
    """Decode micro-ops into columns 'dst_idx', 'src_idx', 'wgt_idx'."""
    layout = uop_layout(config)
    return unpack_columns(layout, _as_rows(data, layout.bits // 8, "micro-op data"))


# ---- static checks -------------------------------------------------------

def check_insn(insn: Insn, config: Config) -> str | None:
    """Return why an instruction is illegal regardless of machine state, or None.

    Covers memory types, ALU operations, dependency flags that name a module
    that does not exist, padding on STORE or uop LOAD, and micro-op ranges.
    Buffer and DRAM bounds depend on the run and are checked by the simulator.
    """
    v = insn._v
    if insn.opcode in (Opcode.LOAD, Opcode.STORE):
        allowed = LOAD_MEMTYPES if insn.opcode == Opcode.LOAD else STORE_MEMTYPES
        if v["memory_type"] not in [int(m) for m in allowed]:
            return (f"{insn.opcode.name} memory_type {v['memory_type']} is not one of "
                    f"{', '.join(f'{m.name}={int(m)}' for m in allowed)}")
        pads = (v["y_pad_top"], v["y_pad_bottom"], v["x_pad_left"], v["x_pad_right"])
        if (insn.opcode == Opcode.STORE or v["memory_type"] == MemType.UOP) and (any(pads) or v["pad_value"]):
            what = "STORE" if insn.opcode == Opcode.STORE else "LOAD UOP"
            return f"{what} takes no padding (pads {pads}, pad_value {v['pad_value']})"
    if insn.opcode == Opcode.ALU and v["alu_op"] not in [int(o) for o in AluOp]:
        return f"ALU alu_op {v['alu_op']} is not one of {', '.join(f'{o.name}={int(o)}' for o in AluOp)}"
    if insn.opcode in (Opcode.GEMM, Opcode.ALU):
        if v["uop_bgn"] > v["uop_end"]:
            return f"uop_bgn {v['uop_bgn']} is after uop_end {v['uop_end']}"
        if v["uop_end"] > config.uop_depth:
            return f"uop_end {v['uop_end']} is past the uop buffer ({config.uop_depth} entries)"
    for flag in DEP_FLAGS:
        if v[flag] and DEP_QUEUES[insn.module][flag] is None:
            return f"{flag} is set on a {insn.module.name.lower()}-module instruction, which has no such neighbour"
    return None
