"""Timing model: estimated cycles per instruction, and the schedule the three
modules would follow given their token dependencies.

Each module runs its instructions in order; an instruction starts when its
module is free, it has been fetched, and every token it pops has been pushed
(a token is pushed when the pushing instruction ends). The estimate is the
end of the last instruction. Costs are a first model with parameters in
`TimingParams`, to be calibrated against the RTL's exact cycle counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from vta.isa import INSN_BYTES, Config, Insn, MemType, Opcode


@dataclass(frozen=True)
class TimingParams:
    """Cycle costs of the model (all in accelerator clock cycles)."""

    insn_overhead: int = 2         # decode and issue of any instruction
    fetch_per_insn: int = 1        # fetch: extra cycles per instruction beyond its bus beats
    dram_latency: int = 32         # first beat of a DMA after its request
    dma_row_overhead: int = 2      # per DMA row (one burst request per row)
    gemm_pipeline: int = 4         # GEMM core fill/drain per instruction
    alu_pipeline: int = 3          # ALU fill/drain per instruction
    alu_cycles_imm: int = 1        # per ALU micro-op with an immediate operand
    alu_cycles_vec: int = 2        # per ALU micro-op reading a second accumulator

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _beats(nbytes: int, bus_bytes: int) -> int:
    return -(-nbytes // bus_bytes)


def insn_cycles(insn: Insn, config: Config, p: TimingParams) -> int:
    """Estimated cycles from an instruction's start to its end."""
    op = insn.opcode
    if op == Opcode.FINISH:
        return 1
    if op in (Opcode.LOAD, Opcode.STORE):
        if insn.x_size == 0 or insn.y_size == 0:
            return p.insn_overhead
        elem = config.elem_bytes(insn.memory_type)
        row_beats = _beats(insn.x_size * elem, config.bus_bytes)
        # A row moves at the slower of the bus and the buffer port (one entry per cycle).
        row = max(row_beats, insn.x_size) + p.dma_row_overhead
        pad = 0
        if op == Opcode.LOAD and insn.memory_type != MemType.UOP:
            cols = insn.x_pad_left + insn.x_size + insn.x_pad_right
            pad = (insn.y_pad_top + insn.y_pad_bottom) * cols + insn.y_size * (cols - insn.x_size)
        return p.insn_overhead + p.dram_latency + insn.y_size * row + pad
    n = (insn.uop_end - insn.uop_bgn) * insn.iter_out * insn.iter_in
    if op == Opcode.GEMM:
        return p.insn_overhead + p.gemm_pipeline + n
    per = p.alu_cycles_imm if insn.use_imm else p.alu_cycles_vec
    return p.insn_overhead + p.alu_pipeline + n * per


def fetch_cycles(config: Config, p: TimingParams) -> int:
    """Cycles the fetch module spends per instruction (one instruction's bytes over the bus)."""
    return _beats(INSN_BYTES, config.bus_bytes) + p.fetch_per_insn
