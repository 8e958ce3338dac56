import numpy as np
import torch

from odist.distill.loss import distillation_loss, foreground_weights


def test_weights_cover_dilated_box():
    boxes = np.array([[1, 10, 10, 20, 30]], dtype=np.float32)
    w = foreground_weights(boxes, 50, 50, weight=10.0, dilation=0.2)
    assert w[20, 15] == 10 and w[9, 15] == 10 and w[31, 15] == 10  # grown by 10% of 20 px each side
    assert w[7, 15] == 1 and w[33, 15] == 1 and w[20, 40] == 1


def test_no_boxes_means_uniform_weights():
    assert torch.all(foreground_weights(np.zeros((0, 5)), 4, 4, weight=10, dilation=0.15) == 1)


def test_weighted_loss_emphasises_weighted_pixels():
    logits = torch.zeros(1, 2, 1, 2)
    logits[0, 0, 0, 0] = 5.0  # pixel 0 confidently wrong (target 1)
    target = torch.ones(1, 1, 2, dtype=torch.long)
    uniform = distillation_loss(logits, target, torch.ones(1, 1, 2))
    heavy_on_wrong = distillation_loss(logits, target, torch.tensor([[[10.0, 1.0]]]))
    assert heavy_on_wrong > uniform
