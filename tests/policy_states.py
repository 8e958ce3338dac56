"""Helpers for tests that save a keyframe policy's (or a distiller's) state and load it again."""

from __future__ import annotations

import io

import torch


def serialised(state: dict) -> dict:
    """``state`` after a round trip through ``torch.save`` / ``torch.load`` (as a checkpoint stores it)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def assert_same_state(mine: dict, theirs: dict) -> None:
    """Two policy states are equal, tensors (or None in their place) compared by value."""
    assert mine.keys() == theirs.keys()
    for key, value in theirs.items():
        if isinstance(value, torch.Tensor) or isinstance(mine[key], torch.Tensor):
            assert (value is None) == (mine[key] is None) and (value is None or torch.equal(mine[key], value)), key
        else:
            assert mine[key] == value, key
