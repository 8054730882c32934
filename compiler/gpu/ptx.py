"""Compile loop-IR functions to PTX with llvmlite's NVPTX backend (no CUDA toolkit).

`compile_gpu(func)` lowers the scheduled function (`lower.lower`), generates LLVM IR
(`codegen.generate`), optimizes it at -O3 for ``sm_90`` and emits PTX text. The result, a
`GpuProgram`, is plain data (PTX, kernel launches, buffer signature) that
`vta.runtime.cuda_device` loads through the CUDA driver, or that an artifact stores.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from llvmlite import binding as llvm
from vta.compiler.tir.stmt import BufferStore, PrimFunc
from vta.compiler.tir.transform import walk_stmt

from .codegen import TRIPLE, KernelSpec, check_declarations, generate
from .lower import lower

CPU = "sm_90"
FEATURES = "+ptx80"
_lock = threading.Lock()
_state: dict[str, object] = {}


def target_machine(cpu: str = CPU, features: str = FEATURES) -> llvm.TargetMachine:
    """The NVPTX target machine (-O3) for ``cpu`` (an ``sm_XX``) and PTX ``features``."""
    key = f"tm/{cpu}/{features}"
    with _lock:
        if "init" not in _state:
            llvm.initialize_all_targets()
            llvm.initialize_all_asmprinters()
            _state["init"] = True
        tm = _state.get(key)
        if tm is None:
            tm = _state[key] = llvm.Target.from_triple(TRIPLE).create_target_machine(cpu=cpu, features=features,
                                                                                      opt=3)
    return tm  # type: ignore[return-value]


def optimize(ir_text: str, cpu: str = CPU, features: str = FEATURES) -> llvm.ModuleRef:
    """Parse, verify and optimize (-O3) NVPTX LLVM IR text."""
    check_declarations(ir_text)
    tm = target_machine(cpu, features)
    mod = llvm.parse_assembly(ir_text)
    mod.triple = TRIPLE
    mod.data_layout = str(tm.target_data)
    mod.verify()
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=3))
    pb.getModulePassManager().run(mod, pb)
    check_declarations(str(mod))
    return mod


def emit_ptx(ir_text: str, cpu: str = CPU, features: str = FEATURES) -> str:
    """PTX text for NVPTX LLVM IR text."""
    return target_machine(cpu, features).emit_assembly(optimize(ir_text, cpu, features))


Param = tuple[str, tuple[int, ...], str]  # name, shape, dtype


@dataclass(frozen=True)
class GpuProgram:
    """A compiled function: PTX with one kernel per stage (launched in order, each taking
    a pointer per parameter then per scratch buffer), the parameters, the global scratch
    buffers the runtime allocates, and which parameters the kernels write."""

    name: str
    ptx: str
    llvm_ir: str
    kernels: tuple[KernelSpec, ...]
    params: tuple[Param, ...]
    scratch: tuple[Param, ...]
    written: tuple[int, ...]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "ptx": self.ptx, "llvm_ir": self.llvm_ir,
                "kernels": [k.to_dict() for k in self.kernels],
                "params": [[n, list(s), d] for n, s, d in self.params],
                "scratch": [[n, list(s), d] for n, s, d in self.scratch], "written": list(self.written)}

    @staticmethod
    def from_dict(d: dict[str, object]) -> GpuProgram:
        def params(rows: object) -> tuple[Param, ...]:
            return tuple((str(n), tuple(int(x) for x in s), str(t)) for n, s, t in rows)  # type: ignore[attr-defined]

        return GpuProgram(str(d["name"]), str(d["ptx"]), str(d["llvm_ir"]),
                          tuple(KernelSpec.from_dict(k) for k in d["kernels"]),  # type: ignore[attr-defined]
                          params(d["params"]), params(d["scratch"]),
                          tuple(int(i) for i in d["written"]))  # type: ignore[attr-defined]


def compile_gpu(func: PrimFunc, cpu: str = CPU, features: str = FEATURES) -> GpuProgram:
    """PTX for the scheduled ``func`` (its loops bound to blockIdx/threadIdx: see
    `vta.compiler.gpu.default_schedule`)."""
    low = lower(func)
    ir_text, kernels = generate(low)
    ptx = emit_ptx(ir_text, cpu, features)
    shape = lambda b: tuple(d.value for d in b.shape)  # type: ignore[attr-defined]
    stored = {s.buffer for s in walk_stmt(low.body) if isinstance(s, BufferStore)}
    return GpuProgram(func.name, ptx, ir_text, tuple(kernels), tuple((b.name, shape(b), b.dtype) for b in low.params),
                      tuple((b.name, shape(b), b.dtype) for b in low.allocs if b.scope == "global"),
                      tuple(i for i, b in enumerate(low.params) if b in stored))


__all__ = ["CPU", "FEATURES", "GpuProgram", "compile_gpu", "emit_ptx", "optimize", "target_machine"]
