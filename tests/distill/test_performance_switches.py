"""The ``performance`` switches on the CPU: each falls back or runs, and the student still learns and infers."""

import logging
import types

import numpy as np
import pytest
import torch

from odist.config import load_config
from odist.distill.distiller import OnlineDistiller
from odist.fleet.student_actor import with_gpu_share
from odist.models import acceleration
from odist.models.acceleration import GIB, GpuMemoryShareError
from odist.models.teachers import build_teacher
from odist.video.synthetic import SyntheticSource

SMALL = ["student.width=0.25", "distill.lr=0.1", "distill.strides=[4,8]", "distill.max_updates=3"]
FRAMES = 24
SWITCHES = [
    [],
    ["performance.amp=bf16"],
    ["performance.amp=fp16"],
    ["performance.channels_last=true"],
    ["performance.pinned_uploads=true"],
    ["performance.compile=true"],
    ["performance.gpu_memory_fraction=0.25"],
    ["performance.amp=bf16", "performance.channels_last=true", "performance.compile=true",
     "performance.pinned_uploads=true", "distill.replay_buffer_size=2", "distill.replay_samples=1"],
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def fresh_notices_and_fast_compile(monkeypatch):
    """Fallback notices as if new; torch.compile with the eager backend (inductor takes a minute on 2 CPUs)."""
    monkeypatch.setattr(acceleration, "_noticed", set())
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: real(model, backend="eager", **kw))


@pytest.fixture(scope="module")
def frames():
    return list(SyntheticSource("traffic", width=96, height=64, frames=FRAMES, seed=0))


def distiller(*overrides: str) -> OnlineDistiller:
    config = load_config(None, [*SMALL, *overrides], environ={})
    return OnlineDistiller(config, build_teacher("oracle", config.teacher, config.classes))


@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: ",".join(s) or "defaults")
def test_every_switch_keeps_the_student_learning_and_inferring(switches, frames):
    d = distiller(*switches)
    before = {k: v.detach().clone() for k, v in d.student.state_dict().items()}
    results = [d.step(f) for f in frames]
    assert all(r.prediction.shape == (64, 96) and r.prediction.dtype == np.uint8 for r in results)
    assert any(not r.keyframe for r in results) and any(r.keyframe for r in results)
    assert d.ledger.frames == FRAMES and d.ledger.updates > 0
    after = d.student.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(p).all() for p in d.student.parameters())


def test_cpu_fallbacks_are_explained_once(frames, caplog):
    with caplog.at_level(logging.WARNING, logger="odist.performance"):
        d = distiller("performance.amp=fp16", "performance.pinned_uploads=true")
        distiller("performance.amp=fp16", "performance.pinned_uploads=true")
    assert d.acceleration.amp_dtype is None and not d.acceleration.pinned_uploads
    assert not d._scaler.is_enabled()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("amp=fp16 is off" in m for m in messages) == 1
    assert sum("pinned_uploads is off" in m for m in messages) == 1


def test_bf16_autocast_runs_the_student_in_bf16_for_inference_and_updates(frames):
    d = distiller("performance.amp=bf16")
    d.step(frames[0])  # the first frame also counts the student's FLOPs, in float32
    seen: list[tuple[bool, torch.dtype]] = []
    d.student.stem1[0].register_forward_hook(lambda m, _i, out: seen.append((m.training, out.dtype)))
    results = [d.step(f) for f in frames[1:12]]
    assert any(r.keyframe for r in results) and any(not r.keyframe for r in results)
    assert {dtype for _, dtype in seen} == {torch.bfloat16}
    assert {training for training, _ in seen} == {True, False}  # updates and inference both


def test_default_runs_in_float32(frames):
    d = distiller()
    seen = []
    d.student.stem1[0].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    d.step(frames[0])
    d.step(frames[1])
    assert set(seen) == {torch.float32}


def test_channels_last_converts_weights_and_inputs(frames):
    d = distiller("performance.channels_last=true")
    assert d.student.stem1[0].weight.is_contiguous(memory_format=torch.channels_last)
    d.step(frames[0])  # the first frame also counts the student's FLOPs on a plain tensor
    seen = []
    d.student.stem1[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    results = [d.step(f) for f in frames[1:12]]
    assert any(r.keyframe for r in results)
    assert seen and all(x.is_contiguous(memory_format=torch.channels_last) for x in seen)


def test_switches_do_not_change_the_checkpoint_layout(frames):
    plain, fast = distiller(), distiller("performance.channels_last=true", "performance.compile=true")
    assert plain.state_dict()["student"].keys() == fast.state_dict()["student"].keys()
    plain.load_state_dict(fast.state_dict())
    fast.load_state_dict(plain.state_dict())


def test_compile_failure_falls_back_with_a_warning(frames, monkeypatch):
    def broken(_x):
        raise RuntimeError("inductor needs a C++ compiler")

    monkeypatch.setattr(torch, "compile", lambda model, **_: broken)
    d = distiller("performance.compile=true")
    with pytest.warns(RuntimeWarning, match="compile of the student failed"):
        results = [d.step(f) for f in frames[:6]]
    assert all(r.prediction.shape == (64, 96) for r in results) and d.ledger.updates > 0


def test_gpu_memory_guard_checks_the_first_frame_of_each_size(frames, monkeypatch):
    d = distiller("performance.gpu_memory_fraction=0.001")
    assert d._gpu_share() is None  # on the CPU the share does not apply
    d.step(frames[0])
    d.step(frames[1])
    # The same checks on a (pretend) small GPU: the estimate at the frame size exceeds 0.1% of 16 GiB.
    monkeypatch.setattr(d, "_gpu_share", lambda: 0.001)
    small_gpu = types.SimpleNamespace(total_memory=16 * GIB)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: small_gpu)
    with pytest.raises(GpuMemoryShareError, match=r"gpu_memory_fraction=0\.001.*16\.0 GiB in total.*--student-gpus"):
        d.step(SyntheticSource("traffic", width=128, height=72, frames=2, seed=0).frame(1))


def test_fleet_workers_default_the_share_to_their_gpu_fraction():
    config = load_config(None, [], environ={})
    assert with_gpu_share(config, 0.0) is config
    assert with_gpu_share(config, 0.25).performance.gpu_memory_fraction == 0.25
    assert with_gpu_share(config, 2.0).performance.gpu_memory_fraction == 1.0
    own = load_config(None, ["performance.gpu_memory_fraction=0.5"], environ={})
    assert with_gpu_share(own, 0.25) is own
    assert config.performance.gpu_memory_fraction is None  # the base config is left alone


def test_gpu_memory_guard_runs_at_construction_and_caps_the_process(monkeypatch):
    from odist.distill import distiller as distiller_module

    capped = []
    monkeypatch.setattr(distiller_module, "limit_gpu_memory", lambda device, fraction: capped.append(fraction))
    monkeypatch.setattr(OnlineDistiller, "_gpu_share", lambda self: 0.5)
    total = {"bytes": 16 * GIB}
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device: types.SimpleNamespace(total_memory=total["bytes"]))
    distiller()
    assert capped == [0.5]
    total["bytes"] = 64 * 1024**2  # a 32 MiB share cannot even hold the fixed slack
    with pytest.raises(GpuMemoryShareError, match=r"gpu_memory_fraction=0\.5 of cpu \(0\.1 GiB in total\)"):
        distiller()
    assert capped == [0.5]
