"""Exact FLOP counts of a model at a given input size."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_gflops(model: nn.Module, height: int, width: int, *, backward: bool = False) -> float:
    """GFLOPs (2 x multiply-accumulates, as torch counts them) of one forward (and backward) pass.

    Counted by ``FlopCounterMode`` on a random (1, 3, height, width) input on the model's device;
    the model's train/eval mode and its buffers (BatchNorm running statistics) are left as they were.
    """
    device = next(model.parameters()).device
    x = torch.randn(1, 3, height, width, device=device)
    was_training = model.training
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    model.train(backward)
    try:
        with FlopCounterMode(display=False) as counter:
            if backward:
                model(x).float().mean().backward()
            else:
                with torch.no_grad():
                    model(x)
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        if backward:
            model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9
