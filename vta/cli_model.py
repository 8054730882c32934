"""``vta run MODEL.onnx``: compile (quantizing for the accelerator), run and report."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from vta.isa import resolve


def run_model_cmd(path: Path, target: str, spec: str | None, as_json: bool, outdir: Path | None,
                  inputs: tuple[str, ...], calibration: str | None, float_only: bool, dump_after: tuple[str, ...],
                  trace: Path | None, host: str = "cpu") -> None:
    from vta.cli import _save, err, out
    from vta.model import (
        calibration_set, compile_model, parse_inputs, random_feeds, random_inputs, report_dict, run_model, write_trace,
    )

    if not path.exists():
        raise click.UsageError(f"{path}: no such file")
    if path.suffix == ".vtapkg":
        from vta.compiler import artifact

        if calibration or float_only or dump_after or host != "cpu":
            raise click.UsageError("--calibration, --float, --host and --dump-after apply when compiling; "
                                   f"{path.name} is compiled already (for the host it was compiled for)")
        exe = artifact.load(path, resolve(spec) if spec else None)
        cfg = exe.config
        feeds = parse_inputs(inputs) if inputs else random_feeds(exe)
    else:
        cfg = None if float_only else resolve(spec)
        feeds = parse_inputs(inputs) if inputs else random_inputs(str(path))
        with err.status("compiling"):
            exe = compile_model(str(path), feeds, cfg, calibration_set(calibration, feeds), set(dump_after),
                                lambda text: click.echo(text, err=as_json), host=host)
    if not inputs and not as_json:
        err.print("[dim]no --input given: running on random inputs[/]")
    run = run_model(exe, feeds, target)
    _save(outdir, run.outputs)
    rep = report_dict(run)
    if trace is not None:
        write_trace(run, trace, cfg.clock_mhz if cfg is not None else 100.0)
    if as_json:
        click.echo(json.dumps({"model": str(path), "config": cfg.name if cfg else None, "target": target,
                               "host": exe.host,
                               "compile_s": round(exe.compile_s, 3), "accelerated_ops": exe.accelerated,
                               "outputs": {k: v.tolist() for k, v in run.outputs.items()}, **rep}, indent=1))
        return
    from rich.table import Table

    where = f"the host {exe.host.upper()}" if cfg is None else f"{target}, config {cfg.name}, host {exe.host.upper()}"
    out.print(f"[bold]{path}[/] on {where}: "
              f"compiled in {exe.compile_s:.2f} s, {exe.accelerated} operators on the accelerator",
              soft_wrap=True)  # a long model path must not split the line
    t = Table(title="per operator")
    for col in ("node", "op", "device", "ms", "cycles", "util", "DRAM B"):
        t.add_column(col, justify="right" if col in ("ms", "cycles", "util", "DRAM B") else "left")
    for r in run.report.ops:
        if r.device == "view":
            continue
        t.add_row(r.name, r.op, r.device, f"{r.seconds * 1e3:.3f}", f"{r.cycles:,}" if r.cycles else "",
                  f"{r.gemm_utilization:.1%}" if r.gemm_utilization is not None else "",
                  f"{r.dram_bytes:,}" if r.dram_bytes else "")
    out.print(t)
    out.print(f"total {run.report.seconds * 1e3:.1f} ms; accelerator {run.report.accel_cycles:,} cycles; "
              + ", ".join(f"{k} {v:.1f} ms" for k, v in rep["ms_by_device"].items()))  # type: ignore[union-attr]
    with np.printoptions(threshold=40, edgeitems=3, precision=4):
        for name, v in run.outputs.items():
            out.print(f"[bold]{name}[/] {v.dtype}{list(v.shape)}: {v.reshape(-1)[:8]}{' ...' if v.size > 8 else ''}")
    for name, rows in rep["top_k"].items():  # type: ignore[union-attr]
        for b, row in enumerate(rows):
            out.print(f"top-{len(row)} {name}[{b}]: " + ", ".join(f"{i} ({p:.3f})" for i, p in row))


def compile_cmd(model: Path, output: Path, spec: str | None, float_only: bool, inputs: tuple[str, ...],
                shapes: tuple[str, ...], calibration: str | None, dump_after: tuple[str, ...], as_json: bool,
                host: str = "cpu") -> None:
    from vta.cli import err, out
    from vta.compiler import artifact
    from vta.model import calibration_set, compile_model, parse_inputs, random_array, random_inputs

    if not model.exists():
        raise click.UsageError(f"{model}: no such file")
    cfg = None if float_only else resolve(spec)
    given = parse_inputs(inputs)
    feeds = {**random_inputs(str(model)), **given}
    for spec_ in shapes:
        name, _, dims = spec_.partition("=")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            raise click.BadParameter(f"--shape {spec_!r}: write NAME=D0,D1,...") from None
        if name not in feeds:
            raise click.BadParameter(f"--shape {spec_!r}: the model has no input {name!r}")
        if name in given:
            raise click.BadParameter(f"--shape {spec_!r}: {name} is given by --input already (its shape is the array's)")
        feeds[name] = random_array(np.random.default_rng(0), str(feeds[name].dtype), shape)
    with err.status("compiling"):
        exe = compile_model(str(model), feeds, cfg, calibration_set(calibration, feeds), set(dump_after),
                            lambda text: click.echo(text, err=as_json), host=host)
    artifact.save(exe, output)
    info = {"model": str(model), "output": str(output), "config": cfg.name if cfg else None, "host": exe.host,
            "compile_s": round(exe.compile_s, 3), "accelerated_ops": exe.accelerated, "host_kernels": exe.kernels,
            "inputs": {v.name: v.type_str() for v in exe.inputs}, "bytes": output.stat().st_size}
    if as_json:
        click.echo(json.dumps(info, indent=1))
    else:
        out.print(f"compiled {model} in {exe.compile_s:.2f} s for {cfg.name if cfg else 'the host'}, host "
                  f"{exe.host.upper()}: "
                  f"{exe.accelerated} operators on the accelerator, {exe.kernels} host kernels; wrote {output} "
                  f"({info['bytes']:,} bytes)")


def fpga_setup(target: str, port: str | None, baud: int | None, spec: object, probe: bool) -> object:
    """``--target fpga --port P [--baud B]``: pass the port on to the fpga device (through
    $VTA_FPGA_PORT/$VTA_FPGA_BAUD, which every way of opening it reads) and, when ``probe`` and no
    --config was given, return the config the board reports; otherwise return ``spec``."""
    if target != "fpga":
        if port is not None or baud is not None:
            raise click.UsageError("--port and --baud apply to --target fpga")
        return spec
    import os

    from vta.runtime.fpga_device import BAUD_ENV, PORT_ENV, board_config  # imports the RTL's CSR layout (amaranth)

    if port is not None:
        os.environ[PORT_ENV] = port
    if baud is not None:
        os.environ[BAUD_ENV] = str(baud)
    if probe and spec is None:
        return board_config(port, baud)
    return spec
