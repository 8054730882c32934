"""VTA-style tensor accelerator: hardware/software co-design framework.

The public API re-exports the pieces most users need; the parts live in
`vta.isa` (config and instruction set), `vta.sim` (simulators), `vta.runtime`
(devices and the command-queue builder), `vta.hw` and `vta.compiler`.
"""

import os as _os

# In a source checkout the parts are sibling folders of this one (isa/, sim/, ...);
# an installed package has them inside. Let the source layout import the same way.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isdir(_os.path.join(_os.path.dirname(__file__), "isa")) and _os.path.isfile(
    _os.path.join(_root, "isa", "spec.py")
):
    __path__.append(_root)  # type: ignore[name-defined]

__version__ = "0.1.0"

from vta.isa import PRESETS, Config, Insn, Program, assemble, disassemble, preset, resolve

__all__ = ["PRESETS", "Config", "Insn", "Program", "__version__", "assemble", "disassemble", "preset", "resolve"]
