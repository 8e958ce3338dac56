"""A bank of student snapshots keyed by scene signature, for cameras that cycle among a few views.

After each keyframe the student's weights are filed under the keyframe's scene signature: in the entry of
the same view (signature distance within the cut threshold), or in a new one, dropping the least recently
used entry beyond ``size``. On a cut to a view the bank knows, the student continues from that view's
snapshot instead of from the view it just left. Memory is bounded by ``size`` copies of the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from odist.distill.scene import scene_distance


@dataclass(eq=False)  # entries are told apart by identity (their arrays have no single truth value)
class _Entry:
    signature: np.ndarray
    weights: dict[str, torch.Tensor]  # on the CPU
    used: int  # keyframe counter at the last store or recall


class ViewBank:
    """At most ``size`` snapshots; signatures within ``threshold`` of each other are the same view."""

    def __init__(self, size: int, threshold: float) -> None:
        self.size, self.threshold = size, threshold
        self.entries: list[_Entry] = []
        self._clock = 0

    def __len__(self) -> int:
        return len(self.entries)

    def store(self, signature: np.ndarray, student: torch.nn.Module) -> None:
        """File ``student``'s weights under ``signature`` (its view's entry, or a new one)."""
        self._clock += 1
        weights = {k: v.detach().to("cpu", copy=True) for k, v in student.state_dict().items()}
        entry = self._nearest(signature)
        if entry is not None:
            entry.signature, entry.weights, entry.used = signature, weights, self._clock
            return
        if len(self.entries) >= self.size:
            self.entries.remove(min(self.entries, key=lambda e: e.used))
        self.entries.append(_Entry(signature, weights, self._clock))

    def recall(self, signature: np.ndarray) -> dict[str, torch.Tensor] | None:
        """The snapshot of ``signature``'s view, or None when the bank has not seen it."""
        entry = self._nearest(signature)
        if entry is None:
            return None
        self._clock += 1
        entry.used = self._clock
        return entry.weights

    def _nearest(self, signature: np.ndarray) -> _Entry | None:
        if not self.entries:
            return None
        distances = [scene_distance(signature, e.signature) for e in self.entries]
        best = int(np.argmin(distances))
        return self.entries[best] if distances[best] <= self.threshold else None

    def state_dict(self) -> dict[str, Any]:
        return {"clock": self._clock,
                "entries": [{"signature": e.signature.tolist(), "weights": e.weights, "used": e.used}
                            for e in self.entries]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._clock = int(state.get("clock", 0))
        self.entries = [_Entry(np.asarray(e["signature"], np.float32), dict(e["weights"]), int(e["used"]))
                        for e in state.get("entries", [])]
