"""The output contract of an ONNX teacher model, checked once when the model is loaded.

Input: one image tensor, RGB, ``(N, 3, H, W)`` or ``(3, H, W)``; float in [0, 1] (normalisation belongs in the
graph) or uint8 in [0, 255]. A fixed ``H, W`` gets frames resized to it; instance models, and any model with a
fixed batch of 1 (or a 3-D input), run frame by frame. Outputs, one of:

- **semantic**: one ``(N, C, H, W)`` tensor of class scores (logits or probabilities); the class of a pixel
  is its argmax channel (upsampled to the frame first when smaller);
- **instance**: ``boxes (K, 4)`` ``x0, y0, x1, y1`` in input pixels, ``scores (K,)``, ``labels`` or
  ``classes (K,)`` class ids and ``masks (K, 1, h, w)`` or ``(K, h, w)`` per-pixel probabilities, found by
  output name (torchvision's Mask R-CNN export layout; a leading batch axis of 1 is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from odist.errors import TeacherError

INSTANCE_ROLES: dict[str, tuple[str, ...]] = {"boxes": ("box",), "scores": ("score",),
                                               "labels": ("label", "class"), "masks": ("mask",)}
CONTRACT = ("export semantic logits (N, C, H, W), or instance outputs named boxes, scores, labels (or classes) "
            "and masks as torchvision's Mask R-CNN export does")
_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}


@dataclass(frozen=True)
class ModelLayout:
    """What an ONNX teacher model takes and gives, read from its session's inputs and outputs."""

    input_name: str
    input_dtype: Any
    batched: bool  # the input has a batch axis
    batch: int | None  # its fixed size, None when dynamic
    size: tuple[int, int] | None  # the fixed input (H, W), None when dynamic
    kind: str  # "semantic" or "instance"
    outputs: dict[str, str]  # instance role -> output name; semantic: {"logits": name}
    channels: int | None  # a semantic model's class count when fixed in the graph


def read_layout(session: Any, source: str) -> ModelLayout:
    """The layout of ``session``'s model, or a ``TeacherError`` naming how it breaks the contract."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise TeacherError(f"{source} takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}), expected "
                           "one image tensor", "export the model with a single (N, 3, H, W) image input")
    image = inputs[0]
    shape = list(image.shape)
    if len(shape) not in (3, 4) or shape[-3] != 3 or image.type not in _INPUT_TYPES:
        raise TeacherError(f"{source} input {image.name!r} is {image.type} {shape}, expected float or uint8 "
                           "(N, 3, H, W) or (3, H, W)", "export an RGB image input")
    height, width = shape[-2:]
    size = (height, width) if isinstance(height, int) and isinstance(width, int) else None
    batched = len(shape) == 4
    batch = shape[0] if batched and isinstance(shape[0], int) else None
    kind, outputs, channels = _outputs(session.get_outputs(), source)
    if kind == "instance" and batch not in (None, 1):
        raise TeacherError(f"{source} is an instance model with a fixed batch of {batch}",
                           "export instance models for one image per run (batch 1 or a (3, H, W) input)")
    return ModelLayout(image.name, _INPUT_TYPES[image.type], batched, batch, size, kind, outputs, channels)


def _outputs(outputs: list[Any], source: str) -> tuple[str, dict[str, str], int | None]:
    roles: dict[str, str] = {}
    for output in outputs:
        lowered = output.name.lower()
        for role, words in INSTANCE_ROLES.items():
            if role not in roles and any(word in lowered for word in words):
                roles[role] = output.name
                break
    if len(roles) == len(INSTANCE_ROLES):
        return "instance", roles, None
    four_d = [o for o in outputs if len(o.shape) == 4]
    if not roles and len(four_d) == 1:
        channels = four_d[0].shape[1]
        return "semantic", {"logits": four_d[0].name}, channels if isinstance(channels, int) else None
    shown = ", ".join(f"{o.name} {list(o.shape)}" for o in outputs)
    missing = [role for role in INSTANCE_ROLES if role not in roles]
    why = f"instance outputs lack {', '.join(missing)}" if roles else "no single (N, C, H, W) output"
    raise TeacherError(f"{source} outputs {shown}: {why}", CONTRACT)


def semantic_classes(logits: np.ndarray, size: tuple[int, int], source: str) -> np.ndarray:
    """(N, H, W) int64 argmax channels of ``logits`` (N, C, h, w), upsampled to ``size`` when needed."""
    if logits.ndim != 4:
        raise TeacherError(f"{source} gave semantic output of shape {list(logits.shape)}", CONTRACT)
    scores = torch.from_numpy(np.asarray(logits, dtype=np.float32))
    if tuple(scores.shape[-2:]) != size:
        scores = F.interpolate(scores, size=size, mode="bilinear", align_corners=False)
    return scores.argmax(dim=1).numpy()


def instance_outputs(named: dict[str, np.ndarray], size: tuple[int, int], input_size: tuple[int, int],
                     source: str) -> dict[str, np.ndarray]:
    """``boxes``, ``scores``, ``labels`` and ``masks`` (K, H, W) of one image, scaled from ``input_size`` to
    the frame's ``size``; a ``TeacherError`` when their shapes do not agree."""
    boxes, scores, labels, masks = (_drop_batch(named[role], rank) for role, rank in
                                    (("boxes", 2), ("scores", 1), ("labels", 1), ("masks", 3)))
    count = len(scores)
    if boxes.shape != (count, 4) or labels.shape != (count,) or masks.shape[0] != count:
        raise TeacherError(f"{source} gave boxes {list(boxes.shape)}, scores {list(scores.shape)}, labels "
                           f"{list(labels.shape)}, masks {list(masks.shape)}: not one row per detection", CONTRACT)
    masks = masks.astype(np.float32)
    if count and tuple(masks.shape[-2:]) != size:
        masks = F.interpolate(torch.from_numpy(masks)[:, None], size=size, mode="bilinear",
                              align_corners=False)[:, 0].numpy()
    scale = np.array([size[1] / input_size[1], size[0] / input_size[0]] * 2, dtype=np.float32)
    return {"boxes": boxes.astype(np.float32) * scale, "scores": scores, "labels": labels.astype(np.int64),
            "masks": masks.reshape(count, *size)}


def _drop_batch(array: np.ndarray, rank: int) -> np.ndarray:
    """``array`` without a leading batch axis of 1 (and masks without their channel axis of 1)."""
    array = np.asarray(array)
    if array.ndim == rank + 1 and array.shape[0] == 1 and rank != 3:
        array = array[0]
    if rank == 3:  # masks: (K, 1, h, w), (1, K, h, w) or (1, K, 1, h, w) -> (K, h, w)
        while array.ndim > 3 and 1 in array.shape[:2]:
            array = array[:, 0] if array.shape[1] == 1 else array[0]
    return array
