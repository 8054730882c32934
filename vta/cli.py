"""The `vta` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from vta.hw.boards import BOARDS  # names only: imports no RTL
from vta.isa import PRESETS, Config, Program, assemble_file, disassemble, insn_layouts, resolve, uop_layout
from vta.isa.errors import VTAError
from vta.sim.fsim import RunStats

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class _Group(click.Group):
    """Turns the project's errors into a one-line reason and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VTAError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)


def _config(spec: str | None) -> Config:
    return resolve(spec)


_CONFIG_HELP = "preset name (" + ", ".join(PRESETS) + "), canonical name, or JSON/TOML file"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vta")
def main() -> None:
    """VTA-style tensor accelerator: models, operators, configs, assembly, simulation.

    \b
    Examples:
      vta run                         # the bundled digits CNN, int8 on the simulated accelerator
      vta run model.onnx --input image=x.npy --target rtl
      vta compile model.onnx -o model.vtapkg --config tiny
      vta op conv2d --layer C5 --print trace
      vta config show --config tiny
      vta asm examples/gemm_relu.s -o gemm.vtaprog && vta run gemm.vtaprog
    """


# ---- config -------------------------------------------------------------

@main.group()
def config() -> None:
    """Show hardware configurations."""


@config.command("show")
@click.option("--config", "spec", default=None, help=_CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def config_show(spec: str | None, as_json: bool) -> None:
    """Fields, derived constants and instruction layouts of a config.

    Example: vta config show --config 1x16_i8w8a32_15_15_18_17
    """
    cfg = _config(spec)
    derived = {
        "name": cfg.name,
        **{f"{b}_depth": getattr(cfg, f"{b}_depth") for b in ("uop", "inp", "wgt", "acc")},
        **{f"{b}_idx_bits": getattr(cfg, f"{b}_idx_bits") for b in ("uop", "inp", "wgt", "acc")},
        "uop_bits": cfg.uop_bits,
        "macs_per_cycle": cfg.macs_per_cycle,
        "peak_gops": cfg.macs_per_cycle * 2 * cfg.clock_mhz / 1e3,
    }
    layouts = {k: [[f.name, f.offset, f.width] for f in lay] for k, lay in
               {**insn_layouts(cfg), "uop": uop_layout(cfg)}.items()}
    if as_json:
        click.echo(json.dumps({"fields": cfg.to_dict(), "derived": derived, "layouts": layouts}, indent=2))
        return
    t = Table(title=f"config {cfg.name}", show_header=True)
    t.add_column("field")
    t.add_column("value", justify="right")
    for k, v in cfg.to_dict().items():
        t.add_row(k, str(v))
    t.add_section()
    for k, v in derived.items():
        t.add_row(k, f"{v:g}" if isinstance(v, float) else str(v), style="dim")
    out.print(t)
    for kind, fields in layouts.items():
        out.print(f"[bold]{kind}[/]: " + "  ".join(f"{n}[{o}:{o + w - 1}]" for n, o, w in fields))


@config.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def config_list(as_json: bool) -> None:
    """The named presets.  Example: vta config list"""
    if as_json:
        click.echo(json.dumps({k: v.name for k, v in PRESETS.items()}, indent=2))
        return
    for k, v in PRESETS.items():
        out.print(f"{k:<10} {v.name}")


# ---- hardware -----------------------------------------------------------------

@main.group()
def hw() -> None:
    """Generate the accelerator's RTL."""


@hw.command("verilog")
@click.option("--config", "spec", default=None, help=_CONFIG_HELP)
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="directory to write vta_core.v (and config.json) into")
def hw_verilog(spec: str | None, outdir: Path) -> None:
    """Write the accelerator for a config as Verilog (top module vta_core).

    Example: vta hw verilog --config tiny -o build/tiny
    """
    from vta.hw.verilog import write

    cfg = _config(spec)
    path = write(cfg, outdir)
    out.print(f"{path}: vta_core for {cfg.name}, {path.stat().st_size:,} bytes")


