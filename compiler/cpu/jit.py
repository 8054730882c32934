"""Compile loop-IR functions for the host CPU with llvmlite and call them on numpy arrays.

`compile_cpu(func)` generates LLVM IR (`codegen`), optimizes it at -O3 for the host CPU
(its vector extensions included) and JIT-compiles it with MCJIT. The result is called
with one C-contiguous array per parameter; intermediate buffers are allocated once per
kernel. A function whose body is a ``parallel`` loop runs its iterations in chunks on a
thread pool (the compiled code runs without the GIL).
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from llvmlite import binding as llvm
from vta.compiler.tir.interp import numpy_dtype
from vta.compiler.tir.stmt import PrimFunc

from .codegen import CodegenError, generate, stage_info
from .lanes import SLACK
from .threads import available as threads_native
from .threads import native_pool

_lock = threading.Lock()
_state: dict[str, object] = {}
CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)  # once: a call costs µs


def _new_machine() -> llvm.TargetMachine:
    with _lock:
        if "init" not in _state:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _state["init"] = True
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
                                        opt=3, reloc="default", codemodel="jitdefault")


def _machine() -> llvm.TargetMachine:
    """The host target machine for optimizing (an execution engine owns its own: it frees it)."""
    tm = _state.get("tm")
    if tm is None:
        tm = _state["tm"] = _new_machine()
    return tm  # type: ignore[return-value]


def host_vector_bits() -> int:
    """The width of the host's vector registers: 512 with AVX-512, 256 with AVX, else 128."""
    bits = _state.get("vector_bits")
    if bits is None:
        _machine()
        feats = llvm.get_host_cpu_features()
        bits = _state["vector_bits"] = 512 if feats.get("avx512f") else 256 if feats.get("avx") else 128
    return bits  # type: ignore[return-value]


def _pool() -> ThreadPoolExecutor:
    with _lock:
        pool = _state.get("pool")
        if pool is None:
            pool = _state["pool"] = ThreadPoolExecutor(max_workers=max(1, CPUS - 1),
                                                       thread_name_prefix="vta-cpu")
        return pool  # type: ignore[return-value]


def optimize(ir_text: str) -> llvm.ModuleRef:
    """Parse, verify and optimize (-O3, host CPU) LLVM IR text."""
    tm = _machine()
    mod = llvm.parse_assembly(ir_text)
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    return mod


@dataclass(frozen=True)
class Signature:
    """What a caller needs of a compiled function: its name, parameters (name, shape,
    dtype), intermediate buffers (shape, dtype), which parameters it writes, and the extent
    of a parallel outer loop. Saved with the LLVM IR in artifacts."""

    name: str
    params: tuple[tuple[str, tuple[int, ...], str], ...]
    allocs: tuple[tuple[tuple[int, ...], str], ...]
    written: tuple[int, ...]
    stages: tuple[tuple[str, int | None, int], ...] = ()  # (entry point, parallel extent, work) in call order

    @staticmethod
    def of(func: PrimFunc) -> Signature:
        from vta.compiler.tir.stmt import BufferStore
        from vta.compiler.tir.transform import walk_stmt

        stored = {s.buffer for s in walk_stmt(func.body) if isinstance(s, BufferStore)}
        shape = lambda b: tuple(d.value for d in b.shape)  # type: ignore[attr-defined]
        return Signature(func.name, tuple((b.name, shape(b), b.dtype) for b in func.params),
                         tuple((shape(b), b.dtype) for b in func.allocs if b.scope != "local"),
                         tuple(i for i, b in enumerate(func.params) if b in stored), tuple(stage_info(func)))

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "params": [[n, list(s), d] for n, s, d in self.params],
                "allocs": [[list(s), d] for s, d in self.allocs], "written": list(self.written),
                "stages": [[n, e, w] for n, e, w in self.stages]}

    @staticmethod
    def from_dict(d: dict[str, object]) -> Signature:
        return Signature(str(d["name"]), tuple((str(n), tuple(s), str(t)) for n, s, t in d["params"]),  # type: ignore[attr-defined]
                         tuple((tuple(s), str(t)) for s, t in d["allocs"]),  # type: ignore[attr-defined]
                         tuple(int(i) for i in d["written"]),  # type: ignore[attr-defined]
                         tuple((str(n), None if e is None else int(e), int(w)) for n, e, w in d["stages"]))  # type: ignore[attr-defined]


PARALLEL_WORK = 1 << 15  # innermost iterations below which a parallel stage runs on the calling thread alone


