"""The ``performance`` switches and the GPU memory-share guard on a real CUDA GPU (skipped without one).

Marked ``cuda``: ``bench/gpu_run.sh`` runs them on a GPU machine (``pytest -m cuda``); a CPU-only run skips them.
"""

import numpy as np
import pytest
import torch

from odist.config import load_config
from odist.distill.distiller import OnlineDistiller
from odist.models.acceleration import GpuMemoryShareError
from odist.models.teachers import build_teacher
from odist.video.synthetic import SyntheticSource

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

SMALL = ["device=cuda", "student.width=0.25", "distill.lr=0.1", "distill.strides=[4,8]", "distill.max_updates=3"]
FRAMES = 16
SWITCHES = [
    [],
    ["performance.amp=bf16"],
    ["performance.amp=fp16"],
    ["performance.channels_last=true"],
    ["performance.pinned_uploads=true"],
    ["performance.gpu_memory_fraction=0.25"],
    ["performance.amp=bf16", "performance.channels_last=true", "performance.pinned_uploads=true",
     "distill.replay_buffer_size=2", "distill.replay_samples=1"],
]


@pytest.fixture(scope="module")
def frames():
    return list(SyntheticSource("traffic", width=96, height=64, frames=FRAMES, seed=0))


def distiller(*overrides: str) -> OnlineDistiller:
    config = load_config(None, [*SMALL, *overrides], environ={})
    return OnlineDistiller(config, build_teacher("oracle", config.teacher, config.classes))


@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: ",".join(s) or "defaults")
def test_every_switch_learns_and_infers_on_the_gpu(switches, frames):
    d = distiller(*switches)
    assert all(p.is_cuda for p in d.student.parameters())
    before = {k: v.detach().clone() for k, v in d.student.state_dict().items()}
    results = [d.step(f) for f in frames]
    assert all(r.prediction.shape == (64, 96) and r.prediction.dtype == np.uint8 for r in results)
    assert any(r.keyframe for r in results) and d.ledger.updates > 0
    after = d.student.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(p).all() for p in d.student.parameters())


@pytest.mark.parametrize(("amp", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_autocast_runs_the_student_in_its_dtype_for_inference_and_updates(frames, amp, dtype):
    d = distiller(f"performance.amp={amp}")
    assert d.acceleration.amp_dtype == dtype
    assert d._scaler.is_enabled() == (amp == "fp16")  # only fp16 needs loss scaling
    d.step(frames[0])  # the first frame also counts the student's FLOPs, in float32
    seen: list[tuple[bool, torch.dtype]] = []
    d.student.stem1[0].register_forward_hook(lambda m, _i, out: seen.append((m.training, out.dtype)))
    results = [d.step(f) for f in frames[1:12]]
    assert any(r.keyframe for r in results) and any(not r.keyframe for r in results)
    assert {dtype_seen for _, dtype_seen in seen} == {dtype}
    assert {training for training, _ in seen} == {True, False}


def test_the_memory_share_guard_reads_the_real_card():
    total = torch.cuda.get_device_properties(0).total_memory
    with pytest.raises(GpuMemoryShareError, match=rf"gpu_memory_fraction=1e-06 of cuda.*{total / 1024**3:.1f} GiB"):
        distiller("performance.gpu_memory_fraction=0.000001")
    d = distiller("performance.gpu_memory_fraction=0.125")  # an eighth of any data-centre card holds the student
    d.step(SyntheticSource("traffic", width=96, height=64, frames=1, seed=0).frame(0))
    assert d.ledger.frames == 1
