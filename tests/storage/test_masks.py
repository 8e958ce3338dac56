import numpy as np
import pytest

from odist.storage.masks import decode_mask, encode_mask


def test_round_trip_and_compact():
    mask = np.zeros((90, 160), np.uint8)
    mask[20:40, 30:60] = 2
    mask[50:80, 100:110] = 1
    data = encode_mask(mask)
    assert np.array_equal(decode_mask(data, 90, 160), mask)
    assert len(data) * 20 < mask.size


def test_rejects_non_uint8():
    with pytest.raises(ValueError):
        encode_mask(np.zeros((4, 4), np.int64))
