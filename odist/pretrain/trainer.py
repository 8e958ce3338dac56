"""``pretrain``: distill a generic student offline from many streams' labels, an epoch at a time, resumably.

After every epoch the checkpoint at ``out`` is rewritten atomically with the student, the optimiser and
how many epochs are done, so a killed pretrain resumes (``resume=True``) after its last whole epoch and ends
with the weights an uninterrupted one would have (every epoch's shuffle and augmentation are seeded by the
epoch). The checkpoint is an ordinary student checkpoint (``--init`` loads it) whose ``pretrain`` entry says
what it was trained on: resolution, settings, the streams and frames it saw and the teacher work behind them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from odist.config import OdistConfig
from odist.distill.learning import IMAGE_MEAN, IMAGE_STD, make_optimizer, new_student
from odist.distill.loss import distillation_loss, foreground_weights
from odist.distill.pipeline import StreamOptions, prepare_torch
from odist.errors import ConfigError, OutputError, StorageError
from odist.pretrain.augment import Augmentation
from odist.pretrain.sources import GatherOptions, LabelledFrame, SourceSeen, gather, seen_dicts
from odist.storage.checkpoint import checkpoint_bytes, parse_checkpoint, weight_digest
from odist.storage.objectstore import ObjectStore, open_store


@dataclass(frozen=True)
class PretrainOptions:
    """The pretrain's schedule and data: ``epochs`` of ``batch_size`` batches at ``lr`` (default
    ``distill.lr``), augmented unless ``augment`` is False, over every ``every``-th frame of manifest
    sources (at most ``max_frames`` per stream), decoded with ``stream``'s size, rate and seed."""

    epochs: int = 5
    batch_size: int = 8
    lr: float | None = None
    augment: bool = True
    every: int = 10
    max_frames: int | None = None
    stream: StreamOptions = field(default_factory=StreamOptions)

    def check(self) -> None:
        for name in ("epochs", "batch_size", "every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} {getattr(self, name)} is not positive", f"pass {name} >= 1")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr {self.lr} is not positive", "pass a learning rate > 0")

    def settings(self) -> dict[str, Any]:
        """What a resume must agree on (the sources' decoding included); ``epochs`` may grow."""
        stream = self.stream
        return {"batch_size": self.batch_size, "lr": self.lr, "augment": self.augment,
                "every": self.every, "max_frames": self.max_frames,
                "stream": {"width": stream.width, "height": stream.height, "fps": stream.fps,
                           "frames": stream.frames, "seed": stream.seed}}


def pretrain(sources: Sequence[str], out: str, config: OdistConfig, options: PretrainOptions | None = None, *,
             resume: bool = False, progress: bool = False, stop_after: int | None = None,
             on_stream: Callable[[SourceSeen], None] | None = None) -> dict[str, Any]:
    """Pretrain a student on ``sources`` into the checkpoint ``out`` (a path, ``file://`` or ``s3://`` URI);
    returns the checkpoint's ``pretrain`` metadata. ``stop_after`` ends after that many epochs in all (what a
    kill after that epoch leaves); ``resume`` continues a checkpoint an earlier call left."""
    options = options or PretrainOptions()
    options.check()
    prepare_torch(config)
    store, name = _split(out)
    config_dict = config.to_dict()
    sources = [str(s) for s in sources]
    previous = _previous(store, name, out, config_dict, sources, options, resume)
    if previous is not None and previous["pretrain"]["epochs_done"] >= options.epochs:
        return previous["pretrain"]  # nothing left to do (a resume may raise --epochs to train on)

    examples, seen = gather(sources, config, GatherOptions(options.every, options.max_frames, options.stream),
                            on_stream)
    data = _Tensors(examples, config)
    student = new_student(config).to(config.device)
    distill = config.distill if options.lr is None else dataclasses.replace(config.distill, lr=options.lr)
    optimizer = make_optimizer(student, distill)
    losses: list[float] = []
    if previous is not None:
        student.load_state_dict(previous["state"]["distiller"]["student"])
        optimizer.load_state_dict(previous["state"]["pretrain"]["optimizer"])
        losses = list(previous["pretrain"]["losses"])
    meta = _metadata(sources, seen, data, options, losses)
    if previous is not None:
        meta["seconds"] = previous["pretrain"].get("seconds", 0.0)
    end = options.epochs if stop_after is None else min(options.epochs, stop_after)
    bar = _bar(progress, options.epochs * data.batches(options.batch_size), len(losses) * data.batches(
        options.batch_size))
    augmentation = Augmentation() if options.augment else None
    try:
        for epoch in range(len(losses), end):
            started = time.perf_counter()
            losses.append(_epoch(student, optimizer, data, options.batch_size, augmentation, config, epoch, bar))
            meta.update(epochs_done=epoch + 1, losses=list(losses), weight_digest=weight_digest(student.state_dict()))
            meta["seconds"] = meta.get("seconds", 0.0) + time.perf_counter() - started
            state = {"distiller": {"student": student.state_dict()}, "pretrain": {"optimizer": optimizer.state_dict()}}
            store.put(name, checkpoint_bytes(state, config_dict, pretrain=meta))
    finally:
        if bar is not None:
            bar.close()
    return meta


