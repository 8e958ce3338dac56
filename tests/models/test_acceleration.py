import logging
import types
import warnings

import numpy as np
import pytest
import torch
from fast_teachers import FAST_MASKRCNN_OPTIONS as FAST

from odist.config import DEFAULT_CLASSES, PerformanceConfig, TeacherConfig
from odist.errors import ConfigError
from odist.models import acceleration
from odist.models.acceleration import (
    GIB,
    Acceleration,
    GpuMemoryShareError,
    activation_elements_per_pixel,
    autocast,
    check_gpu_memory_share,
    compile_forward,
    limit_gpu_memory,
    student_bytes_estimate,
    to_channels_last,
    upload,
)
from odist.models.jitnet import jitnet
from odist.models.teachers import build_teacher
from odist.models.teachers.coco import COCO_NAMES
from odist.video.frame import Frame

CPU = torch.device("cpu")
ALL_GROUPS = {"person": list(COCO_NAMES[:27]), "vehicle": list(COCO_NAMES[27:54]), "bike": list(COCO_NAMES[54:])}


@pytest.fixture(autouse=True)
def fresh_notices(monkeypatch):
    """Every test sees each fallback notice as if for the first time."""
    monkeypatch.setattr(acceleration, "_noticed", set())


def small_student():
    torch.manual_seed(0)
    return jitnet(len(DEFAULT_CLASSES), width=0.25)


# -- resolving switches on the CPU -----------------------------------------------------------------


def test_defaults_resolve_to_channels_last_only():
    accel = Acceleration.resolve(PerformanceConfig(), "cpu")
    assert accel == Acceleration(CPU, channels_last=True)
    assert not accel.grad_scaler().is_enabled()


def test_gpu_only_switches_fall_back_on_the_cpu_and_say_why_once(caplog):
    config = PerformanceConfig(amp="fp16", pinned_uploads=True, channels_last=True, compile=True)
    with caplog.at_level(logging.WARNING, logger="odist.performance"):
        accel = Acceleration.resolve(config, "cpu")
        Acceleration.resolve(config, "cpu")
    assert accel.amp_dtype is None and not accel.pinned_uploads
    assert accel.channels_last and accel.compile  # these work on the CPU
    messages = [r.getMessage() for r in caplog.records]
    assert sum("performance.amp=fp16 is off" in m for m in messages) == 1
    assert sum("performance.pinned_uploads is off" in m for m in messages) == 1


def test_bf16_stays_on_the_cpu_and_really_runs_in_bf16():
    accel = Acceleration.resolve(PerformanceConfig(amp="bf16"), "cpu")
    assert accel.amp_dtype == torch.bfloat16
    assert not accel.grad_scaler().is_enabled()  # bf16 keeps float32's range: no scaling
    model = small_student()
    seen = []
    model.stem1[0].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    with accel.autocast():
        model(torch.randn(1, 3, 32, 48))
    assert seen == [torch.bfloat16]


def test_bf16_falls_back_to_fp32_with_one_clear_line_where_the_cpu_lacks_it(monkeypatch, caplog):
    def no_bf16(*_args, **_kwargs):
        raise RuntimeError("bfloat16 is not supported on this CPU")

    monkeypatch.setattr(acceleration.torch, "autocast", no_bf16)  # what a CPU without bf16 kernels does
    assert not acceleration._cpu_bf16_works()
    monkeypatch.undo()
    monkeypatch.setattr(acceleration, "_noticed", set())
    monkeypatch.setattr(acceleration, "_cpu_bf16_works", lambda: False)
    with caplog.at_level(logging.WARNING, logger="odist.performance"):
        accel = Acceleration.resolve(PerformanceConfig(amp="bf16"), "cpu")
        Acceleration.resolve(PerformanceConfig(amp="bf16"), "cpu")
    assert accel.amp_dtype is None
    assert [r.getMessage() for r in caplog.records] == [
        "performance.amp=bf16 is off: this CPU's torch cannot run a bf16 convolution under autocast"]
    model = small_student()
    seen = []
    model.stem1[0].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    with accel.autocast():
        model(torch.randn(1, 3, 32, 48))
    assert seen == [torch.float32]


