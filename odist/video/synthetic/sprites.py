"""Sprites: an actor drawn at a given pixel height, with its coverage mask and foot anchor.

``build_sprite`` draws a person (with a walking stride), a car, van or bus, or a bicycle or motorbike
onto a fresh :class:`~odist.video.synthetic.canvas.Canvas`, applies vertical shading and the stream's
texture tile, and mirrors vehicles and bikes that travel leftward. The result depends only on the
actor, the height, the stride and the main colour, so the source can cache sprites by those.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from odist.video.synthetic.actors import Actor, Look
from odist.video.synthetic.canvas import RGB, Canvas
from odist.video.synthetic.scenarios import PERSON, VEHICLE


def _draw_person(c: Canvas, hh: float, look: Look, swing: float) -> None:
    cx = c.w / 2
    skin, shirt, pants, hair = look.third, look.main, look.second, look.fourth
    hip, foot = 0.52 * hh, 0.97 * hh
    for side in (-1, 1):
        c.segment((hip, cx + side * 0.045 * hh), (foot, cx + side * 0.045 * hh + side * swing * 0.11 * hh),
                  0.042 * hh, pants)
        c.ellipse(foot, cx + side * (0.045 + swing * 0.11) * hh + 0.02 * hh, 0.025 * hh, 0.045 * hh, (30, 28, 26))
    for side in (-1, 1):
        hand = (0.5 * hh, cx + side * (0.13 + swing * 0.05) * hh)
        c.segment((0.21 * hh, cx + side * 0.11 * hh), hand, 0.034 * hh, shirt)
        c.ellipse(hand[0], hand[1], 0.03 * hh, 0.03 * hh, skin)
    c.quad(0.18 * hh, 0.56 * hh, (cx - 0.125 * hh, cx + 0.125 * hh), (cx - 0.1 * hh, cx + 0.1 * hh), shirt)
    c.rect(0.13 * hh, cx - 0.028 * hh, 0.19 * hh, cx + 0.028 * hh, skin)
    c.ellipse(0.085 * hh, cx, 0.075 * hh, 0.06 * hh, skin)
    c.ellipse(0.055 * hh, cx, 0.05 * hh, 0.063 * hh, hair)
    if look.accessory:
        c.segment((0.2 * hh, cx - 0.08 * hh), (0.42 * hh, cx + 0.12 * hh), 0.012 * hh, (40, 30, 25))
        c.rect(0.38 * hh, cx + 0.1 * hh, 0.55 * hh, cx + 0.19 * hh, (shirt[2], shirt[0], shirt[1]))


def _draw_vehicle(c: Canvas, hh: float, ww: float, look: Look) -> None:
    body, glass, tyre, hub = look.main, look.second, look.third, look.fourth
    if look.variant == 0:
        c.quad(0.38 * hh, 0.82 * hh, (0.02 * ww, 0.96 * ww), (0.0, ww), body)
        c.quad(0.02 * hh, 0.4 * hh, (0.3 * ww, 0.66 * ww), (0.16 * ww, 0.84 * ww), body)
        c.quad(0.08 * hh, 0.38 * hh, (0.33 * ww, 0.63 * ww), (0.22 * ww, 0.79 * ww), glass, cover=False)
        c.rect(0.08 * hh, 0.5 * ww, 0.38 * hh, 0.53 * ww, body, cover=False)
        radius, wheels = 0.22 * hh, (0.19, 0.8)
    elif look.variant == 1:
        c.quad(0.03 * hh, 0.84 * hh, (0.02 * ww, 0.8 * ww), (0.0, ww), body)
        c.quad(0.1 * hh, 0.42 * hh, (0.73 * ww, 0.79 * ww), (0.73 * ww, 0.93 * ww), glass, cover=False)
        c.rect(0.1 * hh, 0.08 * ww, 0.35 * hh, 0.3 * ww, glass, cover=False)
        radius, wheels = 0.17 * hh, (0.17, 0.82)
    else:
        c.rect(0.02 * hh, 0.0, 0.88 * hh, ww, body)
        for wx in np.arange(0.04, 0.9, 0.11):
            c.rect(0.12 * hh, wx * ww, 0.45 * hh, (wx + 0.09) * ww, glass, cover=False)
        c.rect(0.12 * hh, 0.95 * ww, 0.7 * hh, 0.995 * ww, glass, cover=False)
        radius, wheels = 0.15 * hh, (0.15, 0.83)
    c.rect(0.62 * hh, 0.0, 0.66 * hh, ww, tuple(0.6 * v for v in body), cover=False)
    c.rect(0.44 * hh, 0.955 * ww, 0.52 * hh, ww, (245, 235, 180), cover=False)
    c.rect(0.44 * hh, 0.0, 0.52 * hh, 0.03 * ww, (200, 30, 30), cover=False)
    for wx in wheels:
        c.ellipse(hh - radius, wx * ww, radius, radius, tyre)
        c.ellipse(hh - radius, wx * ww, radius * 0.45, radius * 0.45, hub)


def _draw_bike(c: Canvas, hh: float, ww: float, look: Look) -> None:
    frame, tyre, metal = look.main, look.second, look.third
    r = 0.33 * hh if look.variant == 0 else 0.3 * hh
    rear, front = (hh - r, r + 1), (hh - r, ww - r - 1)
    half = 0.025 * hh
    if look.variant == 0:
        c.ring(rear[0], rear[1], r, half * 1.6, tyre)
        c.ring(front[0], front[1], r, half * 1.6, tyre)
        seat, crank, head = (0.36 * hh, 0.4 * ww), (hh - r, 0.47 * ww), (0.32 * hh, 0.74 * ww)
        for p, q in ((rear, seat), (seat, crank), (crank, rear), (seat, head), (head, crank), (head, front)):
            c.segment(p, q, half, frame)
        c.segment(head, (0.12 * hh, 0.7 * ww), half, metal)
        c.segment((0.12 * hh, 0.66 * ww), (0.12 * hh, 0.76 * ww), half, metal)
        c.ellipse(0.3 * hh, 0.4 * ww, 0.03 * hh, 0.08 * ww, look.fourth)
    else:
        for hub in (rear, front):
            c.ellipse(hub[0], hub[1], r, r, tyre)
            c.ellipse(hub[0], hub[1], r * 0.4, r * 0.4, metal)
        c.rect(0.5 * hh, 0.38 * ww, 0.8 * hh, 0.62 * ww, metal)
        c.ellipse(0.42 * hh, 0.55 * ww, 0.13 * hh, 0.17 * ww, frame)
        c.quad(0.3 * hh, 0.4 * hh, (0.22 * ww, 0.45 * ww), (0.25 * ww, 0.48 * ww), look.fourth)
        c.segment(front, (0.2 * hh, 0.76 * ww), half * 1.5, metal)
        c.segment((0.2 * hh, 0.76 * ww), (0.12 * hh, 0.7 * ww), half * 1.2, metal)
        c.segment(rear, (0.5 * hh, 0.4 * ww), half * 1.5, metal)


@dataclass(frozen=True)
class Sprite:
    rgb: np.ndarray  # (h, w, 3) uint8
    mask: np.ndarray  # (h, w) bool
    anchor: int  # column of the foot point


def build_sprite(actor: Actor, h: int, swing: float, main: RGB, texture: np.ndarray) -> Sprite:
    """The actor drawn ``h`` pixels tall; everything depends on ``h`` only, so sprites can be cached by it."""
    ppm = h / actor.height_m
    look = dataclasses.replace(actor.look, main=main)
    w = max(3, math.ceil((actor.length_m if actor.cls != PERSON else 0.55 * actor.height_m) * ppm) + 2)
    c = Canvas.blank(h, w)
    if actor.cls == PERSON:
        _draw_person(c, float(h), look, swing)
    elif actor.cls == VEHICLE:
        _draw_vehicle(c, float(h), float(w), look)
    else:
        _draw_bike(c, float(h), float(w), look)
    shade = (1.12 - 0.3 * (np.arange(h, dtype=np.float32) + 0.5) / h)[:, None, None]
    shift = 13 * sum(actor.key)
    rows, cols = (np.arange(h)[:, None] + shift) % texture.shape[0], (np.arange(w)[None, :] + shift) % texture.shape[1]
    tex = texture[rows, cols]
    rgb = np.clip(c.rgb * shade + tex[..., None] * 6.0, 0, 255).astype(np.uint8)
    mask = c.mask
    if actor.cls != PERSON and actor.path.leftward:
        rgb, mask = rgb[:, ::-1], mask[:, ::-1]
    return Sprite(rgb, mask, w // 2)
