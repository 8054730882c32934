"""The functional simulator: numpy-vectorized instruction semantics, token
scheduling with deadlock and race detection, counters and a timing model."""

from .machine import Fsim, RunStats
from .timing import TimingParams, insn_cycles

__all__ = ["Fsim", "RunStats", "TimingParams", "insn_cycles"]
