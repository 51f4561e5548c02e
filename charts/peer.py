"""Peer position — "you are here" in the distribution of similar customers.

Privacy: the chart only ever receives the cohort's *histogram* (how many customers fall in
each bucket) and the customer's own value; no other customer's value reaches this code, and a
cohort smaller than ``min_cohort`` is refused (the design's k-anonymity floor, default 50).

Fast path like the bar charts: the cohort's histogram is the static background (cached per
cohort, so rendering a whole cohort re-uses it); per customer only the buckets below the
customer (teal), the customer's bucket (amber), the marker and the headline are blitted.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, PathPatch
from matplotlib.path import Path
from matplotlib.transforms import IdentityTransform

from . import theme
from ._engine import FastCanvas, bars_path, card_patch, text_kwargs
from .model import Chart

DEFAULT_MIN_COHORT = 50


@dataclass(frozen=True, slots=True)
class PeerLabels:
    """Localised text for the peer chart (all strings from the caller's message catalog).

    ``headline`` is per customer and already formatted ("Busier than 82% of teams on your
    plan"); ``you`` labels the marker; ``low`` / ``high`` name the two ends of the axis.
    ``alt`` is formatted with ``{headline}`` and ``{you}``.
    """

    headline: str
    you: str = "You"
    low: str = "Fewer tasks"
    high: str = "More tasks"
    alt: str = "{headline} (chart: how many similar customers did how much, with you marked)"
    lang: str | None = None


def position_in(edges: Sequence[float], value: float) -> float:
    """Where ``value`` sits on the bucket axis: bucket index + fraction (0 … number of buckets).

    Bucket ``i`` is ``edges[i] <= v < edges[i+1]``; values outside the edges are clamped.
    """
    e = [float(x) for x in edges]
    if len(e) < 2 or any(b <= a for a, b in zip(e, e[1:])):
        raise ValueError("edges must be strictly increasing, at least 2")
    v = min(max(float(value), e[0]), e[-1])
    i = min(bisect.bisect_right(e, v) - 1, len(e) - 2)
    return i + (v - e[i]) / (e[i + 1] - e[i])


# geometry, CSS px (y from the bottom)
_W, _H = theme.EMAIL_WIDTH, theme.EMAIL_HEIGHT
_PAD_X = 26
_AXIS_BASELINE = 20
_BAR_BOTTOM = 50
_BAR_TOP = _H - 124  # tallest bucket
_PILL_CENTRE = _H - 96  # "You" pill, above the tallest bucket
_PILL_H = 30
_HEADLINE_BASELINE = _H - 42
_HEADLINE = theme.TextStyle(22, theme.TEXT, "bold")
_HEADLINE_TWO_LINES = (_H - 30, _H - 54)  # baselines when the headline needs two lines
_PILL_TEXT = theme.TextStyle(17, theme.NIGHT, "bold")
_GAP = 3  # between buckets
_CORNER = 4


def _split_two(text: str) -> tuple[str, str]:
    """Split at the space nearest the middle (or mid-text for scripts without spaces)."""
    mid = len(text) / 2
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    if spaces:
        i = min(spaces, key=lambda k: abs(k - mid))
        return text[:i].rstrip(), text[i + 1 :].lstrip()
    i = max(1, round(mid))
    return text[:i], text[i:]


class _PeerRenderer:
    def __init__(self, counts: tuple[int, ...], low: str, high: str, lang: str | None) -> None:
        s = self.s = theme.SCALE
        self.lang = lang
        self.family = theme.font_family(lang)
        n = self.n = len(counts)
        arr = np.asarray(counts, dtype=float)
        span = (_W - 2 * _PAD_X) * s
        self.left = _PAD_X * s
        self.slot = span / n
        edges = np.round(self.left + self.slot * np.arange(n + 1))
        gap = min(_GAP * s, self.slot * 0.25)
        self.x0 = edges[:-1] + math.floor(gap / 2)
        self.x1 = edges[1:] - math.ceil(gap / 2)
        self.y0 = _BAR_BOTTOM * s
        peak = arr.max()
        heights = np.where(arr > 0, np.maximum(arr / peak * (_BAR_TOP - _BAR_BOTTOM) * s, 3 * s), 0)
        self.tops = self.y0 + heights
        self.nonzero = arr > 0
        corner = min(_CORNER * s, float((self.x1 - self.x0).min()) / 2)
        self.corner = corner

        def build(fig):
            fig.add_artist(card_patch(_W * s, _H * s, theme.CARD_RADIUS * s, theme.NIGHT))
            fig.add_artist(Line2D([self.left, self.left + span], [self.y0 - s, self.y0 - s],
                                  transform=IdentityTransform(), color=theme.TRACK, linewidth=1.5,
                                  solid_capstyle="butt"))
            if self.nonzero.any():
                fig.add_artist(PathPatch(bars_path(self.x0[self.nonzero], self.x1[self.nonzero], self.y0,
                                                   self.tops[self.nonzero], corner),
                                         transform=IdentityTransform(), facecolor=theme.TRACK_LIGHT,
                                         edgecolor="none", linewidth=0))
            axis = theme.AXIS
            fig.text(self.left, _AXIS_BASELINE * s, theme.drawable(low, self.family),
                     ha="left", va="baseline", **text_kwargs(self.family, lang, axis))
            fig.text(self.left + span, _AXIS_BASELINE * s, theme.drawable(high, self.family),
                     ha="right", va="baseline", **text_kwargs(self.family, lang, axis))

        pairs = [(theme.NIGHT, c) for c in (theme.TEAL, theme.AMBER, theme.TEXT, theme.TEXT_MUTED, theme.TRACK_LIGHT)]
        pairs += [(theme.AMBER, theme.NIGHT), (theme.TRACK_LIGHT, theme.AMBER), (theme.TEAL, theme.AMBER)]
        self.fast = FastCanvas(_W, _H, s, theme.NIGHT, pairs, build)
        self.fast.set_static_top(self.fast.px_h - math.ceil((_HEADLINE_TWO_LINES[0] + 19 * 1.3) * s))
        self.fast.set_static_bottom(round(self.y0))  # the axis labels under the histogram
        kw = dict(transform=IdentityTransform(), edgecolor="none", linewidth=0)
        self.below = PathPatch(Path(np.zeros((1, 2))), facecolor=theme.TEAL, **kw)
        self.mine = PathPatch(Path(np.zeros((1, 2))), facecolor=theme.AMBER, **kw)
        self.pill = FancyBboxPatch((0, 0), 1, 1, boxstyle=f"round,pad=0,rounding_size={_PILL_H * s / 2}",
                                   facecolor=theme.AMBER, **kw)
        self.stem = FancyBboxPatch((0, 0), 1, 1, boxstyle="square,pad=0", facecolor=theme.AMBER, **kw)

    def _fit(self, text: str, size: float, min_size: float):
        """``(sprite, size)``: the largest size ≥ ``min_size`` at which ``text`` fits one line,
        else the ``min_size`` sprite (which may be too wide)."""
        max_w = (_W - 2 * _PAD_X) * self.s
        while True:
            style = theme.TextStyle(size, _HEADLINE.color, _HEADLINE.weight)
            sprite = self.fast.sprite(text, style, "left", "baseline", family=self.family, lang=self.lang)
            if sprite is None or sprite.width <= max_w or size <= min_size:
                return sprite, size
            size = max(min_size, size - 1)

    def _headline(self, text: str) -> list:
        """One line if it fits at ≥ 18 px, else two lines (split near the middle), else cut "…"."""
        sprite, _ = self._fit(text, _HEADLINE.size, 18)
        max_w = (_W - 2 * _PAD_X) * self.s
        if sprite is None or sprite.width <= max_w:
            return [sprite]
        first, second = _split_two(text)
        lines = [self._fit(first, 19, 15)[0], self._fit(second, 19, 15)]
        second_sprite, size = lines[1]
        while second_sprite is not None and second_sprite.width > max_w and len(second) > 1:  # cut
            second = second[: max(1, int(len(second) * max_w / second_sprite.width) - 2)].rstrip() + "…"
            second_sprite = self.fast.sprite(second, theme.TextStyle(size, _HEADLINE.color, _HEADLINE.weight),
                                             "left", "baseline", family=self.family, lang=self.lang)
        return [lines[0], second_sprite]

    def render(self, position: float, headline: str, you: str) -> bytes:
        s, fast = self.s, self.fast
        fast.begin()
        bucket = min(int(position), self.n - 1)
        below = np.arange(self.n) < bucket
        below &= self.nonzero
        if below.any():
            self.below.set_path(bars_path(self.x0[below], self.x1[below], self.y0, self.tops[below], self.corner))
            self.below.draw(fast.renderer)
            fast.mark_dirty(self.x0[below].min(), self.y0, self.x1[below].max(), self.tops[below].max())
        if self.nonzero[bucket]:
            sel = slice(bucket, bucket + 1)
            self.mine.set_path(bars_path(self.x0[sel], self.x1[sel], self.y0, self.tops[sel], self.corner))
            self.mine.draw(fast.renderer)
            fast.mark_dirty(self.x0[bucket], self.y0, self.x1[bucket], self.tops[bucket])
        # marker: a stem from the baseline to the pill, at the customer's exact position
        x = round(self.left + self.slot * position)
        stem_w = 2 * s
        pill_bottom = (_PILL_CENTRE - _PILL_H / 2) * s
        self.stem.set_bounds(x - stem_w / 2, self.y0, stem_w, pill_bottom - self.y0)
        self.stem.draw(fast.renderer)
        fast.mark_dirty(x - stem_w, self.y0, x + stem_w, pill_bottom)
        label = fast.sprite(theme.drawable(you, self.family, "bold") or "•", _PILL_TEXT, "center", "center",
                            family=self.family, lang=self.lang)
        pill_w = (label.width if label else 0) + 24 * s
        px0 = min(max(x - pill_w / 2, self.left - 6 * s), (_W - _PAD_X + 6) * s - pill_w)
        self.pill.set_bounds(px0, pill_bottom, pill_w, _PILL_H * s)
        self.pill.draw(fast.renderer)
        fast.mark_dirty(px0, pill_bottom, px0 + pill_w, pill_bottom + _PILL_H * s)
        fast.draw_sprite(label, px0 + pill_w / 2, _PILL_CENTRE * s, over=theme.AMBER)
        lines = self._headline(theme.drawable(headline, self.family, "bold"))
        if len(lines) == 1:
            fast.draw_sprite(lines[0], self.left, _HEADLINE_BASELINE * s, over=theme.NIGHT)
        else:
            for sprite, baseline in zip(lines, _HEADLINE_TWO_LINES):
                fast.draw_sprite(sprite, self.left, baseline * s, over=theme.NIGHT)
        return fast.finish(bottom_key="axis")


_RENDERERS: OrderedDict[tuple, _PeerRenderer] = OrderedDict()
_MAX_RENDERERS = 16


def render_peer(counts: Sequence[int], edges: Sequence[float], value: float, labels: PeerLabels,
                *, min_cohort: int = DEFAULT_MIN_COHORT) -> Chart:
    """The customer's position in the peer distribution.

    ``counts`` — the cohort histogram: how many customers fall in each bucket, lowest bucket
    first (bucket ``i`` spans ``edges[i] … edges[i+1]``).  ``edges`` — ``len(counts) + 1``
    increasing bucket boundaries.  ``value`` — the customer's own value (on the same scale).
    ``labels`` — :class:`PeerLabels` (headline already holds the formatted percentile).
    Raises ``ValueError`` when the cohort has fewer than ``min_cohort`` customers.
    Returns a 600×300 CSS px chart (1200×600 PNG).
    """
    cnt = tuple(int(c) for c in counts)
    if len(cnt) < 2 or len(edges) != len(cnt) + 1:
        raise ValueError("need at least 2 buckets and len(edges) == len(counts) + 1")
    if any(c < 0 for c in cnt):
        raise ValueError("bucket counts must be ≥ 0")
    if sum(cnt) < max(min_cohort, 1):
        raise ValueError(f"cohort of {sum(cnt)} is smaller than the minimum of {min_cohort}: no peer chart")
    pos = position_in(edges, value)
    key = (cnt, labels.low, labels.high, labels.lang)
    r = _RENDERERS.get(key)
    if r is None:
        r = _RENDERERS[key] = _PeerRenderer(cnt, labels.low, labels.high, labels.lang)
        if len(_RENDERERS) > _MAX_RENDERERS:
            _RENDERERS.popitem(last=False)
    else:
        _RENDERERS.move_to_end(key)
    png = r.render(pos, labels.headline, labels.you)
    alt = theme.one_line(labels.alt.format(headline=labels.headline, you=labels.you))
    return Chart(png=png, alt=alt, width=_W, height=_H, filename="peer-position.png", scale=theme.SCALE)