def test_only_fp16_enables_the_grad_scaler():
    assert Acceleration(CPU, torch.float16).grad_scaler().is_enabled()
    assert not Acceleration(CPU, torch.bfloat16).grad_scaler().is_enabled()


def test_autocast_off_is_a_no_op():
    with autocast(CPU, None):
        out = torch.nn.functional.conv2d(torch.ones(1, 3, 4, 4), torch.ones(2, 3, 3, 3))
    assert out.dtype == torch.float32


# -- memory format, uploads, compile ---------------------------------------------------------------


def test_channels_last_converts_models_and_4d_inputs_only():
    model = to_channels_last(small_student())
    assert model.stem1[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = to_channels_last(torch.randn(1, 3, 8, 8))
    assert x.is_contiguous(memory_format=torch.channels_last)
    flat = torch.randn(3, 8)
    assert to_channels_last(flat) is flat


def test_pinned_upload_without_cuda_is_a_plain_copy():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    x = upload(image, CPU, pinned=True)
    assert x.device == CPU and not x.is_pinned()
    assert np.array_equal(x.numpy(), image)


def test_compile_off_returns_the_model_itself():
    model = small_student()
    assert compile_forward(model, False) is model


def test_compile_failure_warns_and_runs_eagerly(monkeypatch, caplog):
    def broken(_x):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", lambda model, **_: broken)
    model = small_student().eval()
    x = torch.randn(1, 3, 32, 48)
    forward = compile_forward(model, True)
    with pytest.warns(RuntimeWarning, match="torch.compile of the student failed.*no C\\+\\+ compiler.*eagerly"):
        out = forward(x)
    assert torch.equal(out, model(x))
    assert forward(x).shape == out.shape  # stays eager without warning again
    assert any("performance.compile=false" in r.getMessage() for r in caplog.records)


def test_compile_that_cannot_start_falls_back_too(monkeypatch):
    def refuse(model, **_):
        raise RuntimeError("Python 3.99 is not supported")

    monkeypatch.setattr(torch, "compile", refuse)
    model = small_student().eval()
    with pytest.warns(RuntimeWarning, match="not supported"):
        forward = compile_forward(model, True)
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(forward(x), model(x))


def test_compile_with_a_working_backend_matches_eager(monkeypatch):
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: real(model, backend="eager", **kw))
    model = small_student().eval()
    x = torch.randn(1, 3, 32, 48)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = compile_forward(model, True)(x)
    assert torch.allclose(out, model(x), atol=1e-5)


# -- GPU memory share ------------------------------------------------------------------------------


def test_memory_guard_names_fraction_total_estimate_and_fix():
    with pytest.raises(GpuMemoryShareError) as info:
        check_gpu_memory_share("cuda:0", 0.1, needed_bytes_estimate=3 * GIB, total_bytes=16 * GIB)
    message = str(info.value)
    assert isinstance(info.value, ConfigError)
    assert "performance.gpu_memory_fraction=0.1" in message and "16.0 GiB in total" in message
    assert "3.00 GiB" in message and "1.60 GiB" in message
    assert "--student-gpus" in message and "resolution" in message


def test_memory_guard_reads_the_device_total(monkeypatch):
    props = types.SimpleNamespace(total_memory=80 * GIB)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: props)
    check_gpu_memory_share("cuda:0", 0.25, needed_bytes_estimate=10 * GIB)  # 20 GiB share: fits
    with pytest.raises(GpuMemoryShareError, match=r"80\.0 GiB in total"):
        check_gpu_memory_share("cuda:0", 0.1, needed_bytes_estimate=10 * GIB)


def test_estimate_grows_with_pixels_batch_and_optimiser_state():
    model = small_student()
    per_pixel = activation_elements_per_pixel(model, CPU)
    assert per_pixel > 10
    base = student_bytes_estimate(model, 1)
    hd = student_bytes_estimate(model, 1, 1280 * 720, 1, per_pixel)
    assert hd > base
    assert student_bytes_estimate(model, 1, 1280 * 720, 2, per_pixel) > hd
    assert student_bytes_estimate(model, 2) > base
    assert student_bytes_estimate(model, 1, 1280 * 720, 1, per_pixel, amp=True) < hd


