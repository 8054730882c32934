"""Runtime: devices, DRAM buffers, the command-queue builder and program execution."""

from .allocator import AllocError, DramAllocator
from .command import CommandQueue, KernelRecorder, Loop, UopKernel
from .device import DEVICES, Buffer, Device, FsimDevice, default_alignment, open_device
from .execute import ProgramResult, run_program
from .graph import OpRecord, Report, calibrate, run_graph

__all__ = [
    "DEVICES",
    "AllocError",
    "Buffer",
    "CommandQueue",
    "Device",
    "DramAllocator",
    "FsimDevice",
    "KernelRecorder",
    "Loop",
    "OpRecord",
    "ProgramResult",
    "Report",
    "UopKernel",
    "calibrate",
    "default_alignment",
    "open_device",
    "run_graph",
    "run_program",
]
