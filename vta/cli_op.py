"""`vta op`: compile one operator for the accelerator, run it, and look inside."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from vta.isa import disassemble, resolve

_EPILOGUES = ("requant", "shift", "none")


def _epilogue(name: str):  # type: ignore[no-untyped-def]
    from vta.compiler.tir.ops import Epilogue

    return {"requant": Epilogue(bias=True, multiplier=19, shift=11, relu=True),
            "shift": Epilogue(shift=8, relu=True), "none": None}[name]


def _ints(text: str, n: tuple[int, ...], what: str) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{what} takes comma-separated integers, got {text!r}") from None
    if len(vals) not in n:
        raise click.BadParameter(f"{what} takes {' or '.join(map(str, n))} integers, got {len(vals)}")
    return vals


@click.command("op")
@click.argument("kind", type=click.Choice(["conv2d", "dense"]))
@click.option("--layer", help="conv2d: a ResNet-18 layer, C2 ... C11")
@click.option("--shape", help="conv2d: N,C,H,W,O,K[,stride,pad,groups]; dense: M,N,K[,batches]")
@click.option("--config", "spec", default=None, help="preset, canonical name or JSON/TOML file")
@click.option("--epilogue", type=click.Choice(_EPILOGUES), default="requant", show_default=True,
              help="requant: bias, multiplier, rounding shift, ReLU, int8; shift: rounding shift and clip; "
                   "none: int32 results")
@click.option("--target", type=click.Choice(["fsim", "rtl"]), default="fsim", show_default=True)
@click.option("--tune", "trials", type=click.IntRange(min=0), default=0, help="measure N tilings first")
@click.option("--tune-target", type=click.Choice(["fsim", "rtl"]), default="fsim", show_default=True,
              help="what --tune measures with: the fsim timing model or exact RTL cycles")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path),
              help="tuning log (JSON lines): its best tiling is used, and --tune appends to it")
@click.option("--print", "show", multiple=True, type=click.Choice(["ir", "trace", "asm"]),
              help="print the scheduled loop IR, the schedule trace, or the instruction stream")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), help="write the program (.vtaprog)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def op(kind: str, layer: str | None, shape: str | None, spec: str | None, epilogue: str, target: str, trials: int,
       tune_target: str, log_path: Path | None, show: tuple[str, ...], save: Path | None, as_json: bool) -> None:
    """Compile an operator for the accelerator, run it on random data and check it against numpy.

    The schedule is automatic for the config (or the tuning log's best); the
    report gives the tiling, compile time, instructions, cycles and GEMM-core
    utilization.

    \b
    Examples:
      vta op conv2d --layer C5
      vta op conv2d --shape 1,64,14,14,128,3,2,1 --config tiny --print trace
      vta op dense --shape 64,256,512 --epilogue none --print ir
      vta op conv2d --layer C8 --tune 16 --log tuning.jsonl --target rtl
    """
    from vta.compiler.accel.build import build
    from vta.compiler.accel.reference import operands
    from vta.compiler.accel.schedules import Conv2d, Dense, resnet18_layer
    from vta.compiler.accel.tune import TuningLog
    from vta.measure import tune
    from vta.runtime import open_device
    from vta.runtime.execute import run_program

    cfg = resolve(spec)
    if (layer is None) == (shape is None):
        raise click.UsageError("give exactly one of --layer and --shape")
    if layer is not None:
        if kind != "conv2d":
            raise click.UsageError("--layer names a ResNet-18 convolution")
        wl: Conv2d | Dense = resnet18_layer(layer, cfg.batch)
    elif kind == "conv2d":
        v = _ints(shape, (6, 7, 8, 9), "--shape")  # type: ignore[arg-type]
        wl = Conv2d(*v)
    else:
        v = _ints(shape, (3, 4), "--shape")  # type: ignore[arg-type]
        wl = Dense(*v)
    ep = _epilogue(epilogue)
    log = TuningLog(log_path) if log_path is not None or trials else None
    if trials:
        tune(wl, cfg, ep, trials=trials, log=log, target=tune_target)
    try:
        built = build(wl, cfg, ep, log=log)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    for what in show:
        text = {"ir": lambda: str(built.schedule.func), "trace": built.schedule.trace_str,
                "asm": lambda: disassemble(built.kernel.program(*operands(wl, cfg, ep)[0]), data=False)}[what]()
        click.echo(text, err=as_json)
    ins, expect = operands(wl, cfg, ep)
    prog = built.kernel.program(*ins)
    if save is not None:
        prog.save(save)
    t0 = time.perf_counter()
    res = run_program(prog, open_device(target, cfg, dram_bytes=max(1 << 24, prog.dram_bytes)))
    run_s = time.perf_counter() - t0
    exact = bool(np.array_equal(res.outputs[built.kernel.outputs()[0]], expect))
    report = {"workload": wl.key(), "config": cfg.name, "epilogue": epilogue, "target": target,
              "tiling": built.tiling.__dict__, "compile_s": round(built.compile_s, 4), "run_s": round(run_s, 3),
              "bit_exact": exact, "kernel": built.kernel.stats, "cycles": res.stats.cycles,
              "gemm_utilization": round(wl.macs / cfg.macs_per_cycle / res.stats.cycles, 4),
              "dram_bytes": res.stats.dram_bytes}
    if as_json:
        click.echo(json.dumps(report, indent=1))
    else:
        from vta.cli import out, stats_table

        out.print(f"[bold]{wl.key()}[/] on {target}, config {cfg.name}, epilogue {epilogue}")
        out.print(f"tiling {built.tiling}, compiled in {built.compile_s * 1000:.0f} ms: "
                  f"{built.kernel.stats['insns']} instructions, {built.kernel.stats['kernels']} micro-kernels")
        out.print(f"result vs numpy reference: {'[green]bit-exact[/]' if exact else '[red]MISMATCH[/]'}")
        out.print(stats_table(res.stats, exact=target == "rtl"))
    if not exact:
        sys.exit(1)
