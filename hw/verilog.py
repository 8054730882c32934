"""Verilog generation for a config, with stable module and port names."""

from __future__ import annotations

from pathlib import Path

from amaranth.back import verilog

from vta.isa import Config

TOP = "vta_core"


def generate(config: Config) -> str:
    """The whole accelerator as one Verilog file, top module ``vta_core`` (docs/rtl.md lists its ports)."""
    from .core import VTACore

    # emit_src=False keeps the text independent of source line numbers, so unrelated edits
    # do not change it (builds are cached by a hash of it).
    return verilog.convert(VTACore(config), name=TOP, emit_src=False)


def write(config: Config, outdir: str | Path) -> Path:
    """Write ``<outdir>/vta_core.v`` and a JSON copy of the config beside it; returns the Verilog path."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{TOP}.v"
    path.write_text(generate(config))
    config.save(out / "config.json")
    return path
