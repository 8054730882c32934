"""Errors a simulator raises while running a program. Each names the
instruction (index in the stream) that caused it."""

from __future__ import annotations

from vta.isa.errors import VTAError
from vta.isa.spec import ErrorCode


class SimError(VTAError, RuntimeError):
    """A program did something the ISA forbids. ``code`` is the ErrorCode the RTL reports for it."""

    default_code = ErrorCode.NONE

    def __init__(self, message: str, insn_index: int | None = None, code: ErrorCode | None = None) -> None:
        prefix = f"instruction {insn_index}: " if insn_index is not None else ""
        super().__init__(prefix + message)
        self.insn_index = insn_index
        self.code = code if code is not None else self.default_code


class BoundsError(SimError):
    """An on-chip buffer (SRAM_BOUNDS) or DRAM (DRAM_BOUNDS) access outside its range."""

    default_code = ErrorCode.SRAM_BOUNDS


class InvalidInsnError(SimError):
    """An instruction that can never be executed (unknown opcode, bad field, misplaced FINISH)."""

    default_code = ErrorCode.BAD_FIELD


class DeadlockError(SimError):
    """No module can make progress; the message gives each module's state."""

    default_code = ErrorCode.DEADLOCK


class RaceError(SimError):
    """Two modules touched the same buffer entry without a dependency token ordering them.

    Only the simulator can see this; the hardware has no equivalent code."""