@dataclass
class CpuKernel:
    """A compiled function: call it with numpy arrays, one per parameter, written in place."""

    sig: Signature
    llvm_ir: str        # as generated
    optimized_ir: str   # after -O3
    _engine: object = field(repr=False)
    _fn: object = field(repr=False)
    _scratch: list[np.ndarray] = field(repr=False)

    def __post_init__(self) -> None:
        self._scratch_ptrs = [s.ctypes.data for s in self._scratch]
        self._addrs = [ctypes.cast(f, ctypes.c_void_p).value for f in self._fn]  # type: ignore[attr-defined]
        self._argv_type = ctypes.c_void_p * (len(self.sig.params) + len(self._scratch))

    @property
    def parallel_extent(self) -> int | None:
        """The first stage's parallel extent (None: it runs on one thread)."""
        return self.sig.stages[0][1] if self.sig.stages else None

    def __call__(self, *arrays: np.ndarray, threads: int | None = None) -> None:
        self.run_argv(self.argv(self.pointers(arrays)), threads)

    def argv(self, ptrs: list[int]) -> ctypes.Array:  # type: ignore[type-arg]
        """The argument vector for the parameters' data pointers ``ptrs`` (its scratch buffers appended)."""
        return self._argv_type(*ptrs, *self._scratch_ptrs)

    def pointers(self, arrays: tuple[np.ndarray, ...] | list[np.ndarray]) -> list[int]:
        """The arrays' data pointers, after checking each against its parameter (shape, dtype,
        contiguity, writeable when written, no sharing with a written one)."""
        sig = self.sig
        params = sig.params
        if len(arrays) != len(params):
            raise ValueError(f"{sig.name} takes {len(params)} arrays ({', '.join(p[0] for p in params)}), "
                             f"got {len(arrays)}")
        ptrs = []
        written = set(sig.written)
        for k, ((pname, shape, dtype), arr) in enumerate(zip(params, arrays)):
            want = np.dtype(numpy_dtype(dtype))
            if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != want:
                got = f"{arr.dtype}{list(arr.shape)}" if isinstance(arr, np.ndarray) else type(arr).__name__
                raise ValueError(f"{sig.name}: {pname} must be {want}{list(shape)}, got {got}")
            if not arr.flags.c_contiguous or (k in written and not arr.flags.writeable):
                raise ValueError(f"{sig.name}: {pname} must be a C-contiguous array"
                                 + (" and writeable" if k in written else ""))
            ptrs.append(arr.ctypes.data)
        for i, a in enumerate(arrays):
            for j in range(i + 1, len(arrays)):
                if (i in written or j in written) and np.shares_memory(a, arrays[j]):
                    raise ValueError(f"{sig.name}: {params[i][0]} and {params[j][0]} share memory, and "
                                     "one of them is written")
        return ptrs

    def run_argv(self, argv: ctypes.Array, threads: int | None = None) -> None:  # type: ignore[type-arg]
        """Run on an argument vector from `argv` (the caller keeps what it points to alive)."""
        for i, (fn, (_, n, work)) in enumerate(zip(self._fn, self.sig.stages)):  # type: ignore[call-overload]
            workers = 1 if n is None or (threads is None and work < PARALLEL_WORK) else \
                max(1, min(threads or CPUS, n))
            if workers == 1:
                fn(argv, 0, n or 0)
                continue
            chunks = _chunks(n, workers)
            if _NATIVE:
                pool = native_pool()
                if len(chunks) - 1 <= pool.workers:
                    if not pool.run(self._addrs[i], argv, chunks, fn):
                        fn(argv, 0, n)  # another thread has the workers
                    continue
            futures = [_pool().submit(fn, argv, lo, hi) for lo, hi in chunks[1:]]
            fn(argv, *chunks[0])  # the calling thread takes a share too, instead of only waiting
            for f in futures:
                f.result()


_NATIVE = threads_native()


@functools.lru_cache(maxsize=4096)
def _chunks(n: int, workers: int) -> list[tuple[int, int]]:
    """``range(n)`` in ``workers`` near-equal nonempty chunks."""
    bounds = [n * k // workers for k in range(workers + 1)]
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]


def compile_cpu(func: PrimFunc) -> CpuKernel:
    """JIT-compile ``func`` for this machine ("local" buffers compacted to their live tile first)."""
    from vta.compiler.tir.compact import compact

    func = compact(func)
    return load_cpu(generate(func), Signature.of(func))


def load_cpu(llvm_ir: str, sig: Signature) -> CpuKernel:
    """JIT-compile LLVM IR made by `generate` (e.g. read from an artifact) for this machine."""
    mod = optimize(llvm_ir)
    engine = llvm.create_mcjit_compiler(mod, _new_machine())
    engine.finalize_object()
    proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
    fns = []
    for name, _, _ in sig.stages:
        addr = engine.get_function_address(name)
        if not addr:
            raise CodegenError(f"the LLVM IR has no function {name}")
        fns.append(proto(addr))
    # intermediates get `lanes.SLACK` elements to spare: a masked-off lane may read past the end
    scratch = [np.zeros(int(np.prod(shape)) + SLACK, numpy_dtype(dt))[:int(np.prod(shape))].reshape(shape)
               for shape, dt in sig.allocs]
    return CpuKernel(sig, llvm_ir, str(mod), engine, fns, scratch)
