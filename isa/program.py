"""A self-contained program: config, instruction stream and DRAM data segments,
with a file format (``.vtaprog``) that loads without executing anything.

File format: a zip archive holding ``program.json`` (format version, config,
segment table, instruction address), ``insns.bin`` (the encoded instruction
stream) and one ``seg<i>.npy`` per segment, read with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config
from .encoding import INSN_BYTES, Insn, check_insn, decode_insns, decode_uops, encode_insns, encode_uops
from .errors import ConfigError, EncodingError, ProgramError
from .spec import Opcode
from .values import in_range, pack_values, unpack_values

FORMAT = "vta-program"
FORMAT_VERSION = 1
DTYPE_BITS = {"int4": 4, "int8": 8, "int16": 16, "int32": 32}
DTYPES = (*DTYPE_BITS, "uint8", "uop")
ALIGN = 64


@dataclass
class Segment:
    """A named region of DRAM with initial values.

    ``dtype`` is int4/int8/int16/int32 (signed, packed), uint8 (raw bytes) or
    uop (rows of ``dst_idx, src_idx, wgt_idx``, encoded for the config).
    ``output`` marks regions whose final contents are the program's results.
    """

    name: str
    addr: int
    dtype: str
    values: np.ndarray
    output: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ProgramError(f"segment '{self.name}': dtype '{self.dtype}' is not one of {', '.join(DTYPES)}")
        self.values = np.asarray(self.values, dtype=np.int64)
        if self.dtype == "uop" and (self.values.ndim != 2 or self.values.shape[1] != 3):
            raise ProgramError(f"segment '{self.name}': uop values must be rows of (dst, src, wgt)")
        if self.addr < 0:
            raise ProgramError(f"segment '{self.name}': negative address {self.addr}")
        bits = DTYPE_BITS.get(self.dtype)
        if bits and not in_range(self.values, bits):
            raise ProgramError(f"segment '{self.name}': values do not fit {self.dtype}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def to_bytes(self, config: Config) -> np.ndarray:
        """The segment's bytes as placed in DRAM."""
        if self.dtype == "uop":
            v = self.values
            try:
                return encode_uops(v[:, 0], v[:, 1], v[:, 2], config).reshape(-1)
            except EncodingError as e:
                raise ProgramError(f"segment '{self.name}': {e}") from None
        if self.dtype == "uint8":
            if self.values.size and (self.values.min() < 0 or self.values.max() > 255):
                raise ProgramError(f"segment '{self.name}': uint8 values must be 0..255")
            return self.values.astype(np.uint8).reshape(-1)
        bits = DTYPE_BITS[self.dtype]
        if not in_range(self.values, bits):
            raise ProgramError(f"segment '{self.name}': values do not fit {self.dtype}")
        if bits == 4 and self.values.size % 2:
            raise ProgramError(f"segment '{self.name}': int4 segments hold an even number of values")
        return pack_values(self.values, bits)

    def nbytes(self, config: Config) -> int:
        n = self.values.size
        if self.dtype == "uop":
            return len(self.values) * config.uop_bits // 8
        if self.dtype == "uint8":
            return n
        return n * DTYPE_BITS[self.dtype] // 8

    def read(self, image: np.ndarray, config: Config) -> np.ndarray:
        """This segment's current values, read back from a DRAM image."""
        raw = np.asarray(image[self.addr : self.addr + self.nbytes(config)], np.uint8)
        if self.dtype == "uop":
            c = decode_uops(raw, config)
            return np.stack([c["dst_idx"], c["src_idx"], c["wgt_idx"]], axis=1)
        if self.dtype == "uint8":
            return raw.copy().reshape(self.shape)
        return unpack_values(raw, DTYPE_BITS[self.dtype]).reshape(self.shape)


