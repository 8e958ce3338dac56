"""Fixtures shared by every test package: a real S3 endpoint (moto) and stand-in live cameras on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
import torch
from netutil import free_port

from odist.config import OdistConfig
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.video.frame import Frame

# The measured speed-up charges a teacher that did not run on the student's device (the oracle, replay) at the
# configured Mask R-CNN's cost there, measured once per device and frame size (seconds to minutes on a CPU).
# Tests give that figure (teacher.device_ms) and keep any measurement cache of their own apart from the user's;
# tests/models/teachers/test_device_cost.py measures and caches for real.
TEST_TEACHER_DEVICE_MS = "900"
os.environ.setdefault("ODIST__TEACHER__DEVICE_MS", TEST_TEACHER_DEVICE_MS)
os.environ.setdefault("ODIST_CACHE", tempfile.mkdtemp(prefix="odist-test-cache-"))


@pytest.fixture(autouse=True)
def quick_teacher_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configs built without the environment (``OdistConfig()``) would measure: give them the same figure."""
    from odist.models.teachers import device_cost

    monkeypatch.setattr(device_cost, "measure_seconds_per_frame",
                        lambda *args, **kwargs: float(TEST_TEACHER_DEVICE_MS) / 1000.0)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for a module: tiny models on a shared CPU run far faster (and reproducibly)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 with dummy credentials, for the whole session."""
    server_module = pytest.importorskip("moto.server")
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    mp = pytest.MonkeyPatch()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_REGION": "us-east-1"}.items():
        mp.setenv(name, value)
    yield endpoint
    mp.undo()
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint):
    import boto3

    name = f"odist-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


# -- live cameras -----------------------------------------------------------------------------------

SIZE = ("--width", "96", "--height", "64")


class Publisher:
    """``odist publish`` of a synthetic scene in its own process: a camera that can be killed and restarted."""

    def __init__(self, url: str, scenario: str = "traffic", fps: float = 10.0) -> None:
        self.url, self.scenario, self.fps = url, scenario, fps
        self.process: subprocess.Popen | None = None

    def start(self) -> Publisher:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "odist.cli", "publish", f"synthetic:{self.scenario}", self.url, *SIZE,
             "--frames", "40", "--fps", str(self.fps)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def publishers() -> Iterator[list[Publisher]]:
    """Publishers started by a test, killed after it."""
    started: list[Publisher] = []
    yield started
    for publisher in started:
        publisher.kill()


@pytest.fixture
def camera(publishers):
    """``camera(scheme, scenario="traffic", fps=10.0)``: a started publisher on a free loopback port."""

    def start(scheme: str, scenario: str = "traffic", fps: float = 10.0) -> Publisher:
        port = free_port(socket.SOCK_DGRAM if scheme == "udp" else socket.SOCK_STREAM)
        publisher = Publisher(f"{scheme}://127.0.0.1:{port}", scenario, fps).start()
        publishers.append(publisher)
        return publisher

    return start


@pytest.fixture
def bright_teacher_factory() -> BrightTeacherFactory:
    return BrightTeacherFactory()


@pytest.fixture
def wait_for():
    """``wait_for(condition, what, deadline_s=180)``: poll until true, fail naming ``what`` at the deadline
    (sized for a loaded 2-core machine: a deadline only bounds a failure)."""

    def wait(condition, what: str, deadline_s: float = 180.0, every_s: float = 0.2) -> None:
        deadline = time.monotonic() + deadline_s
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"gave up after {deadline_s:.0f} s waiting for {what}")
            time.sleep(every_s)

    return wait


class BrightTeacher(Teacher):
    """Labels bright pixels as class 1: learnable, instant, charged like the paper's teacher."""

    name = "bright"

    def __init__(self, class_names: Sequence[str]) -> None:
        super().__init__(class_names)

    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        labels = [Labels(classes=(frame.image.mean(axis=2) > 120).astype(np.uint8),
                         boxes=np.zeros((0, 5), np.float32)) for frame in frames]
        return TeacherResult(labels=labels, seconds=0.3 * len(frames), gflops=520.0 * len(frames))

    def gflops_per_frame(self, height: int, width: int) -> float:
        return 520.0


class BrightTeacherFactory:
    """The fleet's teacher factory giving every camera a ``BrightTeacher`` (picklable)."""

    def __call__(self, config: OdistConfig) -> Teacher:
        return BrightTeacher(config.classes)


# -- markers ----------------------------------------------------------------------------------------

# Tests that start Ray, a subprocess or a live stream: `pytest -m "not integration"` leaves them out.
INTEGRATION_MODULES = {"bench/test_bench_scripts.py", "distill/test_resume.py", "fleet/test_cluster.py",
                       "fleet/test_driver.py", "fleet/test_local_ray.py", "fleet/test_teacher_pool.py",
                       "live/test_student.py",
                       "live/test_supervisor.py", "test_cli_live.py", "video/test_live.py", "video/test_rtsp.py"}
INTEGRATION_TESTS = {"test_console_script_prints_one_error_line", "test_ray_job_script",
                     "test_page_renders_in_headless_chromium"}
INTEGRATION_FIXTURES = {"camera", "publishers", "local_cluster"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = os.path.dirname(__file__)
    for item in items:
        module = os.path.relpath(str(item.path), tests).replace(os.sep, "/")
        if (module in INTEGRATION_MODULES or item.originalname in INTEGRATION_TESTS
                or INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.integration)
