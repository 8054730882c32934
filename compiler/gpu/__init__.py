"""The GPU backend: loop IR with loops bound to ``blockIdx``/``threadIdx`` rendered to LLVM IR
for ``nvptx64-nvidia-cuda`` (`codegen`, after `lower`) and compiled to PTX by llvmlite
(`ptx`); default schedules for the operator library (`schedule`) and the GPU-specific
schedule helpers they use (`primitives`). `vta.runtime.cuda_device` runs the result."""

from vta.compiler.cpu.codegen import CodegenError

from .codegen import KernelSpec, generate
from .launch import Launch
from .ptx import GpuProgram, compile_gpu, emit_ptx
from .schedule import default_schedule

__all__ = ["CodegenError", "GpuProgram", "KernelSpec", "Launch", "compile_gpu", "default_schedule", "emit_ptx",
           "generate"]