@dataclass
class Program:
    """Instructions plus DRAM segments for one config.

    The instruction stream is placed at ``insn_addr`` (by default after the last
    segment). ``dram_bytes`` is the DRAM size the program needs (by default the
    end of the last region, rounded up to 4 KiB).
    """

    config: Config
    insns: list[Insn]
    segments: list[Segment] = field(default_factory=list)
    insn_addr: int | None = None
    dram_bytes: int | None = None

    def __post_init__(self) -> None:
        end = max((s.addr + s.nbytes(self.config) for s in self.segments), default=0)
        if self.insn_addr is None:
            self.insn_addr = -(-end // ALIGN) * ALIGN
        need = max(end, self.insn_addr + len(self.insns) * INSN_BYTES)
        if self.dram_bytes is None:
            self.dram_bytes = max(4096, -(-need // 4096) * 4096)
        self.validate()

    def segment(self, name: str) -> Segment:
        for s in self.segments:
            if s.name == name:
                return s
        raise ProgramError(f"no segment named '{name}'; segments: {', '.join(s.name for s in self.segments)}")

    def validate(self) -> None:
        """Check names, overlaps, DRAM fit and every instruction's static rules."""
        names = [s.name for s in self.segments]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ProgramError(f"segment name(s) used twice: {', '.join(sorted(dup))}")
        regions = sorted([(s.addr, s.addr + s.nbytes(self.config), s.name) for s in self.segments] +
                         [(self.insn_addr, self.insn_addr + len(self.insns) * INSN_BYTES, "<instructions>")])
        for (a0, a1, n0), (b0, b1, n1) in zip(regions, regions[1:]):
            if b0 < a1 and b1 > b0 and a1 > a0:
                raise ProgramError(f"'{n0}' [{a0:#x}, {a1:#x}) overlaps '{n1}' [{b0:#x}, {b1:#x})")
        if regions and regions[-1][1] > self.dram_bytes:
            raise ProgramError(f"'{regions[-1][2]}' ends at {regions[-1][1]:#x}, past DRAM size {self.dram_bytes:#x}")
        if not self.insns or self.insns[-1].opcode != Opcode.FINISH:
            raise ProgramError("the instruction stream must end with FINISH")
        for i, insn in enumerate(self.insns):
            if insn.opcode == Opcode.FINISH and i != len(self.insns) - 1:
                raise ProgramError(f"instruction {i}: FINISH before the end of the stream")
            why = check_insn(insn, self.config)
            if why:
                raise ProgramError(f"instruction {i}: {why}")

    def dram_image(self) -> np.ndarray:
        """The initial DRAM contents: segments and the encoded instruction stream."""
        image = np.zeros(self.dram_bytes, np.uint8)
        for s in self.segments:
            b = s.to_bytes(self.config)
            image[s.addr : s.addr + b.size] = b
        enc = encode_insns(self.insns, self.config).reshape(-1)
        image[self.insn_addr : self.insn_addr + enc.size] = enc
        return image

    def outputs(self) -> list[Segment]:
        return [s for s in self.segments if s.output]

    # ---- file format -----------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the program to a ``.vtaprog`` file."""
        meta: dict[str, Any] = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "config": self.config.to_dict(),
            "insn_addr": self.insn_addr, "dram_bytes": self.dram_bytes, "n_insns": len(self.insns),
            "segments": [{"name": s.name, "addr": s.addr, "dtype": s.dtype, "shape": list(s.shape),
                          "output": s.output} for s in self.segments],
        }
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("program.json", json.dumps(meta, indent=1))
            z.writestr("insns.bin", encode_insns(self.insns, self.config).tobytes())
            for i, s in enumerate(self.segments):
                buf = io.BytesIO()
                np.save(buf, s.values, allow_pickle=False)
                z.writestr(f"seg{i}.npy", buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> Program:
        """Read a ``.vtaprog`` file; every malformation raises ProgramError naming it."""
        try:
            z = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as e:
            raise ProgramError(f"{path}: not a program file ({e})") from None
        with z:
            try:
                meta = json.loads(z.read("program.json"))
                if meta.get("format") != FORMAT:
                    raise ProgramError(f"not a {FORMAT} file")
                if meta.get("format_version") != FORMAT_VERSION:
                    raise ProgramError(f"format version {meta.get('format_version')} is not {FORMAT_VERSION}; "
                                       "re-assemble it with this version")
                config = Config.from_dict(meta["config"], source="program.json")
                raw = z.read("insns.bin")
                if len(raw) != meta["n_insns"] * INSN_BYTES:
                    raise ProgramError(f"insns.bin holds {len(raw)} bytes, expected {meta['n_insns']} instructions")
                insns = decode_insns(raw, config)
                segments = []
                for i, sm in enumerate(meta["segments"]):
                    values = np.load(io.BytesIO(z.read(f"seg{i}.npy")), allow_pickle=False)
                    if list(values.shape) != list(sm["shape"]) or values.dtype.kind not in "iu":
                        raise ProgramError(f"segment '{sm['name']}' data does not match its table entry")
                    segments.append(Segment(sm["name"], int(sm["addr"]), sm["dtype"], values, bool(sm["output"])))
                return cls(config, insns, segments, insn_addr=meta["insn_addr"], dram_bytes=meta["dram_bytes"])
            except (ProgramError, ConfigError, EncodingError) as e:
                raise ProgramError(f"{path}: {e}") from None
            except (KeyError, TypeError, ValueError, zipfile.BadZipFile) as e:
                raise ProgramError(f"{path}: malformed program file ({type(e).__name__}: {e})") from None
