"""The paper's teacher: torchvision Mask R-CNN R50-FPN, turned into dense class maps."""

from __future__ import annotations

import argparse
import pickle
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import WeightsEnum
from torchvision.models.detection import (
    MaskRCNN_ResNet50_FPN_V2_Weights,
    MaskRCNN_ResNet50_FPN_Weights,
    maskrcnn_resnet50_fpn,
    maskrcnn_resnet50_fpn_v2,
)
from torchvision.ops import FrozenBatchNorm2d

from odist.config import PerformanceConfig, TeacherConfig
from odist.errors import ConfigError, TeacherError
from odist.models.acceleration import autocast, resolve_amp
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.models.teachers.coco import class_map
from odist.models.teachers.postprocess import detections_to_labels
from odist.models.teachers.registry import TEACHERS
from odist.video.frame import Frame

WEIGHTS_MISSING_FIX = (
    "pass --set teacher.weights=PATH (a torchvision maskrcnn state_dict) or teacher.weights=torchvision "
    "where the download hub is reachable; use teacher.weights=random only for tests"
)
# torchvision keyword arguments that ``maskrcnn:KEY=VALUE,...`` may override (all integers).
# min_size/max_size set the internal resize (torchvision's defaults 800/1333 are the paper's setting).
MODEL_OPTIONS = (
    "min_size",
    "max_size",
    "rpn_pre_nms_top_n_test",
    "rpn_post_nms_top_n_test",
    "box_detections_per_img",
)
# torchvision drops detections below this score before they reach ``detections_to_labels``.
_TORCHVISION_BOX_SCORE_THRESH = 0.05


@dataclass(frozen=True)
class Arch:
    """One torchvision Mask R-CNN variant.

    ``frozen_bn_eps``: when set, the backbone's BatchNorm layers become ``FrozenBatchNorm2d`` with this
    eps, which is what torchvision builds when it loads pretrained weights. For v1 torchvision also sets
    eps = 0 (its COCO weights predate the eps fix); v2 keeps ordinary BatchNorm (eval mode).
    """

    builder: Callable[..., nn.Module]
    pretrained: WeightsEnum
    frozen_bn_eps: float | None = None


ARCHS: dict[str, Arch] = {
    "v1": Arch(maskrcnn_resnet50_fpn, MaskRCNN_ResNet50_FPN_Weights.DEFAULT, frozen_bn_eps=0.0),
    "v2": Arch(maskrcnn_resnet50_fpn_v2, MaskRCNN_ResNet50_FPN_V2_Weights.DEFAULT),
}


class MaskRCNNTeacher(Teacher):
    """Mask R-CNN R50-FPN (``config.arch`` v1 or v2) with weights from ``config.weights``.

    ``config.weights`` is a local state_dict (or a checkpoint dict holding it under ``"model"``), a
    ``file://`` URI, an ``http(s)://`` URL, ``"torchvision"`` for torchvision's pretrained COCO weights,
    or ``"random"`` (random initialisation: only for tests and benchmarks). ``model_options`` override
    torchvision keyword arguments listed in ``MODEL_OPTIONS``. ``label`` runs each batch of
    ``config.batch_size`` frames as one forward pass, under ``performance.teacher_amp`` autocast.
    """

    name = "maskrcnn"

    def __init__(
        self, config: TeacherConfig, class_names: Sequence[str], device: str = "cpu", **model_options: int
    ) -> None:
        super().__init__(class_names)
        self.config = config
        self.device = _check_device(device)
        self.lookup = class_map(config.class_groups, class_names)
        self.model = build_model(config, **model_options).to(self.device).eval()
        self._gflops: dict[tuple[int, int], float] = {}
        self.amp_dtype: torch.dtype | None = None

    def use_performance(self, performance: PerformanceConfig) -> None:
        """Apply ``performance.teacher_amp`` (off where the device cannot run it, logged once)."""
        self.amp_dtype = resolve_amp(performance.teacher_amp, self.device, key="performance.teacher_amp")

    def seconds_device(self) -> str:
        return self.device.type

    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        """Label ``frames`` in batches of ``config.batch_size``; ``seconds`` is the measured wall time."""
        start = time.perf_counter()
        labels: list[Labels] = []
        for batch in _batches(frames, self.config.batch_size):
            outputs = self.detect(batch)
            labels.extend(self._to_labels(out, frame) for out, frame in zip(outputs, batch, strict=True))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        gflops = sum(self.gflops_per_frame(frame.height, frame.width) for frame in frames)
        return TeacherResult(labels=labels, seconds=seconds, gflops=gflops)

    def detect(self, frames: Sequence[Frame]) -> list[dict[str, torch.Tensor]]:
        """Raw torchvision detections (``boxes``, ``labels``, ``scores``, ``masks``) for one batch."""
        images = [_to_tensor(frame, self.device) for frame in frames]
        try:
            with torch.inference_mode(), autocast(self.device, self.amp_dtype):
                return self.model(images)
        except torch.cuda.OutOfMemoryError:
            raise TeacherError(
                f"Mask R-CNN ran out of GPU memory on frames {[f.index for f in frames]}",
                f"lower teacher.batch_size (now {self.config.batch_size}) or the frame size",
            ) from None

    def gflops_per_frame(self, height: int, width: int) -> float:
        """GFLOPs of one forward pass on a ``height`` x ``width`` frame, measured once per size.

        Counted by ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs = 2 x multiply-accumulates of the
        convolutions and matrix products; RoIAlign, NMS and the resize are not counted) on a random image,
        after the model's internal resize. The box and mask heads run once per proposal and detection,
        so the count depends on how many the weights produce on that image: untrained weights on noise
        usually fill ``box_detections_per_img`` (an upper bound for the mask head), trained weights on
        noise may find few (a lower bound). At 1280x720, v1 counts about 417 GFLOPs with 1 detection and
        522 with 100 (about 1 GFLOP per detection in the mask head); v2 about 747 and 853.
        """
        key = (int(height), int(width))
        if key not in self._gflops:
            generator = torch.Generator().manual_seed(0)
            image = torch.rand(3, *key, generator=generator).to(self.device)
            with torch.inference_mode(), FlopCounterMode(display=False) as counter:
                self.model([image])
            self._gflops[key] = counter.get_total_flops() / 1e9
        return self._gflops[key]

    def _to_labels(self, output: Mapping[str, torch.Tensor], frame: Frame) -> Labels:
        return detections_to_labels(
            scores=output["scores"],
            coco_ids=output["labels"],
            boxes=output["boxes"],
            masks=output["masks"],
            lookup=self.lookup,
            size=(frame.height, frame.width),
            score_threshold=self.config.score_threshold,
            mask_threshold=self.config.mask_threshold,
        )


