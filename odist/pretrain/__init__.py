"""Offline pretraining: a generic student distilled from many streams' teacher labels (``odist pretrain``).

Sources are a manifest (its rows' replay labels, or the configured teacher on sampled frames) and earlier
runs (the teacher labels their keyframes kept, so that work is never paid for twice). The result is a
student checkpoint ``odist distill --init`` and ``odist run --init`` start from.
"""

from odist.pretrain.trainer import PretrainOptions, pretrain

__all__ = ["PretrainOptions", "pretrain"]
