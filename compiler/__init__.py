"""Compiler: graph IR, ONNX frontend, quantization, loop IR, schedules, tensor intrinsics and code generators."""
