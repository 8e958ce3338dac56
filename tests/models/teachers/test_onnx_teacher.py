"""The ONNX Runtime teacher on models the tests export: a tiny conv net (semantic logits) and torchvision
Mask R-CNN with random weights (instance outputs); its labels equal the PyTorch models' on the same frames."""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from odist.config import DEFAULT_CLASSES, TeacherConfig  # noqa: E402
from odist.errors import ConfigError, TeacherError  # noqa: E402
from odist.models.teachers import build_teacher  # noqa: E402
from odist.models.teachers.coco import COCO_NAMES, TORCHVISION_CATEGORIES  # noqa: E402
from odist.models.teachers.onnx_classes import class_lookup, model_class_names  # noqa: E402
from odist.models.teachers.onnx_teacher import OnnxTeacher, parse_spec  # noqa: E402
from odist.video.frame import Frame  # noqa: E402


class TinySegmenter(nn.Module):
    """A two-layer conv net giving ``classes`` channels of logits at the input's size."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, classes, 3, padding=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)


def export(model: nn.Module, example: tuple[torch.Tensor, ...] | list, path: Path, outputs: Sequence[str],
           dynamic: dict[str, dict[int, str]] | None = None, classes: Sequence[str] | None = None) -> Path:
    """``model`` exported through torch.onnx (TorchScript exporter) to ``path``, with ``classes`` metadata."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), example, str(path), dynamo=False, opset_version=17, input_names=["images"],
                          output_names=list(outputs), dynamic_axes=dynamic)
    if classes is not None:
        graph = onnx.load(str(path))
        graph.metadata_props.add(key="classes", value=",".join(classes))
        onnx.save(graph, str(path))
    return path


HEIGHT, WIDTH = 48, 64
# Small internal resize and few proposals keep the Mask R-CNN export and forward pass fast.
FAST = "min_size=64,max_size=96,rpn_pre_nms_top_n_test=100,rpn_post_nms_top_n_test=50,box_detections_per_img=8"
# Every COCO category maps to some stream class, so random weights still paint pixels.
ALL_GROUPS = {"person": list(COCO_NAMES[:27]), "vehicle": list(COCO_NAMES[27:54]), "bike": list(COCO_NAMES[54:])}
SEMANTIC_NAMES = ("background", "person", "car", "bicycle", "tree")  # the model's own classes


def _frames(count: int = 3, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    return [Frame(index=i, image=rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)) for i in range(count)]


def _batch(frames: list[Frame]) -> torch.Tensor:
    return torch.from_numpy(np.stack([f.image for f in frames])).permute(0, 3, 1, 2).float() / 255.0


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    """A tiny conv net over the model's own five classes, exported with a dynamic batch and class metadata."""
    torch.manual_seed(0)
    model = TinySegmenter(len(SEMANTIC_NAMES)).eval()
    path = export(model, (torch.rand(1, 3, HEIGHT, WIDTH),), tmp_path_factory.mktemp("onnx") / "segmenter.onnx",
                  ["logits"], {"images": {0: "n"}, "logits": {0: "n"}}, classes=SEMANTIC_NAMES)
    return model, path


def test_semantic_labels_equal_the_pytorch_model_mapped_through_the_class_groups(segmenter):
    model, path = segmenter
    teacher = build_teacher(f"onnx:{path}:provider=cpu,threads=1", TeacherConfig(batch_size=2), DEFAULT_CLASSES)
    frames = _frames(3)
    result = teacher.label(frames)
    with torch.no_grad():
        channels = model(_batch(frames)).argmax(dim=1).numpy()
    # background, person -> person, car -> vehicle (class_groups), bicycle -> bike (class_groups), tree -> background
    stream_class = np.array([0, 1, 2, 3, 0], dtype=np.uint8)
    assert len(result.labels) == 3 and teacher.providers == ["CPUExecutionProvider"]
    for labels, expected in zip(result.labels, channels, strict=True):
        np.testing.assert_array_equal(labels.classes, stream_class[expected])
    assert len(np.unique(channels)) == len(SEMANTIC_NAMES)  # every class was exercised
    assert result.gflops == pytest.approx(3 * TeacherConfig().charged_gflops)


def test_semantic_model_batches_in_the_teacher_pool_batcher(segmenter):
    from odist.fleet.teacher_pool.replica import FrameBatcher

    _, path = segmenter
    teacher = build_teacher(f"onnx:{path}", TeacherConfig(batch_size=4), DEFAULT_CLASSES)
    frames = _frames(4, seed=1)
    batcher = FrameBatcher(teacher, max_batch_size=4)

    async def label_all():
        return await asyncio.gather(*batcher.submit(frames))

    replies = asyncio.run(label_all())
    alone = teacher.label(frames).labels
    assert [r.batch_size for r in replies] == [4] * 4 and batcher.stats.batch_sizes == {4: 1}
    for reply, labels in zip(replies, alone, strict=True):
        np.testing.assert_array_equal(reply.labels.classes, labels.classes)


