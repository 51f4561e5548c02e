"""Bar charts: the week by day (7 bars) and the year by month (12 bars).

Both are per-customer, so both use the fast path (:mod:`charts._engine`): the card, the
category labels and the title are drawn once per (labels, language) and cached per process;
each chart only blits its bars and value labels.  Bar heights are normalised to the
customer's busiest bar, so nothing on the background depends on the data.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.patches import PathPatch
from matplotlib.path import Path
from matplotlib.transforms import IdentityTransform

from . import theme
from ._engine import FastCanvas, bars_path, card_patch, text_kwargs
from .model import Chart


@dataclass(frozen=True, slots=True)
class BarLabels:
    """Localised text for a bar chart — every string comes from the caller's message catalog.

    ``categories`` are drawn under the bars ("Mon" … "Sun", "周一" …, "H" "K" …);
    ``names`` are the long forms used in the alt text (default: ``categories``).
    The alt text is ``alt`` formatted with ``{title}``, ``{values}`` (each bar as ``alt_item``
    with ``{name}`` and ``{value}``, joined by ``alt_separator``), ``{top}`` (name(s) of the
    highest bar) and ``{top_value}``; ``alt_tie`` (same fields; default ``alt``) when several bars
    share the top value; ``alt_empty`` (same fields) is used when every value is 0.
    ``empty`` is drawn across an all-zero chart ("A quiet week — see you next week").
    ``lang`` (BCP 47, e.g. ``"zh-CN"``) picks fonts and shaping rules.
    """

    categories: tuple[str, ...]
    names: tuple[str, ...] | None = None
    title: str = ""
    alt: str = "{title}: {values}. Busiest: {top} ({top_value})."
    alt_item: str = "{name} {value}"
    alt_separator: str = ", "
    alt_empty: str = "{title}: {values}."
    alt_tie: str | None = None
    empty: str = ""
    lang: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(self.categories))
        if self.names is not None:
            object.__setattr__(self, "names", tuple(self.names))
            if len(self.names) != len(self.categories):
                raise ValueError("names and categories must have the same length")


WEEK_EN = BarLabels(
    categories=("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    names=("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    title="Tasks per day",
    alt="{title}: {values}. Busiest day: {top} ({top_value}).",
    alt_tie="{title}: {values}. Busiest days: {top} ({top_value} each).",
    alt_empty="{title}: no tasks this week.",
    empty="A quiet week",
    lang="en",
)

YEAR_EN = BarLabels(
    categories=("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    names=("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    title="Tasks per month",
    alt="{title}: {values}. Best month: {top} ({top_value}).",
    alt_tie="{title}: {values}. Best months: {top} ({top_value} each).",
    alt_empty="{title}: no tasks this year.",
    empty="A quiet year",
    lang="en",
)


def format_count(value: float) -> str:
    """Locale-neutral fallback for bar value labels: ``7``, ``2.5``, ``1,234``, ``12.3k``, ``4.5M``.

    Callers with a locale pass their own ``value_labels`` (Babel's ``format_decimal`` /
    ``format_compact_decimal``) instead.
    """
    v = float(value)
    if v < 10_000:
        return f"{v:,.0f}" if v == int(v) or v >= 100 else f"{v:,.1f}".rstrip("0").rstrip(".")
    for div, suffix in ((1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T")):
        q = v / div
        text = f"{q:.0f}" if q >= 100 else f"{q:.1f}".rstrip("0").rstrip(".")
        if float(text) < 1000 or suffix == "T":  # 999,999 → "1M", not "1000k"
            return text + suffix
    raise AssertionError("unreachable")  # pragma: no cover


# --- layout --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    """Geometry in CSS px (y measured from the bottom, like matplotlib display coords)."""

    n: int
    width: int = theme.EMAIL_WIDTH
    height: int = theme.EMAIL_HEIGHT
    pad_x: float = 26
    category_baseline: float = 20  # baseline of the category labels
    bar_bottom: float = 54
    title_baseline_from_top: float = 40
    bar_fill: float = 0.62  # bar width / slot width
    max_bar_width: float = 58
    corner: float = 7  # bar top corner radius
    min_bar: float = 4  # smallest visible height of a non-zero bar
    stub: float = 5  # height of the zero marker
    label_gap: float = 7  # bar top → value label baseline
    value_style: theme.TextStyle = theme.VALUE
    value_hi_style: theme.TextStyle = theme.VALUE_HIGHLIGHT
    zero_style: theme.TextStyle = theme.TextStyle(18, theme.TEXT_MUTED)
    axis_style: theme.TextStyle = theme.AXIS
    axis_hi_style: theme.TextStyle = theme.TextStyle(theme.AXIS.size, theme.TEXT, "bold")
    values_shown: str = "all"  # "all" | "top"

    @property
    def slot(self) -> float:
        return (self.width - 2 * self.pad_x) / self.n

    @property
    def bar_width(self) -> float:
        return min(self.slot * self.bar_fill, self.max_bar_width)

    def bar_top_max(self, has_title: bool) -> float:
        top_reserved = (self.title_baseline_from_top + 20) if has_title else 14
        return self.height - top_reserved - self.value_hi_style.size * 0.95 - self.label_gap


_LAYOUTS = {
    "weekly": _Layout(7),
    "year": _Layout(
        12,
        pad_x=22,
        max_bar_width=30,
        corner=5,
        value_style=theme.TextStyle(16, theme.TEXT, "bold"),
        value_hi_style=theme.TextStyle(22, theme.AMBER, "bold"),
        zero_style=theme.TextStyle(14, theme.TEXT_MUTED),
        axis_style=theme.TextStyle(16, theme.TEXT_MUTED),
        axis_hi_style=theme.TextStyle(16, theme.TEXT, "bold"),
        values_shown="top",
    ),
}
_FILENAMES = {"weekly": "weekly-activity.png", "year": "year-by-month.png"}

class _BarRenderer:
    """One cached background per (kind, categories, title, language); blits everything else."""

    def __init__(self, kind: str, labels: BarLabels) -> None:
        self.kind = kind
        self.layout = lay = _LAYOUTS[kind]
        if len(labels.categories) != lay.n:
            raise ValueError(f"{kind} chart needs {lay.n} category labels, got {len(labels.categories)}")
        self.labels = labels
        self.family = theme.font_family(labels.lang)
        s = theme.SCALE
        self.s = s
        slot = lay.slot * s
        bw = round(lay.bar_width * s)
        centres = lay.pad_x * s + slot * (np.arange(lay.n) + 0.5)
        self.x0 = np.round(centres - bw / 2)
        self.x1 = self.x0 + bw
        self.centres = (self.x0 + self.x1) / 2
        self.y0 = round(lay.bar_bottom * s)
        self.top_max = lay.bar_top_max(bool(labels.title)) * s
        # category labels are blitted too: the top one turns bold white
        self.categories = [theme.drawable(c, self.family) for c in labels.categories]

        def build(fig):
            fig.add_artist(card_patch(lay.width * s, lay.height * s, theme.CARD_RADIUS * s, theme.NIGHT))
            if labels.title:
                title = theme.drawable(labels.title, self.family, "bold")
                fig.text(lay.pad_x * s, (lay.height - lay.title_baseline_from_top) * s, title,
                         **text_kwargs(self.family, labels.lang, theme.TITLE),
                         ha="left", va="baseline")

        inks = [theme.TEAL, theme.AMBER, theme.TEXT, theme.TEXT_MUTED, theme.TRACK]
        self.fast = fast = FastCanvas(lay.width, lay.height, s, theme.NIGHT, [(theme.NIGHT, c) for c in inks], build)
        # nothing is ever drawn above the highest value label (at the busiest bar, always at
        # top_max): let the engine compress those rows once
        label_top = self.top_max + (lay.label_gap + lay.value_hi_style.size * 1.3) * s
        fast.set_static_top(fast.px_h - math.ceil(label_top) - 4)
        # below the bars there are only the category labels: one of a few states
        fast.set_static_bottom(self.y0)
        self.patches = {
            colour: PathPatch(Path(np.zeros((1, 2))), facecolor=colour, edgecolor="none", linewidth=0,
                              transform=IdentityTransform(), antialiased=True)
            for colour in (theme.TEAL, theme.AMBER, theme.TRACK)
        }

    def _value_sprite(self, text: str, style: theme.TextStyle, max_width: float, va: str = "baseline"):
        """The text's sprite, shrunk (down to 60 %) until it fits ``max_width`` pixels."""
        sprite = self.fast.sprite(text, style, "center", va, family=self.family, lang=self.labels.lang)
        size = style.size
        while sprite is not None and sprite.width > max_width and size > style.size * 0.6:
            size = round(size * 0.88, 1)
            sprite = self.fast.sprite(text, theme.TextStyle(size, style.color, style.weight), "center",
                                      va, family=self.family, lang=self.labels.lang)
        return sprite

    def render(self, values: np.ndarray, value_labels: Sequence[str]) -> bytes:
        lay, s, fast = self.layout, self.s, self.fast
        vmax = float(values.max())
        fast.begin()
        top = values == vmax if vmax > 0 else np.zeros(len(values), bool)
        zero = values <= 0
        heights = np.zeros(len(values))
        if vmax > 0:
            heights = np.maximum(values / vmax * (self.top_max - self.y0), lay.min_bar * s)
        y1 = self.y0 + heights
        groups = (
            (theme.TRACK, zero, np.full(len(values), self.y0 + lay.stub * s)),
            (theme.TEAL, ~zero & ~top, y1),
            (theme.AMBER, top, y1),
        )
        radius = lay.corner * s
        for colour, mask, tops in groups:
            if mask.any():
                lefts, rights, bar_tops = self.x0[mask], self.x1[mask], tops[mask]
                # sides and bottom are pixel-aligned, so a bar's body below its rounded cap is
                # solid colour: filled straight into the palette indices; Agg only draws caps
                cap = np.minimum(np.minimum(radius, (rights - lefts) / 2), bar_tops - self.y0)
                body = np.maximum(np.floor(bar_tops - cap), self.y0)
                patch = self.patches[colour]
                bottoms = self.y0 if fast.exact else body
                patch.set_path(bars_path(lefts, rights, bottoms, bar_tops, radius))
                patch.draw(fast.renderer)
                for left, right, bottom, bar_top in zip(lefts.tolist(), rights.tolist(), body.tolist(),
                                                        bar_tops.tolist()):
                    if bottom > self.y0:
                        fast.mark_solid(left, self.y0, right, bottom, colour)
                    # the cap's box, padded for anti-aliasing except downwards (the fill)
                    fast.mark_dirty(left - 2, bottom, right + 2, bar_top + 2, pad=0)
        slot_px = lay.slot * s - 4
        for i, cat in enumerate(self.categories):
            style = lay.axis_hi_style if top[i] else lay.axis_style
            sprite = self._value_sprite(cat, style, slot_px)
            fast.draw_sprite(sprite, self.centres[i], lay.category_baseline * s, over=theme.NIGHT)
        if vmax <= 0:
            if self.labels.empty:
                note = theme.drawable(self.labels.empty, self.family, theme.NOTE.weight)
                sprite = self._value_sprite(note, theme.NOTE, (lay.width - 2 * lay.pad_x) * s, va="center")
                fast.draw_sprite(sprite, lay.width * s / 2, (self.y0 + self.top_max) / 2, over=theme.NIGHT)
        else:
            for i, text in enumerate(value_labels):
                if top[i]:
                    style = lay.value_hi_style
                elif lay.values_shown != "all":
                    continue
                else:
                    style = lay.zero_style if zero[i] else lay.value_style
                bar_top = self.y0 + lay.stub * s if zero[i] else y1[i]
                sprite = self._value_sprite(text, style, slot_px)
                fast.draw_sprite(sprite, self.centres[i], bar_top + lay.label_gap * s, over=theme.NIGHT)
        return fast.finish(bottom_key=tuple(top.tolist()))


