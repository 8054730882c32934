"""Compile a graph-IR module into steps the executor runs: each node becomes a host kernel
(compiled once per distinct function and reused), or a view that moves no data.

Kernels are cached by their loop-IR text, so the ten identical convolutions of a network
compile once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vta.compiler.cpu import CpuKernel, compile_cpu
from vta.compiler.tir.printer import func_str

from .ir import Graph, GraphError, Module, Node, Value
from .ops import OPS, kernel_of
from .passes import run_pipeline


@dataclass
class Step:
    node: Node
    kind: str  # "kernel" or "view"
    kernel: CpuKernel | None = None
    args: list[Value] = field(default_factory=list)  # kernel parameters among the node's inputs


@dataclass
class Executable:
    """What the executor runs: the graph, its steps in order, and compile statistics."""

    graph: Graph
    steps: list[Step]
    compile_s: float
    kernels: int

    @property
    def inputs(self) -> list[Value]:
        return self.graph.inputs

    @property
    def outputs(self) -> list[Value]:
        return self.graph.outputs


def _schedule(func):  # type: ignore[no-untyped-def]
    from vta.compiler.cpu.schedule import default_schedule

    return default_schedule(func)


def compile_module(mod: Module, dump_after: set[str] | None = None, out: Callable[[str], None] = print) -> Executable:
    """Run the pass pipeline and compile every node for the host CPU."""
    t0 = time.perf_counter()
    mod = run_pipeline(mod, dump_after, out)
    g = mod.main
    cache: dict[str, CpuKernel] = {}
    steps = []
    for n in g.nodes:
        d = OPS[n.op]
        if d.view:
            steps.append(Step(n, "view"))
            continue
        if d.kernel is None:
            raise GraphError(f"node {n.name} ({n.op}) has no host kernel (its inputs are not constants)")
        func, args = kernel_of(n)
        func = _schedule(func)
        key = func_str(func)
        k = cache.get(key)
        if k is None:
            k = cache[key] = compile_cpu(func)
        steps.append(Step(n, "kernel", k, [n.inputs[i] for i in args]))  # type: ignore[misc]
    return Executable(g, steps, time.perf_counter() - t0, len(cache))