@hw.command("synth")
@click.option("--config", "spec", default=None, help=_CONFIG_HELP)
@click.option("--family", default="ecp5", show_default=True, help="ecp5, ice40, xilinx7 or generic")
@click.option("--flatten", is_flag=True, help="synthesize flattened (a bitstream build's totals, no per-module rows)")
@click.option("--no-cache", is_flag=True, help="run Yosys even when the result is cached")
@click.option("--fmax", is_flag=True, help="also place and route the core out of context (ecp5, minutes) for its Fmax")
@click.option("--device", default=None, help="with --fmax: the ECP5 device (default: the smallest that fits)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def hw_synth(spec: str | None, family: str, flatten: bool, no_cache: bool, fmax: bool, device: str | None,
             as_json: bool) -> None:
    """Estimate LUTs, FFs, DSPs and block RAMs of a config with Yosys, per module and buffer.

    Results are cached in ~/.cache/vta/synth by the design and flags; the first run on a
    machine also compiles Yosys (WebAssembly), about a minute.

    \b
    Examples:
      vta hw synth --config tiny
      vta hw synth --config default --family xilinx7 --json
      vta hw synth --config tiny --fmax
    """
    from vta.hw.synth import estimate

    cfg = _config(spec)
    say = lambda msg: err.print(f"[dim]{msg}...[/]")
    r = estimate(cfg, family, flatten=flatten, use_cache=not no_cache, progress=say)
    f = None
    if fmax:
        from vta.hw.fmax import fmax as place_and_route

        f = place_and_route(cfg, family, device=device, use_cache=not no_cache, progress=say)
    elif device is not None:
        raise VTAError("--device is for --fmax (the device the core is placed and routed on)")
    if as_json:
        click.echo(json.dumps({**r.to_dict(), **({"fmax": f.to_dict()} if f else {})}, indent=2))
        return
    cols = ("LUT", "FF", "DSP", "BRAM", "LUTRAM")
    t = Table(title=f"{r.family} estimate of {r.config} ({'flattened' if r.flatten else 'hierarchy kept'})")
    t.add_column("module (with its submodules)")
    for c in cols:
        t.add_column(c, justify="right")
    for m in r.modules:
        depth = m.name.count(".") - r.top.count(".")
        label = "  " * depth + (m.name.rsplit(".", 1)[-1] if depth else m.name)
        t.add_row(label + (f" ×{m.instances}" if m.instances > 1 else ""), *map(str, m.total.astuple()))
    out.print(t)
    b = Table(title="memories")
    for c in ("memory", "buffer", "width×depth", "BRAM", "LUTRAM", "mapped to"):
        b.add_column(c, justify="right" if c in ("BRAM", "LUTRAM") else "left")
    for mem in r.memories:
        b.add_row(mem.path, mem.buffer, f"{mem.width}×{mem.depth}", str(mem.brams), str(mem.lutrams),
                  mem.implementation)
    out.print(b)
    out.print(f"total: {r.luts:,} LUT, {r.ffs:,} FF, {r.dsps} DSP, {r.brams} BRAM, {r.lutrams} LUTRAM "
              f"({r.yosys}; {'cached' if r.cached else f'{r.synth_seconds:.1f} s'})")
    out.print(f"[dim]{r.counting}[/]")
    if f is not None:
        timing = "meets" if f.meets_timing else "[red]misses[/]"
        used = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in f.utilization.items() if v["used"])
        mhz = f"{f.fmax_mhz:.1f} MHz" if f.fmax_mhz is not None else "not reported"
        out.print(f"Fmax {mhz} on {f.device} out of context ({timing} the config's "
                  f"{f.target_mhz:g} MHz; {'cached' if f.cached else f'{f.seconds:.0f} s'}): {used}")