RANDOM_WEIGHTS_SEED = 0


def build_model(config: TeacherConfig, **model_options: int) -> nn.Module:
    """The torchvision model for ``config.arch`` with ``config.weights`` loaded (on the CPU)."""
    arch = _arch(config.arch)
    unknown = sorted(set(model_options) - set(MODEL_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown Mask R-CNN option {unknown[0]!r}", f"choose from {', '.join(MODEL_OPTIONS)}")
    if config.weights is None:
        raise TeacherError("Mask R-CNN teacher needs weights", WEIGHTS_MISSING_FIX)
    fetched = None if config.weights == "random" else _fetch_state_dict(config.weights, config.arch, arch)
    score_thresh = min(_TORCHVISION_BOX_SCORE_THRESH, config.score_threshold)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)  # random weights are the same in every process, so runs compare
        model = arch.builder(weights=None, weights_backbone=None, box_score_thresh=score_thresh, **model_options)
    if arch.frozen_bn_eps is not None:
        freeze_batchnorm(model, arch.frozen_bn_eps)
    if fetched is None:
        warnings.warn(
            "the Mask R-CNN teacher has random weights: its labels are meaningless (tests and benchmarks only)",
            UserWarning,
            stacklevel=3,
        )
    else:
        _load(model, *fetched, config.arch)
    return model


def freeze_batchnorm(model: nn.Module, eps: float) -> None:
    """Replace every ``BatchNorm2d`` in ``model`` by a ``FrozenBatchNorm2d`` with the same statistics."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                frozen = FrozenBatchNorm2d(child.num_features, eps=eps)
                for buffer in ("weight", "bias", "running_mean", "running_var"):
                    getattr(frozen, buffer).copy_(getattr(child, buffer).detach())
                setattr(parent, name, frozen)


def pretrained_url(arch: str) -> str:
    """Where torchvision's weights API fetches the COCO weights of ``arch`` (v1 or v2) from."""
    return _arch(arch).pretrained.url


def _arch(name: str) -> Arch:
    try:
        return ARCHS[name]
    except KeyError:
        raise ConfigError(f"unknown Mask R-CNN arch {name!r}", f"set teacher.arch to one of {sorted(ARCHS)}") from None


def _fetch_state_dict(weights: str, arch_name: str, arch: Arch) -> tuple[Mapping[str, Any], str]:
    """The state_dict named by ``weights`` and a description of where it came from."""
    if weights == "torchvision":
        url = arch.pretrained.url
        return _download(url, f"torchvision's pretrained Mask R-CNN {arch_name} weights"), url
    scheme = urlparse(weights).scheme
    if scheme in ("http", "https"):
        return _download(weights, weights), weights
    path = Path(url2pathname(unquote(urlparse(weights).path))) if scheme == "file" else Path(weights).expanduser()
    return _read_checkpoint(path), str(path)


def _download(url: str, what: str) -> Mapping[str, Any]:
    try:
        loaded = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False, weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise TeacherError(
            f"cannot download {what} from {url}: {exc}",
            "download the file where the hub is reachable and pass --set teacher.weights=PATH "
            "(torch caches downloads in $TORCH_HOME/hub/checkpoints)",
        ) from None
    return _state_dict(loaded, url)


def _read_checkpoint(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise TeacherError(f"Mask R-CNN weights file {path} does not exist", WEIGHTS_MISSING_FIX)
    try:
        # torchvision's reference training checkpoints also store their argparse arguments.
        with torch.serialization.safe_globals([argparse.Namespace]):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, OSError, RuntimeError, EOFError) as exc:
        raise TeacherError(
            f"cannot read Mask R-CNN weights from {path}: {exc}",
            "pass a file written by torch.save(model.state_dict(), PATH) (or a checkpoint dict holding it "
            "under 'model')",
        ) from None
    return _state_dict(loaded, str(path))


def _state_dict(loaded: Any, source: str) -> Mapping[str, Any]:
    """The tensors of a state_dict or of a checkpoint dict holding one under ``model``/``state_dict``."""
    for key in ("model", "state_dict"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
            break
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise TeacherError(f"{source} holds no state_dict", "save one with torch.save(model.state_dict(), PATH)")
    if loaded and all(k.startswith("module.") for k in loaded):  # saved from DistributedDataParallel
        loaded = {k.removeprefix("module."): v for k, v in loaded.items()}
    return loaded


def _load(model: nn.Module, state: Mapping[str, Any], source: str, arch_name: str) -> None:
    """Load ``state`` strictly, or explain how it differs from the model."""
    problem = _mismatch(model.state_dict(), state)
    if problem:
        raise TeacherError(
            f"{source} does not fit torchvision Mask R-CNN arch {arch_name}: {problem}",
            "pass a state_dict of maskrcnn_resnet50_fpn (teacher.arch=v1) or maskrcnn_resnet50_fpn_v2 "
            "(teacher.arch=v2) with 91 COCO classes, or set teacher.arch to the file's architecture",
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise TeacherError(f"{source} does not fit torchvision Mask R-CNN arch {arch_name}: {exc}",
                           "pass a state_dict saved from the same architecture") from None


def _mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> str:
    """A short description of missing, unexpected and mis-shaped entries ('' when ``given`` fits)."""
    # BatchNorm fills in a missing num_batches_tracked itself (files from older torch lack it).
    missing = [k for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in expected]
    shapes = [
        f"{k} {tuple(given[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in given and given[k].shape != v.shape
    ]
    parts = [
        f"{len(items)} {what} (e.g. {', '.join(items[:2])})"
        for what, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
        if items
    ]
    return "; ".join(parts)


def _check_device(device: str) -> torch.device:
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"invalid device {device!r}", "use 'cpu' or 'cuda[:N]'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise TeacherError(f"device {device} is not available (no CUDA GPU visible)", "use --device cpu")
    return resolved


def _to_tensor(frame: Frame, device: torch.device) -> torch.Tensor:
    """CHW float in [0, 1] on ``device`` (converted there, so only uint8 crosses the bus)."""
    image = frame.image
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise TeacherError(
            f"frame {frame.index} image is {image.dtype} {image.shape}, expected HxWx3 uint8 RGB",
            "decode frames as RGB uint8",
        )
    array = np.ascontiguousarray(image) if image.flags.writeable else np.array(image)
    return torch.from_numpy(array).to(device).permute(2, 0, 1).float().div_(255.0)


def _batches(frames: Sequence[Frame], size: int) -> Iterator[Sequence[Frame]]:
    for start in range(0, len(frames), size):
        yield frames[start : start + size]


def parse_options(arg: str | None) -> dict[str, int]:
    """``KEY=VALUE,...`` (e.g. ``min_size=480,max_size=854``) -> torchvision keyword arguments."""
    options: dict[str, int] = {}
    for item in filter(None, (arg or "").split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in MODEL_OPTIONS or not value.strip().isdigit():
            raise ConfigError(
                f"invalid Mask R-CNN option {item!r}",
                f"write --teacher maskrcnn:KEY=N[,KEY=N] with KEY one of {', '.join(MODEL_OPTIONS)}",
            )
        options[key] = int(value)
    return options


@TEACHERS.register("maskrcnn")
def build_maskrcnn(arg: str | None, config: TeacherConfig, class_names: Sequence[str], device: str) -> MaskRCNNTeacher:
    """``maskrcnn`` or ``maskrcnn:min_size=N,max_size=N,...`` (see ``MODEL_OPTIONS``)."""
    return MaskRCNNTeacher(config, class_names, device, **parse_options(arg))
