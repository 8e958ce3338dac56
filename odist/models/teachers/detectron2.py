"""Mask R-CNN through detectron2 (optional: detectron2 is installed from source, not from PyPI).

detectron2 COCO models predict contiguous class ids 0..79 (COCO's 80 categories in category-id
order); ``coco.CONTIGUOUS_TO_COCO_ID`` turns them into the torchvision 91-slot ids that
``coco.class_map`` and ``postprocess.detections_to_labels`` use.
"""

from __future__ import annotations

import ast
import time
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from odist.config import TeacherConfig
from odist.errors import TeacherError
from odist.models.teachers.base import Labels, Teacher, TeacherResult
from odist.models.teachers.coco import CONTIGUOUS_TO_COCO_ID, class_map
from odist.models.teachers.postprocess import detections_to_labels
from odist.models.teachers.registry import TEACHERS
from odist.video.frame import Frame

DEFAULT_CONFIG = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"
WEIGHTS_MISSING_FIX = (
    "pass --set teacher.weights=PATH (a detectron2 checkpoint for the config), teacher.weights=model_zoo to "
    "download the config's model-zoo checkpoint where reachable, or teacher.weights=random for tests"
)
_DETECTRON2_SCORE_THRESH = 0.05  # detectron2's default SCORE_THRESH_TEST


def instances_to_labels(
    instances: Any, lookup: np.ndarray, size: tuple[int, int], score_threshold: float
) -> Labels:
    """A detectron2 ``Instances`` (after ``detector_postprocess``: boolean ``pred_masks`` at ``size``)
    -> ``Labels``, mapping contiguous ``pred_classes`` 0..79 to torchvision COCO ids first."""
    contiguous = instances.pred_classes.detach().cpu().numpy().astype(np.int64)
    return detections_to_labels(
        scores=instances.scores,
        coco_ids=CONTIGUOUS_TO_COCO_ID[contiguous],
        boxes=instances.pred_boxes.tensor,
        masks=instances.pred_masks,
        lookup=lookup,
        size=size,
        score_threshold=score_threshold,
        mask_threshold=0.5,  # unused: the masks arrive binarized at teacher.mask_threshold
    )


class Detectron2Teacher(Teacher):
    """A detectron2 model-zoo Mask R-CNN (any COCO instance-segmentation config with 80 classes)."""

    name = "detectron2"

    def __init__(self, predictor: Any, config: TeacherConfig, class_names: Sequence[str]) -> None:
        super().__init__(class_names)
        self.predictor = predictor
        self.config = config
        self.lookup = class_map(config.class_groups, class_names)
        self._gflops: dict[tuple[int, int], float] = {}

    @property
    def device(self) -> torch.device:
        return torch.device(self.predictor.model.device)

    def seconds_device(self) -> str:
        return self.device.type

    def label(self, frames: Sequence[Frame]) -> TeacherResult:
        """Label ``frames`` in batches of ``config.batch_size``; ``seconds`` is the measured wall time."""
        start = time.perf_counter()
        labels: list[Labels] = []
        for begin in range(0, len(frames), self.config.batch_size):
            batch = frames[begin : begin + self.config.batch_size]
            with torch.inference_mode():  # the instances are inference tensors: read them in the same mode
                for frame, instances in zip(batch, self.detect(batch), strict=True):
                    size = (frame.height, frame.width)
                    labels.append(instances_to_labels(instances, self.lookup, size, self.config.score_threshold))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        gflops = sum(self.gflops_per_frame(frame.height, frame.width) for frame in frames)
        return TeacherResult(labels=labels, seconds=seconds, gflops=gflops)

    def detect(self, frames: Sequence[Frame]) -> list[Any]:
        """detectron2 ``Instances`` per frame, at the frame size, masks binarized at ``mask_threshold``."""
        from detectron2.modeling.postprocessing import detector_postprocess

        inputs = [self._input(frame.image) for frame in frames]
        # detector_postprocess rescales the boxes in place: it must run in inference mode, as the model did.
        with torch.inference_mode():
            raw = self.predictor.model.inference(inputs, do_postprocess=False)
            return [
                detector_postprocess(r, frame.height, frame.width, mask_threshold=self.config.mask_threshold)
                for r, frame in zip(raw, frames, strict=True)
            ]

    def gflops_per_frame(self, height: int, width: int) -> float:
        """GFLOPs (2 x MACs, ``FlopCounterMode``) of one forward pass on a random frame of this size.

        As for the torchvision teacher, the heads' share depends on how many proposals and detections
        the weights produce on noise, so the count is approximate; it is measured once per size.
        """
        key = (int(height), int(width))
        if key not in self._gflops:
            image = np.random.default_rng(0).integers(0, 256, (*key, 3), dtype=np.uint8)
            with torch.inference_mode(), FlopCounterMode(display=False) as counter:
                self.predictor.model.inference([self._input(image)], do_postprocess=False)
            self._gflops[key] = counter.get_total_flops() / 1e9
        return self._gflops[key]

    def _input(self, rgb: np.ndarray) -> dict[str, Any]:
        """What ``DefaultPredictor`` feeds the model: resized, channel order of ``INPUT.FORMAT``, float CHW."""
        image = rgb[:, :, ::-1] if self.predictor.input_format == "BGR" else rgb
        resized = self.predictor.aug.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
        return {"image": tensor, "height": rgb.shape[0], "width": rgb.shape[1]}


