"""Compile a graph-IR module into steps the executor runs: each node becomes a host kernel
(compiled once per distinct function and reused), or a view that moves no data.

Kernels are cached by their loop-IR text, so the ten identical convolutions of a network
compile once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

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


def run_cpu(exe: Executable, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run on the host CPU; ``feeds`` by input name. Returns the outputs by name."""
    from vta.compiler.tir.interp import numpy_dtype

    env: dict[int, np.ndarray] = {}
    for v in exe.inputs:
        if v.name not in feeds:
            raise GraphError(f"missing input {v.name} ({v.type_str()})")
        a = np.asarray(feeds[v.name])
        want = np.dtype(numpy_dtype(v.dtype))  # type: ignore[arg-type]
        if a.dtype != want or a.shape != v.static_shape():
            raise GraphError(f"input {v.name}: expected {v.type_str()}, got {a.dtype}{list(a.shape)}")
        env[v.uid] = np.ascontiguousarray(a)
    extra = set(feeds) - {v.name for v in exe.inputs}
    if extra:
        raise GraphError(f"unknown input(s) {', '.join(sorted(extra))}; inputs: "
                         f"{', '.join(v.name for v in exe.inputs)}")

    def get(v: Value) -> np.ndarray:
        return v.const if v.const is not None else env[v.uid]

    for st in exe.steps:
        n = st.node
        if st.kind == "view":
            src = get(n.inputs[0])  # type: ignore[arg-type]
            env[n.outputs[0].uid] = src.reshape(n.outputs[0].static_shape())
            continue
        outs = [np.empty(v.static_shape() or (1,), numpy_dtype(v.dtype)) for v in n.outputs[:1]]  # type: ignore[arg-type]
        args = [np.ascontiguousarray(get(v)) for v in st.args]
        args = [a.reshape(a.shape or (1,)) for a in args]
        st.kernel(*args, *outs)  # type: ignore[misc]
        env[n.outputs[0].uid] = outs[0].reshape(n.outputs[0].static_shape())
    return {v.name: get(v) for v in exe.outputs}
