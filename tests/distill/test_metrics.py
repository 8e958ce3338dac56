import math

import numpy as np

from odist.distill.metrics import ConfusionMeter, class_iou, confusion, mean_iou, min_class_iou


def test_confusion_counts_rows_target_columns_prediction():
    target = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 1, 1, 1]])
    m = confusion(pred, target, 3)
    assert m.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]


def test_iou_per_class_and_absent_class_is_nan():
    m = confusion(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]), 3)
    ious = class_iou(m)
    assert ious[0] == 0.5 and math.isclose(ious[1], 2 / 3) and math.isnan(ious[2])
    assert math.isclose(mean_iou(m), (0.5 + 2 / 3) / 2)
    assert math.isclose(mean_iou(m, include_background=False), 2 / 3)
    assert min_class_iou(m) == 0.5


def test_missed_class_gives_zero_min_iou():
    m = confusion(np.zeros(4, int), np.array([0, 0, 0, 2]), 3)
    assert min_class_iou(m) == 0.0


def test_min_pixels_leaves_out_slivers_but_not_large_false_positives():
    target = np.zeros(100, int)
    target[:3] = 1  # a 3-pixel person the student misses
    assert min_class_iou(confusion(np.zeros(100, int), target, 3)) == 0.0
    assert min_class_iou(confusion(np.zeros(100, int), target, 3), min_pixels=5) == 0.97  # background only
    pred = np.zeros(100, int)
    pred[50:60] = 2  # ten pixels of a class the reference does not have
    assert min_class_iou(confusion(pred, np.zeros(100, int), 3), min_pixels=5) == 0.0


def test_meter_accumulates_over_frames_not_mean_of_frames():
    meter = ConfusionMeter(2)
    meter.add(confusion(np.array([1]), np.array([1]), 2))
    meter.add(confusion(np.array([0, 0, 0]), np.array([1, 1, 1]), 2))
    assert math.isclose(class_iou(meter.matrix)[1], 0.25)


def test_mean_covers_classes_in_the_reference_only():
    # class 2 never occurs in the target: its false positives cost class 0, but it is not averaged.
    m = confusion(np.array([0, 2, 1, 1]), np.array([0, 0, 1, 1]), 3)
    assert class_iou(m)[2] == 0.0
    assert math.isclose(mean_iou(m), (0.5 + 1.0) / 2)
    assert math.isnan(mean_iou(confusion(np.array([0]), np.array([0]), 2), include_background=False))


def test_confusion_takes_read_only_arrays_without_a_warning():
    import warnings

    target = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    target.setflags(write=False)  # as labels arrive from Ray's object store
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        matrix = confusion(target, target, 4)
    assert np.array_equal(matrix, np.eye(4, dtype=np.int64))
