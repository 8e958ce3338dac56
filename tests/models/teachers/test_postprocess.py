import numpy as np
import pytest
import torch

from odist.models.teachers.postprocess import detections_to_labels

H, W = 6, 8
LOOKUP = np.zeros(91, dtype=np.uint8)
LOOKUP[[1, 3]] = [1, 2]  # person -> 1, car -> 2; everything else unmapped


def _mask(y0: int, y1: int, x0: int, x1: int, value: float = 0.9) -> np.ndarray:
    m = np.zeros((H, W), dtype=np.float32)
    m[y0:y1, x0:x1] = value
    return m


def _run(scores, ids, masks, boxes=None, score_threshold=0.5, mask_threshold=0.5):
    boxes = np.zeros((len(scores), 4), dtype=np.float32) if boxes is None else boxes
    return detections_to_labels(
        scores=np.asarray(scores, dtype=np.float32),
        coco_ids=np.asarray(ids),
        boxes=np.asarray(boxes, dtype=np.float32),
        masks=np.stack(masks) if masks else np.zeros((0, H, W), np.float32),
        lookup=LOOKUP,
        size=(H, W),
        score_threshold=score_threshold,
        mask_threshold=mask_threshold,
    )


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_highest_score_wins_overlaps_whatever_the_input_order(order):
    scores, ids, masks = [0.6, 0.9], [1, 3], [_mask(0, 4, 0, 6), _mask(2, 6, 2, 8)]
    labels = _run([scores[i] for i in order], [ids[i] for i in order], [masks[i] for i in order])
    assert labels.classes.dtype == np.uint8 and labels.classes.shape == (H, W)
    assert labels.classes[3, 3] == 2  # overlap: the car (0.9) beats the person (0.6)
    assert labels.classes[0, 0] == 1 and labels.classes[5, 7] == 2 and labels.classes[5, 0] == 0


def test_low_scores_and_unmapped_categories_are_dropped():
    labels = _run([0.49, 0.99, 0.8], [1, 18, 3], [_mask(0, 2, 0, 2), _mask(2, 4, 2, 4), _mask(4, 6, 4, 6)])
    assert set(np.unique(labels.classes)) == {0, 2}
    assert labels.boxes[:, 0].tolist() == [2.0]


def test_masks_are_binarized_at_the_threshold():
    soft = _mask(0, 3, 0, 3, value=0.4) + _mask(3, 6, 3, 6, value=0.7)
    assert _run([0.9], [1], [soft], mask_threshold=0.5).classes.sum() == 9
    assert _run([0.9], [1], [soft], mask_threshold=0.3).classes.sum() == 18


def test_boxes_are_kept_detections_with_stream_class_ids_clipped_to_the_frame():
    boxes = [[1, 1, 3, 3], [-2, 0.5, 20, 5], [0, 0, 1, 1]]
    labels = _run([0.7, 0.9, 0.2], [3, 1, 1], [_mask(1, 3, 1, 3)] * 3, boxes=boxes)
    assert labels.boxes.dtype == np.float32
    np.testing.assert_allclose(labels.boxes, [[2, 1, 1, 3, 3], [1, 0, 0.5, W, 5]])


def test_torch_inputs_with_channel_dimension_match_numpy():
    masks = [_mask(0, 4, 0, 6), _mask(2, 6, 2, 8)]
    expected = _run([0.6, 0.9], [1, 3], masks)
    got = detections_to_labels(
        scores=torch.tensor([0.6, 0.9]),
        coco_ids=torch.tensor([1, 3]),
        boxes=torch.zeros(2, 4),
        masks=torch.from_numpy(np.stack(masks))[:, None],
        lookup=LOOKUP,
        size=(H, W),
        score_threshold=0.5,
        mask_threshold=0.5,
    )
    np.testing.assert_array_equal(got.classes, expected.classes)
    np.testing.assert_array_equal(got.boxes, expected.boxes)


def test_boolean_masks_are_used_as_they_are():
    labels = _run([0.9], [3], [_mask(0, 2, 0, 2) > 0])
    assert labels.classes.sum() == 4 * 2


def test_no_detections_give_background_and_no_boxes():
    labels = _run([], [], [])
    assert not labels.classes.any() and labels.boxes.shape == (0, 5)


def test_masks_must_match_the_frame_size():
    with pytest.raises(ValueError, match="frame size"):
        detections_to_labels(np.ones(1), np.ones(1), np.zeros((1, 4)), np.ones((1, 3, 3)), LOOKUP, (H, W), 0.5, 0.5)
