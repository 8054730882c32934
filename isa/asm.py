"""Text assembly: a format a researcher can write by hand, an assembler into a
`Program`, and a disassembler whose output assembles back to the same bits.

Syntax (one statement per line; ``#`` or ``;`` starts a comment)::

    .config default                      # preset or canonical name, then optional field=value overrides
    .data A int8 16x16 @0x0000 random 1  # NAME DTYPE SHAPE @ADDR [output] [zeros | random SEED [LO HI] | file X.npy]
    .data K uop 2 @0x1000                # without an initialiser, the values follow on the next lines
      0 0 0
      1 1 0
    .data C int8 16 @0x2000 output zeros
    load uop sram=0 dram=K y=1 x=2
    load inp sram=0 dram=A y=1 x=16 stride=16 pad=0,0,1,1 padval=-128 pop=next
    gemm reset uops=0:2 iter=1,8 dst=0,2
    alu shr uops=0:1 iter=1,16 dst=0,1 imm=3
    store out sram=0 dram=C y=1 x=1 push=prev
    finish

``dram=`` takes a number of elements of the memory type, or a segment name
plus an optional element offset (``A+16``). Optional operands default to 0,
``stride`` to ``x`` and ``iter`` to 1,1.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import fields as dc_fields
from pathlib import Path
import numpy as np

from .config import PRESETS, Config, preset
from .encoding import Insn, encode_insns
from .errors import AsmError, ConfigError, EncodingError, ProgramError
from .program import DTYPE_BITS, DTYPES, Program, Segment
from .spec import DEP_FLAGS, AluOp, MemType, Opcode

# Operand syntax: asm key -> the layout fields it sets (a key with several fields takes a comma list).
_MEM_KEYS = {
    "sram": ("sram_base",), "dram": ("dram_base",), "y": ("y_size",), "x": ("x_size",),
    "stride": ("x_stride",), "pad": ("y_pad_top", "y_pad_bottom", "x_pad_left", "x_pad_right"),
    "padval": ("pad_value",),
}
_LOOP_KEYS = {"uops": ("uop_bgn", "uop_end"), "iter": ("iter_out", "iter_in"),
              "dst": ("dst_factor_out", "dst_factor_in"), "src": ("src_factor_out", "src_factor_in")}
_GEMM_KEYS = {**_LOOP_KEYS, "wgt": ("wgt_factor_out", "wgt_factor_in")}
_ALU_KEYS = {**_LOOP_KEYS, "imm": ("imm",)}
_DEP_KEYS = {"pop": ("pop_prev", "pop_next"), "push": ("push_prev", "push_next")}
_NUM = re.compile(r"[-+]?(0x[0-9a-fA-F]+|0b[01]+|\d+)$")


def _int(tok: str, what: str, line: int, src: str | None) -> int:
    if not _NUM.match(tok):
        raise AsmError(f"{what}: '{tok}' is not an integer", line, src)
    return int(tok, 0)


class _Parser:
    def __init__(self, text: str, source: str | None, base_dir: Path | None) -> None:
        self.lines = text.splitlines()
        self.src = source
        self.base = base_dir or Path.cwd()
        self.config: Config | None = None
        self.segments: list[Segment] = []
        self.seg_lines: dict[str, int] = {}
        self.insns: list[tuple[int, str, list[str]]] = []
        self.dram_bytes: int | None = None
        self.insn_addr: int | None = None

    def err(self, msg: str, line: int) -> AsmError:
        return AsmError(msg, line, self.src)

    def parse(self) -> Program:
        i = 0
        while i < len(self.lines):
            lineno = i + 1
            toks = self._tokens(self.lines[i], lineno)
            i += 1
            if not toks:
                continue
            head = toks[0].lower()
            if head == ".config":
                self._config(toks[1:], lineno)
            elif head == ".dram":
                self.dram_bytes = self._one_int(toks, lineno)
            elif head == ".insn_addr":
                self.insn_addr = self._one_int(toks, lineno)
            elif head == ".data":
                i = self._data(toks[1:], lineno, i)
            elif head.startswith("."):
                raise self.err(f"unknown directive '{toks[0]}' (known: .config .data .dram .insn_addr)", lineno)
            elif _NUM.match(head):
                raise self.err("data values outside a .data section", lineno)
            else:
                self.insns.append((lineno, head, toks[1:]))
        config = self.config or PRESETS["default"]
        for seg in self.segments:
            try:
                seg.to_bytes(config)
            except ProgramError as e:
                raise self.err(str(e), self.seg_lines[seg.name]) from None
        insns = [self._insn(lineno, head, args, config) for lineno, head, args in self.insns]
        try:
            return Program(config, insns, self.segments, insn_addr=self.insn_addr, dram_bytes=self.dram_bytes)
        except ProgramError as e:
            m = re.match(r"instruction (\d+): (.*)", str(e))
            if m:
                raise self.err(m.group(2), self.insns[int(m.group(1))][0]) from None
            last = self.insns[-1][0] if self.insns else len(self.lines)
            raise self.err(str(e), last) from None

    def _tokens(self, line: str, lineno: int) -> list[str]:
        line = re.split(r"[#;]", line, maxsplit=1)[0]
        try:
            return shlex.split(line) if line.strip() else []
        except ValueError as e:
            raise self.err(str(e), lineno) from None

    def _one_int(self, toks: list[str], lineno: int) -> int:
        if len(toks) != 2:
            raise self.err(f"{toks[0]} takes one integer", lineno)
        return _int(toks[1], toks[0], lineno, self.src)

    def _config(self, args: list[str], lineno: int) -> None:
        if self.config is not None:
            raise self.err(".config given twice", lineno)
        if not args:
            raise self.err(".config needs a preset name, config name or file", lineno)
        try:
            name = args[0]
            path = self.base / name
            base = Config.load(path) if name.endswith((".json", ".toml")) else preset(name)
            over: dict[str, int | float] = {}
            known = {f.name: f.type for f in dc_fields(Config)}
            for kv in args[1:]:
                k, sep, v = kv.partition("=")
                if not sep or k not in known:
                    raise self.err(f".config override '{kv}' is not field=value with a known field", lineno)
                over[k] = float(v) if k == "clock_mhz" else _int(v, k, lineno, self.src)
            self.config = Config.from_dict({**base.to_dict(), **over})
        except ConfigError as e:
            raise self.err(str(e), lineno) from None

    def _data(self, args: list[str], lineno: int, nxt: int) -> int:
        if len(args) < 4 or not args[3].startswith("@"):
            raise self.err(".data needs NAME DTYPE SHAPE @ADDR", lineno)
        name, dtype, shape_s, addr_s = args[:4]
        if name in self.seg_lines:
            raise self.err(f"segment '{name}' already defined at line {self.seg_lines[name]}", lineno)
        if not re.fullmatch(r"[A-Za-z_][\w.]*", name):
            raise self.err(f"segment name '{name}' must start with a letter or _", lineno)
        if dtype not in DTYPES:
            raise self.err(f"dtype '{dtype}' is not one of {', '.join(DTYPES)}", lineno)
        try:
            shape = tuple(int(d) for d in shape_s.lower().split("x"))
        except ValueError:
            raise self.err(f"shape '{shape_s}' is not like 16 or 4x16", lineno) from None
        if dtype == "uop":
            if len(shape) != 1:
                raise self.err("a uop segment's shape is its number of micro-ops", lineno)
            shape = (shape[0], 3)
        addr = _int(addr_s[1:], "address", lineno, self.src)
        rest = args[4:]
        output = bool(rest) and rest[0] == "output"
        rest = rest[1:] if output else rest
        count = int(np.prod(shape))
        if not rest:
            values, nxt = self._inline_values(count, lineno, nxt)
        else:
            values = self._init(rest, dtype, count, lineno)
        try:
            seg = Segment(name, addr, dtype, values.reshape(shape), output)
        except (ProgramError, ValueError) as e:
            raise self.err(str(e), lineno) from None
        self.segments.append(seg)
        self.seg_lines[name] = lineno
        return nxt

    def _inline_values(self, count: int, lineno: int, nxt: int) -> tuple[np.ndarray, int]:
        vals: list[int] = []
        while nxt < len(self.lines) and len(vals) < count:
            toks = re.split(r"[#;]", self.lines[nxt], maxsplit=1)[0].replace(",", " ").split()
            if toks and not _NUM.match(toks[0]):
                break
            vals.extend(_int(t, "data value", nxt + 1, self.src) for t in toks)
            nxt += 1
        if len(vals) != count:
            raise self.err(f".data expects {count} values, found {len(vals)}", lineno)
        return np.array(vals, np.int64), nxt

    def _init(self, rest: list[str], dtype: str, count: int, lineno: int) -> np.ndarray:
        kind = rest[0]
        if kind == "zeros" and len(rest) == 1:
            return np.zeros(count, np.int64)
        if kind == "random" and len(rest) in (2, 4) and dtype != "uop":
            bits = DTYPE_BITS.get(dtype, 8)
            lo, hi = (0, 255) if dtype == "uint8" else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
            if len(rest) == 4:
                lo, hi = (_int(t, "random bound", lineno, self.src) for t in rest[2:])
            seed = _int(rest[1], "random seed", lineno, self.src)
            return np.random.default_rng(seed).integers(lo, hi, count, endpoint=True)
        if kind == "file" and len(rest) == 2:
            path = self.base / rest[1]
            try:
                arr = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise self.err(f"cannot read {path}: {e}", lineno) from None
            if arr.size != count or arr.dtype.kind not in "iub":
                raise self.err(f"{path}: {arr.size} {arr.dtype} values, expected {count} integers", lineno)
            return arr.astype(np.int64).reshape(-1)
        raise self.err(f"initialiser '{' '.join(rest)}' is not zeros, random SEED [LO HI] or file PATH", lineno)

    # ---- instructions ----------------------------------------------------
    def _insn(self, lineno: int, head: str, args: list[str], config: Config) -> Insn:
        try:
            insn = self._insn_inner(lineno, head, args, config)
            encode_insns([insn], config)  # range-check every field against this config's layout
            return insn
        except EncodingError as e:
            raise self.err(e.detail, lineno) from None

    def _insn_inner(self, lineno: int, head: str, args: list[str], config: Config) -> Insn:
        if head == "finish":
            return self._operands(Insn(Opcode.FINISH), args, {}, lineno, config)
        if head in ("load", "store"):
            if not args:
                raise self.err(f"{head} needs a memory type", lineno)
            try:
                mem = MemType[args[0].upper()]
            except KeyError:
                raise self.err(f"unknown memory type '{args[0]}' (uop, wgt, inp, acc, out)", lineno) from None
            insn = Insn(Opcode.LOAD if head == "load" else Opcode.STORE, memory_type=mem)
            self._operands(insn, args[1:], _MEM_KEYS, lineno, config, required=("sram", "dram", "y", "x"))
            return insn
        if head == "gemm":
            insn = Insn(Opcode.GEMM, iter_out=1, iter_in=1)
            if args and args[0] == "reset":
                insn.reset, args = 1, args[1:]
            return self._operands(insn, args, _GEMM_KEYS, lineno, config, required=("uops",))
        if head == "alu":
            if not args:
                raise self.err("alu needs an operation", lineno)
            try:
                op = AluOp[args[0].upper()]
            except KeyError:
                names = ", ".join(o.name.lower() for o in AluOp)
                raise self.err(f"unknown ALU operation '{args[0]}' ({names})", lineno) from None
            insn = Insn(Opcode.ALU, alu_op=op, iter_out=1, iter_in=1)
            return self._operands(insn, args[1:], _ALU_KEYS, lineno, config, required=("uops",))
        raise self.err(f"unknown instruction '{head}' (load, store, gemm, alu, finish)", lineno)

    def _operands(self, insn: Insn, args: list[str], keys: dict[str, tuple[str, ...]], lineno: int,
                  config: Config, required: tuple[str, ...] = ()) -> Insn:
        seen: set[str] = set()
        for arg in args:
            k, sep, v = arg.partition("=")
            if not sep:
                raise self.err(f"operand '{arg}' is not key=value", lineno)
            if k in seen:
                raise self.err(f"operand '{k}' given twice", lineno)
            seen.add(k)
            if k in _DEP_KEYS:
                for side in v.split(","):
                    if side not in ("prev", "next"):
                        raise self.err(f"{k}= takes prev and/or next, not '{side}'", lineno)
                    setattr(insn, f"{k}_{side}", 1)
                continue
            if k not in keys:
                allowed = ", ".join([*keys, *_DEP_KEYS])
                raise self.err(f"unknown operand '{k}' for {insn.opcode.name.lower()} (allowed: {allowed})", lineno)
            targets = keys[k]
            parts = v.split(":") if k == "uops" else v.split(",")
            if len(parts) != len(targets):
                form = ":".join(["N"] * 2) if k == "uops" else ",".join(["N"] * len(targets))
                raise self.err(f"{k}= takes {form}", lineno)
            for field, part in zip(targets, parts):
                value = self._dram(part, insn, lineno, config) if k == "dram" else _int(part, k, lineno, self.src)
                setattr(insn, field, value)
            if k == "imm":
                insn.use_imm = 1
        missing = [r for r in required if r not in seen]
        if missing:
            raise self.err(f"{insn.opcode.name.lower()} is missing {', '.join(missing)}=", lineno)
        if "x" in seen and "stride" not in seen:
            insn.x_stride = insn.x_size
        return insn

    def _dram(self, text: str, insn: Insn, lineno: int, config: Config) -> int:
        if _NUM.match(text):
            return int(text, 0)
        m = re.fullmatch(r"([A-Za-z_][\w.]*)(?:([+-])(0x[0-9a-fA-F]+|\d+))?", text)
        if not m or m.group(1) not in self.seg_lines:
            raise self.err(f"dram={text}: not a number or a defined segment (plus offset)", lineno)
        seg = next(s for s in self.segments if s.name == m.group(1))
        elem = config.elem_bytes(insn.memory_type)
        if seg.addr % elem:
            raise self.err(f"segment '{seg.name}' at {seg.addr:#x} is not aligned to "
                           f"{MemType(insn.memory_type).name} elements of {elem} bytes", lineno)
        off = int(m.group(3), 0) if m.group(3) else 0
        return seg.addr // elem + (-off if m.group(2) == "-" else off)


def assemble(text: str, source: str | None = None, base_dir: str | Path | None = None) -> Program:
    """Assemble program text; errors are AsmError with the line number."""
    return _Parser(text, source, Path(base_dir) if base_dir else None).parse()


def assemble_file(path: str | Path) -> Program:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise AsmError(f"cannot read: {e.strerror}", None, str(path)) from None
    return assemble(text, str(path), path.parent)


def parse_insn(line: str, config: Config | None = None) -> Insn:
    """Parse a single instruction line (no segment names) into an Insn."""
    p = _Parser(line, None, None)
    toks = p._tokens(line, 1)
    if not toks:
        raise AsmError("empty instruction", 1)
    return p._insn(1, toks[0].lower(), toks[1:], config or PRESETS["default"])


# ---- disassembly ---------------------------------------------------------

def _pair(a: int, b: int, sep: str = ",") -> str:
    return f"{a}{sep}{b}"


def format_insn(insn: Insn) -> str:
    """One instruction in canonical assembly (no comment)."""
    v = insn.fields()
    op = insn.opcode
    parts: list[str] = []
    if op in (Opcode.LOAD, Opcode.STORE):
        parts = [op.name.lower(), MemType(v["memory_type"]).name.lower() if v["memory_type"] in
                 [int(m) for m in MemType] else str(v["memory_type"]),
                 f"sram={v['sram_base']}", f"dram={v['dram_base']}", f"y={v['y_size']}", f"x={v['x_size']}",
                 f"stride={v['x_stride']}"]
        pads = (v["y_pad_top"], v["y_pad_bottom"], v["x_pad_left"], v["x_pad_right"])
        if any(pads):
            parts.append("pad=" + ",".join(map(str, pads)))
        if v["pad_value"]:
            parts.append(f"padval={v['pad_value']}")
    elif op in (Opcode.GEMM, Opcode.ALU):
        if op == Opcode.GEMM:
            parts = ["gemm"] + (["reset"] if v["reset"] else [])
        else:
            name = AluOp(v["alu_op"]).name.lower() if v["alu_op"] in [int(o) for o in AluOp] else str(v["alu_op"])
            parts = ["alu", name]
        parts += [f"uops={_pair(v['uop_bgn'], v['uop_end'], ':')}", f"iter={_pair(v['iter_out'], v['iter_in'])}",
                  f"dst={_pair(v['dst_factor_out'], v['dst_factor_in'])}",
                  f"src={_pair(v['src_factor_out'], v['src_factor_in'])}"]
        if op == Opcode.GEMM:
            parts.append(f"wgt={_pair(v['wgt_factor_out'], v['wgt_factor_in'])}")
        elif v["use_imm"]:
            parts.append(f"imm={v['imm']}")
        elif v["imm"]:
            raise EncodingError("ALU immediate set without use_imm cannot be written in assembly")
    else:
        parts = ["finish"]
    for k in ("pop", "push"):
        sides = [s for s in ("prev", "next") if v[f"{k}_{s}"]]
        if sides:
            parts.append(f"{k}={','.join(sides)}")
    return " ".join(parts)


def _config_line(config: Config) -> str:
    for name, p in PRESETS.items():
        if p == config:
            return f".config {name}"
    base = Config.from_name(config.name)
    over = [f"{f.name}={getattr(config, f.name)}" for f in dc_fields(Config)
            if getattr(config, f.name) != getattr(base, f.name)]
    return " ".join([".config", config.name, *over])


def disassemble(program: Program, data: bool = True) -> str:
    """Canonical assembly text of a program; with ``data``, it assembles back to the same program."""
    cfg = program.config
    out = [_config_line(cfg), f".dram {program.dram_bytes:#x}", f".insn_addr {program.insn_addr:#x}"]
    for s in program.segments:
        shape = str(s.shape[0]) if s.dtype == "uop" else "x".join(map(str, s.shape))
        head = f".data {s.name} {s.dtype} {shape} @{s.addr:#x}" + (" output" if s.output else "")
        flat = s.values.reshape(-1)
        if not flat.any():
            out.append(head + " zeros")
        elif not data:
            out.append(head + f"  # {flat.size} values omitted")
        else:
            out.append(head)
            per = 3 if s.dtype == "uop" else 16
            for i in range(0, flat.size, per):
                out.append("  " + " ".join(str(x) for x in flat[i : i + per]))

    def symbol(insn: Insn) -> str | None:
        if insn.opcode not in (Opcode.LOAD, Opcode.STORE) or insn.memory_type not in [int(m) for m in MemType]:
            return None
        addr = insn.dram_base * cfg.elem_bytes(insn.memory_type)
        for s in program.segments:
            if s.addr <= addr < s.addr + s.nbytes(cfg):
                off = (addr - s.addr) // cfg.elem_bytes(insn.memory_type)
                return s.name + (f"+{off}" if off else "")
        return None

    for i, insn in enumerate(program.insns):
        sym = symbol(insn)
        out.append(f"{format_insn(insn):<72} # {i}" + (f" {sym}" if sym else ""))
    return "\n".join(out) + "\n"

