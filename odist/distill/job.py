"""One ``odist distill`` job: config + source + teacher + distiller + output folder, wired together."""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from odist import __version__
from odist.config import OdistConfig, load_config
from odist.distill.distiller import OnlineDistiller
from odist.distill.runner import Progress, StreamRunner
from odist.errors import ConfigError
from odist.models.teachers import build_teacher
from odist.storage.checkpoint import load_checkpoint, save_checkpoint
from odist.storage.results import ResultWriter
from odist.video.open import open_source


@dataclass
class DistillJob:
    """Everything one stream's distillation needs, validated before any work starts."""

    input: str
    out: Path
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
        return cls(args.input, Path(args.out), config, args.evaluate, args.max_frames, args.init, args.width,
                   args.height, args.fps, args.frames, args.seed, args.overwrite)

    def run(self, progress: bool = True) -> Path:
        """Distill the stream; returns the path of the summary written last."""
        _check_device(self.config.device)
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        source = open_source(self.input, seed=self.seed, width=self.width, height=self.height,
                             frames=self.frames, fps=self.fps)
        teacher = build_teacher(self.config.teacher.name, self.config.teacher, self.config.classes,
                                self.config.device)
        distiller = OnlineDistiller(self.config, teacher)
        if self.init:
            payload = load_checkpoint(self.init, self.config.to_dict())
            distiller.load_state_dict(payload["state"], weights_only=True)
        writer = ResultWriter(self.out, overwrite=self.overwrite)
        writer.write_run_manifest(self._manifest(source))
        runner = StreamRunner(distiller, writer, evaluator=teacher if self.evaluate else None)
        total = _total_frames(source, self.max_frames)
        frames = _limited(source, self.max_frames)
        with _progress_bar(total, progress, self.input) as show:
            runner.run(frames, total, show)
        save_checkpoint(self.out / "checkpoint.pt", distiller.state_dict(), self.config.to_dict(),
                        next_frame_index=distiller.ledger.frames)
        summary = runner.summary(self.config.classes)
        summary.update(input=self.input, teacher=self.config.teacher.name,
                       mask_compression=writer.raw_mask_bytes / max(writer.mask_bytes, 1))
        return writer.finish(summary)

    def _manifest(self, source: Any) -> dict[str, Any]:
        return {
            "odist_version": __version__,
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "created_unix": time.time(),
            "input": self.input,
            "source": {"name": getattr(source, "name", self.input), "width": getattr(source, "width", None),
                       "height": getattr(source, "height", None), "fps": getattr(source, "fps", None)},
            "evaluate": self.evaluate,
            "max_frames": self.max_frames,
            "init": self.init,
            "config": self.config.to_dict(),
        }

    @staticmethod
    def describe_result(summary_path: Path) -> str:
        """A few lines telling the user where the results went and the headline numbers."""
        import json

        s = json.loads(summary_path.read_text())
        lines = [f"results: {summary_path.parent}"]
        accuracy = (f"mIoU {s['miou']:.3f} (foreground {s['miou_foreground']:.3f})" if s.get("evaluated")
                    else f"keyframe mIoU {s['keyframe_miou']:.3f} (run with --evaluate to score every frame)")
        lines.append(f"frames {s['frames']}, keyframes {s['keyframes']}, updates {s['updates']}, {accuracy}")
        lines.append(f"speed-up vs teacher on every frame: {_fmt(s['speedup_cost_model'])}x (paper cost model), "
                     f"{_fmt(s['speedup_measured'])}x (measured), {_fmt(s['speedup_flops'])}x (FLOPs)")
        return "\n".join(lines)


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


def _limited(source: Any, max_frames: int | None):
    for count, frame in enumerate(source):
        if max_frames is not None and count >= max_frames:
            break
        yield frame


class _progress_bar:  # noqa: N801 - used as a context manager like a function
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