class _Tensors:
    """The labelled frames as (N, 3, H, W) uint8 images, (N, H, W) targets and foreground loss weights, at the
    first frame's resolution (other sizes resized to it)."""

    def __init__(self, examples: list[LabelledFrame], config: OdistConfig) -> None:
        h, w = examples[0].labels.classes.shape
        self.resolution = (h, w)
        d = config.distill
        images, targets, weights = [], [], []
        for example in examples:
            image = torch.from_numpy(np.ascontiguousarray(example.image)).permute(2, 0, 1)
            target = torch.from_numpy(example.labels.classes.astype(np.int64))
            weight = foreground_weights(example.labels.boxes, *target.shape, weight=d.foreground_weight,
                                        dilation=d.box_dilation)
            if tuple(target.shape) != (h, w):
                image = F.interpolate(image[None].float(), size=(h, w), mode="bilinear",
                                      align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
                maps = F.interpolate(torch.stack([target.float(), weight])[None], size=(h, w), mode="nearest")[0]
                target, weight = maps[0].long(), maps[1]
            images.append(image)
            targets.append(target)
            weights.append(weight)
        self.images, self.targets, self.weights = torch.stack(images), torch.stack(targets), torch.stack(weights)
        self.device = torch.device(config.device)
        self.mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return self.images.shape[0]

    def batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)


def _epoch(student: torch.nn.Module, optimizer: torch.optim.Optimizer, data: _Tensors, batch_size: int,
           augmentation: Augmentation | None, config: OdistConfig, epoch: int, bar: Any) -> float:
    """One pass over the data in an order (and with augmentation) seeded by the epoch; the mean loss."""
    generator = torch.Generator().manual_seed(config.distill.seed * 1_000_003 + epoch)
    order = torch.randperm(len(data), generator=generator)
    student.train()
    total, count = 0.0, 0
    for start in range(0, len(data), batch_size):
        pick = order[start:start + batch_size]
        images, targets, weights = data.images[pick].float().div_(255), data.targets[pick], data.weights[pick]
        if augmentation is not None:
            images, targets, weights = augmentation(images, targets, weights, generator)
        images = ((images - data.mean) / data.std).to(data.device)
        targets, weights = targets.to(data.device), weights.to(data.device)
        logits = _logits(student, images, config.student.input_scale, targets.shape[-2:])
        loss = distillation_loss(logits, targets, weights, config.distill.iou_loss_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(pick)
        count += len(pick)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{total / count:.3f}", refresh=False)
    return total / count


def _logits(student: torch.nn.Module, images: torch.Tensor, scale: float, size: torch.Size) -> torch.Tensor:
    """Logits at ``size``, the student run at ``student.input_scale`` as a stream runs it."""
    if scale != 1.0:
        images = F.interpolate(images, scale_factor=scale, mode="bilinear", antialias=True, align_corners=False)
    logits = student(images)
    if logits.shape[-2:] != size:
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return logits


def _metadata(sources: list[str], seen: list[SourceSeen], data: _Tensors, options: PretrainOptions,
              losses: list[float]) -> dict[str, Any]:
    """The checkpoint's ``pretrain`` entry (epochs, losses and digest are updated every epoch)."""
    return {
        "sources": sources,
        "settings": options.settings(),
        "resolution": {"height": data.resolution[0], "width": data.resolution[1]},
        "frames": len(data),
        "streams": seen_dicts(seen),
        "teacher": {
            "frames": sum(s.teacher_frames for s in seen),
            "seconds": sum(s.teacher_seconds for s in seen),
            "gflops": sum(s.teacher_gflops for s in seen),
            "reused_frames": sum(s.reused_teacher_frames for s in seen),
            "reused_seconds": sum(s.reused_teacher_seconds for s in seen),
        },
        "epochs": options.epochs,
        "epochs_done": len(losses),
        "losses": list(losses),
    }


def _split(out: str) -> tuple[ObjectStore, str]:
    parent, _, name = str(out).rstrip("/").rpartition("/")
    if not name:
        raise ConfigError(f"--out {out!r} names no file", "pass a checkpoint path such as pretrained.pt")
    return open_store(parent or "."), name


def _previous(store: ObjectStore, name: str, out: str, config_dict: dict[str, Any], sources: list[str],
              options: PretrainOptions, resume: bool) -> dict[str, Any] | None:
    """The checkpoint a resume continues (checked to be this pretrain's), or None for a fresh start."""
    try:
        data = store.get_or_none(name)
    except StorageError as exc:
        raise OutputError(f"cannot read {out}: {exc.what}", exc.fix) from None
    if data is None:
        return None
    if not resume:
        raise OutputError(f"checkpoint {out} already exists", "pass --resume to continue it, or another --out")
    payload = parse_checkpoint(data, out, config_dict)
    before = payload.get("pretrain")
    if not isinstance(before, dict) or "epochs_done" not in before:
        raise OutputError(f"{out} is a stream's checkpoint, not a pretrain's", "pass another --out")
    fix = "resume with the same sources and options, or write another --out"
    if before.get("sources") != sources:
        raise OutputError(f"{out} was pretrained on {before.get('sources')}, this call gives {sources}", fix)
    settings, now = before.get("settings") or {}, options.settings()
    for key, value in now.items():
        if settings.get(key) != value:
            raise OutputError(f"{out} was pretrained with {key} {settings.get(key)!r}, this call gives {value!r}", fix)
    return payload


def _bar(enabled: bool, total: int, initial: int) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="pretrain", unit="batch", dynamic_ncols=True)

