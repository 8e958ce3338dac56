"""JITNet, the compact student (Mullapudi et al., ICCV 2019; the authors' ``res_seg.py``).

Stem of two stride-2 3x3 convs; an encoder of three blocks each ending in a stride-2 unit
(total stride 32); a decoder of three blocks, each followed by a bilinear upsample and a concatenation
with the matching encoder skip; a head of two 3x3 convs at half resolution, a bilinear resize to full resolution and 1x1
logits. A unit is a pre-activation residual block: 3x3 (strided), then 1x3, then 3x1.

With ``fine_skips`` the head also sees the stem's features: the half-resolution stem output and a
1x1 projection of the quarter-resolution one are concatenated to the upsampled decoder output, so
object boundaries are drawn from 2x-subsampled features rather than the decoder's 8x-subsampled ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["jitnet"]

STEM_CHANNELS = (16, 64)
ENCODER_CHANNELS = (128, 128, 256)
DECODER_CHANNELS = (256, 128, 64)
HEAD_CHANNELS = (64, 16)
QUARTER_SKIP_CHANNELS = 16


def _norm(channels: int, track_running_stats: bool) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, track_running_stats=track_running_stats)


class _Unit(nn.Module):
    """Pre-activation residual unit: BN-ReLU-3x3(stride), BN-ReLU-1x3, BN-ReLU-3x1, plus shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, track: bool) -> None:
        super().__init__()
        self.pre = nn.Sequential(_norm(cin, track), nn.ReLU(inplace=True))
        self.conv3x3 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.conv1x3 = nn.Sequential(
            _norm(cout, track), nn.ReLU(inplace=True), nn.Conv2d(cout, cout, (1, 3), padding=(0, 1), bias=False)
        )
        self.conv3x1 = nn.Sequential(
            _norm(cout, track), nn.ReLU(inplace=True), nn.Conv2d(cout, cout, (3, 1), padding=(1, 0), bias=False)
        )
        needs_projection = stride != 1 or cin != cout
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=False) if needs_projection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.pre(x)
        residual = self.conv3x1(self.conv1x3(self.conv3x3(activated)))
        skip = x if self.shortcut is None else self.shortcut(activated)
        return residual + skip


def _block(cin: int, cout: int, units: int, last_stride: int, track: bool) -> nn.Sequential:
    layers = [_Unit(cin if i == 0 else cout, cout, 1, track) for i in range(units - 1)]
    layers.append(_Unit(cin if units == 1 else cout, cout, last_stride, track))
    return nn.Sequential(*layers)


def _conv_bn_relu(cin: int, cout: int, stride: int, track: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), _norm(cout, track), nn.ReLU(inplace=True)
    )


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class JITNet(nn.Module):
    """The student network; build it with :func:`jitnet`."""

    def __init__(self, num_classes: int, width: float, units: int, track_running_stats: bool,
                 fine_skips: bool = False) -> None:
        super().__init__()

        def ch(c: int) -> int:
            return max(4, round(c * width))

        stem, enc, dec, head = ([ch(c) for c in group] for group in
                                (STEM_CHANNELS, ENCODER_CHANNELS, DECODER_CHANNELS, HEAD_CHANNELS))
        t = track_running_stats
        self.stem1 = _conv_bn_relu(3, stem[0], 2, t)
        self.stem2 = _conv_bn_relu(stem[0], stem[1], 2, t)
        self.enc1 = _block(stem[1], enc[0], units, 2, t)
        self.enc2 = _block(enc[0], enc[1], units, 2, t)
        self.enc3 = _block(enc[1], enc[2], units, 2, t)
        self.dec1 = _block(enc[2], dec[0], units, 1, t)
        self.dec2 = _block(dec[0] + enc[1], dec[1], units, 1, t)
        self.dec3 = _block(dec[1] + enc[0], dec[2], units, 1, t)
        self.fine_skips = fine_skips
        head_in = dec[2]
        if fine_skips:
            quarter_skip = ch(QUARTER_SKIP_CHANNELS)
            self.quarter_skip = nn.Sequential(
                nn.Conv2d(stem[1], quarter_skip, 1, bias=False), _norm(quarter_skip, t), nn.ReLU(inplace=True))
            head_in += quarter_skip + stem[0]
        self.head = nn.Sequential(_conv_bn_relu(head_in, head[0], 1, t), _conv_bn_relu(head[0], head[1], 1, t))
        self.logits = nn.Conv2d(head[1], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, 3, H, W) normalised images -> (B, num_classes, H, W) logits."""
        half = self.stem1(x)
        quarter = self.stem2(half)
        e1 = self.enc1(quarter)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        d = self.dec1(e3)
        d = self.dec2(torch.cat([_up(d, e2), e2], 1))
        d = self.dec3(torch.cat([_up(d, e1), e1], 1))
        d = _up(d, half)
        if self.fine_skips:
            d = torch.cat([d, _up(self.quarter_skip(quarter), half), half], 1)
        d = self.head(d)
        d = F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.logits(d)


def jitnet(num_classes: int, width: float = 1.0, units: int = 1, batch_stats_at_inference: bool = True,
           fine_skips: bool = False, momentum: float = 0.1) -> JITNet:
    """Build a JITNet with ``num_classes`` outputs (background included).

    ``width`` scales every layer's channels; ``units`` is residual units per block.
    ``batch_stats_at_inference`` makes BatchNorm always normalise with the current frame's
    statistics (no running averages), so training on one keyframe and inferring agree.
    Without it, running statistics move by ``momentum`` per training forward (1.0: they are the last
    training batch's, e.g. the last keyframe's) and inference uses them (foldable, see ``odist.models.fold``).
    ``fine_skips`` feeds the stem's half- and quarter-resolution features to the head (sharper edges).
    """
    if num_classes < 2:
        raise ValueError("JITNet needs at least two classes (background and one more)")
    if not 0.0 < momentum <= 1.0:
        raise ValueError(f"JITNet's BatchNorm momentum must lie in (0, 1], got {momentum}")
    model = JITNet(num_classes, width, units, track_running_stats=not batch_stats_at_inference, fine_skips=fine_skips)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = momentum
    return model