@hw.command("bitstream")
@click.option("--board", "board_name", required=True, help=f"board preset: {', '.join(BOARDS)}")
@click.option("--config", "spec", default=None, help=f"default: the board preset's; {_CONFIG_HELP}")
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="directory for the bitstream, report.json and build/ (the tools' files and logs)")
@click.option("--mem-bytes", type=int, default=None, help="on-chip memory for instructions and data (power of two)")
@click.option("--baud", type=int, default=None, help="host-link baud rate (default: the preset's, 115200)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def hw_bitstream(board_name: str, spec: str | None, outdir: Path, mem_bytes: int | None, baud: int | None,
                 as_json: bool) -> None:
    """Build a bitstream of the board-level design (core, on-chip memory, UART host link) with
    Amaranth and the YoWASP tools (Yosys, nextpnr) from PyPI; report Fmax and utilization.

    A config that cannot fit the board is refused before synthesis, with the largest buffer
    sizes that would. Run it on the board with `vta run --target fpga --port PORT`.

    \b
    Examples:
      vta hw bitstream --board ulx3s-85f -o build/ulx3s
      vta hw bitstream --board ulx3s-25f --config tiny -o build/small --json
    """
    from vta.hw.bitstream import build_bitstream
    from vta.hw.boards import board

    b = board(board_name)
    cfg = _config(spec) if spec is not None else b.config
    with err.status(f"building the bitstream of {cfg.name} for {b.name}") as status:
        r = build_bitstream(b, outdir, cfg, mem_bytes=mem_bytes, baud=baud,
                            progress=lambda msg: status.update(f"{msg}..."))
    if as_json:
        click.echo(json.dumps(r.to_dict(), indent=2))
    else:
        fmax = f"{r.fmax_mhz:.1f} MHz" if r.fmax_mhz is not None else "unknown"
        verdict = "[green]meets[/]" if r.meets_timing else "[red]FAILS[/]"
        out.print(f"{r.bitstream}: config {r.config} on {r.board}, built in {r.seconds:.0f} s")
        out.print(f"Fmax {fmax}, target clock {r.target_mhz:g} MHz: {verdict} timing")
        t = Table(title="utilization")
        for col in ("resource", "used", "available", "%"):
            t.add_column(col, justify="left" if col == "resource" else "right")
        for k, v in r.utilization.items():
            t.add_row(k, f"{v['used']:,}", f"{v['available']:,}", f"{100 * v['used'] / max(v['available'], 1):.0f}")
        out.print(t)
    if not r.meets_timing:
        click.echo(f"error: Fmax {r.fmax_mhz} MHz is below the {r.target_mhz:g} MHz target clock of {r.board}",
                   err=True)
        sys.exit(1)

# ---- assembler ------------------------------------------------------------

@main.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="program file to write (.vtaprog)")
def asm(source: Path, output: Path) -> None:
    """Assemble a text program into a program file.

    Example: vta asm examples/gemm_relu.s -o gemm.vtaprog
    """
    prog = assemble_file(source)
    prog.save(output)
    out.print(f"{output}: {len(prog.insns)} instructions, {len(prog.segments)} segments, config {prog.config.name}")


@main.command()
@click.argument("program", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="write the text here")
@click.option("--no-data", is_flag=True, help="omit segment values (the text then no longer reassembles)")
def disasm(program: Path, output: Path | None, no_data: bool) -> None:
    """Disassemble a program file into text that assembles back to the same bits.

    Example: vta disasm gemm.vtaprog -o gemm.s
    """
    text = disassemble(Program.load(program), data=not no_data)
    if output:
        output.write_text(text)
    else:
        click.echo(text, nl=False)


# ---- run ----------------------------------------------------------------

def _load_program(path: Path) -> Program:
    if path.suffix in (".s", ".asm", ".vasm"):
        return assemble_file(path)
    return Program.load(path)


def stats_table(stats: RunStats, title: str = "accelerator", exact: bool = False) -> Table:
    t = Table(title=title, show_header=False)
    t.add_column("counter")
    t.add_column("value", justify="right")
    t.add_row("instructions (load/compute/store)",
              f"{stats.insns} ({'/'.join(str(v) for v in stats.insns_per_module.values())})")
    t.add_row("GEMM micro-ops", f"{stats.gemm_uops:,}")
    t.add_row("ALU micro-ops", f"{stats.alu_uops:,}")
    t.add_row("MACs", f"{stats.macs:,}")
    for k, v in stats.dram_read_bytes.items():
        if v:
            t.add_row(f"DRAM read {k}", f"{v:,} B")
    for k, v in stats.dram_write_bytes.items():
        if v:
            t.add_row(f"DRAM write {k}", f"{v:,} B")
    t.add_row("cycles" if exact else "estimated cycles", f"{stats.cycles:,}")
    t.add_row("busy cycles (load/compute/store)", "/".join(f"{v:,}" for v in stats.busy_cycles.values()))
    t.add_row("GEMM-core utilization", f"{100 * stats.gemm_utilization:.1f}%")
    return t


