"""Run a self-contained `Program` on a device and read back its outputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vta.isa import INSN_BYTES, Program
from vta.isa.errors import VTAError
from vta.sim.fsim import RunStats

from .device import Device


@dataclass
class ProgramResult:
    outputs: dict[str, np.ndarray]
    stats: RunStats


def run_program(program: Program, device: Device) -> ProgramResult:
    """Place the program's DRAM image at its own addresses, run it, and read its output segments."""
    if program.config != device.config:
        raise VTAError(f"program is for config {program.config.name}, device runs {device.config.name}")
    if program.dram_bytes > device.allocator.size:
        raise VTAError(f"program needs {program.dram_bytes:#x} bytes of DRAM, device has {device.allocator.size:#x}")
    image = device.reserve(0, program.dram_bytes)
    try:
        image.write(program.dram_image())
        insns = type(image)(device, program.insn_addr, len(program.insns) * INSN_BYTES)
        device.run(insns, len(program.insns))
        stats = device.synchronize()
        dram = image.read()
        outputs = {s.name: s.read(dram, program.config) for s in program.outputs()}
    finally:
        device.free(image)
    return ProgramResult(outputs, stats)
