"""The graph executor: runs a compiled module's steps in order on their devices (host
kernels on the CPU, views without copies) and reports per-operator time.

`run_graph(exe, feeds)` checks every input (name, dtype, shape) and returns the outputs by
name and a `Report`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from vta.compiler.graph.build import Executable
from vta.compiler.graph.ir import GraphError, Value
from vta.compiler.tir.interp import numpy_dtype


@dataclass
class OpRecord:
    """One operator's run: where, how long, and (accelerator steps) cycles and traffic."""

    name: str
    op: str
    device: str
    seconds: float
    cycles: int | None = None
    gemm_utilization: float | None = None
    dram_bytes: int | None = None


@dataclass
class Report:
    ops: list[OpRecord] = field(default_factory=list)
    seconds: float = 0.0

    def by_device(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in self.ops:
            out[r.device] = out.get(r.device, 0.0) + r.seconds
        return out


def check_feeds(exe: Executable, feeds: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    env: dict[int, np.ndarray] = {}
    names = [v.name for v in exe.inputs]
    extra = set(feeds) - set(names)
    if extra:
        raise GraphError(f"unknown input(s) {', '.join(sorted(extra))}; the model's inputs: {', '.join(names)}")
    for v in exe.inputs:
        if v.name not in feeds:
            raise GraphError(f"missing input {v.name} ({v.type_str()})")
        a = np.asarray(feeds[v.name])
        want = np.dtype(numpy_dtype(v.dtype))  # type: ignore[arg-type]
        if a.dtype != want:
            raise GraphError(f"input {v.name}: expected {v.type_str()}, got {a.dtype}{list(a.shape)} (wrong dtype)")
        if a.shape != v.static_shape():
            raise GraphError(f"input {v.name}: expected {v.type_str()}, got {a.dtype}{list(a.shape)} (wrong shape)")
        env[v.uid] = np.ascontiguousarray(a)
    return env


def run_graph(exe: Executable, feeds: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], Report]:
    env = check_feeds(exe, feeds)
    report = Report()

    def get(v: Value) -> np.ndarray:
        return v.const if v.const is not None else env[v.uid]

    t_all = time.perf_counter()
    for st in exe.steps:
        n = st.node
        t0 = time.perf_counter()
        if st.kind == "view":
            env[n.outputs[0].uid] = get(n.inputs[0]).reshape(n.outputs[0].static_shape())  # type: ignore[arg-type]
            report.ops.append(OpRecord(n.name, n.op, "view", time.perf_counter() - t0))
            continue
        out = n.outputs[0]
        res = np.empty(out.static_shape() or (1,), numpy_dtype(out.dtype))  # type: ignore[arg-type]
        args = [get(v) for v in st.args]
        st.kernel(*[a.reshape(a.shape or (1,)) for a in args], res)  # type: ignore[misc]
        env[out.uid] = res.reshape(out.static_shape())
        report.ops.append(OpRecord(n.name, n.op, "cpu", time.perf_counter() - t0))
    report.seconds = time.perf_counter() - t_all
    return {v.name: get(v) for v in exe.outputs}, report
