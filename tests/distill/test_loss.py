import numpy as np
import torch

from odist.distill.loss import distillation_loss, foreground_weights, soft_iou_loss


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


def _logits_for(classes: torch.Tensor, num_classes: int, confidence: float = 20.0) -> torch.Tensor:
    """(1, C, H, W) logits that put ``confidence`` on each pixel's class in ``classes`` (H, W)."""
    return torch.nn.functional.one_hot(classes, num_classes).permute(2, 0, 1).unsqueeze(0).float() * confidence


def test_soft_iou_loss_is_zero_for_a_perfect_prediction_and_large_for_a_missed_object():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:4, 2:4] = 1
    assert soft_iou_loss(_logits_for(target[0], 3), target) < 1e-3
    wrong = torch.zeros(8, 8, dtype=torch.long)  # background everywhere: the person is missed
    loss = soft_iou_loss(_logits_for(wrong, 3), target)
    # Mean over the two present classes of 1 - (intersection + 1) / (union + 1): background 61/65, person 1/5.
    assert abs(loss.item() - (1 - (61 / 65 + 1 / 5) / 2)) < 1e-3


def test_soft_iou_loss_counts_only_classes_present_in_the_target():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    logits = _logits_for(target[0], 3)
    logits[0, 2] = 0.0  # an absent class gets some probability mass nowhere near certain
    assert soft_iou_loss(logits, target) < 1e-3


def test_soft_iou_loss_counts_a_class_painted_where_the_teacher_saw_none():
    """The keyframe test scores a falsely predicted class at IoU 0; the term pulls its probability down."""
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    painted = torch.zeros(8, 8, dtype=torch.long)
    painted[3, 3:5] = 1  # two pixels of a class the teacher did not see
    # Background (62 + 1) / (64 + 1) and the painted class (0 + 1) / (2 + 1), both counted.
    assert abs(soft_iou_loss(_logits_for(painted, 3), target).item() - (1 - (63 / 65 + 1 / 3) / 2)) < 1e-3
    logits = _logits_for(painted, 3, confidence=2.0).requires_grad_()  # unsaturated: a gradient to follow
    soft_iou_loss(logits, target).backward()
    assert (logits.grad[0, 1, 3, 3:5] > 0).all()  # gradient descent lowers the false class there


def test_soft_iou_pull_on_a_half_found_object_does_not_fade_as_the_background_grows():
    """A confident background and a 4-pixel object of which 2 pixels are found: cross-entropy's gradient on the
    2 missed pixels shrinks with the frame's area, the soft-IoU term's does not."""

    def missed_pixels_gradient(size: int, iou: bool) -> float:
        target = torch.zeros(1, size, size, dtype=torch.long)
        target[0, 10:12, 10:12] = 1
        found = torch.zeros(size, size, dtype=torch.long)
        found[10, 10:12] = 1
        logits = _logits_for(found, 2, confidence=8.0).requires_grad_()
        loss = soft_iou_loss(logits, target) if iou else distillation_loss(logits, target, torch.ones(1, size, size))
        loss.backward()
        return logits.grad[0, 1, 11, 10:12].abs().sum().item()

    ce_fade = missed_pixels_gradient(32, False) / missed_pixels_gradient(64, False)
    iou_fade = missed_pixels_gradient(32, True) / missed_pixels_gradient(64, True)
    assert ce_fade > 3.5  # 4x the pixels, ~4x less pull
    assert iou_fade < 1.2


def test_distillation_loss_without_the_iou_term_is_the_weighted_cross_entropy():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 5, 5), torch.randint(0, 3, (2, 5, 5))
    weights = torch.rand(2, 5, 5) + 0.5
    expected = (torch.nn.functional.cross_entropy(logits, target, reduction="none") * weights).sum() / weights.sum()
    assert torch.allclose(distillation_loss(logits, target, weights), expected)
    assert distillation_loss(logits, target, weights, 1.0) > expected
