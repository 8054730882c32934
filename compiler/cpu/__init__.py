"""The CPU backend: loop IR rendered to LLVM IR (`codegen`) and JIT-compiled for the host
with llvmlite (`jit`)."""

from .codegen import CodegenError, generate
from .jit import CpuKernel, compile_cpu

__all__ = ["CodegenError", "CpuKernel", "compile_cpu", "generate"]