_RENDERERS: OrderedDict[tuple, _BarRenderer] = OrderedDict()
_MAX_RENDERERS = 8


def _renderer(kind: str, labels: BarLabels) -> _BarRenderer:
    key = (kind, labels.categories, labels.title, labels.lang)
    r = _RENDERERS.get(key)
    if r is None:
        r = _RENDERERS[key] = _BarRenderer(kind, labels)
        if len(_RENDERERS) > _MAX_RENDERERS:
            _RENDERERS.popitem(last=False)
    else:
        _RENDERERS.move_to_end(key)
    return r


def _check_values(values: Sequence[float], n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.shape != (n,):
        raise ValueError(f"expected {n} values, got shape {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError("values must be finite and ≥ 0")
    return arr


def bar_alt(values: np.ndarray, labels: BarLabels, value_labels: Sequence[str]) -> str:
    """The alt text of a bar chart (also usable without drawing it)."""
    value_labels = [theme.one_line(str(t)) for t in value_labels]
    names = labels.names or labels.categories
    items = labels.alt_separator.join(
        labels.alt_item.format(name=name, value=text) for name, text in zip(names, value_labels)
    )
    vmax = float(values.max())
    if vmax <= 0:
        return theme.one_line(labels.alt_empty.format(title=labels.title, values=items, top="", top_value="0"))
    tops = [names[i] for i in np.flatnonzero(values == vmax)]
    top_value = value_labels[int(np.argmax(values))]
    pattern = labels.alt_tie if len(tops) > 1 and labels.alt_tie else labels.alt
    return theme.one_line(pattern.format(
        title=labels.title, values=items, top=labels.alt_separator.join(tops), top_value=top_value
    ))


def _render(kind: str, values, labels: BarLabels, value_labels) -> Chart:
    lay = _LAYOUTS[kind]
    arr = _check_values(values, lay.n)
    if value_labels is None:
        texts = [format_count(v) for v in arr]
    else:
        texts = [theme.one_line(str(t)) for t in value_labels]
        if len(texts) != lay.n:
            raise ValueError(f"expected {lay.n} value labels, got {len(texts)}")
    r = _renderer(kind, labels)
    drawn = [theme.drawable(t, r.family, "bold") for t in texts]
    png = r.render(arr, drawn)
    return Chart(png=png, alt=bar_alt(arr, labels, texts), width=lay.width, height=lay.height,
                 filename=_FILENAMES[kind], scale=theme.SCALE)


def render_weekly(values: Sequence[float], labels: BarLabels = WEEK_EN,
                  value_labels: Sequence[str] | None = None) -> Chart:
    """The week's activity by day: 7 bars (Monday first), the busiest day(s) in amber.

    ``values`` — 7 non-negative numbers (tasks per day).  ``labels`` — localised
    :class:`BarLabels` with 7 categories.  ``value_labels`` — the 7 numbers as the customer's
    locale writes them (default :func:`format_count`); used on the bars and in the alt text.
    Returns a 600×300 CSS px chart (1200×600 PNG).
    """
    return _render("weekly", values, labels, value_labels)


def render_year(values: Sequence[float], labels: BarLabels = YEAR_EN,
                value_labels: Sequence[str] | None = None) -> Chart:
    """The year month by month: 12 bars (January first), the best month in amber and labelled.

    Same contract as :func:`render_weekly` with 12 values / categories; only the best month's
    value is drawn on the chart (12 numbers don't fit a phone), all 12 are in the alt text.
    """
    return _render("year", values, labels, value_labels)
