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
