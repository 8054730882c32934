"""Native worker threads for the parallel stages of host kernels.

Waking a sleeping Python thread costs tens of microseconds, as long as a whole small
kernel, so the workers are native code (LLVM IR compiled here): each waits for a task by
spinning on its control block for about a millisecond and then sleeping on a futex, runs
the task (an entry point with its argument vector and range of the parallel loop) and
marks it done. The caller submits one chunk to each worker and runs the first chunk
itself; then it takes back every chunk whose worker has not started it (a worker another
busy thread keeps off its core would otherwise stall the whole stage) and waits for the
others. Control blocks (one cache line pair per worker): word 0 the state, a 32-bit futex
word holding the task number times 4 plus its status (0 posted, 1 running on the worker,
2 taken back, 3 done); 2 the entry point, 3 its argument vector, 4 and 5 the range, 6
whether the worker sleeps. One caller uses the
workers at a time; a concurrent caller runs its stage on its own thread.

Linux on x86-64 only (futex, pause); elsewhere `available` is False and the caller uses a
Python thread pool.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading

import numpy as np

WORDS = 16           # int64 words per control block (128 bytes: no false sharing between workers)
SPIN = 1 << 15       # pause instructions a worker spins before it sleeps (about a millisecond)
_FUTEX_WAKE_PRIVATE = 129

_IR = f"""
declare i64 @syscall(i64, ...)
declare void @llvm.x86.sse2.pause()
declare i32 @sched_yield()

define void @vta_worker(ptr %ctl) {{
entry:
  %fnp = getelementptr i64, ptr %ctl, i64 2
  %argvp = getelementptr i64, ptr %ctl, i64 3
  %lop = getelementptr i64, ptr %ctl, i64 4
  %hip = getelementptr i64, ptr %ctl, i64 5
  %sleepp = getelementptr i64, ptr %ctl, i64 6
  br label %idle
idle:
  %seen = phi i32 [ 0, %entry ], [ %s, %after ], [ %s, %run ]
  %seenseq = lshr i32 %seen, 2
  br label %spin
spin:
  %n = phi i64 [ 0, %idle ], [ %n1, %pause ], [ 0, %awake ]
  %s = load atomic i32, ptr %ctl acquire, align 8
  %seq = lshr i32 %s, 2
  %new = icmp ne i32 %seq, %seenseq
  br i1 %new, label %task, label %pause
pause:
  call void @llvm.x86.sse2.pause()
  %n1 = add i64 %n, 1
  %more = icmp ult i64 %n1, {SPIN}
  br i1 %more, label %spin, label %sleep
sleep:
  store atomic i64 1, ptr %sleepp seq_cst, align 8
  %s2 = load atomic i32, ptr %ctl seq_cst, align 8
  %seq2 = lshr i32 %s2, 2
  %new2 = icmp ne i32 %seq2, %seenseq
  br i1 %new2, label %awake, label %block
block:
  %r = call i64 (i64, ...) @syscall(i64 202, ptr %ctl, i64 128, i32 %s2, ptr null)
  br label %awake
awake:
  store atomic i64 0, ptr %sleepp seq_cst, align 8
  br label %spin
task:
  %status = and i32 %s, 3
  %posted = icmp eq i32 %status, 0
  br i1 %posted, label %claim, label %after
claim:
  %mine = or i32 %s, 1
  %x = cmpxchg ptr %ctl, i32 %s, i32 %mine acq_rel acquire, align 8
  %ok = extractvalue {{ i32, i1 }} %x, 1
  br i1 %ok, label %run, label %after
run:
  %fn = load ptr, ptr %fnp, align 8
  %argv = load ptr, ptr %argvp, align 8
  %lo = load i64, ptr %lop, align 8
  %hi = load i64, ptr %hip, align 8
  call void %fn(ptr %argv, i64 %lo, i64 %hi)
  %done = or i32 %s, 3
  store atomic i32 %done, ptr %ctl release, align 8
  br label %idle
after:
  br label %idle
}}

