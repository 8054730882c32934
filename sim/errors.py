"""Errors a simulator raises while running a program. Each names the
instruction (index in the stream) that caused it."""

from __future__ import annotations

from vta.isa.errors import VTAError


class SimError(VTAError, RuntimeError):
    """A program did something the ISA forbids."""

    def __init__(self, message: str, insn_index: int | None = None) -> None:
        prefix = f"instruction {insn_index}: " if insn_index is not None else ""
        super().__init__(prefix + message)
        self.insn_index = insn_index


class BoundsError(SimError):
    """An on-chip buffer or DRAM access outside its range."""


class InvalidInsnError(SimError):
    """An instruction that can never be executed (unknown opcode, bad field)."""


class DeadlockError(SimError):
    """No module can make progress; the message gives each module's state."""


class RaceError(SimError):
    """Two modules touched the same buffer entry without a dependency token ordering them."""
