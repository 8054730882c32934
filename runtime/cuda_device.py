"""A CUDA device through the driver API (`cuda.bindings.driver`, PyPI ``cuda-bindings``,
the ``gpu`` extra): PTX modules, device memory, kernel launches, streams and events.

`available()` says whether a GPU can be used here (and `unavailable_reason()` why not,
when the package or a GPU is missing); nothing is imported until a device is opened.
Every driver call is checked: a failure raises `CudaError` naming the call, the CUDA
error (``CUDA_ERROR_ILLEGAL_ADDRESS``, ...) and its description. `CudaDevice.load` turns a
`vta.compiler.gpu.GpuProgram` into a `CudaProgram` that runs its kernels in order on
device arrays, or on numpy arrays (copied in and out).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from vta.compiler.gpu.codegen import POINTER_ALIGN  # what the kernels assume of every pointer
from vta.isa.errors import VTAError

_NP = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
       "float16": np.float16, "float32": np.float32, "float64": np.float64, "bool": np.uint8}


def device_dtype(dtype: str) -> np.dtype:  # type: ignore[type-arg]
    """The numpy type of a loop-IR dtype in GPU memory (bool is one byte, uint8)."""
    try:
        return np.dtype(_NP[dtype])
    except KeyError:
        raise CudaError(f"no GPU representation of dtype {dtype}") from None


class CudaError(VTAError):
    """A CUDA driver call failed (the message names the call and the CUDA error)."""


@functools.lru_cache(maxsize=1)
def _driver() -> Any:
    from cuda.bindings import driver

    return driver


_probe: dict[str, str | None] = {}
_probe_lock = threading.Lock()


def unavailable_reason() -> str | None:
    """Why no CUDA GPU can be used here (None when one can)."""
    with _probe_lock:
        if "reason" not in _probe:
            _probe["reason"] = _find_reason()
        return _probe["reason"]


def _find_reason() -> str | None:
    try:
        d = _driver()
    except ImportError as e:
        return f"the cuda-bindings package is not installed (pip install 'vta[gpu]'): {e}"
    try:
        (err,) = d.cuInit(0)
    except Exception as e:  # noqa: BLE001  (the driver library itself is missing)
        return f"the CUDA driver library could not be loaded: {type(e).__name__}: {e}"
    if err != d.CUresult.CUDA_SUCCESS:
        return f"cuInit failed: {_error_name(err)}"
    err, n = d.cuDeviceGetCount()
    if err != d.CUresult.CUDA_SUCCESS:
        return f"cuDeviceGetCount failed: {_error_name(err)}"
    if n == 0:
        return "the CUDA driver sees no GPU"
    return None


def available() -> bool:
    """Whether a CUDA GPU and the cuda-bindings package are here."""
    return unavailable_reason() is None


def _error_name(err: Any) -> str:
    d = _driver()
    try:
        e1, name = d.cuGetErrorName(err)
        e2, desc = d.cuGetErrorString(err)
    except Exception:  # noqa: BLE001
        return str(err)
    name_s = name.decode() if e1 == d.CUresult.CUDA_SUCCESS and name else str(err)
    desc_s = desc.decode() if e2 == d.CUresult.CUDA_SUCCESS and desc else ""
    return f"{name_s} ({desc_s})" if desc_s else name_s


def check(result: Any, what: str) -> Any:
    """The values a driver call returned after its status; `CudaError` when the status is not success."""
    d = _driver()
    if isinstance(result, tuple):
        err, rest = result[0], result[1:]
    else:
        err, rest = result, ()
    if err != d.CUresult.CUDA_SUCCESS:
        raise CudaError(f"{what} failed: {_error_name(err)}")
    return rest[0] if len(rest) == 1 else rest or None


@dataclass
class DeviceArray:
    """Device memory holding an array of ``shape`` and ``dtype`` (C order)."""

    device: CudaDevice
    ptr: int
    shape: tuple[int, ...]
    dtype: np.dtype
    _freed: bool = field(default=False, repr=False)
    owner: bool = True  # False: a view of another array's memory (`reshape`), which frees it

    def reshape(self, shape: tuple[int, ...]) -> DeviceArray:
        """The same memory as an array of ``shape`` (as many elements), not owning it."""
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape, dtype=np.int64)) != int(np.prod(self.shape, dtype=np.int64)):
            raise ValueError(f"cannot view a device array of shape {self.shape} as {shape}")
        return DeviceArray(self.device, self.ptr, shape, self.dtype, owner=False)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def copy_from(self, arr: np.ndarray) -> None:
        """Copy the host array ``arr`` (same shape and dtype) here."""
        a = np.ascontiguousarray(arr, dtype=self.dtype)
        if a.shape != self.shape:
            raise ValueError(f"copy of a {a.shape} array into a device array of shape {self.shape}")
        if self.nbytes:
            check(_driver().cuMemcpyHtoD(self.ptr, a.ctypes.data, self.nbytes), "cuMemcpyHtoD")

    def copy_to(self, out: np.ndarray | None = None) -> np.ndarray:
        """The contents as a host array (into ``out`` when given, C-contiguous of this shape and dtype)."""
        if out is None:
            out = np.empty(self.shape, self.dtype)
        if out.shape != self.shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(f"copy into a {out.dtype}{list(out.shape)} array from a device array "
                             f"{self.dtype}{list(self.shape)}")
        if self.nbytes:
            check(_driver().cuMemcpyDtoH(out.ctypes.data, self.ptr, self.nbytes), "cuMemcpyDtoH")
        return out

    def free(self) -> None:
        if self.owner and not self._freed and self.ptr:
            self._freed = True
            check(_driver().cuMemFree(self.ptr), "cuMemFree")


class Event:
    """A CUDA event (for device-side timing)."""

    def __init__(self) -> None:
        self.handle = check(_driver().cuEventCreate(0), "cuEventCreate")

    def record(self, stream: Any = 0) -> None:
        check(_driver().cuEventRecord(self.handle, stream), "cuEventRecord")

    def synchronize(self) -> None:
        check(_driver().cuEventSynchronize(self.handle), "cuEventSynchronize")

    def elapsed_ms(self, end: Event) -> float:
        """Milliseconds from this event to ``end`` (both recorded; waits for ``end``)."""
        end.synchronize()
        return float(check(_driver().cuEventElapsedTime(self.handle, end.handle), "cuEventElapsedTime"))

    def destroy(self) -> None:
        if self.handle is not None:
            check(_driver().cuEventDestroy(self.handle), "cuEventDestroy")
            self.handle = None


class CudaDevice:
    """One GPU, through its primary context (shared with other users of the driver API in
    this process, PyTorch included)."""

    def __init__(self, ordinal: int = 0) -> None:
        why = unavailable_reason()
        if why is not None:
            raise CudaError(f"no CUDA device: {why}")
        d = _driver()
        self.ordinal = ordinal
        self.dev = check(d.cuDeviceGet(ordinal), f"cuDeviceGet({ordinal})")
        self.ctx = check(d.cuDevicePrimaryCtxRetain(self.dev), "cuDevicePrimaryCtxRetain")
        self.activate()
        name = check(d.cuDeviceGetName(256, self.dev), "cuDeviceGetName")
        self.name = name.split(b"\0", 1)[0].decode()
        attr = d.CUdevice_attribute
        major = check(d.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, self.dev), "attribute")
        minor = check(d.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, self.dev), "attribute")
        self.compute_capability = (int(major), int(minor))

    def activate(self) -> None:
        """Make this device's context current on the calling thread."""
        check(_driver().cuCtxSetCurrent(self.ctx), "cuCtxSetCurrent")

    def synchronize(self) -> None:
        """Wait for all work on the device; raises the first asynchronous error."""
        check(_driver().cuCtxSynchronize(), "cuCtxSynchronize")

    def stream(self) -> Any:
        """A new non-default stream."""
        return check(_driver().cuStreamCreate(0), "cuStreamCreate")

    def alloc(self, shape: tuple[int, ...], dtype: str | np.dtype) -> DeviceArray:
        """Uninitialized device memory for an array (at least one byte is allocated)."""
        dt = np.dtype(_NP.get(dtype, dtype)) if isinstance(dtype, str) else np.dtype(dtype)
        n = max(1, int(np.prod(shape, dtype=np.int64)) * dt.itemsize)
        ptr = check(_driver().cuMemAlloc(n), f"cuMemAlloc({n} bytes)")
        return DeviceArray(self, int(ptr), tuple(shape), dt)

    def to_device(self, arr: np.ndarray) -> DeviceArray:
        """A device copy of ``arr``."""
        a = np.ascontiguousarray(arr)
        out = self.alloc(a.shape, a.dtype)
        out.copy_from(a)
        return out

    def load_ptx(self, ptx: str) -> Any:
        """Load a PTX module (the driver compiles it for this GPU)."""
        data = ptx.encode() + b"\0"
        return check(_driver().cuModuleLoadData(data), "cuModuleLoadData")

    def load(self, program: Any) -> CudaProgram:
        """Load a `vta.compiler.gpu.GpuProgram`."""
        return CudaProgram(self, program)