define void @vta_submit(ptr %ctl, i64 %fn, i64 %argv, i64 %lo, i64 %hi) {{
entry:
  %fnp = getelementptr i64, ptr %ctl, i64 2
  %argvp = getelementptr i64, ptr %ctl, i64 3
  %lop = getelementptr i64, ptr %ctl, i64 4
  %hip = getelementptr i64, ptr %ctl, i64 5
  %sleepp = getelementptr i64, ptr %ctl, i64 6
  store i64 %fn, ptr %fnp, align 8
  store i64 %argv, ptr %argvp, align 8
  store i64 %lo, ptr %lop, align 8
  store i64 %hi, ptr %hip, align 8
  %s = load i32, ptr %ctl, align 8
  %seq = lshr i32 %s, 2
  %next = add i32 %seq, 1
  %wrapped = and i32 %next, 1073741823
  %posted = shl i32 %wrapped, 2
  store atomic i32 %posted, ptr %ctl seq_cst, align 8
  %asleep = load atomic i64, ptr %sleepp seq_cst, align 8
  %wake = icmp ne i64 %asleep, 0
  br i1 %wake, label %futex, label %done
futex:
  %r = call i64 (i64, ...) @syscall(i64 202, ptr %ctl, i64 {_FUTEX_WAKE_PRIVATE}, i32 1)
  br label %done
done:
  ret void
}}

; after the caller's own chunk: 1 when the worker had not started the task and the caller
; took it back (it runs it itself), else 0 once the worker has finished it
define i32 @vta_finish(ptr %ctl) {{
entry:
  %s = load atomic i32, ptr %ctl acquire, align 8
  %seq = lshr i32 %s, 2
  %posted = shl i32 %seq, 2
  %taken = or i32 %posted, 2
  %x = cmpxchg ptr %ctl, i32 %posted, i32 %taken acq_rel acquire, align 8
  %ok = extractvalue {{ i32, i1 }} %x, 1
  br i1 %ok, label %stolen, label %wait
stolen:
  ret i32 1
wait:
  %done = or i32 %posted, 3
  br label %spin
spin:
  %n = phi i64 [ 0, %wait ], [ %n1, %pause ], [ %n1, %yield ]
  %d = load atomic i32, ptr %ctl acquire, align 8
  %fin = icmp eq i32 %d, %done
  br i1 %fin, label %finished, label %pause
pause:
  call void @llvm.x86.sse2.pause()
  %n1 = add i64 %n, 1
  %long = icmp ugt i64 %n1, {SPIN}
  br i1 %long, label %yield, label %spin
yield:
  %y = call i32 @sched_yield()
  br label %spin
finished:
  ret i32 0
}}
"""


def available() -> bool:
    """Whether native workers run on this machine (Linux on x86-64)."""
    return sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")


class NativePool:
    """``workers`` native threads that run chunks of parallel stages."""

    def __init__(self, workers: int) -> None:
        from .jit import _new_machine, optimize
        from llvmlite import binding as llvm

        self._engine = llvm.create_mcjit_compiler(optimize(_IR), _new_machine())
        self._engine.finalize_object()
        addr = self._engine.get_function_address
        self._submit = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                        ctypes.c_int64)(addr("vta_submit"))
        self._finish = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)(addr("vta_finish"))
        worker = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(addr("vta_worker"))
        self._ctl = np.zeros((workers, WORDS), np.int64)
        self._blocks = [self._ctl[w].ctypes.data for w in range(workers)]
        self._worker = worker  # kept alive: the threads run it until the process ends
        self.workers = workers
        self._busy = threading.Lock()  # one caller at a time: a worker takes one task at a time
        for w in range(workers):
            threading.Thread(target=worker, args=(self._blocks[w],), daemon=True, name=f"vta-cpu-{w}").start()

    def run(self, fn_addr: int, argv: object, chunks: list[tuple[int, int]], own: object) -> bool:
        """Run ``chunks[1:]`` on the workers and ``chunks[0]`` with ``own`` on this thread, then
        wait. False (nothing run) when another thread has the workers."""
        if not self._busy.acquire(blocking=False):
            return False
        try:
            argv_addr = ctypes.addressof(argv)  # type: ignore[arg-type]
            used = self._blocks[:len(chunks) - 1]
            for blk, (lo, hi) in zip(used, chunks[1:]):
                self._submit(blk, fn_addr, argv_addr, lo, hi)
            own(argv, *chunks[0])  # type: ignore[operator]
            for blk, (lo, hi) in zip(used, chunks[1:]):
                if self._finish(blk):  # its worker had not started (descheduled): run it here
                    own(argv, lo, hi)  # type: ignore[operator]
        finally:
            self._busy.release()
        return True


_lock = threading.Lock()
_pool: dict[str, NativePool] = {}


def native_pool() -> NativePool:
    """The process's pool (created on first use; a forked child makes its own)."""
    with _lock:
        pool = _pool.get("pool")
        if pool is None:
            pool = _pool["pool"] = NativePool(max(1, len(os.sched_getaffinity(0)) - 1))
        return pool


os.register_at_fork(after_in_child=_pool.clear)

__all__ = ["NativePool", "available", "native_pool"]
