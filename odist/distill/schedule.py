"""The paper's adaptive keyframe stride ladder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class StrideLadder:
    """Keyframe stride that climbs one rung when the student met the accuracy threshold and
    drops one rung when it did not (PAPER.md: 8, 16, 32, 64). Starts on the lowest rung.

    A one-rung ladder is a fixed stride.
    """

    strides: tuple[int, ...]
    rung: int = 0
    next_keyframe: int = 0

    @classmethod
    def from_strides(cls, strides: Sequence[int]) -> StrideLadder:
        return cls(tuple(strides))

    @property
    def stride(self) -> int:
        return self.strides[self.rung]

    def is_keyframe(self, frame_index: int) -> bool:
        return frame_index >= self.next_keyframe

    def after_keyframe(self, frame_index: int, threshold_met: bool) -> int:
        """Move one rung and schedule the next keyframe; returns the new stride."""
        if threshold_met:
            self.rung = min(self.rung + 1, len(self.strides) - 1)
        else:
            self.rung = max(self.rung - 1, 0)
        self.next_keyframe = frame_index + self.stride
        return self.stride

    def state_dict(self) -> dict[str, int | list[int]]:
        return {"strides": list(self.strides), "rung": self.rung, "next_keyframe": self.next_keyframe}

    @classmethod
    def from_state_dict(cls, state: dict) -> StrideLadder:
        return cls(tuple(state["strides"]), int(state["rung"]), int(state["next_keyframe"]))
