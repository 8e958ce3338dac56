"""A teacher on ONNX Runtime: any segmenter or instance detector exported to ONNX (``--teacher onnx:PATH``).

The model's contract is ``onnx_contract``; its class names and how they become stream classes,
``onnx_classes``. ``PATH`` is a local file or ``file://`` URI; ``onnx:PATH:provider=cpu|cuda,threads=N``
picks the execution provider (default: CUDA when the device is a GPU and ONNX Runtime has it, else the CPU)
and the intra-op threads (default: torch's). Semantic models with a batch axis label ``teacher.batch_size``
frames per run (or their fixed batch); instance models, and models with a fixed batch of 1 or a 3-D input
(torchvision's Mask R-CNN export), run frame by frame.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from odist.config import TeacherConfig
from odist.errors import ConfigError, TeacherError
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.models.teachers.onnx_classes import class_lookup, model_class_names
from odist.models.teachers.onnx_contract import (
    CONTRACT,
    ModelLayout,
    instance_outputs,
    read_layout,
    semantic_classes,
)
from odist.models.teachers.postprocess import detections_to_labels
from odist.models.teachers.registry import TEACHERS
from odist.storage.location import parse_location
from odist.video.frame import Frame

logger = logging.getLogger("odist.teachers.onnx")
OPTIONS = ("provider", "threads")
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
SPEC_FIX = "write --teacher onnx:MODEL.onnx or onnx:MODEL.onnx:provider=cpu|cuda,threads=N"


class OnnxTeacher(Teacher):
    """Labels frames with an ONNX model through ONNX Runtime (semantic or instance outputs).

    ``seconds`` is the measured wall time; an ONNX graph's FLOPs are not counted, so each frame is charged
    ``teacher.charged_gflops`` (set it to the model's).
    """

    name = "onnx"

    def __init__(self, path: str, config: TeacherConfig, class_names: Sequence[str], device: str = "cpu",
                 provider: str | None = None, threads: int | None = None) -> None:
        super().__init__(class_names)
        self.config = config
        self.path = _local_path(path)
        self.source = f"ONNX model {self.path}"
        self.session = _session(self.path, _providers(provider, device), threads)
        self.layout: ModelLayout = read_layout(self.session, self.source)
        metadata = self.session.get_modelmeta().custom_metadata_map
        names = model_class_names(metadata, config.onnx_classes, self.source)
        channels = self.layout.channels if self.layout.kind == "semantic" else None
        self.lookup = class_lookup(names, channels, config.class_groups, class_names, self.source)

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def seconds_device(self) -> str:
        return "cuda" if self.providers[:1] == [PROVIDERS["cuda"]] else "cpu"

    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        """Label ``frames`` in runs of up to ``teacher.batch_size`` (one per run for unbatched models)."""
        start = time.perf_counter()
        labels: list[Labels] = []
        for batch in _chunks(frames, self._run_size()):
            labels.extend(self._label_batch(batch))
        seconds = time.perf_counter() - start
        return TeacherResult(labels=labels, seconds=seconds, gflops=self.config.charged_gflops * len(frames))

    def gflops_per_frame(self, height: int, width: int) -> float:
        return self.config.charged_gflops

    def _run_size(self) -> int:
        """Frames per run: an instance model's outputs are one image's detections, so it runs frame by frame."""
        if self.layout.kind == "instance" or not self.layout.batched or self.layout.batch == 1:
            return 1
        return self.layout.batch or self.config.batch_size

    def _label_batch(self, frames: Sequence[Frame]) -> list[Labels]:
        sizes = {(f.height, f.width) for f in frames}
        if len(sizes) != 1:
            return [label for frame in frames for label in self._label_batch([frame])]
        size = sizes.pop()
        input_size = self.layout.size or size
        images = np.stack([_image(frame, input_size, self.layout.input_dtype) for frame in frames])
        fixed = self.layout.batch
        if fixed is not None and fixed > len(frames):  # a fixed batch: pad with the last frame
            images = np.concatenate([images, np.repeat(images[-1:], fixed - len(frames), axis=0)])
        feed = images if self.layout.batched else images[0]
        try:
            values = self.session.run(None, {self.layout.input_name: feed})
        except Exception as exc:  # onnxruntime raises its own exception types
            raise TeacherError(f"{self.source} failed on frames {[f.index for f in frames]}: "
                               f"{str(exc).splitlines()[0]}", CONTRACT) from None
        named = dict(zip([o.name for o in self.session.get_outputs()], values, strict=True))
        if self.layout.kind == "semantic":
            return self._semantic(named[self.layout.outputs["logits"]][: len(frames)], size)
        outputs = {role: named[name] for role, name in self.layout.outputs.items()}
        return [self._instance(outputs, size, input_size)]

    def _semantic(self, logits: np.ndarray, size: tuple[int, int]) -> list[Labels]:
        if logits.ndim == 4 and logits.shape[1] != len(self.lookup):
            raise TeacherError(f"{self.source} gave {logits.shape[1]} channels, its classes name {len(self.lookup)}",
                               "give one class name per output channel")
        channels = semantic_classes(logits, size, self.source)
        return [Labels(classes=self.lookup[c]) for c in channels]

    def _instance(self, outputs: dict[str, np.ndarray], size: tuple[int, int],
                  input_size: tuple[int, int]) -> Labels:
        found = instance_outputs(outputs, size, input_size, self.source)
        ids = found["labels"]
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.lookup)):
            raise TeacherError(f"{self.source} gave class id {int(ids.max())}, but its classes name "
                               f"{len(self.lookup)} ids", "name every class id the model outputs")
        return detections_to_labels(scores=found["scores"], coco_ids=ids, boxes=found["boxes"],
                                    masks=found["masks"], lookup=self.lookup, size=size,
                                    score_threshold=self.config.score_threshold,
                                    mask_threshold=self.config.mask_threshold)


def _image(frame: Frame, size: tuple[int, int], dtype: Any) -> np.ndarray:
    """The frame as (3, H, W) at ``size``: float in [0, 1] (or uint8 in [0, 255] for a uint8 input)."""
    image = frame.image
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise TeacherError(f"frame {frame.index} image is {image.dtype} {image.shape}, expected HxWx3 uint8 RGB",
                           "decode frames as RGB uint8")
    chw = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    if tuple(chw.shape[-2:]) != size:
        chw = F.interpolate(chw[None], size=size, mode="bilinear", align_corners=False)[0].clamp_(0, 255)
    if dtype == np.uint8:
        return chw.round().to(torch.uint8).numpy()
    return (chw / 255.0).numpy().astype(dtype)


def _chunks(frames: Sequence[Frame], size: int) -> list[Sequence[Frame]]:
    return [frames[i:i + size] for i in range(0, len(frames), size)]


def _local_path(path: str) -> Path:
    location = parse_location(path)
    if not location.is_local:
        raise ConfigError(f"ONNX model {path} is not a local file", "copy the model locally and pass its path")
    resolved = Path(location.path)
    if not resolved.is_file():
        raise TeacherError(f"ONNX model {resolved} does not exist", "pass the path of an .onnx file")
    return resolved


def _providers(provider: str | None, device: str) -> list[str]:
    """ONNX Runtime providers for ``provider`` (cpu, cuda) or, without one, for ``device``."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    wanted = provider or ("cuda" if device.startswith("cuda") else "cpu")
    if wanted not in PROVIDERS:
        raise ConfigError(f"unknown ONNX Runtime provider {wanted!r}", f"choose from {', '.join(PROVIDERS)}")
    if wanted == "cuda" and PROVIDERS["cuda"] not in available:
        if provider == "cuda":
            raise TeacherError("ONNX Runtime here has no CUDA provider",
                               "pip install onnxruntime-gpu, or pass onnx:PATH:provider=cpu")
        logger.warning("ONNX Runtime here has no CUDA provider; the ONNX teacher runs on the CPU")
        wanted = "cpu"
    return [PROVIDERS["cuda"], PROVIDERS["cpu"]] if wanted == "cuda" else [PROVIDERS["cpu"]]


def _session(path: Path, providers: list[str], threads: int | None) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("the ONNX teacher needs onnxruntime, which is not installed",
                          "pip install 'odist[onnx]' (or onnxruntime-gpu for CUDA)") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    try:
        return onnxruntime.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise TeacherError(f"cannot load ONNX model {path}: {str(exc).splitlines()[0]}",
                           "pass a valid .onnx file (onnx.checker.check_model)") from None


def parse_spec(arg: str | None) -> tuple[str, dict[str, Any]]:
    """``PATH[:provider=cpu|cuda,threads=N]`` -> the path and the options."""
    if not arg:
        raise ConfigError("the ONNX teacher needs a model path", SPEC_FIX)
    path, sep, tail = arg.rpartition(":")
    if not sep or "=" not in tail:
        return arg, {}
    options: dict[str, Any] = {}
    for item in filter(None, tail.split(",")):
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or key not in OPTIONS or (key == "threads" and not value.isdigit()):
            raise ConfigError(f"invalid ONNX teacher option {item!r}", SPEC_FIX)
        options[key] = int(value) if key == "threads" else value
    return path, options


@TEACHERS.register("onnx")
def build_onnx(arg: str | None, config: TeacherConfig, class_names: Sequence[str], device: str) -> OnnxTeacher:
    """``onnx:PATH`` or ``onnx:PATH:provider=cpu|cuda,threads=N``."""
    path, options = parse_spec(arg)
    return OnnxTeacher(path, config, class_names, device, **options)
