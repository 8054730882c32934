"""Compile loop-IR functions for the host CPU with llvmlite and call them on numpy arrays.

`compile_cpu(func)` generates LLVM IR (`codegen`), optimizes it at -O3 for the host CPU
(its vector extensions included) and JIT-compiles it with MCJIT. The result is called
with one C-contiguous array per parameter; intermediate buffers are allocated once per
kernel. A function whose body is a ``parallel`` loop runs its iterations in chunks on a
thread pool (the compiled code runs without the GIL).
"""

from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from llvmlite import binding as llvm
from vta.compiler.tir.interp import numpy_dtype
from vta.compiler.tir.stmt import PrimFunc

from .codegen import CodegenError, generate, outer_extent

_lock = threading.Lock()
_state: dict[str, object] = {}


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


def _pool() -> ThreadPoolExecutor:
    with _lock:
        pool = _state.get("pool")
        if pool is None:
            pool = _state["pool"] = ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
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


@dataclass
class CpuKernel:
    """A compiled function: call it with numpy arrays, one per parameter, written in place."""

    func: PrimFunc
    llvm_ir: str        # as generated
    optimized_ir: str   # after -O3
    _engine: object = field(repr=False)
    _fn: object = field(repr=False)
    _scratch: list[np.ndarray] = field(repr=False)
    parallel_extent: int | None = None

    def __post_init__(self) -> None:
        from vta.compiler.tir.stmt import BufferStore
        from vta.compiler.tir.transform import walk_stmt

        stored = {s.buffer for s in walk_stmt(self.func.body) if isinstance(s, BufferStore)}
        self._written = {i for i, p in enumerate(self.func.params) if p in stored}

    def __call__(self, *arrays: np.ndarray, threads: int | None = None) -> None:
        params = self.func.params
        if len(arrays) != len(params):
            raise ValueError(f"{self.func.name} takes {len(params)} arrays ({', '.join(p.name for p in params)}), "
                             f"got {len(arrays)}")
        ptrs = []
        written = self._written
        for k, (buf, arr) in enumerate(zip(params, arrays)):
            shape = tuple(d.value for d in buf.shape)  # type: ignore[attr-defined]
            want = np.dtype(numpy_dtype(buf.dtype))
            if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != want:
                got = f"{arr.dtype}{list(arr.shape)}" if isinstance(arr, np.ndarray) else type(arr).__name__
                raise ValueError(f"{self.func.name}: {buf.name} must be {want}{list(shape)}, got {got}")
            if not arr.flags.c_contiguous or (k in written and not arr.flags.writeable):
                raise ValueError(f"{self.func.name}: {buf.name} must be a C-contiguous array"
                                 + (" and writeable" if k in written else ""))
            ptrs.append(arr.ctypes.data)
        for i, a in enumerate(arrays):
            for j in range(i + 1, len(arrays)):
                if (i in written or j in written) and np.shares_memory(a, arrays[j]):
                    raise ValueError(f"{self.func.name}: {params[i].name} and {params[j].name} share memory, and "
                                     "one of them is written")
        ptrs += [s.ctypes.data for s in self._scratch]
        n = self.parallel_extent
        if n is None:
            self._fn(*ptrs, 0, 0)  # type: ignore[operator]
            return
        workers = max(1, min(threads or os.cpu_count() or 1, n))
        if workers == 1:
            self._fn(*ptrs, 0, n)  # type: ignore[operator]
            return
        if any(s.size for s in self._scratch):
            raise CodegenError(f"{self.func.name}: a parallel loop cannot share intermediate buffers between threads")
        bounds = np.linspace(0, n, workers + 1).astype(int)
        futures = [_pool().submit(self._fn, *ptrs, int(lo), int(hi))  # type: ignore[arg-type]
                   for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
        for f in futures:
            f.result()


def compile_cpu(func: PrimFunc) -> CpuKernel:
    """JIT-compile ``func`` for this machine."""
    module = generate(func)
    text = str(module)
    mod = optimize(text)
    engine = llvm.create_mcjit_compiler(mod, _new_machine())
    engine.finalize_object()
    addr = engine.get_function_address(func.name)
    nbuf = len(func.params) + len(func.allocs)
    proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * nbuf), ctypes.c_int64, ctypes.c_int64)
    scratch = [np.zeros([d.value for d in b.shape], numpy_dtype(b.dtype)) for b in func.allocs]  # type: ignore[attr-defined]
    return CpuKernel(func, text, str(mod), engine, proto(addr), scratch, outer_extent(func))
