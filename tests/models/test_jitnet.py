import pytest
import torch

from odist.models.flops import count_gflops
from odist.models.jitnet import jitnet


def test_output_is_full_resolution_logits_for_any_size():
    model = jitnet(5, width=0.25)
    for h, w in [(64, 96), (72, 130)]:
        assert model(torch.randn(2, 3, h, w)).shape == (2, 5, h, w)


def test_size_matches_the_papers_analytic_count():
    full, half = jitnet(4), jitnet(4, width=0.5)
    params = sum(p.numel() for p in full.parameters()) / 1e6
    assert 2.7 < params < 3.3
    assert 0.6 < sum(p.numel() for p in half.parameters()) / 1e6 < 0.9
    macs = count_gflops(full, 720, 1280) / 2
    assert 19 < macs < 23  # ~21 GMACs at 1280x720
    assert 4.5 < count_gflops(half, 720, 1280) / 2 < 6


def test_units_and_width_knobs_change_capacity():
    base = sum(p.numel() for p in jitnet(3, width=0.5).parameters())
    deeper = sum(p.numel() for p in jitnet(3, width=0.5, units=2).parameters())
    assert deeper > base


def test_backward_flops_exceed_forward_and_mode_is_restored():
    model = jitnet(3, width=0.25).eval()
    assert count_gflops(model, 64, 64, backward=True) > 2 * count_gflops(model, 64, 64)
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_batch_stats_at_inference_means_no_running_stats():
    assert not any("running_mean" in k for k in jitnet(3, batch_stats_at_inference=True).state_dict())
    assert any("running_mean" in k for k in jitnet(3, batch_stats_at_inference=False).state_dict())


def test_rejects_single_class():
    with pytest.raises(ValueError):
        jitnet(1)
