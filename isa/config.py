"""The hardware configuration: one frozen, validated value that drives the RTL,
the simulators and the compiler. Every derived constant is computed here."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .spec import UOP_WORD_BITS, MemType

_POW2_BLOCK = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_OPERAND_WIDTHS = (4, 8, 16)
_OUT_WIDTHS = (4, 8, 16, 32)
_ACC_WIDTHS = (16, 32)
_BUS_WIDTHS = (64, 128, 256, 512)
_MAX_BUFFER_BYTES = 1 << 26
_BUFFERS = ("uop", "inp", "wgt", "acc")
_CHECK_ORDER = ("inp", "wgt", "acc", "uop")  # the uop width depends on the other depths


def _is_pow2(x: int) -> bool:
    return x > 0 and (x & (x - 1)) == 0


@dataclass(frozen=True)
class Config:
    """Accelerator configuration.

    The GEMM core multiplies a ``batch × block_in`` input tile by a
    ``block_out × block_in`` weight tile into a ``batch × block_out``
    accumulator tile each cycle. Buffer sizes are in bytes; widths in bits.
    Construction validates every field and raises :class:`ConfigError`
    naming the field and the allowed values.
    """

    batch: int = 1
    block_in: int = 16
    block_out: int = 16
    inp_width: int = 8
    wgt_width: int = 8
    acc_width: int = 32
    out_width: int = 8
    uop_buffer_bytes: int = 1 << 15
    inp_buffer_bytes: int = 1 << 15
    wgt_buffer_bytes: int = 1 << 18
    acc_buffer_bytes: int = 1 << 17
    bus_width: int = 64
    clock_mhz: float = 100.0
    insn_queue_depth: int = 32
    token_queue_depth: int = 256

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "clock_mhz":
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ConfigError(f.name, f"{v!r} is not a number (MHz, 1 to 2000)")
            elif isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f.name, f"{v!r} is not an integer")
        self._check_choice("batch", _POW2_BLOCK)
        self._check_choice("block_in", _POW2_BLOCK)
        self._check_choice("block_out", _POW2_BLOCK)
        self._check_choice("inp_width", _OPERAND_WIDTHS)
        self._check_choice("wgt_width", _OPERAND_WIDTHS)
        self._check_choice("acc_width", _ACC_WIDTHS)
        self._check_choice("out_width", _OUT_WIDTHS)
        if self.out_width > self.acc_width:
            raise ConfigError("out_width", f"{self.out_width} exceeds acc_width {self.acc_width}")
        self._check_choice("bus_width", _BUS_WIDTHS)
        if not 1 <= self.clock_mhz <= 2000:
            raise ConfigError("clock_mhz", f"{self.clock_mhz} is outside 1 to 2000")
        for name in ("insn_queue_depth", "token_queue_depth"):
            v = getattr(self, name)
            if not 1 <= v <= 4096:
                raise ConfigError(name, f"{v} is outside 1 to 4096")
        for buf in _CHECK_ORDER:
            self._check_buffer(buf)
        from .layout import check_encodings

        check_encodings(self)

    def _check_choice(self, name: str, allowed: tuple[int, ...]) -> None:
        v = getattr(self, name)
        if v not in allowed:
            raise ConfigError(name, f"{v} is not one of {', '.join(map(str, allowed))}")

    def _check_buffer(self, buf: str) -> None:
        name = f"{buf}_buffer_bytes"
        size = getattr(self, name)
        entry = self.entry_bytes(buf)
        if not _is_pow2(size) or size > _MAX_BUFFER_BYTES:
            raise ConfigError(name, f"{size} is not a power of two up to 2^26")
        if size < 2 * entry:
            raise ConfigError(
                name, f"{size} bytes hold fewer than 2 entries of {entry} bytes; use at least {2 * entry}"
            )

    # ---- element geometry -------------------------------------------------
    @cached_property
    def inp_elem_bits(self) -> int:
        return self.batch * self.block_in * self.inp_width

    @cached_property
    def wgt_elem_bits(self) -> int:
        return self.block_out * self.block_in * self.wgt_width

    @cached_property
    def acc_elem_bits(self) -> int:
        return self.batch * self.block_out * self.acc_width

    @cached_property
    def out_elem_bits(self) -> int:
        return self.batch * self.block_out * self.out_width

    @cached_property
    def uop_bits(self) -> int:
        used = self.acc_idx_bits + self.uop_src_bits + self.wgt_idx_bits
        return -(-used // UOP_WORD_BITS) * UOP_WORD_BITS

    def entry_bytes(self, buf: str) -> int:
        """Bytes of one entry of buffer ``buf`` ('uop', 'inp', 'wgt', 'acc')."""
        if buf == "uop":
            return self.uop_bits // 8
        bits = {"inp": self.inp_elem_bits, "wgt": self.wgt_elem_bits, "acc": self.acc_elem_bits}[buf]
        return -(-bits // 8)

    def elem_bytes(self, mem: MemType | int) -> int:
        """Bytes of one DRAM element of a memory type (the LOAD/STORE unit)."""
        mem = MemType(mem)
        if mem == MemType.OUT:
            return -(-self.out_elem_bits // 8)
        return self.entry_bytes(mem.name.lower())

    def elem_shape(self, mem: MemType | int) -> tuple[int, ...]:
        """Shape of the values in one element of a memory type."""
        mem = MemType(mem)
        return {
            MemType.UOP: (),
            MemType.INP: (self.batch, self.block_in),
            MemType.WGT: (self.block_out, self.block_in),
            MemType.ACC: (self.batch, self.block_out),
            MemType.OUT: (self.batch, self.block_out),
        }[mem]

    def elem_width(self, mem: MemType | int) -> int:
        """Bit width of one value in an element of a memory type."""
        mem = MemType(mem)
        return {
            MemType.UOP: self.uop_bits,
            MemType.INP: self.inp_width,
            MemType.WGT: self.wgt_width,
            MemType.ACC: self.acc_width,
            MemType.OUT: self.out_width,
        }[mem]

    # ---- buffer depths and index widths -----------------------------------
    def depth(self, mem: MemType | int) -> int:
        """Entries of the on-chip buffer a memory type addresses (OUT addresses acc)."""
        mem = MemType(mem)
        buf = "acc" if mem == MemType.OUT else mem.name.lower()
        return getattr(self, f"{buf}_buffer_bytes") // self.entry_bytes(buf)

    @cached_property
    def uop_depth(self) -> int:
        return self.depth(MemType.UOP)

    @cached_property
    def inp_depth(self) -> int:
        return self.depth(MemType.INP)

    @cached_property
    def wgt_depth(self) -> int:
        return self.depth(MemType.WGT)

    @cached_property
    def acc_depth(self) -> int:
        return self.depth(MemType.ACC)

    @cached_property
    def uop_idx_bits(self) -> int:
        return (self.uop_depth - 1).bit_length()

    @cached_property
    def uop_end_bits(self) -> int:
        return self.uop_idx_bits + 1

    @cached_property
    def inp_idx_bits(self) -> int:
        return (self.inp_depth - 1).bit_length()

    @cached_property
    def wgt_idx_bits(self) -> int:
        return (self.wgt_depth - 1).bit_length()

    @cached_property
    def acc_idx_bits(self) -> int:
        return (self.acc_depth - 1).bit_length()

    @cached_property
    def uop_src_bits(self) -> int:
        return max(self.inp_idx_bits, self.acc_idx_bits)

    @cached_property
    def sram_idx_bits(self) -> int:
        return max(self.uop_idx_bits, self.inp_idx_bits, self.wgt_idx_bits, self.acc_idx_bits)

    # ---- throughput --------------------------------------------------------
    @cached_property
    def bus_bytes(self) -> int:
        return self.bus_width // 8

    @cached_property
    def macs_per_cycle(self) -> int:
        """Multiply-accumulates the GEMM core completes per GEMM micro-op."""
        return self.batch * self.block_in * self.block_out

    @cached_property
    def name(self) -> str:
        """Short canonical name, e.g. ``1x16_i8w8a32_15_15_18_17`` (parseable by `from_name`)."""
        blocks = f"{self.batch}x{self.block_in}"
        if self.block_out != self.block_in:
            blocks += f"x{self.block_out}"
        widths = f"i{self.inp_width}w{self.wgt_width}a{self.acc_width}"
        if self.out_width != self.inp_width:
            widths += f"o{self.out_width}"
        logs = "_".join(str(getattr(self, f"{b}_buffer_bytes").bit_length() - 1) for b in _BUFFERS)
        name = f"{blocks}_{widths}_{logs}"
        if self.bus_width != 64:
            name += f"_bus{self.bus_width}"
        return name

    def __str__(self) -> str:
        return self.name

    # ---- (de)serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Config:
        """Build from a mapping of field names; unknown keys are an error."""
        if not isinstance(data, dict):
            raise ConfigError("<root>", f"{source} must be a table of fields, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        base: Config | None = None
        data = dict(data)
        if "preset" in data:
            base = preset(str(data.pop("preset")))
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown in {source}; known fields: {', '.join(sorted(known))}")
        return replace(base, **data) if base else cls(**data)

    def save(self, path: str | Path) -> None:
        """Write as JSON or TOML, chosen by the file suffix."""
        path = Path(path)
        if path.suffix == ".toml":
            import tomli_w

            path.write_text(tomli_w.dumps(self.to_dict()))
        elif path.suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        else:
            raise ConfigError("<file>", f"{path}: unknown suffix '{path.suffix}' (use .json or .toml)")

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Read a JSON or TOML file of fields (optionally ``preset = NAME`` plus overrides)."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError("<file>", f"cannot read {path}: {e.strerror}") from None
        try:
            if path.suffix == ".toml":
                data = tomllib.loads(text)
            elif path.suffix == ".json":
                data = json.loads(text)
            else:
                raise ConfigError("<file>", f"{path}: unknown suffix '{path.suffix}' (use .json or .toml)")
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
            raise ConfigError("<file>", f"{path}: {e}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_name(cls, name: str) -> Config:
        """Parse a canonical name such as ``1x16_i8w8a32_15_15_18_17`` or ``4x8x16_i8w8a32o16_13_14_15_16_bus256``."""
        m = _NAME_RE.fullmatch(name)
        if not m:
            raise ConfigError("<name>", f"'{name}' is not a preset ({', '.join(PRESETS)}) or a config name "
                              "like 1x16_i8w8a32_15_15_18_17")
        g = m.groupdict()
        block_in = int(g["bi"])
        return cls(
            batch=int(g["b"]), block_in=block_in, block_out=int(g["bo"] or block_in),
            inp_width=int(g["i"]), wgt_width=int(g["w"]), acc_width=int(g["a"]),
            out_width=int(g["o"] or g["i"]),
            uop_buffer_bytes=1 << int(g["lu"]), inp_buffer_bytes=1 << int(g["li"]),
            wgt_buffer_bytes=1 << int(g["lw"]), acc_buffer_bytes=1 << int(g["la"]),
            bus_width=int(g["bus"] or 64),
        )


_NAME_RE = re.compile(
    r"(?P<b>\d+)x(?P<bi>\d+)(?:x(?P<bo>\d+))?_i(?P<i>\d+)w(?P<w>\d+)a(?P<a>\d+)(?:o(?P<o>\d+))?"
    r"_(?P<lu>\d+)_(?P<li>\d+)_(?P<lw>\d+)_(?P<la>\d+)(?:_bus(?P<bus>\d+))?"
)

PRESETS: dict[str, Config] = {
    # The VTA default: 1x16x16 GEMM core, int8 operands, int32 accumulators.
    "default": Config(),
    # Small enough for fast RTL builds and exhaustive tests.
    "tiny": Config(block_in=4, block_out=4, uop_buffer_bytes=1 << 11, inp_buffer_bytes=1 << 10,
                   wgt_buffer_bytes=1 << 11, acc_buffer_bytes=1 << 12),
    # Batched: four input rows share each weight tile.
    "batch4": Config(batch=4, block_in=8, block_out=8, uop_buffer_bytes=1 << 13, inp_buffer_bytes=1 << 14,
                     wgt_buffer_bytes=1 << 15, acc_buffer_bytes=1 << 16),
    # Non-square core: 8-long dot products into 16 outputs.
    "nonsquare": Config(block_in=8, block_out=16, uop_buffer_bytes=1 << 13, inp_buffer_bytes=1 << 13,
                        wgt_buffer_bytes=1 << 16, acc_buffer_bytes=1 << 16),
    # The default core on a 256-bit memory bus.
    "bus256": Config(bus_width=256),
}


def preset(name: str) -> Config:
    """A named preset, or a config parsed from its canonical name."""
    if name in PRESETS:
        return PRESETS[name]
    return Config.from_name(name)


def resolve(spec: str | Path | Config | None) -> Config:
    """A config from a preset name, canonical name or JSON/TOML path (None: default)."""
    if spec is None:
        return PRESETS["default"]
    if isinstance(spec, Config):
        return spec
    text = str(spec)
    if text.endswith((".json", ".toml")) or Path(text).is_file():
        return Config.load(text)
    return preset(text)
