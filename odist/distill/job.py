"""One ``odist distill`` job: config + source + teacher + distiller + output folder, wired together."""

from __future__ import annotations

import argparse
import platform
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from odist import __version__
from odist.config import OdistConfig, load_config
from odist.distill.distiller import OnlineDistiller
from odist.distill.runner import Progress, StreamRunner
from odist.errors import ConfigError, OdistError, OutputError
from odist.models.teachers import build_teacher
from odist.storage.checkpoint import checkpoint_bytes, load_checkpoint, parse_checkpoint
from odist.storage.layout import StreamArea, dumps
from odist.storage.objectstore import open_store
from odist.storage.segments import SegmentWriter
from odist.video.frame import Frame
from odist.video.open import open_source


@dataclass
class DistillJob:
    """Everything one stream's distillation needs, validated before any work starts."""

    input: str
    out: str
    config: OdistConfig
    evaluate: bool = False
    max_frames: int | None = None
    init: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frames: int | None = None
    seed: int = 0
    overwrite: bool = False
    resume: bool = False
    stream_id: str | None = None
    segment_frames: int = 256

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DistillJob:
        overrides = list(args.overrides)
        if args.teacher is not None:
            overrides.append(f"teacher.name={args.teacher}")
        if args.device is not None:
            overrides.append(f"device={args.device}")
        config = load_config(args.config, overrides)
        if args.max_frames is not None and args.max_frames < 1:
            raise ConfigError(f"--max-frames {args.max_frames} is not positive", "pass a frame count >= 1")
        if args.overwrite and args.resume:
            raise ConfigError("--overwrite and --resume contradict each other", "pass one of them")
        return cls(args.input, args.out, config, args.evaluate, args.max_frames, args.init, args.width,
                   args.height, args.fps, args.frames, args.seed, args.overwrite, args.resume, args.stream_id,
                   args.segment_frames)

    def run(self, progress: bool = True) -> dict[str, Any]:
        """Distill the stream (or continue it with ``resume``); returns its summary."""
        _check_device(self.config.device)
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        source = open_source(self.input, seed=self.seed, width=self.width, height=self.height,
                             frames=self.frames, fps=self.fps)
        area = StreamArea(open_store(self.out), self.stream_id or default_stream_id(self.input))
        if self._already_done(area):
            return area.summary()
        teacher = build_teacher(self.config.teacher.name, self.config.teacher, self.config.classes,
                                self.config.device)
        distiller = OnlineDistiller(self.config, teacher)
        runner = StreamRunner(distiller, _NoSink(), evaluator=teacher if self.evaluate else None)
        start = self._restore(area, distiller, runner)
        if not area.store.exists("run.json"):
            area.store.put("run.json", dumps(_run_manifest()))
        area.store.put(area.key("stream.json"), dumps(self._manifest(source)))
        writer = SegmentWriter(area, lambda next_frame: self._checkpoint(distiller, runner, next_frame),
                               segment_frames=self.segment_frames)
        runner.sink = writer
        total = _total_frames(source, self.max_frames)
        try:
            with _progress_bar(total, progress, f"{area.stream_id}") as show:
                runner.run(_frames(source, start, self.max_frames), total, show)
            summary = runner.summary(self.config.classes)
            summary.update(stream_id=area.stream_id, input=self.input, teacher=self.config.teacher.name,
                           mask_compression=writer.raw_mask_bytes / max(writer.mask_bytes, 1))
            writer.flush()
            summary["checkpoint"] = area.store.url(area.last_commit().checkpoint)
            writer.finish(summary)
        except OdistError as exc:
            area.fail(str(exc))
            raise
        return summary

    def _already_done(self, area: StreamArea) -> bool:
        """Apply --overwrite / --resume to what the stream already has; True when nothing is left to do."""
        has_results = area.last_commit() is not None or area.summary() is not None or area.failure() is not None
        if self.overwrite:
            area.reset()
            return False
        if has_results and not self.resume:
            raise OutputError(f"stream {area.stream_id} in {area.store.uri} already has results",
                              "pass --resume to continue it, --overwrite to start over, or another --out")
        return self.resume and area.summary() is not None

    def _restore(self, area: StreamArea, distiller: OnlineDistiller, runner: StreamRunner) -> int:
        """Load the warm start or the last committed state; returns the first frame index to process."""
        config_dict = self.config.to_dict()
        last = area.last_commit() if self.resume else None
        area.sweep_uncommitted()
        if last is not None:
            payload = parse_checkpoint(area.store.get(last.checkpoint), area.store.url(last.checkpoint), config_dict)
            distiller.load_state_dict(payload["state"]["distiller"])
            runner.load_state_dict(payload["state"]["runner"])
            area.store.delete(area.key("failed.json"))
            return last.next_frame_index
        if self.init:
            distiller.load_state_dict(load_checkpoint(self.init, config_dict)["state"]["distiller"], weights_only=True)
        return 0

    def _checkpoint(self, distiller: OnlineDistiller, runner: StreamRunner, next_frame: int) -> bytes:
        state = {"distiller": distiller.state_dict(), "runner": runner.state_dict()}
        return checkpoint_bytes(state, self.config.to_dict(), next_frame_index=next_frame)

    def _manifest(self, source: Any) -> dict[str, Any]:
        """The stream's manifest: its input, options and full config (rewritten on every attempt)."""
        return {
            **_run_manifest(),
            "input": self.input,
            "source": {"name": getattr(source, "name", self.input), "width": getattr(source, "width", None),
                       "height": getattr(source, "height", None), "fps": getattr(source, "fps", None)},
            "evaluate": self.evaluate,
            "max_frames": self.max_frames,
            "init": self.init,
            "config": self.config.to_dict(),
        }

    def describe_result(self, s: dict[str, Any]) -> str:
        """A few lines telling the user where the results went and the headline numbers."""
        lines = [f"results: {open_store(self.out).url(StreamArea.prefix_of(s['stream_id']))}"]
        accuracy = (f"mIoU {s['miou']:.3f} (foreground {s['miou_foreground']:.3f})" if s.get("evaluated")
                    else f"keyframe mIoU {s['keyframe_miou']:.3f} (run with --evaluate to score every frame)")
        lines.append(f"frames {s['frames']}, keyframes {s['keyframes']}, updates {s['updates']}, {accuracy}")
        lines.append(f"speed-up vs teacher on every frame: {_fmt(s['speedup_cost_model'])}x (paper cost model), "
                     f"{_fmt(s['speedup_measured'])}x (measured), {_fmt(s['speedup_flops'])}x (FLOPs)")
        return "\n".join(lines)