def _param_array(ptrs: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """cuLaunchKernel's ``kernelParams``: an array of pointers, each to one argument (here a
    64-bit device pointer); both arrays must live until the launch returns."""
    values = np.array(ptrs, dtype=np.uint64)
    addrs = np.array([values.ctypes.data + 8 * i for i in range(len(ptrs))], dtype=np.uint64)
    return values, addrs


class CudaProgram:
    """A loaded program: its kernels, launched in order on one pointer per parameter (then
    its scratch buffers, allocated once here)."""

    def __init__(self, device: CudaDevice, program: Any) -> None:
        self.device = device
        self.program = program
        self.module = device.load_ptx(program.ptx)
        d = _driver()
        self.functions = [check(d.cuModuleGetFunction(self.module, k.name.encode()), f"cuModuleGetFunction({k.name})")
                          for k in program.kernels]
        self.scratch = [device.alloc(shape, dt) for _, shape, dt in program.scratch]

    def _check_args(self, arrays: tuple[DeviceArray, ...]) -> None:
        params = self.program.params
        if len(arrays) != len(params):
            raise ValueError(f"{self.program.name} takes {len(params)} arrays "
                             f"({', '.join(p[0] for p in params)}), got {len(arrays)}")
        for (name, shape, dtype), a in zip(params, arrays):
            want = np.dtype(_NP[dtype])
            if not isinstance(a, DeviceArray) or a.shape != tuple(shape) or a.dtype != want:
                got = f"{a.dtype}{list(a.shape)}" if isinstance(a, DeviceArray) else type(a).__name__
                raise ValueError(f"{self.program.name}: {name} must be a device array {want}{list(shape)}, got {got}")

    def launch(self, *arrays: DeviceArray, stream: Any = 0, check_each: bool = True) -> None:
        """Launch every kernel on ``arrays`` (device arrays, one per parameter) on ``stream``.
        Each launch's status is checked; with ``check_each`` the stream is also synchronized
        after each kernel, so that a fault (an illegal address, say) names its kernel."""
        self._check_args(arrays)
        d = _driver()
        ptrs = [a.ptr for a in arrays] + [s.ptr for s in self.scratch]
        for p, name in zip(ptrs, [p[0] for p in self.program.params] + [p[0] for p in self.program.scratch]):
            if p % POINTER_ALIGN:
                raise ValueError(f"{self.program.name}: {name} is at {p:#x}, not {POINTER_ALIGN}-byte aligned "
                                 "(the kernels assume it)")
        values, addrs = _param_array(ptrs)
        for spec, fn in zip(self.program.kernels, self.functions):
            (gx, gy, gz), (bx, by, bz) = spec.launch.grid, spec.launch.block
            check(d.cuLaunchKernel(fn, gx, gy, gz, bx, by, bz, 0, stream, addrs.ctypes.data, 0),
                  f"cuLaunchKernel({spec.name}, grid {spec.launch.grid}, block {spec.launch.block})")
            if check_each:
                check(d.cuStreamSynchronize(stream), f"kernel {spec.name} (grid {spec.launch.grid}, "
                      f"block {spec.launch.block})")
        del values

    def __call__(self, *arrays: np.ndarray) -> None:
        """Run on numpy arrays, one per parameter: copied to the device, run, and the written
        ones copied back in place."""
        params = self.program.params
        if len(arrays) != len(params):
            raise ValueError(f"{self.program.name} takes {len(params)} arrays, got {len(arrays)}")
        dev = []
        try:
            for (name, shape, dtype), a in zip(params, arrays):
                want = np.dtype(_NP[dtype])
                if not isinstance(a, np.ndarray) or a.shape != tuple(shape) or a.dtype != want:
                    got = f"{a.dtype}{list(a.shape)}" if isinstance(a, np.ndarray) else type(a).__name__
                    raise ValueError(f"{self.program.name}: {name} must be {want}{list(shape)}, got {got}")
                dev.append(self.device.to_device(a))
            self.launch(*dev)
            for i in self.program.written:
                if not arrays[i].flags.c_contiguous or not arrays[i].flags.writeable:
                    raise ValueError(f"{self.program.name}: {params[i][0]} must be C-contiguous and writeable")
                dev[i].copy_to(arrays[i])
        finally:
            for x in dev:
                x.free()

    def close(self) -> None:
        """Free the scratch buffers and unload the module."""
        for s in self.scratch:
            s.free()
        self.scratch = []
        if self.module is not None:
            check(_driver().cuModuleUnload(self.module), "cuModuleUnload")
            self.module = None


__all__ = ["CudaDevice", "CudaError", "CudaProgram", "DeviceArray", "Event", "available", "check",
           "unavailable_reason"]
