"""The public API keeps its promise: an argument of the wrong type is one ``ConfigError`` naming it, before any
work (no ``AttributeError`` or ``TypeError`` from inside, no folder named ``None``, ``"no"`` never true)."""

from __future__ import annotations

import pytest

import odist
from odist.errors import ConfigError

OUT = "run"
SYNTHETIC = "synthetic:traffic"
CASES = {
    "distill input 123": (lambda: odist.distill(123, out=OUT), "input must be a video path"),
    "distill out None": (lambda: odist.distill(SYNTHETIC, out=None), "out must be a run root"),
    "distill evaluate=True, now a config key": (lambda: odist.distill(SYNTHETIC, out=OUT, evaluate=True),
                                                "odist.distill() takes no evaluate= argument any more (set the "
                                                "config key distill.evaluate instead"),
    "distill overrides as one string": (lambda: odist.distill(SYNTHETIC, out=OUT, overrides="threads=1"),
                                        "overrides must be a list of strings"),
    "distill device=, now a config key": (lambda: odist.distill(SYNTHETIC, out=OUT, device="cpu"),
                                          "odist.distill() takes no device= argument any more (set the config key "
                                          "device instead"),
    "distill max_frames 2.5": (lambda: odist.distill(SYNTHETIC, out=OUT, overrides=["distill.max_frames=2.5"]),
                               "invalid config value for distill.max_frames: 2.5"),
    "distill progress 'yes'": (lambda: odist.distill(SYNTHETIC, out=OUT, progress="yes"), "progress must be True or"),
    "distill config 5": (lambda: odist.distill(SYNTHETIC, out=OUT, config=5), "config must be an OdistConfig"),
    "distill resume 'yes'": (lambda: odist.distill(SYNTHETIC, out=OUT, resume="yes"), "resume must be True or"),
    "run inputs None": (lambda: odist.run(None, out=OUT), "inputs must be a manifest"),
    "run fleet=, now a config section": (lambda: odist.run(SYNTHETIC, out=OUT, fleet=odist.FleetConfig()),
                                         "odist.run() takes no fleet= argument any more (set the config's fleet "
                                         "section instead"),
    "run progress 1": (lambda: odist.run(SYNTHETIC, out=OUT, progress=1), "progress must be True or False"),
    "live out None": (lambda: odist.live("cameras.yaml", out=None), "out must be a run root"),
    "live duration -5": (lambda: odist.live("cameras.yaml", out=OUT, duration=-5),
                         "duration -5 is not a positive number of seconds"),
    "report 42": (lambda: odist.report(42), "runs must be a run root or a list of them, not 42 (int)"),
    "report [run, 3]": (lambda: odist.report([OUT, 3]), "runs must be a run root"),
    "plan cameras 'many'": (lambda: odist.plan(cameras="many", fps=10, gpu="h100"),
                            "cameras must be a whole number, not 'many' (str)"),
    "plan fps 'fast'": (lambda: odist.plan(cameras=4, fps="fast", gpu="h100"), "fps must be a finite number"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_wrong_argument_type_is_one_config_error_before_any_work(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    call, expected = CASES[case]
    with pytest.raises(ConfigError) as refused:
        call()
    assert str(refused.value).startswith(expected) and "\n" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []  # nothing written: no ./None/, no ./run/


def test_paths_are_taken_as_well_as_strings(tmp_path):
    from odist.api_types import location

    assert location("out", tmp_path) == str(tmp_path)


def test_a_keyword_the_calls_never_took_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        odist.distill(SYNTHETIC, out=OUT, colour="red")
