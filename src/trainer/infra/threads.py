"""Compute threads from the cores actually free: affinity, the cgroup quota, and what else is running.

torch starts one compute thread per core it may run on. On cores shared with other work that is the
worst choice: at every parallel region each thread waits at a barrier for the others, and when the
scheduler takes one core away the other thread spins until it comes back. `trainer train` on two
cores ran 30 times slower beside three busy processes (benchmarks/README.md, "Shared cores").

`choose_threads` is the policy, a pure function of what the machine says; `ThreadGovernor` samples
the machine and calls `torch.set_num_threads` when the answer changes, between batches (prediction)
or every few steps (training).

Prediction's batches are independent of each other, so when the free cores leave one thread, it runs
them on two single-thread workers at once (`choose_workers`, `run_batches`) instead of one: no barrier ties
the workers together, so a core taken by other work slows only the worker on it, and each worker
gets its own share of the cores as any other process's thread does. One thread alone gets half a core
beside 3 busy processes on 2 cores; two independent ones get 0.8 (benchmarks/README.md, "Shared cores").

>>> choose_threads(cores=2, quota=None, busy_elsewhere=0.0)
2
>>> choose_threads(cores=2, quota=None, busy_elsewhere=3.0)
1
>>> choose_threads(cores=16, quota=4.0, busy_elsewhere=1.0)
3
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

Batch = TypeVar("Batch")

# A core that other processes keep busy less than this share of the time still counts as free: the
# odd shell or editor beside a job should not halve its threads.
BUSY_TOLERANCE = 0.25
# Weight of the newest sample in the running estimate of the load from elsewhere; one sample is one
# instant, and runnable counts jump between 0 and several from one instant to the next.
SMOOTHING = 0.5
# Prediction's single-thread workers on cores with none free (`choose_workers`).
MAX_WORKERS = 2
# A thread count in the environment turns adapting off: TRAINER_THREADS, else OMP_NUM_THREADS.
ENV_THREADS = ("TRAINER_THREADS", "OMP_NUM_THREADS")

CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def choose_threads(cores: int, quota: float | None, busy_elsewhere: float) -> int:
    """Threads to compute with: the free cores, never more, at least one.

    `cores`: the CPUs this process may run on (affinity); `quota`: the cgroup's CPU limit in cores
    (None: none); `busy_elsewhere`: runnable threads of other processes (a load, not ours).
    """
    usable = float(cores) if quota is None else min(float(cores), max(quota, 1.0))
    free = usable - max(busy_elsewhere, 0.0)
    return max(1, min(math.floor(usable), math.floor(free + BUSY_TOLERANCE)))


def choose_workers(cores: int, quota: float | None, threads: int) -> int:
    """Independent batch workers for prediction: one when the free cores give a batch several threads
    (they compute it together); when they give it one, two single-thread workers where two cores are
    usable. Two, not one per core: one runnable thread beyond the free cores takes a fairer share beside
    busy processes (0.8 of a core instead of 0.5 beside 3 on 2 cores) without flooding a big shared
    machine whose cores are all taken.

    >>> choose_workers(cores=2, quota=None, threads=1)
    2
    >>> choose_workers(cores=2, quota=None, threads=2)
    1
    >>> choose_workers(cores=16, quota=1.5, threads=1)
    1
    """
    usable = cores if quota is None else min(cores, max(math.floor(quota), 1))
    return min(max(usable, 1), MAX_WORKERS) if threads == 1 else 1


def affinity_cores() -> int:
    """The CPUs this process may run on (taskset, cpusets), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 `cpu.max` ("200000 100000": 2 cores; "max 100000": no limit) as cores, or None.

    >>> parse_cpu_max("150000 100000")
    1.5
    >>> parse_cpu_max("max 100000") is None
    True
    """
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    quota, period = float(parts[0]), float(parts[1])
    return quota / period if quota > 0 and period > 0 else None


def cgroup_quota() -> float | None:
    """This container's CPU limit in cores (cgroup v2, else v1), or None when it has none."""
    try:
        if CGROUP_V2.is_file():
            return parse_cpu_max(CGROUP_V2.read_text())
        quota, period = (int(p.read_text()) for p in CGROUP_V1)
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def runnable_elsewhere() -> float | None:
    """Threads of other processes running or waiting for a core at this instant: the machine's runnable
    count (/proc/stat `procs_running`) less this process's own runnable threads. None off Linux."""
    try:
        running = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                       if line.startswith("procs_running"))
    except (OSError, StopIteration, ValueError):
        return None
    return float(max(running - _own_running(), 0))