def _device(target: str, cfg: Config, race_check: bool, dram_bytes: int | None = None,
            max_cycles: int | None = None):  # type: ignore[no-untyped-def]
    from vta.runtime import open_device

    opts: dict[str, Any] = {"check_races": race_check}
    if dram_bytes:
        opts["dram_bytes"] = dram_bytes
    if max_cycles is not None:
        if target != "rtl":
            raise click.UsageError("--max-cycles applies to --target rtl")
        opts["max_cycles"] = max_cycles
    if target == "fpga":
        with err.status(f"connecting to the board ({cfg.name})"):
            return open_device(target, cfg, **opts)
    if target == "rtl":  # the first build of a config takes a while; later ones come from the cache
        with err.status(f"building or loading the Verilator simulation of {cfg.name}"):
            return open_device(target, cfg, **opts)
    return open_device(target, cfg, **opts)


@main.command()
@click.argument("program", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", type=click.Choice(["fsim", "rtl", "fpga"]), default="fsim", show_default=True,
              help="fsim: functional simulator with estimated cycles; rtl: the RTL under Verilator, exact cycles; "
                   "fpga: a board over its serial link (--port), exact cycles")
@click.option("--port", default=None, help="fpga: the board's serial port, e.g. /dev/ttyUSB0 (or $VTA_FPGA_PORT)")
@click.option("--baud", type=int, default=None, help="fpga: the link's baud rate (default 115200, the presets')")
@click.option("--max-cycles", type=int, default=None, help="rtl: stop a run that needs more cycles than this")
@click.option("--config", "spec", default=None, help=f"config for the bundled default; {_CONFIG_HELP}")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--output", "outdir", type=click.Path(file_okay=False, path_type=Path),
              help="also write each output as DIR/NAME.npy")
@click.option("--no-race-check", is_flag=True, help="skip checking that token order covers every buffer access")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE.npy", help="model input (repeatable)")
@click.option("--calibration", metavar="FILE.npz", help="model: calibration samples (default: the inputs)")
@click.option("--float", "float_only", is_flag=True, help="model: run in float on the host, no accelerator")
@click.option("--host", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="model: where the operators not on the accelerator run (gpu: an NVIDIA GPU via CUDA)")
@click.option("--dump-after", multiple=True, metavar="PASS", help="model: print the graph after this pass")
@click.option("--trace", type=click.Path(dir_okay=False, path_type=Path),
              help="model: write a Perfetto/Chrome trace of the run")
@click.option("--demo", type=click.Choice(["digits", "gemm"]), default="digits", show_default=True,
              help="with no PROGRAM: the bundled digits CNN, or the runtime-API GEMM")
