"""The tuner: search tilings and slot counts for a workload on a config, measuring each
candidate's cycles with a given measure (`vta.measure`: the fsim timing model or exact RTL
cycles), and keep the best in a tuning log that later compiles reuse.

The log is a JSON-lines file, one measurement per line::

    {"workload": "conv2d_n1_c64_56x56_o64_k3_s1_p1_g1", "config": "1x16_i8w8a32_15_15_18_17",
     "epilogue": "...", "tiling": {"tco": 4, ...}, "cycles": 561863, "target": "fsim"}

so it can be appended to by several runs, read by people, and merged with ``cat``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vta.compiler.tir.ops import Epilogue
from vta.isa import Config
from vta.isa.errors import VTAError

from .build import Tiling, Workload, build
from .schedules import Conv2d, ConvTiling, DenseTiling, conv_cost, conv_tilings, dense_cost, dense_tilings

Measure = Callable[[object], int]  # AccelKernel -> cycles


def _epilogue_key(e: Epilogue | None) -> str:
    return "none" if e is None else json.dumps(dataclasses.asdict(e), sort_keys=True)


@dataclass
class Record:
    workload: str
    config: str
    epilogue: str
    tiling: dict[str, int]
    cycles: int
    target: str


class TuningLog:
    """Measurements per (workload, config, epilogue), kept in a JSON-lines file when given a path."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.records: list[Record] = []
        if self.path is not None and self.path.exists():
            for n, line in enumerate(self.path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    self.records.append(Record(**json.loads(line)))
                except (json.JSONDecodeError, TypeError) as e:
                    raise VTAError(f"{self.path}:{n}: not a tuning record ({e})") from None

    def add(self, rec: Record) -> None:
        self.records.append(rec)
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(dataclasses.asdict(rec)) + "\n")

    def best_record(self, wl: Workload, config: Config, epilogue: Epilogue | None = None) -> Record | None:
        key = (wl.key(), config.name, _epilogue_key(epilogue))
        recs = [r for r in self.records if (r.workload, r.config, r.epilogue) == key]
        return min(recs, key=lambda r: r.cycles) if recs else None

    def best(self, wl: Workload, config: Config, epilogue: Epilogue | None = None) -> Tiling | None:
        """The fastest tiling measured for this workload, config and epilogue, or None."""
        rec = self.best_record(wl, config, epilogue)
        if rec is None:
            return None
        cls = ConvTiling if isinstance(wl, Conv2d) else DenseTiling
        return cls(**rec.tiling)


def candidates(wl: Workload, config: Config, epilogue: Epilogue | None = None) -> list[Tiling]:
    """Every fitting tiling, best analytic estimate first."""
    if isinstance(wl, Conv2d):
        return sorted(conv_tilings(wl, config, epilogue), key=lambda t: conv_cost(wl, config, t))
    return sorted(dense_tilings(wl, config, epilogue), key=lambda t: dense_cost(wl, config, t))  # type: ignore[arg-type]


def tune(wl: Workload, config: Config, epilogue: Epilogue | None = None, trials: int = 24,
         log: TuningLog | None = None, *, measure: Measure, target: str,
         progress: Callable[[int, int, Tiling, int], None] | None = None) -> tuple[Tiling, int]:
    """Measure the ``trials`` most promising tilings (by the analytic estimate) with
    ``measure`` (compiled kernel -> cycles; ``target`` names it in the log) and return the
    fastest with its cycles; every measurement goes to ``log``. The compiler runs nothing
    itself: `vta.measure` provides measures on fsim's timing model and on the RTL."""
    cands = candidates(wl, config, epilogue)[:trials]
    if not cands:
        raise VTAError(f"{wl.key()}: no tiling fits {config.name}")
    best: tuple[Tiling, int] | None = None
    for i, t in enumerate(cands):
        cycles = measure(build(wl, config, epilogue, tiling=t).kernel)
        if log is not None:
            log.add(Record(wl.key(), config.name, _epilogue_key(epilogue), dataclasses.asdict(t), cycles, target))
        if best is None or cycles < best[1]:
            best = (t, cycles)
        if progress is not None:
            progress(i + 1, len(cands), t, cycles)
    assert best is not None
    return best
