"""The thread policy (infra/threads.py): a pure function of affinity, quota and load, and the governor."""

from __future__ import annotations

import pytest
import torch

from trainer.infra import threads
from trainer.infra.threads import ThreadGovernor, choose_threads, parse_cpu_max


@pytest.mark.parametrize(("cores", "quota", "busy", "expected"), [
    (2, None, 0.0, 2),    # quiet: every core
    (2, None, 0.2, 2),    # an odd shell beside the job does not halve it
    (2, None, 0.5, 1),    # half a core taken: one thread
    (2, None, 3.0, 1),    # three busy processes on two cores: one thread, never zero
    (16, None, 5.0, 11),  # the free cores of a big machine
    (16, 4.0, 0.0, 4),    # a cgroup quota of 4 cores caps 16 visible ones
    (16, 2.5, 0.0, 2),    # a fractional quota rounds down
    (16, 0.5, 0.0, 1),    # a quota under one core still computes
    (4, 8.0, 0.0, 4),     # a quota above the affinity: the affinity
    (8, None, -1.0, 8),   # a negative estimate is no load
])
def test_choose_threads_never_exceeds_free_cores(cores, quota, busy, expected):
    assert choose_threads(cores, quota, busy) == expected


def test_choose_threads_is_monotone_in_load():
    counts = [choose_threads(8, None, busy / 4) for busy in range(0, 48)]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == 8 and counts[-1] == 1


@pytest.mark.parametrize(("text", "expected"), [("200000 100000", 2.0), ("50000 100000", 0.5),
                                                ("max 100000", None), ("garbage", None)])
def test_parse_cpu_max(text, expected):
    assert parse_cpu_max(text) == expected


def test_governor_sets_torch_threads_from_the_load(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 3.0)
        governor = ThreadGovernor(cores=2, quota=None)
        assert governor.check() == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 0.0)
        assert governor.check() == 1  # smoothed: one quiet instant is not yet a quiet machine
        for _ in range(5):
            governor.check()
        assert governor.threads == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_governor_respects_a_fixed_count(monkeypatch):
    monkeypatch.setenv("TRAINER_THREADS", "3")
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 50.0)
    governor = ThreadGovernor.from_environment()
    before = torch.get_num_threads()
    try:
        assert governor.check() == 3
    finally:
        torch.set_num_threads(before)


def test_runnable_elsewhere_reads_this_machine():
    busy = threads.runnable_elsewhere()
    assert busy is None or busy >= 0.0
    assert threads.affinity_cores() >= 1


@pytest.mark.parametrize(("cores", "quota", "threads_", "expected"), [
    (2, None, 1, 2),    # one thread left per batch on 2 cores: two batches at once
    (2, None, 2, 1),    # quiet: one batch on both cores
    (16, 1.5, 1, 1),    # a quota of one and a half cores: one worker
    (16, 4.0, 1, 2),    # never more than two: one thread beyond the free cores on a busy big machine
    (64, None, 1, 2),
    (1, None, 1, 1),
])
def test_choose_workers(cores, quota, threads_, expected):
    assert threads.choose_workers(cores, quota, threads_) == expected


def test_governor_workers_follow_the_load_but_not_a_fixed_count(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 3.0)
        loaded = ThreadGovernor(cores=2, quota=None)
        loaded.check()
        assert (loaded.threads, loaded.workers) == (1, 2)
        fixed = ThreadGovernor(fixed=1, cores=2, quota=None)
        fixed.check()
        assert (fixed.threads, fixed.workers) == (1, 1)
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def loaded_two_cores(monkeypatch):
    """The process's governor on 2 cores beside 3 busy processes."""
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 3.0)
    threads.use(ThreadGovernor(cores=2, quota=None))
    yield
    threads.use(None)
    torch.set_num_threads(before)


def test_run_batches_runs_two_at_once_on_loaded_cores(loaded_two_cores):
    import threading

    together = threading.Barrier(2, timeout=30)  # broken (an error) unless two batches run at the same time
    seen: dict[int, int] = {}

    def work(batch: int) -> None:
        if batch < 2:
            together.wait()
        seen[batch] = threading.get_ident()

    threads.run_batches(work, range(10))
    assert sorted(seen) == list(range(10))
    assert seen[0] != seen[1] and threading.get_ident() not in seen.values()


def test_run_batches_workers_compute_in_the_callers_inference_mode(loaded_two_cores):
    model = torch.nn.Linear(3, 2)
    seen = {}

    def work(batch: int) -> None:  # what predict's batches do: a forward pass, then numpy
        seen[batch] = (torch.is_inference_mode_enabled(), model(torch.ones(1, 3)).numpy().shape)

    with torch.inference_mode():
        threads.run_batches(work, range(6))
    assert seen == {b: (True, (1, 2)) for b in range(6)}


def test_run_batches_runs_in_the_calling_thread_on_quiet_cores(monkeypatch):
    import threading

    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 0.0)
    before = torch.get_num_threads()
    threads.use(ThreadGovernor(cores=2, quota=None))
    try:
        seen = []
        threads.run_batches(lambda batch: seen.append((batch, threading.get_ident())), range(5))
    finally:
        threads.use(None)
        torch.set_num_threads(before)
    assert seen == [(b, threading.get_ident()) for b in range(5)]


def test_run_batches_raises_the_error_of_a_batch(loaded_two_cores):
    def work(batch: int) -> None:
        if batch == 3:
            raise ValueError("batch 3 failed")

    with pytest.raises(ValueError, match="batch 3 failed"):
        threads.run_batches(work, range(8))


def test_probabilities_on_loaded_cores_equal_those_on_quiet_ones(monkeypatch):
    import numpy as np

    from trainer.models.batching import probabilities

    rng = np.random.default_rng(0)
    ids = [list(rng.integers(1, 50, size=int(n))) for n in rng.integers(1, 12, size=40)]

    def logits_of(input_ids, mask):
        return np.stack([(input_ids * mask).sum(1), mask.sum(1), input_ids[:, 0]], axis=1).astype(np.float32) / 50

    results = []
    for busy in (0.0, 3.0):
        monkeypatch.setattr(threads, "runnable_elsewhere", lambda busy=busy: busy)
        threads.use(ThreadGovernor(cores=2, quota=None))
        try:
            results.append(probabilities(ids, 4, 0, logits_of))
        finally:
            threads.use(None)
    assert threads.choose_workers(2, None, 1) == 2
    np.testing.assert_array_equal(results[0], results[1])
    assert np.allclose(results[0].sum(axis=1), 1.0) and results[0].std() > 0