def run(program: Path | None, target: str, port: str | None, baud: int | None, max_cycles: int | None,
        spec: str | None, as_json: bool,
        outdir: Path | None, no_race_check: bool, inputs: tuple[str, ...], calibration: str | None,
        float_only: bool, host: str, dump_after: tuple[str, ...], trace: Path | None, demo: str) -> None:
    """Run a model (.onnx), a program (.vtaprog or assembly), or the bundled default.

    A model is compiled for the config: convolutions and dense layers are
    quantized to int8 (calibrated on the inputs, or --calibration) and run on
    the accelerator, the rest on the host CPU; the report gives each
    operator's device, time, cycles, utilization and DRAM bytes.

    With no PROGRAM, runs the bundled default: a small CNN trained on
    scikit-learn's handwritten digits (examples/train_digits.py), int8 on the
    accelerator next to float on the host, on 64 held-out images.
    --demo gemm runs the runtime-API GEMM instead.

    \b
    Examples:
      vta run
      vta run model.onnx --input image=x.npy --trace run.json
      vta run model.onnx --target rtl --config tiny --json
      vta run model.onnx --host gpu
      vta run examples/gemm_relu.s --output results/
      vta run --demo gemm --config batch4
      vta run --demo gemm --target fpga --port /dev/ttyUSB0
    """
    from vta.cli_model import fpga_setup

    spec = fpga_setup(target, port, baud, spec, probe=program is None or program.suffix in (".onnx", ".vtapkg"))
    if program is not None and program.suffix in (".onnx", ".vtapkg"):
        from vta.cli_model import run_model_cmd

        run_model_cmd(program, target, spec, as_json, outdir, inputs, calibration, float_only, dump_after, trace,
                      host)
        return
    if inputs or calibration or float_only or dump_after or trace or host != "cpu":
        raise click.UsageError("--input, --calibration, --float, --host, --dump-after and --trace apply to models "
                               "(.onnx, .vtapkg)")
    if program is None and demo == "gemm":
        _run_default(_device(target, _config(spec), not no_race_check, max_cycles=max_cycles), target, as_json,
                     outdir)
        return
    if program is None:
        _run_bundled(_config(spec), target, as_json)
        return
    if spec is not None:
        raise click.UsageError("--config applies to the bundled default; a program names its own config")
    from vta.runtime import run_program

    prog = _load_program(program)
    dev = _device(target, prog.config, not no_race_check, max(prog.dram_bytes, 1 << 20), max_cycles)
    res = run_program(prog, dev)
    _save(outdir, res.outputs)
    if as_json:
        click.echo(json.dumps({"program": str(program), "config": prog.config.name, "target": target,
                               "outputs": {k: v.tolist() for k, v in res.outputs.items()},
                               "stats": res.stats.to_dict()}, indent=1))
        return
    out.print(f"[bold]{program}[/] on {target}, config {prog.config.name}")
    with np.printoptions(threshold=200, edgeitems=4, linewidth=100):
        for name, v in res.outputs.items():
            out.print(f"[bold]{name}[/] {v.dtype}{list(v.shape)}:\n{v}")
    out.print(stats_table(res.stats, exact=target in ("rtl", "fpga")))


def _save(outdir: Path | None, outputs: dict[str, np.ndarray]) -> None:
    if outdir is None:
        return
    outdir.mkdir(parents=True, exist_ok=True)
    for name, v in outputs.items():
        np.save(outdir / f"{name}.npy", v)


def _run_bundled(cfg: Config, target: str, as_json: bool) -> None:
    from vta.model import report_dict, run_bundled

    with err.status(f"compiling the bundled digits CNN for {cfg.name}"):
        r = run_bundled(cfg, target)
    rep = report_dict(r.run)
    accel = [o for o in r.run.report.ops if o.cycles]
    totals = {"cycles": sum(o.cycles or 0 for o in accel), "dram_bytes": sum(o.dram_bytes or 0 for o in accel),
              "macs": sum(st.node.attrs["workload"].macs for st in r.run.exe.steps if st.kind == "accel")}
    if as_json:
        click.echo(json.dumps({"workload": "digits_cnn", "config": cfg.name, "target": target, "images": r.images,
                               "float_accuracy": r.float_accuracy, "int8_accuracy": r.int8_accuracy,
                               "agreement": r.agreement, "bit_exact": r.bit_exact,
                               "accelerated_ops": r.run.exe.accelerated, **totals,
                               "ops": rep["ops"]}, indent=1))
        return
    out.print(f"[bold]bundled default[/]: digits CNN (8x8 handwritten digits from scikit-learn), "
              f"{r.images} held-out images, config {cfg.name} on {target}")
    out.print(f"accuracy: float on the host {r.float_accuracy:.1%}, int8 on the accelerator {r.int8_accuracy:.1%} "
              f"(predictions agree on {r.agreement:.1%})")
    status = "[green]bit-exact[/]" if r.bit_exact else "[red]MISMATCH[/]"
    out.print(f"accelerator results vs the numpy fixed-point reference: {status}")
    t = Table(title="accelerator operators")
    for col in ("node", "op", "cycles", "GEMM util", "DRAM bytes"):
        t.add_column(col, justify="left" if col in ("node", "op") else "right")
    for o in accel:
        t.add_row(o.name, o.op, f"{o.cycles:,}", f"{o.gemm_utilization:.1%}", f"{o.dram_bytes:,}")
    out.print(t)
    peak = cfg.macs_per_cycle * totals["cycles"]
    out.print(f"{r.run.exe.accelerated} operators on the accelerator: {totals['cycles']:,} cycles "
              f"({totals['cycles'] / cfg.clock_mhz / 1e3:.2f} ms at {cfg.clock_mhz:g} MHz), "
              f"{totals['macs']:,} MACs ({totals['macs'] / peak:.1%} of peak), {totals['dram_bytes']:,} DRAM bytes")
    if not r.bit_exact:
        sys.exit(1)


