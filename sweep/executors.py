"""Where a sweep's tasks run: in this process, in local worker processes, or on a Dask cluster.

Every executor has one method, `run`, that takes ``(task id, task)`` pairs and yields
``(task id, result row)`` as tasks finish, in completion order. A task is ``(kind, payload)``
for `vta.sweep.evaluate.run_task`; rows are plain dicts, so results are the same wherever
they were computed.

Local runs use `concurrent.futures.ProcessPoolExecutor` rather than a Dask LocalCluster:
it is the standard library, starts in a fraction of a second (no scheduler, nannies or
dashboard), and its workers are plain processes; Dask is for clusters (`DaskExecutor`
takes any scheduler address, and `dask-jobqueue` clusters on SLURM/PBS give one).
Workers are spawned, not forked, because the parent has threads (the progress bar, BLAS)
that a fork would copy in an undefined state. They ignore SIGINT: Ctrl-C reaches the whole
process group, and only the parent should act on it (it stops the workers and keeps the
table as it is).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Self

from vta.isa.errors import VTAError

from .evaluate import STATUS_ERROR, error_text, point_row, run_task

Task = tuple[str, dict[str, Any]]
TaskFn = Callable[[Task], dict[str, Any]]


def failure_row(task: Task, error: str) -> dict[str, Any]:
    """The row of a task that died without returning one (its worker crashed, say)."""
    kind, payload = task
    if kind == "point":
        return {**point_row(payload), "status": STATUS_ERROR, "error": error}
    return {"key": payload["key"], "config_key": payload["config_key"], "family": payload.get("family"),
            "status": STATUS_ERROR, "error": error}


def _ignore_sigint() -> None:
    """Worker initializer: leave Ctrl-C to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_jobs() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Executor:
    """Runs tasks and yields their rows as they finish."""

    name = "executor"
    workers = 1

    def run(self, tasks: Iterable[tuple[str, Task]]) -> Iterator[tuple[str, dict[str, Any]]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers or connections (idempotent)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineExecutor(Executor):
    """Runs each task in this process, one after another (debugging; ``--jobs 0``)."""

    name = "inline"

    def __init__(self, fn: TaskFn = run_task) -> None:
        self.fn = fn

    def run(self, tasks: Iterable[tuple[str, Task]]) -> Iterator[tuple[str, dict[str, Any]]]:
        for tid, task in tasks:
            try:
                row = self.fn(task)
            except Exception as e:  # noqa: BLE001 - the task's result, as on the other executors
                row = failure_row(task, error_text(e))
            yield tid, row


class LocalExecutor(Executor):
    """A pool of ``jobs`` spawned worker processes.

    At most ``2 * jobs`` tasks are queued at once, so an interrupt cancels quickly and a
    worker that dies (a crash in native code, the OOM killer) takes few tasks with it: the
    pool is restarted, and each task that was in flight is run again alone; one that kills
    its worker alone as well is recorded as an error. A pool that breaks ``max_crashes``
    times (default: the window + 2) with no task returning in between (workers that cannot
    even start, say) stops the run with a `VTAError`.
    """

    name = "local"

    def __init__(self, jobs: int | None = None, fn: TaskFn = run_task, max_crashes: int | None = None) -> None:
        self.workers = jobs or default_jobs()
        self.window = 2 * self.workers
        self.fn = fn
        self.max_crashes = max_crashes or self.window + 2
        self._crashes = 0  # pool breaks since a task last finished
        self._pool: ProcessPoolExecutor | None = None

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_ignore_sigint)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _abandon(self) -> None:
        """Drop a broken pool without waiting for it."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def terminate(self) -> None:
        """Stop the workers now, running tasks and all (after an interrupt)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        stop = getattr(pool, "terminate_workers", None)  # Python 3.14+
        if stop is not None:
            stop()
            return
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(5)

    def run(self, tasks: Iterable[tuple[str, Task]]) -> Iterator[tuple[str, dict[str, Any]]]:
        fresh = iter(tasks)
        retry: deque[tuple[str, Task]] = deque()
        inflight: dict[Future[dict[str, Any]], tuple[str, Task]] = {}
        alone: str | None = None  # the retried task now running by itself
        finished = False
        try:
            while True:
                alone = self._fill(fresh, retry, inflight, alone)
                if not inflight:
                    finished = True
                    return
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    yield from self._after_crash(inflight, retry, alone)
                    alone = None
                    continue
                for f in done:
                    tid, task = inflight.pop(f)
                    exc = f.exception()
                    self._crashes = 0
                    yield tid, (f.result() if exc is None else failure_row(task, error_text(exc)))
                    alone = None if tid == alone else alone
        finally:
            for f in inflight:
                f.cancel()
            if not finished and inflight:  # interrupted, or the caller stopped reading: stop the running tasks
                self.terminate()

    def _fill(self, fresh: Iterator[tuple[str, Task]], retry: deque[tuple[str, Task]],
              inflight: dict[Future[dict[str, Any]], tuple[str, Task]], alone: str | None) -> str | None:
        """Submit tasks up to the window; a task to retry runs only when nothing else does."""
        pool = self._start()
        while True:
            if retry:
                if inflight:
                    return alone
                tid, task = retry.popleft()
                inflight[self._submit(pool, task)] = (tid, task)
                return tid
            if len(inflight) >= self.window:
                return alone
            nxt = next(fresh, None)
            if nxt is None:
                return alone
            inflight[self._submit(pool, nxt[1])] = nxt

    def _submit(self, pool: ProcessPoolExecutor, task: Task) -> Future[dict[str, Any]]:
        """Submit, or a future holding the error when the pool broke since the last wait."""
        try:
            return pool.submit(self.fn, task)
        except BrokenProcessPool as e:
            f: Future[dict[str, Any]] = Future()
            f.set_exception(e)
            return f

    def _after_crash(self, inflight: dict[Future[dict[str, Any]], tuple[str, Task]],
                     retry: deque[tuple[str, Task]], alone: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
        """A worker died: keep what finished, retry the rest alone (or record the culprit)."""
        wait(inflight)  # a broken pool fails every pending future
        self._abandon()
        self._crashes += 1
        if self._crashes >= self.max_crashes:
            raise VTAError(f"local worker processes died {self._crashes} times with no task returning "
                           "(can they import vta? a script must guard its entry point with "
                           "`if __name__ == '__main__':`)")
        for f, (tid, task) in list(inflight.items()):
            exc = f.exception()
            if exc is None:
                self._crashes = 0
                yield tid, f.result()
            elif tid == alone:
                yield tid, failure_row(task, f"worker process died running this task ({error_text(exc)})")
            else:
                retry.append((tid, task))
        inflight.clear()


class DaskExecutor(Executor):
    """Tasks on a Dask cluster: a scheduler ``address`` (``tcp://host:8786``) or a
    `distributed.Client`. Synthesis tasks get a higher priority than points. The workers
    need this package installed (and, for model workloads, the model files at the same
    paths, as on a shared file system)."""

    name = "dask"

    def __init__(self, address: str | None = None, client: Any = None, timeout: float = 30) -> None:
        from distributed import Client

        self._own = client is None
        self.client = client if client is not None else Client(address, timeout=timeout)
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        self.address = self.client.scheduler.address

    def close(self) -> None:
        if self._own and self.client is not None:
            self.client.close()
            self.client = None

    def run(self, tasks: Iterable[tuple[str, Task]]) -> Iterator[tuple[str, dict[str, Any]]]:
        from distributed import as_completed

        ids: dict[str, tuple[str, Task]] = {}
        futures = []
        for tid, task in tasks:
            fut = self.client.submit(run_task, task, pure=False, priority=10 if task[0] == "synth" else 0)
            ids[fut.key] = (tid, task)
            futures.append(fut)
        try:
            for fut in as_completed(futures):
                tid, task = ids.pop(fut.key)
                try:
                    row = fut.result()
                except Exception as e:  # noqa: BLE001 - a lost worker (KilledWorker) or a task that could not run
                    row = failure_row(task, error_text(e))
                fut.release()
                yield tid, row
        finally:
            left = [f for f in futures if f.key in ids]
            if left:
                self.client.cancel(left)


def make_executor(jobs: int | None = None, scheduler: str | None = None) -> Executor:
    """Dask when a scheduler address is given; else ``jobs`` local processes (0: this process)."""
    if scheduler:
        return DaskExecutor(scheduler)
    if jobs == 0:
        return InlineExecutor()
    return LocalExecutor(jobs)
