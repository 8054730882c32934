"""Errors raised by the ISA layer (config validation, encoding, assembly)."""

from __future__ import annotations


class VTAError(Exception):
    """Base class of every error this project raises on bad input."""


class ConfigError(VTAError, ValueError):
    """A hardware configuration value is invalid; names the field and what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"config field '{field}': {message}")
        self.field = field


class EncodingError(VTAError, ValueError):
    """A value does not fit its instruction or micro-op field, or an opcode is unknown.

    ``index`` is the instruction (or micro-op) the error is about, when known;
    ``detail`` the message without it.
    """

    def __init__(self, detail: str, index: int | None = None, what: str = "instruction") -> None:
        super().__init__(f"{what} {index}: {detail}" if index is not None else detail)
        self.detail = detail
        self.index = index


class AsmError(VTAError, ValueError):
    """Malformed assembly; names the file and line."""

    def __init__(self, message: str, line: int | None = None, source: str | None = None) -> None:
        where = ""
        if source or line is not None:
            where = f"{source or '<asm>'}:{line if line is not None else '?'}: "
        super().__init__(where + message)
        self.line = line
        self.source = source


class ProgramError(VTAError, ValueError):
    """A program file or program object is malformed."""