def _run_default(device, target: str, as_json: bool, outdir: Path | None) -> None:  # type: ignore[no-untyped-def]
    from vta.demo import run_gemm

    cfg = device.config
    r = run_gemm(device)
    p = r.problem
    m, k, n = r.output.shape[0], p.k_blocks * cfg.block_in, r.output.shape[1]
    _save(outdir, {"C": r.output})
    if as_json:
        click.echo(json.dumps({"workload": "gemm", "config": cfg.name, "target": target, "m": m, "k": k, "n": n,
                               "bit_exact": r.exact, "stats": r.stats.to_dict()}, indent=1))
    else:
        out.print(f"[bold]bundled default[/]: int8 GEMM {m}x{k} · {k}x{n} + bias, requantized "
                  f"(×{p.mul_for(cfg)}, round, >>{p.shift}, ReLU) on {target}, config {cfg.name}")
        status = "[green]bit-exact[/]" if r.exact else "[red]MISMATCH[/]"
        out.print(f"result vs numpy reference: {status}")
        with np.printoptions(threshold=64, edgeitems=3, linewidth=100):
            out.print(f"C[:4, :8] =\n{r.output[:4, :8]}")
        out.print(stats_table(r.stats, exact=target in ("rtl", "fpga")))
    if not r.exact:
        sys.exit(1)


# ---- fuzz ---------------------------------------------------------------

@main.command()
@click.option("--config", "spec", default=None, help=_CONFIG_HELP)
@click.option("-n", "--n", "count", type=click.IntRange(min=1), default=100, show_default=True,
              help="number of random programs")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="seed of the first program (program i uses seed+i)")
@click.option("--phases", type=click.IntRange(min=1, max=64), default=3, show_default=True,
              help="load/compute/store phases per program")
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="directory for counterexamples (fuzz_CONFIG_SEED.s)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def fuzz(spec: str | None, count: int, seed: int, phases: int, outdir: Path, as_json: bool) -> None:
    """Differential fuzzing: random valid programs on fsim and on the RTL, DRAM compared byte for byte.

    Each counterexample is saved as an assembly file that `vta run` takes
    directly (with --target fsim or rtl). Exits 1 when any program differs.

    \b
    Examples:
      vta fuzz --config tiny --n 200
      vta fuzz --config batch4 --n 50 --seed 1000 -o counterexamples/
    """
    from vta.sim.fuzz import fuzz as run_fuzz

    cfg = _config(spec)
    with err.status(f"building or loading the Verilator simulation of {cfg.name}"):
        from vta.sim.rtl import RtlSim

        RtlSim(cfg, 1 << 16)  # build (or load) once, outside the progress bar
    from rich.progress import Progress

    with Progress(console=err, transient=True, disable=as_json) as bar:
        task = bar.add_task(f"fuzzing {cfg.name}", total=count)
        report = run_fuzz(cfg, count, seed, phases, outdir, progress=lambda i: bar.update(task, completed=i))
    if as_json:
        click.echo(json.dumps({"config": cfg.name, "programs": report.programs, "seed": seed,
                               "rtl_cycles": report.rtl_cycles,
                               "mismatches": [{"seed": m.seed, "reason": m.reason, "file": str(m.path)}
                                              for m in report.mismatches]}, indent=1))
    else:
        for m in report.mismatches:
            out.print(f"[red]seed {m.seed}[/]: {m.reason}\n  saved as {m.path}")
        status = "[green]all agree[/]" if report.ok else f"[red]{len(report.mismatches)} differ[/]"
        out.print(f"{report.programs} programs on {cfg.name} (seeds {seed}..{seed + count - 1}), "
                  f"{report.rtl_cycles:,} RTL cycles: {status}")
    if not report.ok:
        sys.exit(1)


