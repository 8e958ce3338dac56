"""One ``odist distill`` job: the command's options, validated, then ``distill_stream`` on one stream."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from odist.config import OdistConfig, load_config
from odist.distill.stream import StreamOptions, distill_stream
from odist.errors import ConfigError
from odist.fleet.manifest import StreamSpec, clean_stream_id, stream_name
from odist.models.teachers import Teacher, build_teacher
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.run_root import check_run_root


def config_from_args(args: argparse.Namespace) -> OdistConfig:
    """The config of a command: ``--config`` file, environment, ``--set``, then ``--teacher``/``--device``."""
    overrides = list(args.overrides)
    if args.teacher is not None:
        overrides.append(f"teacher.name={args.teacher}")
    if args.device is not None:
        overrides.append(f"device={args.device}")
    config = load_config(args.config, overrides)
    for flag, value in (("--max-frames", getattr(args, "max_frames", None)),
                        ("--segment-frames", getattr(args, "segment_frames", None))):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value} is not positive", "pass a frame count >= 1")
    return config


def options_from_args(args: argparse.Namespace, init: str | None = None) -> StreamOptions:
    """The per-stream options a command's flags give."""
    return StreamOptions(evaluate=args.evaluate, max_frames=args.max_frames, init=init, width=args.width,
                         height=args.height, fps=args.fps, frames=args.frames, seed=args.seed,
                         segment_frames=args.segment_frames)


@dataclass
class DistillJob:
    """Everything one stream's distillation needs, validated before any work starts."""

    input: str
    out: str
    config: OdistConfig
    options: StreamOptions
    overwrite: bool = False
    resume: bool = False
    stream_id: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DistillJob:
        config = config_from_args(args)
        if args.overwrite and args.resume:
            raise ConfigError("--overwrite and --resume contradict each other", "pass one of them")
        return cls(args.input, args.out, config, options_from_args(args, args.init), args.overwrite, args.resume,
                   args.stream_id)

    def run(self, progress: bool = True) -> dict[str, Any]:
        """Distill the stream (or continue it with ``resume``); returns its summary."""
        spec = StreamSpec(uri=self.input, stream_id=self.stream_id or default_stream_id(self.input))
        check_run_root(open_store(self.out))
        return distill_stream(spec, self.out, self.config, self._build_teacher, self.options,
                              resume=self.resume, overwrite=self.overwrite, progress_bar=progress)

    def _build_teacher(self) -> Teacher:
        return build_teacher(self.config.teacher.name, self.config.teacher, self.config.classes, self.config.device,
                             self.config.performance)

    def describe_result(self, s: dict[str, Any]) -> str:
        """A few lines telling the user where the results went and the headline numbers."""
        lines = [f"results: {open_store(self.out).url(StreamArea.prefix_of(s['stream_id']))}"]
        accuracy = (f"mIoU {s['miou']:.3f} (foreground {s['miou_foreground']:.3f})" if s.get("evaluated")
                    else f"keyframe mIoU {s['keyframe_miou']:.3f} (run with --evaluate to score every frame)")
        lines.append(f"frames {s['frames']}, keyframes {s['keyframes']}, updates {s['updates']}, {accuracy}")
        lines.append(f"speed-up vs teacher on every frame: {_fmt(s['speedup_cost_model'])}x (paper cost model), "
                     f"{_fmt(s['speedup_measured'])}x (measured), {_fmt(s['speedup_flops'])}x (FLOPs)")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def default_stream_id(input_spec: str) -> str:
    """A stream id from the input, derived as manifests derive theirs: the scenario name or the file stem."""
    return clean_stream_id(stream_name(input_spec)) or "stream"
