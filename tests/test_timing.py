"""The fsim timing model: the shared read channel and the calibrated instruction costs."""

from __future__ import annotations

import random

from vta.isa import PRESETS, Insn, MemType, encode_insns
from vta.sim.fsim import Fsim, TimingParams, insn_cycles
from vta.sim.fsim.timing import ReadBus, read_beats


def test_read_bus_fills_free_cycles_in_order() -> None:
    bus = ReadBus()
    assert bus.reserve(10, 5) == 15
    assert bus.reserve(0, 3) == 3
    assert bus.reserve(0, 10) == 18  # cycles 3..10, then 15..18
    assert bus.reserve(12, 2) == 20


def test_read_bus_against_a_set_of_cycles() -> None:
    rng = random.Random(1)
    bus, busy = ReadBus(), set()
    for _ in range(1000):
        t, n = rng.randrange(0, 2000), rng.randrange(1, 30)
        end = bus.reserve(t, n)
        cells, c = [], t
        while len(cells) < n:
            if c not in busy:
                cells.append(c)
            c += 1
        assert end == cells[-1] + 1
        busy.update(cells)
    intervals = list(zip(bus._starts, bus._ends))
    assert sum(b - a for a, b in intervals) == len(busy)
    assert all(b < a2 for (_, b), (a2, _) in zip(intervals, intervals[1:]))  # disjoint and merged


def _cycles(insns: list[Insn]) -> int:
    cfg = PRESETS["default"]
    sim = Fsim(cfg, 1 << 20)
    raw = encode_insns(insns, cfg).reshape(-1)
    sim.dram[1 << 19 : (1 << 19) + raw.size] = raw
    return sim.run(1 << 19, len(insns)).cycles


def test_concurrent_loads_share_the_read_channel() -> None:
    """A weight load (load module) and an accumulator load (compute module) at once take about
    as long as their beats together, not as long as the longer one."""
    cfg = PRESETS["default"]
    wgt = Insn.load(MemType.WGT, 0, 0, 1, 16)       # 16 x 256 bytes: 512 beats
    acc = Insn.load(MemType.ACC, 0, 0, 1, 64)       # 64 x 64 bytes: 512 beats
    assert read_beats(wgt, cfg) == read_beats(acc, cfg) == 512
    alone = _cycles([wgt, Insn.finish()])
    both = _cycles([wgt, acc, Insn.finish()])
    assert both >= alone + 500
    p = TimingParams()
    assert alone == p.dram_latency + p.fetch_start + p.fetch_per_insn + 2 + insn_cycles(wgt, cfg, p) + p.finish_tail
