import torch

from odist.models.flops import count_gflops
from odist.models.jitnet import jitnet


def test_counting_leaves_running_statistics_and_mode_as_they_were():
    model = jitnet(3, width=0.25, batch_stats_at_inference=False, momentum=1.0).eval()
    before = {k: v.clone() for k, v in model.named_buffers()}
    assert count_gflops(model, 64, 64, backward=True) > 0
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.named_buffers())
