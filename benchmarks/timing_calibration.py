"""The fsim timing model against the RTL's exact cycle counts.

For each benchmark program and config, runs the program on fsim (estimated cycles)
and on the Verilated core (exact cycles), checks that both give the same result, and
reports the estimate's error per program and module (busy and token-wait cycles).
Programs:

- ``gemm``: the blocked 256x256x256 int8 GEMM of benchmarks/fsim_throughput.py;
- ``conv3x3``: its 56x56, 64 -> 64 channel 3x3 convolution;
- ``demo``: the bundled default (`vta run`): a double-buffered GEMM with bias and
  requantization on the ALU (MUL, rounding ADD, SHR, ReLU clip);
- ``random``: 50 random programs of the differential fuzzer (sim/randprog.py), summed.

Both simulators use the same DRAM latency (`TimingParams.dram_latency`), which is the
rtl device's default. The goal is an error within 10% on every program.

Usage::

    .venv/bin/python benchmarks/timing_calibration.py [--configs default,batch4,...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from fsim_throughput import conv_workload, gemm_workload, machine_info  # noqa: E402
from vta.demo import run_gemm  # noqa: E402
from vta.isa import Config, resolve  # noqa: E402
from vta.runtime import FsimDevice  # noqa: E402
from vta.runtime.rtl_device import RtlDevice, counters_to_stats  # noqa: E402
from vta.sim.fsim import Fsim, RunStats  # noqa: E402
from vta.sim.randprog import random_program  # noqa: E402
from vta.sim.rtl import RtlSim  # noqa: E402

GOAL = 0.10
CONFIGS = ("default", "batch4", "nonsquare", "bus256", "tiny")


def _workload_runner(make: Callable[[Config, int], object]) -> Callable[[object], tuple[RunStats, np.ndarray]]:
    def run(device: object) -> tuple[RunStats, np.ndarray]:
        wl = make(device.config, 0)  # type: ignore[attr-defined]
        res = wl.fsim(device)  # type: ignore[attr-defined]
        return res.stats, res.output

    return run


def _demo(device: object) -> tuple[RunStats, np.ndarray]:
    r = run_gemm(device)  # type: ignore[arg-type]
    if not r.exact:
        raise AssertionError(f"the bundled default is not bit-exact on {type(device).__name__}")
    return r.stats, r.output


PROGRAMS: dict[str, Callable[[object], tuple[RunStats, np.ndarray]]] = {
    "gemm": _workload_runner(gemm_workload), "conv3x3": _workload_runner(conv_workload), "demo": _demo,
}


def _random_programs(config: Config, n: int = 50) -> tuple[int, int, float]:
    """Summed fsim estimates and rtl cycles over ``n`` random programs (DRAM checked
    equal), and the largest error of a single program."""
    est = exact = 0
    worst = 0.0
    for seed in range(n):
        prog = random_program(config, seed, phases=6)
        image = prog.dram_image()
        f, r = Fsim(config, 1 << 16), RtlSim(config, 1 << 16)
        f.dram[: image.size] = image
        r.dram[: image.size] = image
        e = f.run(prog.insn_addr, len(prog.insns)).cycles
        x = counters_to_stats(r.run(prog.insn_addr, len(prog.insns)).counters, config).cycles
        est, exact, worst = est + e, exact + x, max(worst, abs(e / x - 1))
        if not np.array_equal(f.dram, r.dram):
            raise AssertionError(f"random program {seed} differs between fsim and rtl on {config.name}")
    return est, exact, worst


def _row(config: Config, program: str, fsim: RunStats | int, rtl: RunStats | int) -> dict:
    est = fsim if isinstance(fsim, int) else fsim.cycles
    exact = rtl if isinstance(rtl, int) else rtl.cycles
    row = {"config": config.name, "program": program, "fsim_cycles": est, "rtl_cycles": exact,
           "error": est / exact - 1}
    if isinstance(fsim, RunStats) and isinstance(rtl, RunStats):
        row["busy"] = {m: [fsim.busy_cycles[m], rtl.busy_cycles[m]] for m in rtl.busy_cycles}
        row["wait"] = {m: [fsim.token_wait_cycles[m], rtl.token_wait_cycles[m]] for m in rtl.token_wait_cycles}
        row["gemm_utilization"] = [fsim.gemm_utilization, rtl.gemm_utilization]
    return row


def calibrate(names: list[str]) -> list[dict]:
    rows = []
    for name in names:
        config = resolve(name)
        rtl_dev = RtlDevice(config)
        for program, run in PROGRAMS.items():
            try:
                fs, fout = run(FsimDevice(config, check_races=False))
            except ValueError as e:  # the workload does not tile onto this config
                rows.append({"config": config.name, "program": program, "skipped": str(e)})
                continue
            rs, rout = run(rtl_dev)
            if not np.array_equal(fout, rout):
                raise AssertionError(f"{program} differs between fsim and rtl on {config.name}")
            rows.append(_row(config, program, fs, rs))
        est, exact, worst = _random_programs(config)
        rows.append({**_row(config, "random (50, summed)", est, exact), "worst_single_error": worst})
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["config                               program               fsim est.     rtl exact   error",
             "-" * 92]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['config']:<36} {r['program']:<20} skipped: {r['skipped']}")
            continue
        flag = "" if abs(r["error"]) <= GOAL else "  (over the 10% goal)"
        lines.append(f"{r['config']:<36} {r['program']:<20} {r['fsim_cycles']:>10,}  {r['rtl_cycles']:>12,}  "
                     f"{r['error']:+6.2%}{flag}" +
                     (f"  (worst single program {r['worst_single_error']:.1%})" if "worst_single_error" in r else ""))
    done = [r for r in rows if "error" in r]
    worst = max(done, key=lambda r: abs(r["error"]))
    lines.append(f"\nworst |error|: {abs(worst['error']):.2%} ({worst['program']} on {worst['config']}); "
                 f"goal {GOAL:.0%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="fsim's estimated cycles against the RTL's exact cycles.",
                                epilog="example: .venv/bin/python benchmarks/timing_calibration.py "
                                       "--configs default,bus256")
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated presets or names")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    rows = calibrate([c for c in args.configs.split(",") if c])
    info = machine_info()
    if args.json:
        print(json.dumps({"goal": GOAL, "machine": info, "results": rows}, indent=1))
    else:
        print(format_table(rows))
    worst = max((abs(r["error"]) for r in rows if "error" in r), default=0.0)
    return 0 if worst <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
