"""RTL simulation speed and GEMM-core utilization on the 3x3 convolution program
(56x56 input, 64 -> 64 channels, stride 1, padding 1; the program of
benchmarks/fsim_throughput.py, written with the runtime API) on the rtl device.

Reported, as the median over ``--repeat`` runs after a warm-up:

- simulated cycles per wall second of the Verilated core (the C++ run alone, one
  thread: the harness clocks the core and its DRAM model with no Python per cycle);
- the same program's end-to-end wall time (DRAM layout, command queue, run, read-back);
- GEMM-core utilization = ideal GEMM cycles (MAC micro-ops, one per cycle at peak) /
  measured cycles;
- in the same run, the peer: the same integer convolution in numpy (im2col + int32
  matmul), and fsim on the same program, as ratios to the RTL's wall time.

The output is checked bit for bit against numpy. The first run of a config builds the
Verilator simulation (about a minute); it is cached afterwards and not timed.

Usage::

    .venv/bin/python benchmarks/rtl_speed.py [--config NAME] [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fsim_throughput import check_equal, conv_workload, machine_info  # noqa: E402
from vta.isa import PRESETS, VTAError, resolve  # noqa: E402
from vta.isa.values import storage_dtype, wrap  # noqa: E402
from vta.runtime import FsimDevice  # noqa: E402
from vta.runtime.rtl_device import RtlDevice  # noqa: E402

GOAL_CYCLES_PER_S = 200_000  # the goal, on one core of the 2-core development machine


def measure(config_name: str, repeat: int, seed: int) -> dict:
    config = resolve(config_name)
    wl = conv_workload(config, seed)
    want = wrap(wl.numpy_int32(), config.acc_width).astype(storage_dtype(config.acc_width))
    t0 = time.perf_counter()
    device = RtlDevice(config)  # builds or loads the Verilator library
    build_s = time.perf_counter() - t0
    wl.fsim(device)  # warm-up
    sim_s, e2e_s, cycles = [], [], []
    last = None
    for _ in range(repeat):
        t = time.perf_counter()
        res = wl.fsim(device)
        e2e_s.append(time.perf_counter() - t)
        check_equal("conv on rtl vs numpy", res.output, want)
        assert device.last_result is not None
        sim_s.append(device.last_result.wall_seconds)
        cycles.append(device.last_result.sim_cycles)
        last = res
    assert last is not None
    fsim_dev = FsimDevice(config, check_races=False)
    fsim_run = wl.fsim(fsim_dev)
    check_equal("conv on fsim vs numpy", fsim_run.output, want)
    fsim_s = statistics.median(_timed(lambda: wl.fsim(fsim_dev))[0] for _ in range(repeat))
    numpy_s = statistics.median(_timed(wl.numpy_int32)[0] for _ in range(repeat))
    sim, e2e = statistics.median(sim_s), statistics.median(e2e_s)
    stats = last.stats
    ideal = stats.macs // config.macs_per_cycle
    return {
        "config": config.name, "workload": wl.describe, "tiling": wl.tiling, "repeat": repeat,
        "macs": wl.macs, "insns": stats.insns, "build_or_load_s": build_s,
        "rtl_cycles": stats.cycles, "sim_cycles": int(statistics.median(cycles)),
        "rtl_sim_s": sim, "rtl_e2e_s": e2e, "cycles_per_s": statistics.median(cycles) / sim,
        "cycles_per_s_range": [min(c / t for c, t in zip(cycles, sim_s)), max(c / t for c, t in zip(cycles, sim_s))],
        "goal_cycles_per_s": GOAL_CYCLES_PER_S,
        "ideal_gemm_cycles": ideal, "gemm_utilization": ideal / stats.cycles,
        "fsim_estimated_cycles": fsim_run.stats.cycles,
        "fsim_cycle_error": fsim_run.stats.cycles / stats.cycles - 1,
        "fsim_e2e_s": fsim_s, "numpy_int32_s": numpy_s,
        "rtl_vs_numpy": e2e / numpy_s, "rtl_vs_fsim": e2e / fsim_s,
        "bit_exact": True, "stats": stats.to_dict(),
    }


def _timed(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def format_report(r: dict, info: dict) -> str:
    rows = [
        ("workload", f"{r['workload']}; {r['tiling']}"),
        ("MACs / instructions", f"{r['macs'] / 1e6:.1f} M / {r['insns']}"),
        ("RTL cycles (exact)", f"{r['rtl_cycles']:,}"),
        ("RTL simulation wall time", f"{r['rtl_sim_s']:.3f} s"),
        ("simulated cycles per second", f"{r['cycles_per_s']:,.0f} (goal >= {r['goal_cycles_per_s']:,}); "
                                        f"runs ranged {r['cycles_per_s_range'][0]:,.0f} to "
                                        f"{r['cycles_per_s_range'][1]:,.0f}"),
        ("ideal GEMM cycles", f"{r['ideal_gemm_cycles']:,}"),
        ("GEMM-core utilization", f"{r['gemm_utilization']:.1%}"),
        ("fsim estimated cycles", f"{r['fsim_estimated_cycles']:,} ({r['fsim_cycle_error']:+.2%} vs RTL)"),
        ("end to end: rtl / fsim / numpy", f"{r['rtl_e2e_s']:.3f} s / {r['fsim_e2e_s'] * 1e3:.1f} ms / "
                                           f"{r['numpy_int32_s'] * 1e3:.1f} ms"),
        ("rtl / numpy int32, rtl / fsim", f"{r['rtl_vs_numpy']:.0f}x, {r['rtl_vs_fsim']:.0f}x"),
        ("bit-exact vs numpy", "yes"),
    ]
    w = max(len(k) for k, _ in rows)
    head = [f"rtl speed: config {r['config']}, median of {r['repeat']} runs after a warm-up",
            "machine: " + ", ".join(f"{k} {v}" for k, v in info.items() if v is not None)]
    return "\n".join(head + [""] + [f"{k.ljust(w)}  {v}" for k, v in rows])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Verilated-core speed and GEMM utilization on a 3x3 convolution.",
                                epilog="example: .venv/bin/python benchmarks/rtl_speed.py --repeat 3")
    p.add_argument("--config", default="default", help="preset (" + ", ".join(PRESETS) + "), name or file")
    p.add_argument("--repeat", type=int, default=3, help="timed runs; the median is reported")
    p.add_argument("--seed", type=int, default=0, help="random seed of the operands")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    try:
        r = measure(args.config, args.repeat, args.seed)
    except (VTAError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    info = machine_info()
    print(json.dumps({**r, "machine": info}, indent=2) if args.json else format_report(r, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
