"""An archive feed's progress bar ends at the frames it decoded, not at the container's estimate."""

from __future__ import annotations

from odist.distill.feeds import ProgressBar
from odist.distill.runner import Progress


def test_the_bar_ends_at_the_frames_decoded(capsys):
    with ProgressBar(444, True, "clip") as show:  # the container says 444, the file holds 68
        for frame in range(68):
            show(Progress(frames=frame + 1, total=444, stride=8, miou=0.5, keyframes=1))
    bar = capsys.readouterr().err.strip().splitlines()[-1].split("\r")[-1]
    assert "68/68" in bar and "444" not in bar
