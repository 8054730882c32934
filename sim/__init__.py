"""Simulators: `fsim` (functional, numpy-vectorized, with a timing model)."""

from .errors import BoundsError, DeadlockError, InvalidInsnError, RaceError, SimError

__all__ = ["BoundsError", "DeadlockError", "InvalidInsnError", "RaceError", "SimError"]
