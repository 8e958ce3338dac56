"""Seeing what a student did: its committed masks drawn over the source video."""

from odist.render.video import Rendered, render_stream

__all__ = ["Rendered", "render_stream"]