def test_activation_probe_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = jitnet(len(DEFAULT_CLASSES), width=0.25, batch_stats_at_inference=False).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    activation_elements_per_pixel(model, CPU)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_limit_gpu_memory_sets_the_share_or_says_why_not(monkeypatch, caplog):
    calls = []
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, d: calls.append((f, d)))
    assert limit_gpu_memory("cuda:0", 0.25)
    assert calls == [(0.25, torch.device("cuda:0"))]

    def unsupported(_f, _d):
        raise RuntimeError("not supported with cudaMallocAsync")

    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", unsupported)
    with caplog.at_level(logging.WARNING, logger="odist.performance"):
        assert not limit_gpu_memory("cuda:0", 0.25)
    assert "cudaMallocAsync" in caplog.text


# -- the teacher -----------------------------------------------------------------------------------


def build_maskrcnn(performance: PerformanceConfig | None, batch_size: int = 4):
    config = TeacherConfig(weights="random", score_threshold=0.0, class_groups=ALL_GROUPS, batch_size=batch_size)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_teacher(f"maskrcnn:{FAST}", config, DEFAULT_CLASSES, "cpu", performance=performance)


def frames(count: int) -> list[Frame]:
    rng = np.random.default_rng(0)
    return [Frame(index=i, image=rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)) for i in range(count)]


def test_teacher_amp_bf16_runs_batched_in_bf16_on_the_cpu():
    teacher = build_maskrcnn(PerformanceConfig(teacher_amp="bf16"))
    assert teacher.amp_dtype == torch.bfloat16
    teacher.gflops_per_frame(48, 64)  # counted once per size, in float32, outside the timed batches
    seen = []
    teacher.model.backbone.body.conv1.register_forward_hook(lambda _m, _i, out: seen.append((out.dtype, len(out))))
    result = teacher.label(frames(4))
    assert seen == [(torch.bfloat16, 4)]  # one forward pass over the four frames
    assert [lab.classes.shape for lab in result.labels] == [(48, 64)] * 4
    assert all(lab.classes.dtype == np.uint8 and lab.boxes.dtype == np.float32 for lab in result.labels)


def test_teacher_amp_fp16_falls_back_on_the_cpu(caplog):
    with caplog.at_level(logging.WARNING, logger="odist.performance"):
        teacher = build_maskrcnn(PerformanceConfig(teacher_amp="fp16"), batch_size=2)
    assert teacher.amp_dtype is None
    assert "performance.teacher_amp=fp16 is off" in caplog.text
    teacher.gflops_per_frame(48, 64)
    seen = []
    teacher.model.backbone.body.conv1.register_forward_hook(lambda _m, _i, out: seen.append((out.dtype, len(out))))
    assert len(teacher.label(frames(3)).labels) == 3
    assert seen == [(torch.float32, 2), (torch.float32, 1)]


def test_teachers_without_a_model_ignore_performance():
    performance = PerformanceConfig(teacher_amp="bf16")
    oracle = build_teacher("oracle", TeacherConfig(), DEFAULT_CLASSES, performance=performance)
    assert oracle.name == "oracle"


def test_the_cpu_default_channels_last_gives_the_contiguous_layouts_class_maps():
    from odist.config import load_config
    from odist.distill.distiller import OnlineDistiller
    from odist.models.teachers import build_teacher
    from odist.video.synthetic import SyntheticSource

    def student(channels_last: bool) -> OnlineDistiller:
        config = load_config(overrides=[f"performance.channels_last={channels_last}", "threads=1"], environ={})
        return OnlineDistiller(config, build_teacher("oracle", config.teacher, config.classes))

    default, contiguous = student(True), student(False)
    assert default.acceleration.channels_last and default.student.stem1[0].weight.is_contiguous(
        memory_format=torch.channels_last)
    frames = list(SyntheticSource("traffic", width=160, height=96, frames=8, seed=0))
    for frame in frames[:4]:  # the same learning on both (keyframes at 0), then inference only
        default.step(frame)
        contiguous.step(frame)
    contiguous.student.load_state_dict(default.student.state_dict())
    for frame in frames[4:]:
        np.testing.assert_array_equal(default.infer(frame).prediction, contiguous.infer(frame).prediction)
