"""Timing model: estimated cycles per instruction, and the schedule the three
modules would follow given their token dependencies.

Each module runs its instructions in order; an instruction starts when its
module is free, it has been fetched, and every token it pops has been pushed
(a token is pushed when the pushing instruction ends). The estimate is the
end of the last instruction. LOADs of both modules share the memory's read
channel, one beat per cycle (`ReadBus`): a LOAD whose data would arrive while
another transfer holds the bus finishes later. Costs have parameters in
`TimingParams`, calibrated against the RTL's exact cycle counts
(benchmarks/timing_calibration.py; results in BENCHMARKS.md).
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass

from vta.isa import INSN_BYTES, Config, Insn, MemType, Opcode


@dataclass(frozen=True)
class TimingParams:
    """Cycle costs of the model (all in accelerator clock cycles)."""

    insn_overhead: int = 2         # decode and issue of a GEMM or ALU instruction
    dma_overhead: int = 8          # a LOAD's or STORE's fixed cost besides the DRAM latency
    compute_load_extra: int = 1    # LOAD UOP/ACC (compute module) beyond a load-module LOAD
    fetch_start: int = 12          # from the start of a run to the first instruction, besides the DRAM latency
    fetch_per_insn: int = 1        # fetch: extra cycles per instruction beyond its bus beats
    dram_latency: int = 32         # first beat of a DMA after its request
    dma_row_overhead: int = 0      # per DMA row (rows continue the bursts back to back)
    gemm_pipeline: int = 5         # GEMM core fill/drain per instruction
    alu_pipeline_imm: int = 4      # ALU fill/drain per instruction, immediate operand
    alu_pipeline_vec: int = 3      # ALU fill/drain per instruction, vector operand
    alu_cycles_imm: int = 1        # per ALU micro-op with an immediate operand
    alu_cycles_vec: int = 2        # per ALU micro-op reading a second accumulator
    finish_tail: int = 2           # from the last module going idle to done

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
        extra = p.compute_load_extra if op == Opcode.LOAD and insn.memory_type in (MemType.UOP, MemType.ACC) else 0
        return p.dma_overhead + extra + p.dram_latency + insn.y_size * row + pad
    n = (insn.uop_end - insn.uop_bgn) * insn.iter_out * insn.iter_in
    if op == Opcode.GEMM:
        return p.insn_overhead + p.gemm_pipeline + n
    if insn.use_imm:
        return p.insn_overhead + p.alu_pipeline_imm + n * p.alu_cycles_imm
    return p.insn_overhead + p.alu_pipeline_vec + n * p.alu_cycles_vec


def read_beats(insn: Insn, config: Config) -> int:
    """Bus beats a LOAD moves on the read channel (0 for other instructions and empty loads)."""
    if insn.opcode != Opcode.LOAD or insn.x_size == 0 or insn.y_size == 0:
        return 0
    return insn.y_size * _beats(insn.x_size * config.elem_bytes(insn.memory_type), config.bus_bytes)


def data_start(p: TimingParams) -> int:
    """Cycles from a LOAD's start to its first data beat."""
    return p.dma_overhead + p.dram_latency


class ReadBus:
    """The read channel as a timeline of busy cycles, one beat per cycle.

    `reserve` places a transfer's beats in the first free cycles from a given time
    and returns when its last beat has moved. Transfers are placed in the order the
    simulator schedules them, which approximates the hardware's round-robin arbiter:
    the total bandwidth is exact, the split between concurrent transfers is not.
    """

    def __init__(self) -> None:
        self._starts: list[int] = []  # disjoint busy intervals [start, end), sorted
        self._ends: list[int] = []

    def reserve(self, t: int, beats: int) -> int:
        """Occupy ``beats`` free cycles from cycle ``t`` on; the cycle after the last one."""
        starts, ends = self._starts, self._ends
        i = bisect.bisect_right(ends, t)  # intervals ending at or before t cannot matter
        taken, end, left = [], t, beats
        while left:
            if i < len(starts) and starts[i] <= end:  # busy at `end`: skip past the interval
                end = max(end, ends[i])
                i += 1
                continue
            take = left if i == len(starts) else min(starts[i] - end, left)
            taken.append((end, end + take))
            end += take
            left -= take
        for a, b in taken:
            self._insert(a, b)
        return end

    def _insert(self, a: int, b: int) -> None:
        """Add the free interval [a, b), merging it with touching neighbours."""
        starts, ends = self._starts, self._ends
        j = bisect.bisect_left(starts, a)
        starts.insert(j, a)
        ends.insert(j, b)
        if j + 1 < len(starts) and starts[j + 1] == b:
            ends[j] = ends.pop(j + 1)
            starts.pop(j + 1)
        if j > 0 and ends[j - 1] == a:
            ends[j - 1] = ends.pop(j)
            starts.pop(j)


def fetch_cycles(config: Config, p: TimingParams) -> int:
    """Cycles the fetch module spends per instruction (one instruction's bytes over the bus)."""
    return _beats(INSN_BYTES, config.bus_bytes) + p.fetch_per_insn
