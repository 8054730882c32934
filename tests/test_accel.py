"""Accelerator compilation end to end: operators scheduled automatically for a config,
lowered to instructions, run on fsim and compared bit for bit with the numpy fixed-point
reference: the ResNet-18 convolution layers, random conv2d and dense shapes (hypothesis),
every epilogue step, and the errors a bad schedule gets."""

from __future__ import annotations

import numpy as np
import pytest
from accel_check import check, operands, run_built
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vta.compiler.accel import LoweringError, lower
from vta.compiler.accel.build import build
from vta.compiler.accel.schedules import (
    RESNET18, Conv2d, ConvTiling, Dense, DenseTiling, conv2d_schedule, conv_needs, resnet18_layer,
)
from vta.compiler.tir.ops import Epilogue
from vta.isa import PRESETS, Config, Opcode

CONFIGS = ["default", "batch4", "nonsquare", "tiny"]  # tiny: the small-buffer config
REQUANT = Epilogue(bias=True, multiplier=19, shift=11, zero_point=-2, relu=True)


def resnet_layer(name: str, cfg: Config) -> Conv2d:
    return resnet18_layer(name, cfg.batch)


@pytest.mark.slow
@pytest.mark.parametrize("layer", list(RESNET18))
@pytest.mark.parametrize("name", CONFIGS)
def test_resnet18_layer_bit_exact(name: str, layer: str) -> None:
    cfg = PRESETS[name]
    built, stats = check(resnet_layer(layer, cfg), cfg, REQUANT)
    assert stats.gemm_uops > 0 and built.kernel.stats["gemm"] > 0


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("epilogue", [None, REQUANT, Epilogue(shift=3), Epilogue(multiplier=-3, out_dtype="int32"),
                                      Epilogue(bias=True, relu=True, zero_point=5),
                                      Epilogue(bias=True, multiplier=300, shift=22, zero_point=-3, relu=True),
                                      Epilogue(bias=True, per_channel=True, shift=18, zero_point=2, relu=True),
                                      Epilogue(per_channel=True, shift=9)],
                         ids=["int32", "requant", "pow2", "mul_int32", "bias_relu_zp", "long_shift", "per_channel",
                              "per_channel_no_bias"])
def test_epilogues(name: str, epilogue: Epilogue | None) -> None:
    cfg = PRESETS[name]
    check(Conv2d(cfg.batch, 2 * cfg.block_in, 6, 5, 2 * cfg.block_out, 3, 1, 1), cfg, epilogue)
    check(Dense(2 * cfg.batch, 3 * cfg.block_out, 2 * cfg.block_in), cfg, epilogue)


@pytest.mark.parametrize("name", CONFIGS)
def test_groups_stride_and_batch_matmul(name: str) -> None:
    cfg = PRESETS[name]
    bn, bi, bo = cfg.batch, cfg.block_in, cfg.block_out
    check(Conv2d(bn, 4 * bi, 6, 6, 4 * bo, 3, 1, 1, groups=2), cfg, REQUANT)
    check(Conv2d(2 * bn, bi, 9, 7, bo, 3, 2, 2), cfg)
    check(Conv2d(bn, bi, 4, 4, bo, 4, 1, 3), cfg)  # padding wider than a tile's valid rows
    check(Conv2d(bn, bi, 5, 5, bo, 3, 1, 1, pad_value=-7), cfg, REQUANT)  # padding with a zero point
    check(Dense(bn, bo, bi, batches=3), cfg, REQUANT)


def _conv_shapes(cfg: Config) -> st.SearchStrategy[Conv2d]:
    @st.composite
    def conv(draw: st.DrawFn) -> Conv2d:
        k = draw(st.sampled_from([1, 2, 3, 5]))
        stride = draw(st.integers(1, 3))
        pad = draw(st.integers(0, k - 1))
        groups = draw(st.sampled_from([1, 1, 2]))
        ci = groups * cfg.block_in * draw(st.integers(1, 2))
        co = groups * cfg.block_out * draw(st.integers(1, 3))
        h = draw(st.integers(max(1, k - 2 * pad), 11))
        w = draw(st.integers(max(1, k - 2 * pad), 11))
        return Conv2d(cfg.batch * draw(st.integers(1, 2)), ci, h, w, co, k, stride, pad, groups)

    return conv()


@pytest.mark.parametrize("name", CONFIGS)
def test_random_conv2d(name: str) -> None:
    cfg = PRESETS[name]

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(wl=_conv_shapes(cfg), requant=st.booleans(), seed=st.integers(0, 1 << 16))
    def prop(wl: Conv2d, requant: bool, seed: int) -> None:
        check(wl, cfg, REQUANT if requant else None, seed=seed)

    prop()


@pytest.mark.parametrize("name", CONFIGS)
def test_random_dense(name: str) -> None:
    cfg = PRESETS[name]

    @settings(max_examples=12, deadline=None)
    @given(m=st.integers(1, 6), n=st.integers(1, 6), k=st.integers(1, 6), batches=st.sampled_from([0, 0, 2]),
           requant=st.booleans(), seed=st.integers(0, 1 << 16))
    def prop(m: int, n: int, k: int, batches: int, requant: bool, seed: int) -> None:
        wl = Dense(m * cfg.batch, n * cfg.block_out, k * cfg.block_in, batches)
        check(wl, cfg, REQUANT if requant else None, seed=seed)

    prop()


@pytest.mark.parametrize("tiling", [ConvTiling(1, 1, 1, 1, 1), ConvTiling(2, 2, 3, 2, 2), ConvTiling(1, 6, 6, 1, 3)])
def test_any_fitting_tiling_is_exact(tiling: ConvTiling) -> None:
    cfg = PRESETS["tiny"]
    check(Conv2d(1, 8, 6, 6, 8, 3, 1, 1), cfg, REQUANT, tiling=tiling)
    check(Dense(2, 8, 12), cfg, REQUANT, tiling=DenseTiling(2, 1, 3, tiling.slots))