from vta.cli_op import op

main.add_command(op)


@main.command("compile")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="the compiled model (.vtapkg)")
@click.option("--config", "spec", default=None, help=_CONFIG_HELP)
@click.option("--float", "float_only", is_flag=True, help="compile for the host only (no quantization)")
@click.option("--host", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="where the operators not on the accelerator run (gpu: PTX; no GPU needed to compile)")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE.npy",
              help="an input (its shape is compiled for; it calibrates too)")
@click.option("--shape", "shapes", multiple=True, metavar="NAME=D0,D1,...", help="an input's shape")
@click.option("--calibration", metavar="FILE.npz", help="calibration samples, stacked per input name")
@click.option("--dump-after", multiple=True, metavar="PASS", help="print the graph after this pass")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def compile_(model: Path, output: Path, spec: str | None, float_only: bool, host: str, inputs: tuple[str, ...],
             shapes: tuple[str, ...], calibration: str | None, dump_after: tuple[str, ...], as_json: bool) -> None:
    """Compile an ONNX model into one artifact file that `vta run` takes.

    \b
    Examples:
      vta compile model.onnx -o model.vtapkg --input image=x.npy
      vta compile model.onnx -o model.vtapkg --config tiny --shape input=1,3,32,32 --calibration calib.npz
      vta run model.vtapkg --input image=x.npy
    """
    from vta.cli_model import compile_cmd

    compile_cmd(model, output, spec, float_only, inputs, shapes, calibration, dump_after, as_json, host)


# ---- sweep --------------------------------------------------------------

@main.command("sweep")
@click.argument("space", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--workloads", multiple=True, metavar="SPEC",
              help="replace the space's workloads: resnet18.C5, 'resnet18.*', conv2d:N,C,H,W,O,K[,s,p,g], "
                   "dense:M,N,K[,b], FILE.onnx (repeatable; several per value, space-separated)")
@click.option("--scheduler", metavar="ADDRESS", help="run on this Dask cluster (tcp://host:8786) instead of locally")
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False, path_type=Path),
              help="output folder (default sweep-SPACE); a rerun resumes it")
@click.option("--target", type=click.Choice(["fsim", "rtl"]), default=None,
              help="fsim: timing-model cycles (the space's default); rtl: exact cycles from the RTL under Verilator")
@click.option("--synth", metavar="FAMILY", help="also estimate LUT/FF/DSP/BRAM per config with vta.hw.synth")
@click.option("--fmax", is_flag=True, help="with --synth: Fmax estimates too")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=None,
              help="local worker processes (default: the CPUs; 0: run in this process)")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="run at most N of the unfinished points")
@click.option("--retry-errors", is_flag=True, help="run again the points recorded as failed")
@click.option("--no-plots", is_flag=True, help="skip the Pareto and roofline plots")
@click.option("--json", "as_json", is_flag=True, help="machine-readable summary")
def sweep(space: Path, workloads: tuple[str, ...], scheduler: str | None, outdir: Path | None, target: str | None,
          synth: str | None, fmax: bool, jobs: int | None, limit: int | None, retry_errors: bool, no_plots: bool,
          as_json: bool) -> None:
    """Sweep configs x workloads: cycles, utilization, DRAM traffic, Pareto and roofline plots.

    SPACE.toml gives a base config, axes of config fields (their product is
    swept) and workloads. Each point's row is appended to DIR/points.csv as
    it finishes; a rerun skips the finished points. An invalid config or a
    failing point is recorded with its error.

    \b
    Examples:
      vta sweep examples/sweep_small.toml -o sweep_small/
      vta sweep examples/sweep_resnet18.toml --workloads 'resnet18.C5 resnet18.C11' --jobs 2
      vta sweep space.toml --scheduler tcp://10.0.0.5:8786 --synth ecp5 --target rtl
    """
    from vta.sweep.cli import sweep_cmd

    sweep_cmd(space, workloads, scheduler, outdir, target, synth, fmax, jobs, limit, retry_errors, no_plots, as_json)


if __name__ == "__main__":
    main()