def test_a_nameless_model_with_the_streams_class_count_maps_channel_i_to_class_i(tmp_path, caplog):
    torch.manual_seed(1)
    model = TinySegmenter(len(DEFAULT_CLASSES)).eval()
    path = export(model, (torch.rand(2, 3, HEIGHT, WIDTH),), tmp_path / "plain.onnx", ["out"])  # fixed batch 2
    with caplog.at_level(logging.WARNING, logger="odist.teachers.onnx"):
        teacher = build_teacher(f"onnx:{path}", TeacherConfig(), DEFAULT_CLASSES)
    assert sum("taken as the stream's classes" in r.getMessage() for r in caplog.records) == 1
    frames = _frames(3)  # a fixed batch of 2: the last run is padded
    with torch.no_grad():
        expected = model(_batch(frames)).argmax(dim=1).numpy()
    labels = teacher.label(frames).labels
    assert [(lab.classes == exp).all() for lab, exp in zip(labels, expected, strict=True)] == [True] * 3


def _error(spec: str, config: TeacherConfig | None = None) -> str:
    with pytest.raises((TeacherError, ConfigError)) as refused:
        build_teacher(spec, config or TeacherConfig(), DEFAULT_CLASSES)
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_models_that_break_the_contract_get_one_clear_line(tmp_path):
    torch.manual_seed(2)
    nameless = export(TinySegmenter(7), (torch.rand(1, 3, HEIGHT, WIDTH),), tmp_path / "seven.onnx", ["logits"])
    assert "names no classes and its 7 channels are not the stream's 4 classes" in _error(f"onnx:{nameless}")

    class Flat(torch.nn.Module):
        def forward(self, images):
            return images.mean(dim=(2, 3))

    flat = export(Flat(), (torch.rand(1, 3, HEIGHT, WIDTH),), tmp_path / "flat.onnx", ["scores"])
    message = _error(f"onnx:{flat}")
    assert "outputs scores [1, 3]" in message and "instance outputs lack boxes, labels, masks" in message
    foreign = TeacherConfig(onnx_classes=("background", "tree", "sky", "road", "wall", "grass", "water"))
    assert "maps to the stream's classes" in _error(f"onnx:{nameless}", foreign)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    assert "cannot load ONNX model" in _error(f"onnx:{tmp_path / 'junk.onnx'}")
    assert "does not exist" in _error(f"onnx:{tmp_path / 'missing.onnx'}")
    assert "invalid ONNX teacher option" in _error(f"onnx:{nameless}:gpu=yes")


def test_the_spec_takes_a_path_and_options():
    assert parse_spec("models/seg.onnx") == ("models/seg.onnx", {})
    assert parse_spec("file:///m/seg.onnx:provider=cuda,threads=2") == ("file:///m/seg.onnx",
                                                                      {"provider": "cuda", "threads": 2})


@pytest.fixture(scope="module")
def maskrcnn(tmp_path_factory):
    """odist's Mask R-CNN teacher (random weights) and its model exported as torchvision's export layout."""
    config = TeacherConfig(weights="random", score_threshold=0.0, class_groups=ALL_GROUPS)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = build_teacher(f"maskrcnn:{FAST}", config, DEFAULT_CLASSES)
    path = export(reference.model, ([torch.rand(3, HEIGHT, WIDTH)],), tmp_path_factory.mktemp("onnx") / "mrcnn.onnx",
                  ["boxes", "labels", "scores", "masks"])
    return reference, path, config


def test_instance_labels_equal_the_pytorch_mask_rcnn(maskrcnn):
    reference, path, config = maskrcnn
    teacher = build_teacher(f"onnx:{path}", TeacherConfig(**{**config.__dict__, "onnx_classes": ("coco",)}),
                            DEFAULT_CLASSES)
    assert isinstance(teacher, OnnxTeacher) and teacher.layout.kind == "instance"
    frames = _frames(2, seed=3)
    ours, theirs = teacher.label(frames).labels, reference.label(frames).labels
    assert any(labels.classes.any() for labels in theirs)  # random weights still paint pixels
    for mine, expected in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(mine.classes, expected.classes)
        np.testing.assert_allclose(mine.boxes, expected.boxes, atol=1e-2)


def test_class_names_come_from_the_config_or_the_model_metadata():
    yolo_style = {"names": "{0: 'person', 1: 'bicycle', 2: 'car'}"}  # what Ultralytics exports write
    assert model_class_names(yolo_style, (), "m") == ["person", "bicycle", "car"]
    assert model_class_names({"classes": json.dumps(["background", "person"])}, (), "m") == ["background", "person"]
    assert model_class_names({"classes": "background,person"}, ("a", "b"), "m") == ["a", "b"]
    assert model_class_names({}, ("coco",), "m") == list(TORCHVISION_CATEGORIES)
    assert model_class_names({}, (), "m") is None
    lookup = class_lookup(["person", "bicycle", "car"], None, {"vehicle": ["car"], "bike": ["bicycle"]},
                          DEFAULT_CLASSES, "m")
    assert lookup.tolist() == [1, 3, 2]
    with pytest.raises(TeacherError, match="names no classes for the class ids it outputs"):
        class_lookup(None, None, {}, DEFAULT_CLASSES, "m")
