"""A keyframe as a training example, and its camera-motion copy."""

import random

import numpy as np
import pytest
import torch

from odist.config import load_config
from odist.distill.learning import Example, camera_motion, make_example
from odist.models.teachers.base import Labels


def striped(height: int = 48, width: int = 64) -> Example:
    """An example whose image is the class map itself (class id x 0.5 in every channel), boxes weighted."""
    classes = np.zeros((height, width), np.uint8)
    classes[:, 16:32] = 1
    classes[10:30, 40:56] = 2
    image = torch.from_numpy(classes).float().mul(0.5).expand(1, 3, height, width).contiguous()
    boxes = np.array([[2, 40, 10, 56, 30]], np.float32)
    return make_example(image, Labels(classes, boxes), 3, load_config(environ={}).distill, torch.device("cpu"))


@pytest.mark.parametrize("seed", range(5))
def test_the_copy_moves_labels_and_weights_with_the_image(seed):
    example = striped()
    moved = camera_motion(example, 0.3, random.Random(seed))
    assert moved.image.shape == example.image.shape and moved.target.shape == example.target.shape
    assert moved.target.dtype == torch.long
    # away from the edges of each region (where bilinear and nearest resampling differ) the image still
    # shows the class of its label
    shown = (moved.image[0, 0] * 2).round().long()
    assert (shown == moved.target).float().mean() > 0.9
    assert set(moved.weights.unique().tolist()) <= set(example.weights.unique().tolist())
    heavy = moved.weights > 1
    assert heavy.any() and (moved.target[heavy] >= 0).all()


def test_a_zero_zoom_copy_is_the_example():
    example = striped()
    moved = camera_motion(example, 0.0, random.Random(0))
    torch.testing.assert_close(moved.image, example.image)
    assert torch.equal(moved.target, example.target) and torch.equal(moved.weights, example.weights)


def test_the_copy_is_a_zoom_in():
    example = striped()
    moved = camera_motion(example, 1.0, random.Random(3))
    # class 1's stripe covers a quarter of the width; zoomed in it covers more (or, pushed out, none)
    share = (moved.target == 1).float().mean().item()
    assert share == 0 or share > (example.target == 1).float().mean().item()
