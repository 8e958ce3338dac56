import numpy as np
import pytest
import torch
from videoclips import encode_noise

from odist.config import load_config
from odist.distill.distiller import OnlineDistiller
from odist.distill.learning import IMAGE_MEAN, IMAGE_STD, new_student
from odist.models.fold import FoldedForward, fold_batchnorm, has_running_stats
from odist.models.jitnet import jitnet
from odist.video.open import open_source

FRAMES = 4


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """A few frames decoded from an encoded video (H.264 at 160x96)."""
    clip = encode_noise(tmp_path_factory.mktemp("fold") / "clip.mp4", FRAMES)
    return list(open_source(str(clip)))


def as_input(image: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float().div(255)
    return (x - torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGE_STD).view(1, 3, 1, 1)


def trained(model: torch.nn.Module, images: list[torch.Tensor], steps: int = 3) -> torch.nn.Module:
    """``model`` after a few updates on ``images`` (so its weights and statistics are a frame's, not init's)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for step in range(steps):
        logits = model(images[step % len(images)])
        loss = torch.nn.functional.cross_entropy(logits, logits.detach().argmax(1).roll(3, -1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def agree(expected: torch.Tensor, got: torch.Tensor) -> None:
    """Logits equal to float rounding; class maps equal wherever the top two classes are not a near-tie."""
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    top2 = expected.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-3
    assert clear.float().mean() > 0.99
    assert torch.equal(expected.argmax(1)[clear], got.argmax(1)[clear])


def shipped_student_with_running_stats(momentum: float = 1.0):
    config = load_config(overrides=["student.batch_stats_at_inference=false",
                                    f"student.running_stats_momentum={momentum}", "student.width=0.25"], environ={})
    return config, new_student(config)


@pytest.mark.parametrize("momentum", [1.0, 0.1])
def test_folded_masks_equal_the_unfolded_models_on_decoded_frames(frames, momentum):
    _, model = shipped_student_with_running_stats(momentum)
    images = [as_input(f.image) for f in frames]
    model = trained(model, images)
    folded = fold_batchnorm(model)
    batchnorms = [m for m in folded.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert 0 < len(batchnorms) < sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) / 3
    with torch.no_grad():
        for image in images:
            agree(model(image), folded(image))


def test_fold_leaves_the_model_as_it_was_and_refuses_per_frame_statistics():
    _, model = shipped_student_with_running_stats()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    fold_batchnorm(model)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    per_frame = jitnet(3, width=0.25, batch_stats_at_inference=True)
    assert not has_running_stats(per_frame)
    with pytest.raises(ValueError, match="batch_stats_at_inference=False"):
        fold_batchnorm(per_frame)


def test_folded_forward_refolds_after_an_update_only(frames):
    _, model = shipped_student_with_running_stats()
    images = [as_input(f.image) for f in frames]
    forward = FoldedForward(trained(model, images, steps=1))
    with torch.no_grad():
        forward(images[0])
        forward(images[1])
    assert forward.folds == 1
    trained(model, images, steps=1)  # an update changes weights and statistics in place
    with torch.no_grad():
        agree(model(images[2]), forward(images[2]))
    assert forward.folds == 2


def test_the_distiller_infers_through_the_fold_with_the_unfolded_models_masks(frames):
    config, _ = shipped_student_with_running_stats()
    distiller = OnlineDistiller(config, teacher=None)
    assert isinstance(distiller._infer_forward, FoldedForward)
    images = [as_input(f.image) for f in frames]
    trained(distiller.student, [i.contiguous(memory_format=torch.channels_last) for i in images])
    for frame, image in zip(frames, images, strict=True):
        result = distiller.infer(frame)
        with torch.no_grad():
            expected = distiller.student.eval()(image.contiguous(memory_format=torch.channels_last))
        top2 = expected.topk(2, dim=1).values[0]
        clear = ((top2[0] - top2[1]) > 1e-3).numpy()
        assert np.array_equal(result.prediction[clear], expected[0].argmax(0).numpy()[clear])
    assert distiller._infer_forward.folds == 1


def test_per_frame_statistics_infer_unfolded():
    config = load_config(overrides=["student.batch_stats_at_inference=true", "student.width=0.25"], environ={})
    distiller = OnlineDistiller(config, teacher=None)
    assert distiller._infer_forward is distiller._forward
