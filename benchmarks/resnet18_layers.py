"""ResNet-18 convolution layers C2-C11 compiled for the accelerator: compile time, cycles,
GEMM-core utilization and the roofline bound, for one config.

Each layer is the conv with the fused int8 requantization epilogue (bias, multiplier,
rounding shift, ReLU, clip) that a quantized network runs, compiled with the automatic
tiling (or the tuning log's best with ``--log``; ``--tune N`` measures N candidates per
layer first and appends them to the log). Cycles come from the fsim timing model, and
from the RTL under Verilator with ``--rtl``; outputs are checked against the numpy
fixed-point reference on every run.

Roofline bound: the larger of MACs / (MACs per cycle) and the layer's compulsory DRAM
bytes (input, weights, bias and int8 output, each once) / bus bytes per cycle. A layer is
compute-bound when the first is larger. "of roofline" = bound / cycles.

The peer in the same run is numpy computing the same layer (int64 im2col + einsum,
then the epilogue): the ratio is fsim wall time to numpy's.

    python benchmarks/resnet18_layers.py [--config default] [--tune 24 --log FILE] [--rtl] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from vta.compiler.accel.build import build
from vta.compiler.accel.reference import conv2d_nchw, operands
from vta.compiler.accel.schedules import RESNET18, Conv2d, resnet18_layer
from vta.compiler.accel.tune import TuningLog
from vta.measure import tune
from vta.compiler.tir.ops import Epilogue
from vta.isa import Config, MemType, resolve
from vta.runtime import open_device
from vta.runtime.execute import run_program

LAYERS = RESNET18
EPILOGUES = {  # what follows the accumulation
    "requant": Epilogue(bias=True, multiplier=19, shift=11, relu=True),  # a quantized network's conv
    "shift": Epilogue(shift=8, relu=True),  # rounding shift and clip, as VTA's conv2d benchmarks do
    "none": None,  # int32 accumulators stored at full width
}
EPILOGUE: Epilogue | None = EPILOGUES["requant"]


def roofline(wl: Conv2d, cfg: Config) -> tuple[int, int]:
    """(compute cycles at peak, compulsory DRAM bytes)."""
    oh, ow = wl.out_hw
    out_bits = cfg.acc_width if EPILOGUE is None else cfg.out_width
    nbytes = (wl.batch * wl.in_ch * wl.h * wl.w * cfg.inp_width +
              wl.out_ch * wl.in_ch // wl.groups * wl.kernel ** 2 * cfg.wgt_width +
              wl.batch * wl.out_ch * oh * ow * out_bits) // 8
    if EPILOGUE is not None and EPILOGUE.bias:
        nbytes += wl.out_ch // cfg.block_out * cfg.elem_bytes(MemType.ACC)
    return -(-wl.macs // cfg.macs_per_cycle), nbytes


def alu_cycles(stats: object) -> int:
    """Cycles the compute module spends in the epilogue (ALU micro-ops; a vector operand costs 2)."""
    return stats.alu_uops  # type: ignore[attr-defined, no-any-return]


def numpy_peer(wl: Conv2d, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (wl.batch, wl.in_ch, wl.h, wl.w))
    w = rng.integers(-128, 128, (wl.out_ch, wl.in_ch // wl.groups, wl.kernel, wl.kernel))
    t0 = time.perf_counter()
    acc = conv2d_nchw(x, w, wl.stride, wl.pad, wl.groups)
    if EPILOGUE is not None:
        EPILOGUE.reference(acc, np.zeros((1, wl.out_ch, 1, 1), np.int64))
    return time.perf_counter() - t0


def run_layer(name: str, cfg: Config, log: TuningLog | None, trials: int, rtl: bool) -> dict[str, object]:
    wl = resnet18_layer(name, cfg.batch)
    tune_s = 0.0
    if trials:
        t0 = time.perf_counter()
        tune(wl, cfg, EPILOGUE, trials=trials, log=log)
        tune_s = time.perf_counter() - t0
    built = build(wl, cfg, EPILOGUE, log=log)
    ins, expect = operands(wl, cfg, EPILOGUE)
    prog = built.kernel.program(*ins)
    t0 = time.perf_counter()
    res = run_program(prog, open_device("fsim", cfg, dram_bytes=max(1 << 24, prog.dram_bytes)))
    fsim_s = time.perf_counter() - t0
    out = res.outputs[built.kernel.outputs()[0]]
    if not np.array_equal(out, expect):
        raise SystemExit(f"{name}: fsim result differs from the numpy reference")
    compute, nbytes = roofline(wl, cfg)
    memory = -(-nbytes // cfg.bus_bytes)
    bound = max(compute, memory)
    row: dict[str, object] = {
        "layer": name, "tiling": built.tiling.__dict__, "compile_s": round(built.compile_s, 3),
        "tune_s": round(tune_s, 1), "insns": built.kernel.stats["insns"], "fsim_cycles": res.stats.cycles,
        "bound_cycles": bound, "bound": "compute" if compute >= memory else "memory",
        "gemm_util": round(res.stats.gemm_utilization, 3),
        "alu_share": round(alu_cycles(res.stats) / res.stats.cycles, 3), "of_roofline": round(bound / res.stats.cycles, 3),
        "fsim_s": round(fsim_s, 3), "numpy_s": round(numpy_peer(wl), 3),
    }
    if rtl:
        r = run_program(prog, open_device("rtl", cfg, dram_bytes=max(1 << 24, prog.dram_bytes)))
        if not np.array_equal(r.outputs[built.kernel.outputs()[0]], expect):
            raise SystemExit(f"{name}: RTL result differs from the numpy reference")
        row.update(rtl_cycles=r.stats.cycles, rtl_of_roofline=round(bound / r.stats.cycles, 3),
                   rtl_gemm_util=round(wl.macs / cfg.macs_per_cycle / r.stats.cycles, 3))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="default")
    ap.add_argument("--layers", nargs="*", default=list(LAYERS))
    ap.add_argument("--tune", type=int, default=0, metavar="N", help="tune N candidates per layer first")
    ap.add_argument("--log", help="tuning log (JSON lines) to read and append to")
    ap.add_argument("--rtl", action="store_true", help="also run on the RTL under Verilator")
    ap.add_argument("--epilogue", choices=list(EPILOGUES), default="requant")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    global EPILOGUE
    EPILOGUE = EPILOGUES[a.epilogue]
    cfg = resolve(a.config)
    log = TuningLog(a.log) if a.log or a.tune else None
    rows = [run_layer(n, cfg, log, a.tune, a.rtl) for n in a.layers]
    if a.json:
        print(json.dumps({"config": cfg.name, "rows": rows}, indent=1))
        return
    cols = ["layer", "compile_s", "insns", "fsim_cycles", "bound_cycles", "bound", "of_roofline", "gemm_util",
            "alu_share"]
    cols += ["rtl_cycles", "rtl_of_roofline"] if a.rtl else []
    cols += ["fsim_s", "numpy_s"]
    print(f"config {cfg.name}, epilogue {a.epilogue}: {EPILOGUE}")
    print("| " + " | ".join(cols) + " | tiling (tco, th, tw, tci, slots) |")
    print("|" + "---|" * (len(cols) + 1))
    for r in rows:
        t = r["tiling"]
        tiling = ", ".join(str(v) for v in t.values())  # type: ignore[attr-defined]
        print("| " + " | ".join(str(r[c]) for c in cols) + f" | {tiling} |")


if __name__ == "__main__":
    main()
