"""A run plan: an executable's steps with every data pointer fixed once, so a run costs one
foreign call per host kernel and no array bookkeeping.

The plan owns an arena laid out by the memory plan (`plan_memory`); every intermediate
value has its place there, constants stay where they are, and a view is its source's
bytes. Only the inputs' pointers and the outputs' change between runs: the caller's input
arrays, and fresh output arrays (so nothing returned is overwritten by a later run); the
argument vectors that hold them are patched at the start of each run. A plan
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
        self.root: dict[int, int] = {}  # a view -> the value owning its bytes
        for st in exe.steps:
            if st.kind == "view":
                src, out = st.node.inputs[0], st.outs[0]
                self.root[out.uid] = self.root.get(src.uid, src.uid)
        # per run: the inputs (the caller's arrays) and the values holding the outputs' bytes
        # (fresh arrays, so nothing returned is overwritten later and nothing is copied)
        values = {v.uid: v for st in exe.steps for v in (*st.node.inputs, *st.outs) if v is not None}
        values.update({v.uid: v for v in (*exe.inputs, *exe.outputs)})
        self.inputs = {v.uid for v in exe.inputs}
        self.fresh = {}
        for v in exe.outputs:
            u = self.root.get(v.uid, v.uid)
            if u not in self.inputs and values[u].const is None:
                self.fresh[u] = (values[u].static_shape() or (1,), _dtype(values[u]))
        self.views: dict[int, np.ndarray] = {}  # every other value -> its array (arena slice or constant)
        for u, v in values.items():
            r = self.root.get(u, u)
            if r in self.inputs or r in self.fresh:
                continue
            if v.const is not None:
                self.views[u] = v.const
            elif values[r].const is not None:  # a view of a constant
                self.views[u] = values[r].const.reshape(v.static_shape() or (1,))  # type: ignore[union-attr]
            elif v.name in plan:
                off, nb = plan[v.name]
                self.views[u] = self.arena[shift + off:shift + off + nb].view(_dtype(v)).reshape(v.static_shape() or (1,))
        self.outputs = [(v, v.static_shape()) for v in exe.outputs]
        self.argv: list[object] = []  # per kernel step: its argument vector (None otherwise)
        self.patch: dict[int, list[tuple[object, int]]] = {}  # per-run value -> (argument vector, slot) holding it
        dummy = {u: np.zeros(values[u].static_shape() or (1,), _dtype(values[u])) for u in (*self.inputs, *self.fresh)}
        for st in exe.steps:
            if st.kind != "kernel":
                self.argv.append(None)
                continue
            vals = [*st.args, *st.outs]  # a kernel's parameters: its inputs, then every output it writes
            arrays = [self._array(v, dummy) for v in vals]
            k = st.kernel
            av = k.argv(k.pointers([a.reshape(a.shape or (1,)) for a in arrays]))  # type: ignore[union-attr]
            for slot, v in enumerate(vals):
                u = self.root.get(v.uid, v.uid)
                if u in dummy:
                    self.patch.setdefault(u, []).append((av, slot))
            self.argv.append(av)

    def _array(self, v: Value, per_run: dict[int, np.ndarray]) -> np.ndarray:
        u = self.root.get(v.uid, v.uid)
        if u in per_run:
            return per_run[u].reshape(v.static_shape() or (1,))
        return self.views[v.uid]

    def run(self, env: dict[int, np.ndarray], report: Report, device: Device | None) -> dict[str, np.ndarray]:
        """One run on the checked inputs ``env``; per-operator records go to ``report``."""
        from .graph import OpRecord, _run_accel

        env = {**env, **{u: np.empty(shape, dt) for u, (shape, dt) in self.fresh.items()}}
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
                ops.append(_run_accel(st, x, self._array(st.outs[0], env), device, t0))  # type: ignore[arg-type]
        return {v.name: self._output(v, shape, env) for v, shape in self.outputs}

    def _output(self, v: Value, shape: tuple[int, ...], env: dict[int, np.ndarray]) -> np.ndarray:
        u = self.root.get(v.uid, v.uid)
        if u in self.fresh:
            return env[u].reshape(shape)
        return np.array(self._array(v, env)).reshape(shape)  # an input or a constant: a copy of it


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
