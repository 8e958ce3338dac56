"""The run sections of the config tree: ``fleet`` (Ray placement), ``pool`` (the shared teacher pool),
``live`` (how cameras are read and committed) and ``storage`` (how writers share a run root), so one config
file describes a whole run.

Each section validates itself; a bad value is a ``ConfigError`` naming its ``section.key`` (the CLI shows
the matching flag).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from odist.errors import check_config
from odist.storage.lease import LeaseSettings

if TYPE_CHECKING:
    from odist.config import OdistConfig


WARM_STARTS = ("none", "fleet", "fleet-average")


@dataclass
class FleetConfig:
    """Where a fleet job (``odist run``) or the cameras (``odist live``) run on Ray, and how many at once.

    ``workers`` None: as many as the cluster's GPUs / CPUs hold at ``student_gpus`` / ``student_cpus``
    each; ``student_cpus`` None: 0 with a GPU share, 1 without.
    """

    address: str | None = None
    workers: int | None = None
    max_streams_in_flight: int | None = None
    retries: int = 2
    student_gpus: float = 0.0
    student_cpus: float | None = None
    # Run odist.fleet.prewarm as the job's worker_process_setup_hook: each Ray worker imports torch and
    # odist and runs the student once as it starts, not on its first stream. Off: measured slower on a
    # local Ray (bench/fleet_throughput.py), since a job-level hook keeps Ray from using its prestarted workers.
    prewarm_workers: bool = False
    # Where a stream that starts after others finished takes its first weights from: "none" (distill.init or a
    # fresh student), "fleet" (the latest finished student of its manifest group, else the latest finished one)
    # or "fleet-average" (the mean weights of the group's latest 8 finished students).
    warm_start: str = "none"

    def validate(self) -> FleetConfig:
        check_config(self.warm_start in WARM_STARTS, "fleet.warm_start", " or ".join(WARM_STARTS))
        check_config(self.workers is None or self.workers >= 1, "fleet.workers", "a worker count >= 1")
        check_config(self.max_streams_in_flight is None or self.max_streams_in_flight >= 1,
                     "fleet.max_streams_in_flight", "a count >= 1")
        check_config(self.student_gpus >= 0 and (self.student_cpus is None or self.student_cpus >= 0),
                     "fleet.student_gpus", "non-negative shares such as 0.125 (fleet.student_cpus likewise)",
                     "fleet.student_cpus")
        check_config(self.student_gpus <= 1 or float(self.student_gpus).is_integer(), "fleet.student_gpus",
                     "a fraction <= 1 or a whole number of GPUs")
        check_config(self.retries >= 0, "fleet.retries", "0 or more")
        return self


POOL_BATCHING = ("adaptive", "window")
POOL_IMPLEMENTATIONS = ("serve", "actors")


@dataclass
class PoolConfig:
    """The shared teacher pool: sized, batched and supervised; used when ``enabled``.

    ``implementation``: ``serve`` (a Ray Serve deployment, autoscaled between ``min_replicas`` and
    ``max_replicas``) or ``actors`` (a fixed ``max(1, min_replicas)`` plain Ray actors, restarted when they
    die; no Serve router in the way, no autoscaling).
    ``batching``: ``adaptive`` sends a request to the teacher at once when nobody else is expected, and
    otherwise waits up to ``batch_wait_timeout_s`` for the callers of the last batch to come back;
    ``window`` collects every ``batch_wait_timeout_s`` window first (Serve's ``@serve.batch``).
    ``target_ongoing_requests`` (per replica) drives autoscaling; None means one full batch per replica.
    ``max_ongoing_requests`` (per replica) defaults to eight batches: at two, more waiting callers than
    that were held back in Serve's router and reached the replica in dribs, so batches stayed partial
    (1 replica, 32 clients: 58% of ideal at 16, 96% at 64; ``bench/teacher_pool_load.py --max-ongoing``).
    ``num_gpus`` is each replica's GPU share (0 on CPU clusters); with a fractional share, keep
    ``num_cpus`` at a fraction too so replicas still schedule.
    """

    enabled: bool = False
    implementation: str = "serve"
    min_replicas: int = 1
    max_replicas: int = 4
    max_batch_size: int = 8
    batch_wait_timeout_s: float = 0.05
    batching: str = "adaptive"
    target_ongoing_requests: float | None = None
    max_ongoing_requests: int | None = None
    num_gpus: float = 0.0
    num_cpus: float = 1.0
    request_timeout_s: float = 60.0
    max_retries: int = 3
    retry_backoff_s: float = 0.25
    health_check_period_s: float = 1.0
    start_timeout_s: float = 600.0
    max_constructor_retries: int = 3
    graceful_shutdown_timeout_s: float = 20.0
    upscale_delay_s: float = 5.0
    downscale_delay_s: float = 30.0
    look_back_period_s: float = 30.0

    def validate(self) -> PoolConfig:
        """Check every value (a ``ConfigError`` names the field); return self so calls chain."""
        for ok, key, expected in (
            (self.min_replicas >= 0, "min_replicas", "0 or more replicas"),
            (self.max_replicas >= max(1, self.min_replicas), "max_replicas", "at least 1 and >= min_replicas"),
            (self.max_batch_size >= 1, "max_batch_size", "a positive batch size"),
            (self.batch_wait_timeout_s >= 0, "batch_wait_timeout_s", "a non-negative wait in seconds"),
            (self.implementation in POOL_IMPLEMENTATIONS, "implementation", " or ".join(POOL_IMPLEMENTATIONS)),
            (self.batching in POOL_BATCHING, "batching", " or ".join(POOL_BATCHING)),
            (self.implementation == "serve" or self.batching == "adaptive", "batching",
             "adaptive with pool.implementation=actors (window is Serve's @serve.batch)"),
            (self.target_ongoing_requests is None or self.target_ongoing_requests > 0, "target_ongoing_requests",
             "a positive number of requests per replica"),
            (self.max_ongoing_requests is None or self.max_ongoing_requests >= self.max_batch_size,
             "max_ongoing_requests", "at least max_batch_size, or batches never fill"),
            (self.num_gpus >= 0 and self.num_cpus >= 0, "num_gpus", "non-negative GPU and CPU shares"),
            (self.request_timeout_s > 0, "request_timeout_s", "a positive timeout in seconds"),
            (self.max_retries >= 0 and self.retry_backoff_s >= 0, "max_retries",
             "a non-negative retry count and backoff"),
            (self.health_check_period_s > 0, "health_check_period_s", "a positive period in seconds"),
            (self.start_timeout_s > 0, "start_timeout_s", "a positive timeout in seconds"),
            (self.max_constructor_retries >= 1, "max_constructor_retries", "at least 1 attempt to build a replica"),
            (self.graceful_shutdown_timeout_s >= 0, "graceful_shutdown_timeout_s", "a non-negative wait in seconds"),
            (min(self.upscale_delay_s, self.downscale_delay_s) >= 0 and self.look_back_period_s > 0,
             "upscale_delay_s", "non-negative delays and a positive look-back period"),
        ):
            check_config(ok, f"pool.{key}", expected)
        return self

    def ongoing_limit(self) -> int:
        """Requests one replica accepts at once (the rest wait in the callers' handles)."""
        return self.max_ongoing_requests or 8 * self.max_batch_size

    def fixed_replicas(self) -> int:
        """How many replicas the actor pool runs (it does not autoscale)."""
        return max(1, self.min_replicas)

    def autoscaling_config(self) -> dict[str, Any]:
        """Serve's ``autoscaling_config`` for this pool."""
        target = self.target_ongoing_requests or float(self.max_batch_size)
        return {
            "min_replicas": self.min_replicas,
            "initial_replicas": max(1, self.min_replicas),
            "max_replicas": self.max_replicas,
            "target_ongoing_requests": target,
            "upscale_delay_s": self.upscale_delay_s,
            "downscale_delay_s": self.downscale_delay_s,
            "look_back_period_s": self.look_back_period_s,
        }

    def actor_options(self) -> dict[str, float]:
        """Serve's ``ray_actor_options``: each replica's device share."""
        return {"num_gpus": float(self.num_gpus), "num_cpus": float(self.num_cpus)}


@dataclass
class LiveConfig:
    """How ``odist live`` reads and commits every camera (their size and frame rate: the ``source`` section)."""

    commit_every_s: float = 30.0
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    give_up_after_s: float | None = None
    status_every_s: float = 5.0
    rtsp_transport: str = "tcp"  # how RTSP cameras carry the media: tcp (interleaved) or udp

    def validate(self) -> LiveConfig:
        check_config(self.commit_every_s > 0, "live.commit_every_s", "a positive period in seconds")
        check_config(min(self.open_timeout_s, self.read_timeout_s) > 0, "live.read_timeout_s",
                     "positive timeouts in seconds (live.open_timeout_s likewise)")
        check_config(self.give_up_after_s is None or self.give_up_after_s > 0, "live.give_up_after_s",
                     "a positive time in seconds, or null (keep reconnecting)")
        check_config(self.status_every_s > 0, "live.status_every_s", "a positive period in seconds")
        check_config(self.rtsp_transport in ("tcp", "udp"), "live.rtsp_transport", "tcp or udp")
        return self


LIVE_FPS = 10.0  # a live camera's frame rate when neither CAMERAS.yaml nor source.fps sets one


@dataclass
class LiveOptions(LiveConfig):
    """How every camera is read and committed: the ``live`` section with the ``source`` section's size and
    frame rate (``fps`` None here: each camera's own rate)."""

    width: int | None = None
    height: int | None = None
    fps: float | None = LIVE_FPS

    @classmethod
    def of(cls, config: OdistConfig) -> LiveOptions:
        """The options of ``config``'s ``live`` and ``source`` sections."""
        s = config.source
        return cls(**dataclasses.asdict(config.live), width=s.width, height=s.height, fps=s.fps or LIVE_FPS)


SEGMENT_FRAMES = 256  # an archive stream's frames per committed segment: storage.segment_frames' default

FINAL_CHECKPOINTS = ("full", "weights", "weights-fp16")


@dataclass
class StorageConfig:
    """How writers share a run root: a stream's one writer renews its lease (``odist.storage.lease``) every
    ``lease_heartbeat_s``; a lease not renewed for ``lease_ttl_s`` (its writer died) may be taken over. An
    archive stream commits every ``segment_frames`` frames or ``commit_every_s`` seconds, whichever comes first."""

    lease_ttl_s: float = 30.0
    lease_heartbeat_s: float = 5.0
    segment_frames: int = SEGMENT_FRAMES  # an archive stream's frames per committed segment
    commit_every_s: float = 60.0  # an archive stream commits at least this often, however long its segments
    # What a finished stream's last checkpoint keeps once its summary.json is written: "full" (the whole state:
    # a stopped live camera continues from it), "weights" (the student's weights: about half the size) or
    # "weights-fp16" (those in half precision: about a quarter). Warm starts and export read all three; an
    # unfinished stream's checkpoints are always full, so an interrupted stream still resumes exactly.
    final_checkpoint: str = "full"

    def validate(self) -> StorageConfig:
        check_config(self.final_checkpoint in FINAL_CHECKPOINTS, "storage.final_checkpoint",
                     f"one of {', '.join(FINAL_CHECKPOINTS)}")
        check_config(self.lease_ttl_s > 0, "storage.lease_ttl_s", "a positive number of seconds, e.g. 30")
        check_config(self.commit_every_s > 0, "storage.commit_every_s", "a positive number of seconds, e.g. 60")
        check_config(self.segment_frames >= 1, "storage.segment_frames", "a frame count >= 1, e.g. 256")
        check_config(0 < self.lease_heartbeat_s <= self.lease_ttl_s / 3, "storage.lease_heartbeat_s",
                     "a positive number of seconds, at most a third of storage.lease_ttl_s, e.g. 5")
        return self

    @property
    def crash_wait_s(self) -> float:
        """How long a retry or a restart waits for the lease of a writer that died: until it has expired."""
        return self.lease_ttl_s + self.lease_heartbeat_s

    def lease(self, wait_s: float = 0.0) -> LeaseSettings:
        """The lease settings of this section, waiting ``wait_s`` for a held lease."""
        return LeaseSettings(self.lease_ttl_s, self.lease_heartbeat_s, wait_s)
