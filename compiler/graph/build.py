"""Compile a graph-IR module into steps the executor runs: each node becomes a host kernel
(compiled once per distinct function and reused), or a view that moves no data.

Kernels are cached by their loop-IR text, so the ten identical convolutions of a network
compile once. A step writes its node's first output and each further output that something
reads (another node or the graph's outputs): `Step.outs`, in the node's order, and a host
kernel's parameters are its `Step.args`, then its `Step.outs`.

With ``host="gpu"`` the host kernels are GPU programs instead (`vta.compiler.gpu`: the GPU
default schedule, PTX from llvmlite; no GPU is needed to compile). A function the GPU
backend cannot schedule or generate keeps a CPU kernel, and its step says why
(`Step.fallback`), which the run report shows as the operator's device.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vta.compiler.cpu import CpuKernel, compile_cpu
from vta.compiler.cpu.schedule import default_schedule
from vta.compiler.tir.printer import func_str
from vta.compiler.tir.stmt import PrimFunc
from vta.isa import Config
from vta.isa.errors import VTAError

from .ir import Graph, GraphError, Module, Node, Value
from .ops import ACCEL_OPS, OPS, kernel_of
from .passes import FLOAT_PASSES, PassContext, is_qdq, run_pipeline


@dataclass
class Step:
    """One node as the executor runs it: a host kernel, an accelerator kernel or a view."""

    node: Node
    kind: str  # "kernel" (host), "accel" or "view"
    kernel: CpuKernel | None = None
    args: list[Value] = field(default_factory=list)  # kernel parameters among the node's inputs
    accel: object | None = None  # the `AccelKernel` of an accelerator step
    last_timeline: list = field(default_factory=list)  # type: ignore[type-arg]  # its last run's instructions
    # the node outputs it writes, in the node's order (a kernel's parameters after ``args``); the first by default
    outs: list[Value] = field(default_factory=list)
    gpu: object | None = None  # the `GpuProgram` of a host step compiled for the GPU (then ``kernel`` is None)
    fallback: str | None = None  # why a step of a GPU executable runs on the CPU instead

    @property
    def device(self) -> str:
        """Where the step runs: "gpu", "cpu", "accel" or "view"."""
        if self.kind != "kernel":
            return self.kind
        return "gpu" if self.gpu is not None else "cpu"

    def __post_init__(self) -> None:
        if not self.outs:
            self.outs = self.node.outputs[:1]


@dataclass
class Executable:
    """What the executor runs: the graph, its steps in order, the accelerator config (None
    when everything runs on the host) and compile statistics."""

    graph: Graph
    steps: list[Step]
    compile_s: float
    kernels: int
    config: Config | None = None
    accelerated: int = 0
    host: str = "cpu"  # where the host steps run: "cpu" or "gpu"

    @property
    def inputs(self) -> list[Value]:
        return self.graph.inputs

    @property
    def outputs(self) -> list[Value]:
        return self.graph.outputs


Calibrate = Callable[[Executable], dict[str, tuple[float, float]]]


def compile_module(mod: Module, config: Config | None = None, calibrate: Calibrate | None = None,
                   dump_after: set[str] | None = None, out: Callable[[str], None] = print,
                   log: object | None = None, host: str = "cpu") -> Executable:
    """Run the pass pipeline and compile every node. With an accelerator ``config``, the
    float module is compiled first and ``calibrate`` (the executor's calibration run) gives
    the value ranges the quantization needs; convolutions and dense layers then run on the
    accelerator (tilings from the tuning ``log`` when given) and the rest on the ``host``
    ("cpu", or "gpu": see the module docstring; calibration runs on the CPU)."""
    if host not in HOSTS:
        raise GraphError(f"unknown host '{host}': choose one of {', '.join(HOSTS)}")
    t0 = time.perf_counter()
    ctx = PassContext(config, qdq=is_qdq(mod))
    mod = run_pipeline(mod, ctx, dump_after, out, stop_after=FLOAT_PASSES)
    if config is not None and not ctx.qdq and calibrate is None:
        raise GraphError("quantizing for the accelerator needs calibration inputs")
    kernels: dict[str, CpuKernel] = {}  # shared: the float graph's host kernels mostly stay after quantization
    if config is not None and not ctx.qdq:
        ctx.ranges = calibrate(_compile_steps(mod, None, None, 0.0, kernels))
    mod = run_pipeline(mod, ctx, dump_after, out, start="quantize")
    return _compile_steps(mod, config, log, t0, kernels, ctx.accelerated, host)


def _compile_steps(mod: Module, config: Config | None, log: object | None, t0: float, cache: dict[str, CpuKernel],
                   accelerated: int = 0, host: str = "cpu") -> Executable:
    """Steps for every node; host kernels come from (and go into) ``cache``, keyed by loop-IR text."""
    gpu_cache: dict[str, object] = {}
    g = mod.main
    steps = []
    used = {v.uid for m in g.nodes for v in m.inputs if v is not None} | {v.uid for v in g.outputs}
    for n in g.nodes:
        d = OPS[n.op]
        want = output_indices(n, used)
        if (n.op in ACCEL_OPS or d.view) and len(want) > 1:  # accelerator kernels and views write one output
            raise GraphError(f"node {n.name} ({n.op}): output(s) {', '.join(n.outputs[i].name for i in want[1:])} "
                             "are not supported (only the first output is computed)")
        if n.op in ACCEL_OPS:
            from vta.compiler.accel.build import build

            if config is None:
                raise GraphError(f"node {n.name} ({n.op}) needs an accelerator config")
            built = build(n.attrs["workload"], config, n.attrs["epilogue"], log=log)
            steps.append(Step(n, "accel", accel=built.kernel, args=[n.inputs[0]]))  # type: ignore[list-item]
            continue
        if d.view:
            steps.append(Step(n, "view"))
            continue
        if d.kernel is None:
            raise GraphError(f"node {n.name} ({n.op}) has no host kernel (its inputs are not constants)")
        func, args = kernel_of(n, want)
        ins, outs = [n.inputs[i] for i in args], [n.outputs[i] for i in want]
        _check_params(n, func, ins, outs)
        why = None
        if host == "gpu":
            prog, why = _gpu_program(func, gpu_cache)
            if prog is not None:
                steps.append(Step(n, "kernel", None, ins, outs=outs, gpu=prog))
                continue
        func = default_schedule(func)
        key = func_str(func)
        k = cache.get(key)
        if k is None:
            k = cache[key] = compile_cpu(func)
        steps.append(Step(n, "kernel", k, ins, outs=outs, fallback=why))  # type: ignore[arg-type]
    kernels = len({id(st.kernel or st.gpu) for st in steps if st.kernel is not None or st.gpu is not None})
    return Executable(g, steps, time.perf_counter() - t0 if t0 else 0.0, kernels, config, accelerated, host)


HOSTS = ("cpu", "gpu")


def _gpu_program(func: PrimFunc, cache: dict[str, object]) -> tuple[object | None, str | None]:
    """(the `GpuProgram` of ``func``, None), or (None, why the GPU backend cannot compile it).
    Programs are cached by the unscheduled function's text."""
    from vta.compiler.gpu import compile_gpu
    from vta.compiler.gpu import default_schedule as gpu_schedule

    key = func_str(func)
    hit = cache.get(key)
    if hit is None:
        try:
            hit = cache[key] = (compile_gpu(gpu_schedule(func)), None)
        except (VTAError, RuntimeError) as e:  # RuntimeError: llvmlite's verifier and code generator
            hit = cache[key] = (None, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")
    return hit  # type: ignore[return-value]


def output_indices(n: Node, used: set[int]) -> tuple[int, ...]:
    """The indices of the outputs of ``n`` that its step computes: the first, then each further
    one in ``used`` (value ids that a node reads or the graph returns)."""
    return (0, *(i for i, v in enumerate(n.outputs) if i and v.uid in used))


def _check_params(n: Node, func: PrimFunc, ins: list[Value | None], outs: list[Value]) -> None:
    """The kernel's parameters are ``ins`` then ``outs``, each of its value's shape and dtype (a
    kernel built for other shapes is a compile error naming the node, not a failed run)."""
    params = func.params
    if len(params) != len(ins) + len(outs):
        raise GraphError(f"node {n.name} ({n.op}): its kernel has {len(params)} parameters for {len(ins)} input(s) "
                         f"and {len(outs)} output(s)")
    for b, v in zip(params, [*ins, *outs]):
        if v is None:
            raise GraphError(f"node {n.name} ({n.op}): kernel parameter {b.name} is an omitted input")
        shape = tuple(d.value for d in b.shape)  # type: ignore[attr-defined]
        if shape != (v.static_shape() or (1,)) or b.dtype != v.dtype:
            raise GraphError(f"node {n.name} ({n.op}): kernel parameter {b.name} is {b.dtype}{list(shape)}, but "
                             f"the value bound to it, {v.name}, is {v.type_str()}")