def test_double_buffering_overlaps_loads_with_compute() -> None:
    cfg = PRESETS["default"]
    wl = resnet_layer("C8", cfg)
    one = check(wl, cfg, REQUANT, tiling=ConvTiling(4, 14, 14, 4, 1))[1]
    two = check(wl, cfg, REQUANT, tiling=ConvTiling(4, 14, 14, 4, 2))[1]
    assert two.cycles < 0.9 * one.cycles
    assert two.token_wait_cycles["compute"] < 0.05 * one.token_wait_cycles["compute"]  # GEMMs never wait for data
    assert two.gemm_utilization > 0.9


def test_kernel_structure() -> None:
    """A 3x3 conv tile: micro-kernels fold the two longest loops, and are loaded once."""
    cfg = PRESETS["default"]
    built = build(Conv2d(1, 32, 8, 8, 32, 3, 1, 1), cfg, tiling=ConvTiling(2, 8, 8, 2, 1))
    gemms = [i for i in built.kernel.insns if i.opcode == Opcode.GEMM and not i.reset]
    assert len(gemms) == 1
    g = gemms[0]
    assert (g.iter_out, g.iter_in) == (8, 8) and g.uop_end - g.uop_bgn == 2 * 2 * 9
    assert (g.dst_factor_out, g.dst_factor_in, g.src_factor_out, g.src_factor_in) == (8, 1, 10, 1)
    uop_loads = [i for i in built.kernel.insns if i.opcode == Opcode.LOAD and i.memory_type == 0]
    assert len(uop_loads) == built.kernel.stats["kernels"]
    ins, expect = operands(built.kernel and Conv2d(1, 32, 8, 8, 32, 3, 1, 1), cfg, None)
    got, _ = run_built(built, ins)
    assert np.array_equal(got, expect)


def test_scratchpad_overflow_is_reported() -> None:
    cfg = PRESETS["tiny"]
    wl = Conv2d(1, 8, 16, 16, 8, 3, 1, 1)
    t = ConvTiling(2, 16, 16, 2, 2)
    assert conv_needs(wl, cfg, t)["inp"] > cfg.inp_depth
    with pytest.raises(LoweringError, match=r"the inp buffer of 1x4_.* has 256 entries; this schedule needs \d+ "
                                            r"\(Dp 1x648\)"):
        lower(conv2d_schedule(wl, cfg, t).func, cfg, slots=2)


def test_unscheduled_function_is_refused() -> None:
    cfg = PRESETS["tiny"]
    f = Conv2d(1, 4, 4, 4, 4, 1).func(cfg)
    with pytest.raises(LoweringError, match="block conv2d must be a single store without init"):
        lower(f, cfg)


def test_non_alu_epilogue_is_refused() -> None:
    import dataclasses

    from vta.compiler.tir.schedule import Schedule
    from vta.compiler.tir.stmt import BufferStore

    cfg = PRESETS["tiny"]
    sch = conv2d_schedule(Conv2d(1, 4, 4, 4, 4, 1), cfg, ConvTiling(1, 4, 4, 1, 1), Epilogue(shift=2))
    blk = sch._block_node("epilogue")
    st_ = blk.body
    odd = dataclasses.replace(blk, body=BufferStore(st_.buffer, st_.value.value.a.a // 3, st_.indices))  # type: ignore[attr-defined]
    from vta.compiler.tir.transform import replace_stmt

    f = dataclasses.replace(sch.func, body=replace_stmt(sch.func.body, lambda x: odd if x is blk else None))
    with pytest.raises(LoweringError, match="block epilogue: division by 3; the ALU divides by powers of two"):
        lower(f, cfg)
    assert isinstance(sch, Schedule)


def test_tuning_log_round_trip_and_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vta.compiler.accel.tune import TuningLog
    from vta.isa.errors import VTAError

    from vta.measure import tune

    cfg = PRESETS["tiny"]
    wl = Dense(2, 8, 12)
    path = tmp_path / "log.jsonl"
    best, cycles = tune(wl, cfg, REQUANT, trials=4, log=TuningLog(path))
    again = TuningLog(path)
    assert len(again.records) == 4 and again.best(wl, cfg, REQUANT) == best
    assert again.best(wl, cfg, None) is None  # another epilogue is another workload
    built, stats = check(wl, cfg, REQUANT, log=again)
    assert built.tiling == best and stats.cycles == cycles
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(VTAError, match=r"log.jsonl:5: not a tuning record"):
        TuningLog(path)
    with pytest.raises(VTAError, match="tune: target 'gpu' is not one of fsim, rtl"):
        tune(wl, cfg, REQUANT, target="gpu")


@pytest.mark.parametrize("name", ["default", "batch4"])
def test_automatic_schedule_traces_replay(name: str) -> None:
    from vta.compiler.tir import structural_equal
    from vta.compiler.tir.intrin import gemm_intrin
    from vta.compiler.tir.schedule import replay

    cfg = PRESETS[name]
    for wl, ep in ((Conv2d(cfg.batch, 2 * cfg.block_in, 6, 6, 2 * cfg.block_out, 3, 2, 1), REQUANT),
                   (Dense(cfg.batch, cfg.block_out, 2 * cfg.block_in, batches=2), None)):
        built = build(wl, cfg, ep)
        again = replay(wl.func(cfg, ep), built.schedule.trace_str(), [gemm_intrin(cfg)])
        assert structural_equal(again.func, built.schedule.func)
        assert again.trace_str() == built.schedule.trace_str()
