"""The graph executor: runs a compiled module's steps in order on their devices (host
kernels on the CPU, or on the GPU for an executable compiled with ``host="gpu"``: see
`vta.runtime.gpu_graph`; views without copies) and reports per-operator time.

`run_graph(exe, feeds)` checks every input (name, dtype, shape) and returns the outputs by
name and a `Report`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from vta.compiler.graph.build import Executable, Step
from vta.compiler.graph.ir import GraphError, Value
from vta.compiler.tir.interp import numpy_dtype

from .device import Device, open_device
from .execute import run_program
from .plan import run_plan


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
    values: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def accel_cycles(self) -> int:
        return sum(r.cycles or 0 for r in self.ops)

    def by_device(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in self.ops:
            out[r.device] = out.get(r.device, 0.0) + r.seconds
        return out


def _input_specs(exe: Executable) -> list[tuple[Value, np.dtype, tuple[int, ...]]]:  # type: ignore[type-arg]
    specs = exe.__dict__.get("_input_specs")
    if specs is None:
        specs = exe.__dict__["_input_specs"] = [(v, np.dtype(numpy_dtype(v.dtype)), v.static_shape())  # type: ignore[arg-type]
                                                for v in exe.inputs]
    return specs


def check_feeds(exe: Executable, feeds: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """The inputs by value id, each checked (name, dtype, shape) and C-contiguous."""
    specs = _input_specs(exe)
    env: dict[int, np.ndarray] = {}
    if len(feeds) == len(specs):  # the common case, checked cheaply; anything odd takes the path below
        for v, want, shape in specs:
            a = feeds.get(v.name)
            if type(a) is not np.ndarray or a.dtype != want or a.shape != shape:
                break
            env[v.uid] = a if a.flags.c_contiguous else np.ascontiguousarray(a)
        else:
            return env
        env = {}
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


def _accel_reference(st: Step, x: np.ndarray) -> np.ndarray:
    """The numpy fixed-point reference of an accelerator step (same recipe, bit for bit)."""
    from vta.compiler.accel.reference import conv2d_nchw, pack, unpack
    from vta.compiler.accel.schedules import Conv2d

    a = st.node.attrs
    wl, ep, cfg = a["workload"], a["epilogue"], st.accel.config  # type: ignore[attr-defined]
    w = unpack(a["weights"]).astype(np.int64)
    xs = unpack(x).astype(np.int64)
    bias = a["bias"].astype(np.int64)
    mult = a["mult"].astype(np.int64) if "mult" in a else None
    if isinstance(wl, Conv2d):
        acc = conv2d_nchw(xs, w, wl.stride, wl.pad, wl.groups, wl.pad_value)
        y = ep.reference(acc, bias[None, :, None, None], None if mult is None else mult[None, :, None, None])
    else:
        y = ep.reference(xs @ w.T, bias[None, :], None if mult is None else mult[None, :])
    return pack(y, cfg.batch, cfg.block_out)


def _run_accel(st: Step, x: np.ndarray, out: np.ndarray, device: Device, t0: float) -> OpRecord:
    """Run accelerator step ``st`` on input ``x`` into ``out``; its record (timed from ``t0``)."""
    n, k = st.node, st.accel
    args = [x, n.attrs["weights"], n.attrs["bias_packed"]] + \
        ([n.attrs["mult_packed"]] if "mult_packed" in n.attrs else [])
    res = run_program(k.program(*args), device)  # type: ignore[attr-defined]
    out[...] = res.outputs[k.outputs()[0]]  # type: ignore[attr-defined]
    stats = res.stats
    st.last_timeline = stats.timeline
    return OpRecord(n.name, n.op, f"accel ({device.name})", time.perf_counter() - t0,
                    stats.cycles, round(stats.gemm_utilization, 4), stats.dram_bytes)


def run_graph(exe: Executable, feeds: dict[str, np.ndarray], device: Device | None = None, target: str = "fsim",
              keep: bool = False, reference: bool = False) -> tuple[dict[str, np.ndarray], Report]:
    """Run ``exe`` on ``feeds``. Accelerator steps run on ``device`` (default: a new ``target``
    device for the executable's config), or with ``reference`` on the numpy fixed-point
    reference. With ``keep`` the report's ``values`` holds every float value by name (for
    calibration)."""
    env = check_feeds(exe, feeds)
    report = Report()
    if device is None and exe.config is not None and not reference and \
            any(st.kind == "accel" for st in exe.steps):
        device = open_device(target, exe.config)
    if exe.host == "gpu":
        from .gpu_graph import gpu_runner

        runner = gpu_runner(exe)
        t_all = time.perf_counter()
        with runner.lock:
            outputs = runner.run(env, report, device, reference, keep)
        report.seconds = time.perf_counter() - t_all
        return outputs, report
    plan = exe.graph.plan
    arena = np.empty(exe.graph.arena_bytes, np.uint8) if plan else None

    def place(v: Value) -> np.ndarray:
        """The planned bytes of ``v`` (a fresh array when there is no plan or ``keep`` wants every value)."""
        shape = v.static_shape() or (1,)
        dt = np.dtype(numpy_dtype(v.dtype))  # type: ignore[arg-type]
        if arena is None or keep or v.name not in plan or v in exe.outputs:
            return np.empty(shape, dt)
        off, nb = plan[v.name]
        return arena[off:off + nb].view(dt).reshape(shape)

    def get(v: Value) -> np.ndarray:
        return v.const if v.const is not None else env[v.uid]

    t_all = time.perf_counter()
    fast = run_plan(exe) if not (keep or reference) else None
    if fast is not None and fast.lock.acquire(blocking=False):  # the plan serves one run at a time
        try:
            outputs = fast.run(env, report, device)
        finally:
            fast.lock.release()
        report.seconds = time.perf_counter() - t_all
        return outputs, report
    for st in exe.steps:
        n = st.node
        t0 = time.perf_counter()
        out = st.outs[0]
        if st.kind == "view":
            env[out.uid] = get(n.inputs[0]).reshape(out.static_shape())  # type: ignore[arg-type]
            report.ops.append(OpRecord(n.name, n.op, "view", time.perf_counter() - t0))
            continue
        if st.kind == "accel":
            x = get(st.args[0])
            env[out.uid] = place(out)
            if reference:
                env[out.uid][...] = _accel_reference(st, x)
                report.ops.append(OpRecord(n.name, n.op, "reference", time.perf_counter() - t0))
                continue
            report.ops.append(_run_accel(st, x, env[out.uid], device, t0))  # type: ignore[arg-type]
            continue
        res = [place(v) for v in st.outs]  # the kernel's parameters after its inputs: every output it writes
        args = [get(v) for v in st.args]
        st.kernel(*[a.reshape(a.shape or (1,)) for a in args], *res)  # type: ignore[misc]
        for v, arr in zip(st.outs, res):
            env[v.uid] = arr.reshape(v.static_shape())
        report.ops.append(OpRecord(n.name, n.op, "cpu", time.perf_counter() - t0))
    report.seconds = time.perf_counter() - t_all
    if keep:
        from vta.compiler.graph.ir import walk_values

        report.values = {v.name: env[v.uid] for v in walk_values(exe.graph) if v.uid in env}
    return {v.name: np.array(v.const) if v.const is not None else get(v) for v in exe.outputs}, report  # never the constant itself


def calibrate(feeds_list: list[dict[str, np.ndarray]]):  # type: ignore[no-untyped-def]
    """A calibration function for `compile_module`: the ranges of every float value over the runs."""
    from vta.compiler.graph.quantize import calibration_ranges

    def run(exe: Executable) -> dict[str, tuple[float, float]]:
        seen: dict[str, list[np.ndarray]] = {}
        for feeds in feeds_list:
            _, rep = run_graph(exe, feeds, keep=True)
            for k, v in rep.values.items():
                seen.setdefault(k, []).append(v)
        return calibration_ranges(seen)

    return run
