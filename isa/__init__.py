"""The hardware configuration and the instruction set: one source of truth.

Everything another part needs about the accelerator's shape, encodings and
semantics comes from here: `Config` and its presets, the instruction and
micro-op layouts, the vectorized encoder/decoder, the assembler and the
program file format. This package imports nothing else of the project.
"""

from .asm import assemble, assemble_file, disassemble, format_insn, parse_insn
from .config import PRESETS, Config, preset, resolve
from .encoding import (
    INSN_BYTES,
    Insn,
    check_insn,
    decode_insns,
    decode_uops,
    encode_insns,
    encode_uops,
    insn_columns,
)
from .errors import AsmError, ConfigError, EncodingError, ProgramError, VTAError
from .layout import Field, Layout, insn_layouts, uop_layout
from .program import Program, Segment
from .spec import DEP_FLAGS, DEP_QUEUES, AluOp, ErrorCode, MemType, Module, Opcode, Queue, module_of

__all__ = [
    "AluOp", "AsmError", "Config", "ConfigError", "DEP_FLAGS", "DEP_QUEUES", "EncodingError", "ErrorCode", "Field",
    "INSN_BYTES", "Insn", "Layout", "MemType", "Module", "Opcode", "PRESETS", "Program", "ProgramError",
    "Queue", "Segment", "VTAError", "assemble", "assemble_file", "check_insn", "decode_insns", "decode_uops",
    "disassemble", "encode_insns", "encode_uops", "format_insn", "insn_columns", "insn_layouts",
    "module_of", "parse_insn", "preset", "resolve", "uop_layout",
]
