"""A run plan: an executable's steps with every data pointer fixed once, so a run costs one
foreign call per host kernel and no array bookkeeping.

The plan owns an arena laid out by the memory plan (`plan_memory`); every intermediate
value, graph outputs included, has its place there, constants stay where they are, and a
view is its source's bytes. Only the inputs' pointers change between runs: the argument
vectors that hold them are patched at the start of each run. Outputs are copied out of the
arena at the end, so a later run cannot overwrite what an earlier one returned. A plan
serves one run at a time (`busy`); the executor falls back to its general path when it is.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from vta.compiler.graph.ir import Value
from vta.compiler.tir.interp import numpy_dtype

if TYPE_CHECKING:
    from vta.compiler.graph.build import Executable

    from .device import Device
    from .graph import Report


def _dtype(v: Value) -> np.dtype:  # type: ignore[type-arg]
    return np.dtype(numpy_dtype(v.dtype))  # type: ignore[arg-type]


class RunPlan:
    def __init__(self, exe: Executable) -> None:
        self.exe = exe
        self.lock = threading.Lock()
        plan = exe.graph.plan
        self.arena = np.zeros(exe.graph.arena_bytes + 64, np.uint8)
        shift = (-self.arena.ctypes.data) % 64  # the plan's 64-byte alignment, kept in memory
        self.inputs = {v.uid: v for v in exe.inputs}
        self.views: dict[int, np.ndarray] = {}  # value -> its array (arena slice or constant)
        self.root: dict[int, int] = {}  # a view of an input -> the input
        for st in exe.steps:
            src, out = st.node.inputs[0], st.node.outputs[0]
            if st.kind == "view" and (src.uid in self.inputs or src.uid in self.root):
                self.root[out.uid] = self.root.get(src.uid, src.uid)
                continue
            for v in (*st.node.inputs, out):
                if v is None or v.uid in self.views or v.uid in self.inputs:
                    continue
                if v.const is not None:
                    self.views[v.uid] = v.const
                elif v.name in plan:
                    off, nb = plan[v.name]
                    self.views[v.uid] = self.arena[shift + off:shift + off + nb].view(_dtype(v)) \
                        .reshape(v.static_shape() or (1,))
                elif v is out and st.kind == "view":  # a view of a constant
                    self.views[v.uid] = self.views[src.uid].reshape(v.static_shape())
        self.argv: list[object] = []  # per kernel step: its argument vector (None otherwise)
        self.patch: dict[int, list[tuple[object, int]]] = {}  # input -> (argument vector, slot) holding it
        dummy = {u: np.zeros(v.static_shape() or (1,), _dtype(v)) for u, v in self.inputs.items()}
        for st in exe.steps:
            if st.kind != "kernel":
                self.argv.append(None)
                continue
            vals = [*st.args, st.node.outputs[0]]
            arrays = [self._array(v, dummy) for v in vals]
            k = st.kernel
            av = k.argv(k.pointers([a.reshape(a.shape or (1,)) for a in arrays]))  # type: ignore[union-attr]
            for slot, v in enumerate(vals):
                u = self.root.get(v.uid, v.uid)
                if u in self.inputs:
                    self.patch.setdefault(u, []).append((av, slot))
            self.argv.append(av)

    def _array(self, v: Value, inputs: dict[int, np.ndarray]) -> np.ndarray:
        u = self.root.get(v.uid, v.uid)
        if u in inputs:
            return inputs[u].reshape(v.static_shape() or (1,))
        return v.const if v.const is not None else self.views[v.uid]

    def run(self, env: dict[int, np.ndarray], report: Report, device: Device | None) -> dict[str, np.ndarray]:
        """One run on the checked inputs ``env``; per-operator records go to ``report``."""
        from .graph import OpRecord, _run_accel

        for u, arr in env.items():
            p = arr.ctypes.data
            for av, slot in self.patch.get(u, ()):
                av[slot] = p  # type: ignore[index]
        ops = report.ops
        clock = time.perf_counter
        for st, av in zip(self.exe.steps, self.argv):
            n = st.node
            t0 = clock()
            if av is not None:
                st.kernel.run_argv(av)  # type: ignore[union-attr,arg-type]
                ops.append(OpRecord(n.name, n.op, "cpu", clock() - t0))
            elif st.kind == "view":
                ops.append(OpRecord(n.name, n.op, "view", clock() - t0))
            else:
                x = self._array(st.args[0], env)
                ops.append(_run_accel(st, x, self.views[n.outputs[0].uid], device, t0))  # type: ignore[arg-type]
        return {v.name: np.array(self._array(v, env)).reshape(v.static_shape()) for v in self.exe.outputs}


def run_plan(exe: Executable) -> RunPlan | None:
    """The executable's plan (made on first use), or None when it has no memory plan."""
    if not exe.graph.plan:
        return None
    plan = getattr(exe, "_run_plan", None)
    if plan is None:
        plan = RunPlan(exe)
        exe._run_plan = plan  # type: ignore[attr-defined]
    return plan


__all__ = ["RunPlan", "run_plan"]
