"""Per-class pixel fractions and object counts: computed right, and every record's equal those of the masks and
keyframe labels odist stored with it."""

from __future__ import annotations

import numpy as np
import pytest

import odist
from odist.distill.class_stats import class_pixels, class_regions
from odist.storage.layout import StreamArea
from odist.storage.objectstore import open_store
from odist.storage.reader import decode_masks, read_stream_table


def test_fractions_and_regions_of_a_class_map():
    classes = np.zeros((128, 128), np.uint8)  # a region must cover 1/4096 of it: 4 pixels
    classes[2:12, 2:12] = 1  # two people, one car, and a speck of a car too small to count
    classes[30:40, 30:40] = 1
    classes[50:60, 5:25] = 2
    classes[0, 127] = 2
    assert class_pixels(classes, 4) == pytest.approx([1 - 401 / 16384, 200 / 16384, 201 / 16384, 0.0])
    assert class_regions(classes, 4) == [0, 2, 1, 0]
    touching = np.zeros((128, 128), np.uint8)
    touching[10:20, 10:20] = 1
    touching[20:30, 20:30] = 1  # diagonal neighbours: one region (8-connected)
    assert class_regions(touching, 2) == [0, 1]


def test_records_carry_the_counts_of_their_stored_masks_and_keyframe_labels(tmp_path):
    out = str(tmp_path / "run")
    odist.distill("synthetic:traffic", out, overrides=["source.width=96", "source.height=64", "source.frames=20",
                                                      "student.width=0.25", "threads=1",
                                                      "distill.overlap_labels=false"])
    area = StreamArea(open_store(out), "traffic")
    records = read_stream_table(area).to_pylist()
    masks, labels = decode_masks(read_stream_table(area, "masks")), decode_masks(read_stream_table(area, "labels"))
    assert len(records) == 20 and labels
    for record in records:
        mask = masks[record["frame_index"]]
        assert record["class_pixels"] == pytest.approx(class_pixels(mask, 4))
        assert record["class_regions"] == class_regions(mask, 4)
        label = labels.get(record["frame_index"])
        if record["keyframe"]:
            assert record["teacher_class_pixels"] == pytest.approx(class_pixels(label, 4))
            assert record["teacher_class_regions"] == class_regions(label, 4)
        else:
            assert record["teacher_class_pixels"] is None and record["teacher_class_regions"] is None
