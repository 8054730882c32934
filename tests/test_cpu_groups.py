"""Entry points of host kernels (`compiler.cpu.groups`): serial stages share one, parallel
stages share one only when each row of the later stages reads only the same row of what
the earlier ones wrote; results with threads match the reference either way."""

from __future__ import annotations

import numpy as np
from vta.compiler.cpu import compile_cpu
from vta.compiler.cpu.groups import groups, row_aligned, stages
from vta.compiler.cpu.schedule import default_schedule
from vta.compiler.tir import nn
from vta.compiler.tir.expr import FloorMod, IntImm
from vta.compiler.tir.scalar import FloatImm
from vta.compiler.tir.schedule import Schedule
from vta.compiler.tir.te import FuncBuilder


def _parallel_roots(f):  # type: ignore[no-untyped-def]
    sch = Schedule(f)
    for st in stages(f):
        sch.parallel(st.var)  # type: ignore[attr-defined]
    return sch.func


def test_softmax_rows_run_as_one_parallel_group() -> None:
    f = default_schedule(nn.softmax((64, 300), "float32"))
    gs = groups(f)
    assert len(gs) == 1 and gs[0].extent == 64 and gs[0].members == (0, 1, 2, 3)
    x = np.random.default_rng(0).standard_normal((64, 300)).astype(np.float32)
    ref = np.exp(x - x.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    kern = compile_cpu(f)
    for threads in (1, 2, 3):
        y = np.zeros_like(x)
        kern(x, y, threads=threads)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-7)


def _two_stages(read):  # type: ignore[no-untyped-def]
    fb = FuncBuilder("two")
    x = fb.input("X", (16, 8), "float32")
    a = fb.compute("A", (16, 8), "float32", lambda i, j: x[i, j] * FloatImm(2.0))
    y = fb.compute("Y", (16, 8), "float32", lambda i, j: read(a, i, j) + FloatImm(1.0))
    return _parallel_roots(fb.build([y]))


def test_stages_that_read_other_rows_stay_apart() -> None:
    x = np.arange(128, dtype=np.float32).reshape(16, 8)
    cases = {
        "same row": (lambda a, i, j: a[i, j], x * 2 + 1, True),
        "next row": (lambda a, i, j: a[FloorMod(i + IntImm(1), IntImm(16)), j], np.roll(x, -1, 0) * 2 + 1, False),
        "first row": (lambda a, i, j: a[IntImm(0), j], np.broadcast_to(x[0] * 2 + 1, (16, 8)), False),
    }
    for name, (read, ref, aligned) in cases.items():
        f = _two_stages(read)
        a, b = stages(f)
        assert row_aligned(a, b) is aligned, name  # type: ignore[arg-type]
        assert len(groups(f)) == (1 if aligned else 2), name
        kern = compile_cpu(f)
        for threads in (1, 2, 4):
            y = np.zeros_like(x)
            kern(x, y, threads=threads)
            assert np.array_equal(y, ref), (name, threads)