def _import_detectron2() -> Any:
    try:
        import detectron2
    except ImportError:
        raise TeacherError(
            "the detectron2 teacher needs detectron2, which is not installed",
            "install it from source, with torch installed: pip install --no-build-isolation "
            "'git+https://github.com/facebookresearch/detectron2.git', or use --teacher maskrcnn",
        ) from None
    return detectron2


def model_zoo_config(config_name: str) -> Path:
    """The model-zoo YAML file ``config_name`` (e.g. ``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml``)
    as installed with detectron2, found without ``detectron2.model_zoo`` (it imports ``pkg_resources``,
    which setuptools 81 and later no longer ship)."""
    path = Path(str(resources.files("detectron2").joinpath("model_zoo", "configs", *config_name.split("/"))))
    if not path.is_file():
        raise OSError(f"{config_name} is not a detectron2 model-zoo config (no {path})")
    return path


def model_zoo_checkpoint_url(config_name: str) -> str:
    """The URL of the model-zoo checkpoint trained with ``config_name``, read from the table in
    ``detectron2/model_zoo/model_zoo.py`` without importing it (it needs ``pkg_resources``)."""
    source = resources.files("detectron2").joinpath("model_zoo", "model_zoo.py").read_text()
    table: dict[str, str] = {}
    prefix = ""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id == "CONFIG_PATH_TO_URL_SUFFIX":
                table = ast.literal_eval(node.value)
            elif node.targets[0].id == "S3_PREFIX":
                prefix = ast.literal_eval(node.value)
    name = config_name.removesuffix(".yaml").removesuffix(".py")
    if not prefix or name not in table:
        raise TeacherError(f"detectron2's model zoo has no checkpoint for {config_name}", WEIGHTS_MISSING_FIX)
    return f"{prefix}{name}/{table[name]}"


def _config(config_name: str, teacher: TeacherConfig, device: str) -> Any:
    """A detectron2 CfgNode for a model-zoo config name or a local YAML file."""
    from detectron2.config import get_cfg

    cfg = get_cfg()
    try:
        path = config_name if Path(config_name).is_file() else model_zoo_config(config_name)
        cfg.merge_from_file(str(path))
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        raise TeacherError(f"cannot load detectron2 config {config_name!r}: {exc}",
                           f"pass a model-zoo name such as --teacher detectron2:{DEFAULT_CONFIG}") from None
    num_classes = cfg.MODEL.ROI_HEADS.NUM_CLASSES
    if num_classes != len(CONTIGUOUS_TO_COCO_ID) or not cfg.MODEL.MASK_ON:
        raise TeacherError(f"detectron2 config {config_name} is not an 80-class COCO instance segmentation model",
                           "use a COCO-InstanceSegmentation config")
    cfg.MODEL.WEIGHTS = _weights(teacher.weights, config_name)
    cfg.MODEL.DEVICE = device
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = min(_DETECTRON2_SCORE_THRESH, teacher.score_threshold)
    return cfg


def _weights(weights: str | None, config_name: str) -> str:
    """``cfg.MODEL.WEIGHTS`` for ``teacher.weights`` ('' = random initialisation)."""
    if weights is None:
        raise TeacherError("the detectron2 teacher needs weights", WEIGHTS_MISSING_FIX)
    if weights == "random":
        warnings.warn("the detectron2 teacher has random weights: its labels are meaningless (tests only)",
                      UserWarning, stacklevel=4)
        return ""
    if weights == "model_zoo":
        return model_zoo_checkpoint_url(config_name)
    parsed = urlparse(weights)
    if parsed.scheme in ("http", "https"):
        return weights
    path = Path(url2pathname(unquote(parsed.path))) if parsed.scheme == "file" else Path(weights).expanduser()
    if not path.is_file():
        raise TeacherError(f"detectron2 weights file {path} does not exist", WEIGHTS_MISSING_FIX)
    return str(path)


@TEACHERS.register("detectron2")
def build_detectron2(
    arg: str | None, config: TeacherConfig, class_names: Sequence[str], device: str
) -> Detectron2Teacher:
    """``detectron2`` or ``detectron2:CONFIG`` (a model-zoo config name or a local YAML file)."""
    _import_detectron2()
    from detectron2.engine import DefaultPredictor

    config_name = arg or DEFAULT_CONFIG
    cfg = _config(config_name, config, device)
    try:
        predictor = DefaultPredictor(cfg)
    except Exception as exc:  # detectron2 and iopath raise many types while loading
        raise TeacherError(f"cannot build the detectron2 teacher ({config_name}, weights {cfg.MODEL.WEIGHTS!r}): "
                           f"{type(exc).__name__}: {exc}",
                           "check that the weights belong to the config and can be read or downloaded") from None
    return Detectron2Teacher(predictor, config, class_names)
