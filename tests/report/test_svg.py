"""Plot primitives: tick choice and degenerate inputs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from odist.report.svg import histogram, line_plot, nice_ticks, scatter


def test_nice_ticks():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 3.2, min_step=1) == [0, 1, 2, 3]
    assert nice_ticks(3.26, 3.46) == [3.3, 3.35, 3.4, 3.45]
    assert nice_ticks(5, 5) == [5]


def test_empty_and_single_value_plots_are_valid_svg():
    for block in (histogram("h", "t", [], "x"), histogram("h", "t", [2.0], "x"),
                  line_plot("l", "t", [], [], "x", "y"), line_plot("l", "t", [0.5], ["a"], "x", "y"),
                  scatter("s", "t", [float("nan")], [1.0], ["#000"], ["p"], "x", "y"),
                  scatter("s", "t", [1.0, 2.0], [0.5, None], ["#000", "#111"], ["<a>", "b&"], "x", "y")):
        ET.fromstring(block)
