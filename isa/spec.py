"""The ISA declared as data: opcodes, memory types, ALU operations, modules,
token queues and the field lists of every instruction and of the micro-op.

Field widths are either fixed numbers or the name of a derived `Config`
attribute, so the layouts follow the hardware configuration. `layout.py`
places the fields; everything else (encoder, decoder, RTL views, the ISA
document's tables) is generated from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

INSN_BITS = 128
WORD_BITS = 64
OPCODE_BITS = 3
MEMTYPE_BITS = 3
ALU_OP_BITS = 3
ITER_BITS = 14
DRAM_ADDR_BITS = 32
SIZE_BITS = 16
PAD_BITS = 4
PAD_VALUE_BITS = 8
IMM_BITS = 16
UOP_WORD_BITS = 32  # micro-ops occupy a whole number of 32-bit words


class Opcode(IntEnum):
    """Instruction opcode (VTA numbering)."""

    LOAD = 0
    STORE = 1
    GEMM = 2
    FINISH = 3
    ALU = 4


class MemType(IntEnum):
    """On-chip memory addressed by LOAD and STORE (VTA numbering).

    LOAD accepts UOP, WGT, INP and ACC. STORE accepts OUT (accumulators
    narrowed to the output width) and ACC (accumulators at full width).
    """

    UOP = 0
    WGT = 1
    INP = 2
    ACC = 3
    OUT = 4


class AluOp(IntEnum):
    """ALU lane operation; each takes `dst` and an operand `b` (immediate or acc)."""

    MIN = 0
    MAX = 1
    ADD = 2
    SHR = 3
    MUL = 4
    MOV = 5


class ErrorCode(IntEnum):
    """Why a run stopped early. The RTL's error register and the simulator's errors use the same codes."""

    NONE = 0
    BAD_OPCODE = 1    # opcode 5-7
    BAD_FIELD = 2     # a field value no instruction of its kind may have (see check_insn)
    BAD_FINISH = 3    # FINISH before the end of the stream, or a stream not ending in FINISH
    SRAM_BOUNDS = 4   # a buffer region or micro-op index past a buffer's end
    DRAM_BOUNDS = 5   # a DRAM access (or the instruction fetch) past the DRAM limit
    DEADLOCK = 6      # no module can proceed before completion
    BUS_ERROR = 7     # the memory answered a transfer with an error response


ERROR_CODE_BITS = 4


class Module(IntEnum):
    """The three concurrently running modules, in pipeline order."""

    LOAD = 0
    COMPUTE = 1
    STORE = 2


class Queue(IntEnum):
    """The four dependency-token queues, named source→destination."""

    L2C = 0
    C2L = 1
    C2S = 2
    S2C = 3

    @property
    def src(self) -> Module:
        return _QUEUE_ENDS[self][0]

    @property
    def dst(self) -> Module:
        return _QUEUE_ENDS[self][1]


_QUEUE_ENDS = {
    Queue.L2C: (Module.LOAD, Module.COMPUTE),
    Queue.C2L: (Module.COMPUTE, Module.LOAD),
    Queue.C2S: (Module.COMPUTE, Module.STORE),
    Queue.S2C: (Module.STORE, Module.COMPUTE),
}

# For each module, the queue behind each dependency flag (None: the flag is illegal there).
DEP_QUEUES: dict[Module, dict[str, Queue | None]] = {
    Module.LOAD: {"pop_prev": None, "pop_next": Queue.C2L, "push_prev": None, "push_next": Queue.L2C},
    Module.COMPUTE: {"pop_prev": Queue.L2C, "pop_next": Queue.S2C, "push_prev": Queue.C2L, "push_next": Queue.C2S},
    Module.STORE: {"pop_prev": Queue.C2S, "pop_next": None, "push_prev": Queue.S2C, "push_next": None},
}
DEP_FLAGS = ("pop_prev", "pop_next", "push_prev", "push_next")

LOAD_MEMTYPES = (MemType.UOP, MemType.WGT, MemType.INP, MemType.ACC)
STORE_MEMTYPES = (MemType.OUT, MemType.ACC)


def module_of(opcode: int, memory_type: int = 0) -> Module:
    """The module that executes an instruction.

    LOADs of inputs and weights run on the load module; LOADs of micro-ops and
    accumulators, GEMM, ALU and FINISH run on the compute module; STOREs on the
    store module.
    """
    if opcode == Opcode.LOAD:
        return Module.LOAD if memory_type in (MemType.INP, MemType.WGT) else Module.COMPUTE
    if opcode == Opcode.STORE:
        return Module.STORE
    return Module.COMPUTE


def _values(enum: type[IntEnum]) -> str:
    return ", ".join(f"{e.name}={int(e)}" for e in enum)


@dataclass(frozen=True)
class FieldDecl:
    """One field: its name, width (bits, or the name of a Config attribute
    giving the bits), signedness and a one-line description."""

    name: str
    width: int | str
    doc: str
    signed: bool = False


_COMMON = (
    FieldDecl("opcode", OPCODE_BITS, "operation: " + _values(Opcode)),
    FieldDecl("pop_prev", 1, "wait for and take a token from the previous module"),
    FieldDecl("pop_next", 1, "wait for and take a token from the next module"),
    FieldDecl("push_prev", 1, "give a token to the previous module when done"),
    FieldDecl("push_next", 1, "give a token to the next module when done"),
)

_LOOP = (
    FieldDecl("uop_bgn", "uop_idx_bits", "first micro-op (uop buffer index)"),
    FieldDecl("uop_end", "uop_end_bits", "one past the last micro-op"),
    FieldDecl("iter_out", ITER_BITS, "outer loop extent"),
    FieldDecl("iter_in", ITER_BITS, "inner loop extent"),
)

LAYOUT_DECLS: dict[str, tuple[FieldDecl, ...]] = {
    "mem": _COMMON + (
        FieldDecl("memory_type", MEMTYPE_BITS, _values(MemType)),
        FieldDecl("sram_base", "sram_idx_bits", "first on-chip buffer entry"),
        FieldDecl("dram_base", DRAM_ADDR_BITS, "DRAM address in elements of the memory type"),
        FieldDecl("pad_value", PAD_VALUE_BITS, "value written to padding (sign-extended)", signed=True),
        FieldDecl("y_size", SIZE_BITS, "rows transferred"),
        FieldDecl("x_size", SIZE_BITS, "elements per row transferred"),
        FieldDecl("x_stride", SIZE_BITS, "DRAM distance between rows, in elements"),
        FieldDecl("y_pad_top", PAD_BITS, "padding rows before the data (LOAD only)"),
        FieldDecl("y_pad_bottom", PAD_BITS, "padding rows after the data (LOAD only)"),
        FieldDecl("x_pad_left", PAD_BITS, "padding elements before each row (LOAD only)"),
        FieldDecl("x_pad_right", PAD_BITS, "padding elements after each row (LOAD only)"),
    ),
    "gemm": _COMMON + (
        FieldDecl("reset", 1, "write zero to the accumulators instead of accumulating"),
    ) + _LOOP + (
        FieldDecl("dst_factor_out", "acc_idx_bits", "acc index step per outer iteration"),
        FieldDecl("dst_factor_in", "acc_idx_bits", "acc index step per inner iteration"),
        FieldDecl("src_factor_out", "inp_idx_bits", "inp index step per outer iteration"),
        FieldDecl("src_factor_in", "inp_idx_bits", "inp index step per inner iteration"),
        FieldDecl("wgt_factor_out", "wgt_idx_bits", "wgt index step per outer iteration"),
        FieldDecl("wgt_factor_in", "wgt_idx_bits", "wgt index step per inner iteration"),
    ),
    "alu": _COMMON + _LOOP + (
        FieldDecl("use_imm", 1, "operand b is the immediate instead of acc[src]"),
        FieldDecl("dst_factor_out", "acc_idx_bits", "dst acc index step per outer iteration"),
        FieldDecl("dst_factor_in", "acc_idx_bits", "dst acc index step per inner iteration"),
        FieldDecl("src_factor_out", "acc_idx_bits", "src acc index step per outer iteration"),
        FieldDecl("src_factor_in", "acc_idx_bits", "src acc index step per inner iteration"),
        FieldDecl("alu_op", ALU_OP_BITS, _values(AluOp)),
        FieldDecl("imm", IMM_BITS, "immediate operand (sign-extended)", signed=True),
    ),
    "finish": _COMMON,
}

UOP_DECL: tuple[FieldDecl, ...] = (
    FieldDecl("dst_idx", "acc_idx_bits", "acc entry written (GEMM and ALU)"),
    FieldDecl("src_idx", "uop_src_bits", "inp entry (GEMM) or acc entry (ALU) read"),
    FieldDecl("wgt_idx", "wgt_idx_bits", "wgt entry read (GEMM; ignored by ALU)"),
)

LAYOUT_OF_OPCODE: dict[Opcode, str] = {
    Opcode.LOAD: "mem",
    Opcode.STORE: "mem",
    Opcode.GEMM: "gemm",
    Opcode.ALU: "alu",
    Opcode.FINISH: "finish",
}
