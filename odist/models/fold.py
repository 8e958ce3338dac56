"""BatchNorm folded into the convolutions before it, for inference with running statistics.

In eval mode a BatchNorm with running statistics is a per-channel affine map. Where it directly follows a
convolution (JITNet's conv-BN-ReLU stems and head, and the 3x3 -> 1x3 -> 3x1 chain inside every residual
unit) that map folds into the convolution's weights and bias, so the layer costs nothing. The pre-activation
BatchNorm at the start of each unit sees a residual sum (or a concatenation) that other layers also read,
so it stays: as an eval-mode BatchNorm it is one elementwise pass, with no statistics to compute.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_batchnorm", "has_running_stats"]


def has_running_stats(model: nn.Module) -> bool:
    """Whether every BatchNorm of ``model`` keeps running statistics (so eval mode can fold them)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    return bool(norms) and all(m.track_running_stats for m in norms)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every BatchNorm that directly follows a convolution (in an
    ``nn.Sequential``, or inside a JITNet residual unit) folded into that convolution.

    The copy computes what ``model.eval()`` computes, to float rounding; ``model`` is left as it was.
    Raises ``ValueError`` when ``model``'s BatchNorms keep no running statistics (nothing to fold).
    """
    if not has_running_stats(model):
        raise ValueError("fold_batchnorm needs BatchNorms with running statistics "
                         "(a JITNet built with batch_stats_at_inference=False)")
    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        _fold_into(folded)
    for parameter in folded.parameters():
        parameter.requires_grad_(False)
    return folded


def _fold_into(module: nn.Module) -> None:
    for child in module.children():
        _fold_into(child)
    if isinstance(module, nn.Sequential):
        for i in range(len(module) - 1):
            if isinstance(module[i], nn.Conv2d) and _is_norm(module[i + 1]):
                module[i] = fuse_conv_bn_eval(module[i], module[i + 1])
                module[i + 1] = nn.Identity()
    _fold_unit(module)


def _fold_unit(unit: nn.Module) -> None:
    """A residual unit's chain: ``conv3x3`` -> ``conv1x3`` = (BN, ReLU, conv) -> ``conv3x1`` = (BN, ReLU, conv)."""
    conv3x3, conv1x3, conv3x1 = (getattr(unit, name, None) for name in ("conv3x3", "conv1x3", "conv3x1"))
    if not (isinstance(conv3x3, nn.Conv2d) and isinstance(conv1x3, nn.Sequential)
            and isinstance(conv3x1, nn.Sequential)):
        return
    if _is_norm(conv1x3[0]):
        unit.conv3x3 = fuse_conv_bn_eval(conv3x3, conv1x3[0])
        conv1x3[0] = nn.Identity()
    if isinstance(conv1x3[-1], nn.Conv2d) and _is_norm(conv3x1[0]):
        conv1x3[-1] = fuse_conv_bn_eval(conv1x3[-1], conv3x1[0])
        conv3x1[0] = nn.Identity()


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.BatchNorm2d) and module.track_running_stats and not module.training


class FoldedForward:
    """Inference through a folded copy of ``model``, refolded whenever ``model``'s weights or statistics
    changed since (an update, a loaded state: every in-place change bumps a tensor's version counter)."""

    def __init__(self, model: nn.Module, channels_last: bool = False) -> None:
        self.model, self.channels_last = model, channels_last
        self._folded: nn.Module | None = None
        self._stamp: tuple[int, ...] = ()
        self.folds = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        stamp = self._versions()
        if self._folded is None or stamp != self._stamp:
            self._folded = fold_batchnorm(self.model)
            if self.channels_last:
                self._folded.to(memory_format=torch.channels_last)
            self._stamp = stamp
            self.folds += 1
        return self._folded(x)

    def _versions(self) -> tuple[int, ...]:
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return (len(tensors), *(t._version for t in tensors), *(id(t) for t in tensors))
