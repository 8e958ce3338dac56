"""The pre-warm hook: it readies a process once, never stops a worker from starting, and ``connect`` installs it."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from odist.fleet import prewarm, runtime


@pytest.fixture
def fresh_process(monkeypatch):
    """A process that has not been pre-warmed yet."""
    monkeypatch.setattr(prewarm, "_warm_seconds", None)


def test_a_prewarm_runs_once_per_process(fresh_process, monkeypatch, one_torch_thread):
    calls = []
    real = prewarm._warm_up
    monkeypatch.setattr(prewarm, "_warm_up", lambda: (calls.append(1), real()))
    assert prewarm.prewarmed_seconds() is None
    seconds = prewarm.prewarm_worker()
    assert seconds > 0 and prewarm.prewarmed_seconds() == seconds
    assert prewarm.prewarm_worker() == seconds and len(calls) == 1


def test_a_failing_prewarm_leaves_a_cold_worker_that_still_starts(fresh_process, monkeypatch, caplog):
    def broken() -> None:
        raise ImportError("no module named torch")

    ticks = iter([10.0, 10.25])  # the clock at the start and at the end of the one attempt
    monkeypatch.setattr(prewarm, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    monkeypatch.setattr(prewarm, "_warm_up", broken)
    with caplog.at_level(logging.WARNING, logger="odist.fleet.prewarm"):
        assert prewarm.prewarm_worker() == 0.25
    assert "could not pre-warm this worker" in caplog.text
    assert prewarm.prewarmed_seconds() == 0.25  # the worker counts as warmed: it starts, cold, and is not retried
    assert prewarm.prewarm_worker() == 0.25


@pytest.mark.parametrize("enabled, expected", [(True, {"worker_process_setup_hook": prewarm.SETUP_HOOK}),
                                               (False, None)])
def test_connect_gives_a_new_ray_the_prewarm_hook_only_when_switched_on(monkeypatch, enabled, expected):
    seen = {}
    monkeypatch.setattr(runtime.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(runtime, "init_local_ray", lambda **kwargs: seen.update(kwargs))
    assert runtime.connect(prewarm=enabled)
    assert seen.get("runtime_env") == expected


def test_prewarm_is_off_by_default():
    from odist.config import load_config

    assert load_config(environ={}).fleet.prewarm_workers is False
    assert load_config(environ={}, overrides=["fleet.prewarm_workers=true"]).fleet.prewarm_workers is True


def test_the_hook_names_an_importable_function():
    module, _, name = prewarm.SETUP_HOOK.rpartition(".")
    assert getattr(__import__(module, fromlist=[name]), name) is prewarm.prewarm_worker
