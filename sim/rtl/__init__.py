"""The rtl simulator: the accelerator RTL compiled with Verilator, driven from Python through a C ABI.

`RtlSim` (``sim.py``) runs programs; ``build.py`` builds and caches the library
(`vta.sim.rtl.build.build`); ``harness.cpp`` is the C++ memory model and host driver.
"""

from .build import BuildError, BuildResult, ToolchainError, cache_root
from .sim import DEFAULT_MAX_CYCLES, RtlResult, RtlSim, error_for

__all__ = ["DEFAULT_MAX_CYCLES", "BuildError", "BuildResult", "RtlResult", "RtlSim", "ToolchainError", "cache_root",
           "error_for"]
