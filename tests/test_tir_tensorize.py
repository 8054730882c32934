"""Tensorize: a tiled dense nest matched against the config's GEMM intrinsic, and the
mismatches reported with the loop, extent, buffer or expression that differs."""

from __future__ import annotations

import numpy as np
import pytest

from vta.compiler.tir import run
from vta.compiler.tir.intrin import IntrinCall, gemm_intrin
from vta.compiler.tir.ops import dense
from vta.compiler.tir.schedule import Schedule, ScheduleError
from vta.compiler.tir.transform import walk_stmt
from vta.isa import PRESETS


def _tiled(name: str, m: int, n: int, k: int, tile_j: int | None = None, caches: bool = True,
           decompose: bool = True) -> tuple[Schedule, object]:
    cfg = PRESETS[name]
    sch = Schedule(dense(m, n, k))
    i, j, r = sch.get_loops(sch.get_block("dense"))
    i0, i1 = sch.split(i, [None, cfg.batch])
    j0, j1 = sch.split(j, [None, tile_j or cfg.block_out])
    r0, r1 = sch.split(r, [None, cfg.block_in])
    sch.reorder(i0, j0, r0, i1, j1, r1)
    if caches:
        a, w = sch.cache_read("dense", 1, "inp"), sch.cache_read("dense", 2, "wgt")
        c = sch.cache_write("dense", 0, "acc")
        sch.compute_at(a, j0)
        sch.compute_at(w, j0)
        sch.reverse_compute_at(c, j0)
    if decompose:
        sch.decompose_reduction("dense", r0)
    return sch, i1


@pytest.mark.parametrize("name", ["default", "batch4", "nonsquare", "tiny"])
def test_gemm_tensorizes_and_keeps_results(name: str) -> None:
    cfg = PRESETS[name]
    m, n, k = 2 * cfg.batch, 3 * cfg.block_out, 2 * cfg.block_in
    sch, inner = _tiled(name, m, n, k)
    intrin = gemm_intrin(cfg)
    sch.tensorize(inner, intrin)  # type: ignore[arg-type]
    calls = [s for s in walk_stmt(sch.func.body) if isinstance(s, IntrinCall)]
    assert len(calls) == 1 and [r.buffer.name for r in calls[0].regions] == ["C_acc", "A_inp", "W_wgt"]
    assert f"{intrin.name}(C_acc[" in str(sch.func)
    assert sch.trace_str().endswith(f"sch.tensorize(i_1, {intrin.name})")
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    c = np.zeros((m, n), np.int32)
    run(sch.func, a, w, c)
    assert np.array_equal(c, a.astype(np.int32) @ w.astype(np.int32).T)


def test_mismatches_say_what_differs() -> None:
    gemm = gemm_intrin(PRESETS["default"])
    sch, inner = _tiled("default", 2, 32, 32, tile_j=8)
    with pytest.raises(ScheduleError, match="loop j_1 has extent 8; the intrinsic's loop o has 16"):
        sch.tensorize(inner, gemm)  # type: ignore[arg-type]
    sch, inner = _tiled("default", 2, 32, 32, decompose=False)
    with pytest.raises(ScheduleError, match="block dense has an init part: decompose_reduction it first"):
        sch.tensorize(inner, gemm)  # type: ignore[arg-type]
    sch, inner = _tiled("default", 2, 32, 32, caches=False)
    with pytest.raises(ScheduleError, match="buffer C is int32 in scope global; the intrinsic's acc is int32 in "
                                            "scope acc"):
        sch.tensorize(inner, gemm)  # type: ignore[arg-type]
    sch, _ = _tiled("default", 2, 32, 32)
    i0 = sch.get_loops("dense")[0]
    with pytest.raises(ScheduleError, match="the nest must be loops around a single block"):
        sch.tensorize(i0, gemm)
    with pytest.raises(ScheduleError, match="loop j_1 has extent 16; the intrinsic's loop o has 4"):
        sch.tensorize(sch.get_loops("dense")[3], gemm_intrin(PRESETS["tiny"]))