def _run_manifest() -> dict[str, Any]:
    return {"odist_version": __version__, "torch_version": torch.__version__,
            "python": platform.python_version(), "created_unix": time.time()}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device} requested but this torch sees no CUDA GPU", "use --device cpu")


def _total_frames(source: Any, max_frames: int | None) -> int | None:
    total = getattr(source, "num_frames", None)
    if max_frames is not None:
        return min(total, max_frames) if total else max_frames
    return total


def _frames(source: Any, start: int, max_frames: int | None) -> Iterator[Frame]:
    """Frames ``start`` .. ``max_frames - 1`` of the source (random access where the source has it)."""
    stop = max_frames if max_frames is not None else None
    if start > 0 and hasattr(source, "frame"):
        end = len(source) if stop is None else min(stop, len(source))
        yield from (source.frame(i) for i in range(start, end))
        return
    for frame in source:
        if stop is not None and frame.index >= stop:
            break
        if frame.index >= start:
            yield frame


def default_stream_id(input_spec: str) -> str:
    """A stream id from the input: the scenario name or the video file's stem."""
    name = input_spec.split(":", 1)[1] if input_spec.startswith("synthetic:") else Path(input_spec).stem
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "stream"
    return cleaned[:128]


class _NoSink:
    def add(self, record: dict[str, Any], mask: Any) -> None:
        raise AssertionError("the job sets the segment writer before running")


class _progress_bar:
    """A tqdm bar with frames/s, stride and running mIoU; a no-op when disabled."""

    def __init__(self, total: int | None, enabled: bool, label: str) -> None:
        self.total, self.enabled, self.label = total, enabled, label
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, desc=self.label, unit="frame", dynamic_ncols=True)
        return self._show

    def _show(self, p: Progress) -> None:
        self.bar.update(p.frames - self.bar.n)
        self.bar.set_postfix(stride=p.stride, keyframes=p.keyframes, mIoU=f"{p.miou:.3f}", refresh=False)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
