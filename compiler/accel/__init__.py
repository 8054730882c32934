"""Accelerator code generation: lowering scheduled loop IR to instruction streams (`lower`),
the stream builder with dependency tokens and resident micro-kernels (`stream`), and
automatic schedules for conv2d and dense (`schedules`)."""

from .lower import AccelKernel, LoweringError, lower

__all__ = ["AccelKernel", "LoweringError", "lower"]