def _own_running() -> int:
    count = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended while we looked
            continue
        count += stat[stat.rindex(")") + 2] == "R"  # the state follows the command name in parentheses
    return count


def load_elsewhere(own_threads: int) -> float:
    """The 1-minute load average less this process's threads (off Linux, where /proc is missing)."""
    if not hasattr(os, "getloadavg"):
        return 0.0
    return max(os.getloadavg()[0] - own_threads, 0.0)


@dataclass
class ThreadGovernor:
    """Re-checks the free cores and sets torch's thread count when it changes. Call `check()` between
    batches; `fixed` (TRAINER_THREADS or OMP_NUM_THREADS, or a number) turns adapting off."""

    fixed: int | None = None
    cores: int = field(default_factory=affinity_cores)
    quota: float | None = field(default_factory=cgroup_quota)
    busy: float | None = None  # the running estimate of other processes' runnable threads
    threads: int = 0  # what torch was last set to here (0: not yet)
    workers: int = 1  # prediction's independent batch workers for those threads (`choose_workers`)

    @classmethod
    def from_environment(cls) -> ThreadGovernor:
        for name in ENV_THREADS:
            value = os.environ.get(name, "").strip()
            if value.isdigit() and int(value) > 0:
                return cls(fixed=int(value))
        return cls()

    def sample(self) -> float:
        """Fold one sample of the load from elsewhere into the estimate, and return the estimate."""
        now = runnable_elsewhere()
        if now is None:
            now = load_elsewhere(self.threads or self.cores)
        self.busy = now if self.busy is None else SMOOTHING * now + (1 - SMOOTHING) * self.busy
        return self.busy

    def choose(self) -> int:
        """Sample the machine and choose the threads, changing nothing yet."""
        return self.fixed or choose_threads(self.cores, self.quota, self.sample())

    def apply(self, wanted: int) -> int:
        """Set torch to `wanted` threads if it is not there yet, and the workers that go with them."""
        import torch

        if wanted != self.threads:
            torch.set_num_threads(wanted)
            self.threads = wanted
        self.workers = 1 if self.fixed else choose_workers(self.cores, self.quota, wanted)
        return wanted

    def check(self) -> int:
        """Sample the machine, choose the threads, set torch to them if they changed; returns them."""
        return self.apply(self.choose())


_governor: ThreadGovernor | None = None


def governor() -> ThreadGovernor:
    """The process's one governor (torch's thread count is process-wide)."""
    global _governor
    if _governor is None:
        _governor = ThreadGovernor.from_environment()
    return _governor


def use(chosen: ThreadGovernor | None) -> None:
    """Replace the process's governor (None: the environment's again); benchmarks compare policies so."""
    global _governor
    _governor = chosen


def check() -> int:
    """`governor().check()`: what the loops call between batches."""
    return governor().check()


def run_batches(work: Callable[[Batch], object], batches: Iterable[Batch]) -> None:
    """`work(batch)` for every batch, the free cores re-checked before each: on one worker computing
    with the chosen threads, or, when those are one, on `choose_workers` workers at once (threads of
    this process; torch and ONNX Runtime release the GIL while they compute). `work` writes its own
    results (each batch to its own rows); the first error it raises is raised here."""
    chosen = governor()
    pool, size = None, 0
    running: set[Future] = set()
    on_worker = in_callers_mode(work)
    try:
        for batch in batches:
            wanted = chosen.choose()
            if wanted != chosen.threads:  # never change torch's threads under a running batch
                _finish(running)
                chosen.apply(wanted)
            if chosen.workers == 1:
                _finish(running)
                work(batch)
                continue
            if chosen.workers != size:
                _finish(running)
                if pool is not None:
                    pool.shutdown()
                pool, size = ThreadPoolExecutor(chosen.workers, thread_name_prefix="trainer-batch"), chosen.workers
            if len(running) >= size:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                _raise_first(done)
            running.add(pool.submit(on_worker, batch))
        _finish(running)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def in_callers_mode(work: Callable[[Batch], object]) -> Callable[[Batch], object]:
    """`work`, run in the calling thread's torch modes: grad and inference mode are per thread, so a worker
    would otherwise compute with gradients (and `.numpy()` on its result would fail) under the caller's
    `torch.inference_mode()`."""
    import sys

    torch = sys.modules.get("torch")  # not imported here: a caller that never imported torch needs no modes
    if torch is None:
        return work
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def run(batch: Batch) -> object:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            return work(batch)

    return run


def _finish(running: set[Future]) -> None:
    done, _ = wait(running)
    running.clear()
    _raise_first(done)


def _raise_first(done: Iterable[Future]) -> None:
    for future in done:
        future.result()
