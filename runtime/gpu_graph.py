"""The graph executor for an executable compiled with ``host="gpu"``: its host steps run as
GPU programs (`vta.runtime.cuda_device`) on values that stay in GPU memory between them.

Each value has one device buffer for the life of the runner (one run at a time); constants
are copied to the GPU once. A value lives where its producer put it and is copied only when
a step on the other side reads it: the accelerator's input goes to the host and its output
back to the GPU when a GPU step needs it; a CPU fallback step (`Step.fallback`) likewise.
Views reinterpret a device buffer without a copy.

GPU steps are launched back to back on one stream with a pair of CUDA events around each,
so the report's time of a GPU operator is device time (the events' difference), not launch
overhead; host-side steps report wall time. Every launch's status is checked; with
``sync_each`` the stream is also synchronized after each kernel, so a fault names its kernel.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from vta.compiler.graph.build import Executable, Step
from vta.compiler.graph.ir import Value
from vta.compiler.tir.interp import numpy_dtype

from . import cuda_device as cuda
from .device import Device


def _shape(v: Value) -> tuple[int, ...]:
    return tuple(v.static_shape() or (1,))  # type: ignore[arg-type]


def _dtype(v: Value) -> np.dtype:  # type: ignore[type-arg]
    return np.dtype(numpy_dtype(v.dtype))  # type: ignore[arg-type]


def _device_dtype(v: Value) -> np.dtype:  # type: ignore[type-arg]
    """The element type of ``v`` in GPU memory as the programs declare it (bool: uint8)."""
    return np.dtype(cuda.device_dtype(v.dtype))  # type: ignore[arg-type]


class GpuGraphRunner:
    """Runs one GPU executable on one GPU (programs loaded and buffers allocated once)."""

    def __init__(self, exe: Executable, gpu: cuda.CudaDevice, sync_each: bool = False) -> None:
        self.exe, self.gpu, self.sync_each = exe, gpu, sync_each
        self.lock = threading.Lock()
        self.programs: dict[int, cuda.CudaProgram] = {}
        for st in exe.steps:
            if st.gpu is not None and id(st.gpu) not in self.programs:
                self.programs[id(st.gpu)] = gpu.load(st.gpu)
        self.buffers: dict[int, cuda.DeviceArray] = {}  # value id -> its device buffer (views: a reshape)
        self.events = {id(st): (cuda.Event(), cuda.Event()) for st in exe.steps if st.gpu is not None}

    # ---- where values are ------------------------------------------------------------------

    def _buffer(self, v: Value) -> cuda.DeviceArray:
        b = self.buffers.get(v.uid)
        if b is None:
            b = self.buffers[v.uid] = self.gpu.alloc(_shape(v), _device_dtype(v))
            if v.const is not None:
                b.copy_from(np.ascontiguousarray(v.const).reshape(_shape(v)))
        return b

    def _on_gpu(self, v: Value, host: dict[int, np.ndarray], fresh: set[int]) -> cuda.DeviceArray:
        """``v``'s device buffer, holding its current value (copied up when only the host has it)."""
        b = self._buffer(v)
        if v.const is None and v.uid not in fresh:
            b.copy_from(host[v.uid].reshape(b.shape))
            fresh.add(v.uid)
        return b

    def _on_host(self, v: Value, host: dict[int, np.ndarray], fresh: set[int]) -> np.ndarray:
        """``v``'s current value as a host array (copied down when only the GPU has it)."""
        if v.const is not None:
            return v.const
        a = host.get(v.uid)
        if a is None:
            a = host[v.uid] = self.buffers[v.uid].copy_to().view(_dtype(v)).reshape(v.static_shape())  # type: ignore[arg-type]
        return a

    # ---- one run -----------------------------------------------------------------------------

    def run(self, env: dict[int, np.ndarray], report: Any, accel: Device | None, reference: bool = False,
            keep: bool = False) -> dict[str, np.ndarray]:
        """Run every step on the checked inputs ``env`` (value id -> host array); fills ``report``."""
        from .graph import OpRecord, _accel_reference, _run_accel

        self.gpu.activate()
        host: dict[int, np.ndarray] = dict(env)  # values whose current copy is on the host
        fresh: set[int] = set()  # values whose device buffer holds the current value
        timed: list[tuple[OpRecord, Step]] = []
        for st in self.exe.steps:
            n, out = st.node, st.outs[0]
            t0 = time.perf_counter()
            if st.kind == "view":
                src = n.inputs[0]
                if src.const is None and src.uid in fresh:
                    self.buffers[out.uid] = self._buffer(src).reshape(_shape(out))
                    fresh.add(out.uid)
                else:
                    host[out.uid] = self._on_host(src, host, fresh).reshape(out.static_shape())  # type: ignore[arg-type]
                report.ops.append(OpRecord(n.name, n.op, "view", time.perf_counter() - t0))
                continue
            if st.kind == "accel":
                x = self._on_host(st.args[0], host, fresh)
                y = host[out.uid] = np.empty(_shape(out), _dtype(out))
                fresh.discard(out.uid)
                if reference:
                    y[...] = _accel_reference(st, x)
                    report.ops.append(OpRecord(n.name, n.op, "reference", time.perf_counter() - t0))
                else:
                    report.ops.append(_run_accel(st, x, y, accel, t0))  # type: ignore[arg-type]
                continue
            if st.gpu is None:  # a CPU fallback
                args = [self._on_host(v, host, fresh) for v in st.args]
                res = [np.empty(_shape(v), _dtype(v)) for v in st.outs]
                st.kernel(*[a.reshape(a.shape or (1,)) for a in args], *res)  # type: ignore[misc]
                for v, arr in zip(st.outs, res):
                    host[v.uid] = arr.reshape(v.static_shape())  # type: ignore[arg-type]
                    fresh.discard(v.uid)
                report.ops.append(OpRecord(n.name, n.op, "cpu (fallback)", time.perf_counter() - t0))
                continue
            prog = self.programs[id(st.gpu)]
            arrays = [self._on_gpu(v, host, fresh) for v in st.args]
            outs = [self._buffer(v) for v in st.outs]
            params = prog.program.params
            arrays = [a if tuple(a.shape) == tuple(p[1]) else a.reshape(p[1]) for a, p in zip(arrays + outs, params)]
            start, end = self.events[id(st)]
            start.record()
            prog.launch(*arrays, check_each=self.sync_each)
            end.record()
            for v in st.outs:
                fresh.add(v.uid)
                host.pop(v.uid, None)
            rec = OpRecord(n.name, n.op, "gpu", 0.0)
            report.ops.append(rec)
            timed.append((rec, st))
        results = {v.name: np.array(v.const) if v.const is not None else
                   np.array(self._on_host(v, host, fresh)) for v in self.exe.outputs}  # copies the caller owns
        self.gpu.synchronize()  # raises a kernel's asynchronous fault, if any
        for rec, st in timed:
            start, end = self.events[id(st)]
            rec.seconds = start.elapsed_ms(end) / 1e3
        if keep:
            from vta.compiler.graph.ir import walk_values

            for v in walk_values(self.exe.graph):
                if v.const is None and (v.uid in host or v.uid in fresh):
                    report.values[v.name] = np.array(self._on_host(v, host, fresh))
        return results

    def close(self) -> None:
        """Free the device buffers, the events and the programs."""
        for b in self.buffers.values():
            b.free()
        self.buffers = {}
        for a, b in self.events.values():
            a.destroy()
            b.destroy()
        self.events = {}
        for p in self.programs.values():
            p.close()
        self.programs = {}


def gpu_runner(exe: Executable) -> GpuGraphRunner:
    """The executable's runner on GPU 0, made on first use (a clear error without a GPU)."""
    r = exe.__dict__.get("_gpu_runner")
    if r is None:
        why = cuda.unavailable_reason()
        if why is not None:
            raise cuda.CudaError(f"this executable was compiled for --host gpu, but there is no usable GPU: {why}")
        r = exe.__dict__["_gpu_runner"] = GpuGraphRunner(exe, cuda.CudaDevice(0))
    return r
