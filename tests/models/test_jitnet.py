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


def test_fine_skips_feed_the_stem_to_the_head_at_modest_cost():
    plain, fine = jitnet(4), jitnet(4, fine_skips=True)
    assert fine(torch.randn(1, 3, 72, 130)).shape == (1, 4, 72, 130)
    extra = count_gflops(fine, 720, 1280) / count_gflops(plain, 720, 1280)
    assert 1.0 < extra < 1.3
    assert any(k.startswith("quarter_skip") for k in fine.state_dict())
    assert not any(k.startswith("quarter_skip") for k in plain.state_dict())


def _fit_thin_stripes(fine_skips: bool, steps: int = 40) -> float:
    """Foreground IoU after ``steps`` Adam steps on one image whose class is 2-pixel-wide bright stripes."""
    torch.manual_seed(0)
    model = jitnet(2, width=0.25, fine_skips=fine_skips).train()
    target = torch.zeros(1, 64, 96, dtype=torch.long)
    target[:, :, 10::8] = 1
    target[:, :, 11::8] = 1
    image = torch.randn(1, 3, 64, 96) * 0.1 + target.unsqueeze(1).float() * 2
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(image), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    predicted = model(image).argmax(1)
    inter = ((predicted == 1) & (target == 1)).sum().item()
    union = ((predicted == 1) | (target == 1)).sum().item()
    return inter / union


def test_fine_skips_fit_detail_finer_than_the_decoder_stride():
    # Stripes 2 px wide every 8 px: the decoder's finest features are 8x subsampled, the stem's 2x.
    assert _fit_thin_stripes(fine_skips=True) > _fit_thin_stripes(fine_skips=False) + 0.2


def test_running_statistics_move_by_the_momentum_asked_for():
    model = jitnet(3, width=0.25, batch_stats_at_inference=False, momentum=1.0).train()
    x = torch.randn(1, 3, 64, 64) * 3 + 2
    model(x)
    first = model.stem1[1]
    with torch.no_grad():
        pre = model.stem1[0](x)
    torch.testing.assert_close(first.running_mean, pre.mean((0, 2, 3)))
    assert all(m.momentum == 1.0 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with pytest.raises(ValueError, match=r"momentum must lie in \(0, 1\]"):
        jitnet(3, momentum=0.0)
