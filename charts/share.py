"""Share cards: 1200×630 (Open Graph / link previews) and 1080×1920 (stories).

Bold, flat brand shapes on deep indigo, the customer's first name big, 1–3 headline numbers
in brand colours — the "Wrapped" look.  Flat colour (no gradients) keeps the card a crisp
palette PNG of a few tens of KB that every platform accepts.

Like the e-mail charts this uses the fast path: shapes, brand and footer are the cached
background; name, title and numbers are blitted text sprites, so a card costs milliseconds
and a yearly run can make one per customer.  Only the first name and the customer's own
numbers ever appear on a card (it is public once shared).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.patches import Circle, FancyBboxPatch, Wedge
from matplotlib.transforms import IdentityTransform

from . import theme
from ._engine import FastCanvas, Sprite, text_kwargs
from .model import Chart

SIZES = {"og": theme.OG_SIZE, "story": theme.STORY_SIZE}
_STAT_COLOURS = (theme.TEAL, theme.AMBER, theme.CORAL)


@dataclass(frozen=True, slots=True)
class ShareCardText:
    """Everything written on a share card, already localised and formatted by the caller.

    ``name`` — the customer's first name only (cleaned here: one line, no control characters,
    no glyphs we can't draw, shrunk or cut with "…" to fit).  ``greeting`` places it
    (``"{name},"``; ``"{name}，"`` in Chinese).  ``title`` — e.g. "your 2026 in valuemail".
    ``stats`` — 1 to 3 ``(value, label)`` pairs such as ``("1,284", "tasks done")``.
    ``kicker`` — small line on top ("2026 · WRAPPED").  ``brand``/``footer`` — bottom line.
    ``alt`` is formatted with ``{greeting}``, ``{name}``, ``{title}``, ``{kicker}`` and ``{stats}``
    (each ``alt_stat`` with ``{value}``/``{label}``, joined by ``alt_separator``).
    """

    name: str
    title: str
    stats: tuple[tuple[str, str], ...]
    kicker: str = ""
    greeting: str = "{name},"
    brand: str = "valuemail"
    footer: str = ""
    alt: str = "{greeting} {title}: {stats}."
    alt_stat: str = "{value} {label}"
    alt_separator: str = ", "
    lang: str | None = None

    def __post_init__(self) -> None:
        stats = tuple((str(v), str(label)) for v, label in self.stats)
        if not 1 <= len(stats) <= 3:
            raise ValueError("a share card shows 1 to 3 stats")
        object.__setattr__(self, "stats", stats)


@dataclass(frozen=True)
class _Spec:
    """Layout of one card format, real pixels, y from the bottom."""

    width: int
    height: int
    margin: int
    kicker: tuple[float, float]  # baseline y, font size
    name: tuple[float, float]
    title: tuple[float, float]
    text_width: int  # max width of kicker / name / title
    stat_value: float  # font size
    stat_label: float
    stat_positions: tuple[tuple[float, float], ...]  # (x, value baseline y) per stat slot
    stat_width: int
    label_drop: float  # value baseline → label baseline
    brand: tuple[float, float]  # baseline y, size
    shapes: tuple[tuple, ...]  # ("circle", x, y, r, colour) | ("ring", x, y, r, width, colour) | ("pill", x, y, w, h, colour)


_OG = _Spec(
    width=1200, height=630, margin=72,
    kicker=(532, 26), name=(420, 96), title=(352, 42), text_width=760,
    stat_value=60, stat_label=24,
    stat_positions=((72, 178), (330, 178), (588, 178)), stat_width=234, label_drop=44,
    brand=(48, 26),
    shapes=(
        ("circle", 1110, 600, 300, theme.INDIGO),
        ("circle", 1190, 110, 160, theme.TEAL),
        ("ring", 930, 300, 86, 24, theme.AMBER),
        ("circle", 1040, 430, 26, theme.CORAL),
        ("pill", 840, 90, 150, 44, theme.VIOLET),
    ),
)
_STORY = _Spec(
    width=1080, height=1920, margin=90,
    kicker=(1610, 42), name=(1440, 150), title=(1340, 62), text_width=900,
    stat_value=132, stat_label=44,
    stat_positions=((90, 1060), (90, 800), (90, 540)), stat_width=900, label_drop=72,
    brand=(110, 40),
    shapes=(
        ("circle", 980, 1880, 330, theme.INDIGO),
        ("ring", 860, 1700, 0, 0, theme.AMBER),  # placeholder slot (keeps palette order stable)
        ("circle", 1020, 170, 250, theme.TEAL),
        ("ring", 150, 1860, 110, 32, theme.AMBER),
        ("circle", 700, 1790, 34, theme.CORAL),
        ("pill", 620, 330, 200, 64, theme.VIOLET),
    ),
)
_SPECS = {"og": _OG, "story": _STORY}


def _add_shapes(fig, spec: _Spec) -> None:
    kw = dict(transform=IdentityTransform(), edgecolor="none", linewidth=0)
    for shape in spec.shapes:
        kind, *args = shape
        if kind == "circle":
            x, y, r, colour = args
            fig.add_artist(Circle((x, y), r, facecolor=colour, **kw))
        elif kind == "ring":
            x, y, r, w, colour = args
            if r > 0:
                fig.add_artist(Wedge((x, y), r, 0, 360, width=w, facecolor=colour, **kw))
        elif kind == "pill":
            x, y, w, h, colour = args
            fig.add_artist(FancyBboxPatch((x, y), w, h, boxstyle=f"round,pad=0,rounding_size={h / 2}",
                                          facecolor=colour, **kw))


class _CardRenderer:
    def __init__(self, size: str, brand: str, footer: str, lang: str | None) -> None:
        self.spec = spec = _SPECS[size]
        self.lang = lang
        self.family = theme.font_family(lang)

        def build(fig):
            fig.patch.set_alpha(1.0)
            fig.patch.set_facecolor(theme.NIGHT_DEEP)
            _add_shapes(fig, spec)
            y, size_ = spec.brand
            mark = size_ * 0.8
            fig.add_artist(FancyBboxPatch((spec.margin, y - size_ * 0.12), mark, mark,
                                          boxstyle=f"round,pad=0,rounding_size={mark * 0.3}",
                                          transform=IdentityTransform(), facecolor=theme.AMBER,
                                          edgecolor="none", linewidth=0))
            line = theme.drawable(brand, self.family, "bold")
            t = fig.text(spec.margin + mark * 1.45, y, line, ha="left", va="baseline",
                         **text_kwargs(self.family, lang, theme.TextStyle(size_, theme.TEXT, "bold")))
            if footer:
                fig.canvas.draw()
                x = t.get_window_extent().x1 + size_ * 0.6
                fig.text(x, y, theme.drawable(footer, self.family), ha="left", va="baseline",
                         **text_kwargs(self.family, lang, theme.TextStyle(size_ * 0.8, theme.TEXT_MUTED)))

        inks = (theme.TEXT, theme.TEXT_MUTED, theme.AMBER, theme.TEAL, theme.CORAL)
        pairs = [(theme.NIGHT_DEEP, c) for c in inks] + [(theme.NIGHT_DEEP, theme.INDIGO), (theme.NIGHT_DEEP, theme.VIOLET)]
        self.fast = FastCanvas(spec.width, spec.height, 1, theme.NIGHT_DEEP, pairs, build,
                               zlib_level=6, translucent_corners=False)

    def fit(self, text: str, size: float, colour: str, weight: str, max_width: float, min_size: float) -> Sprite | None:
        """The text as big as possible up to ``size``; cut with "…" if even ``min_size`` is too wide."""
        text = theme.drawable(text, self.family, weight)
        if not text:
            return None
        fast = self.fast

        def sprite(t: str, sz: float):
            return fast.sprite(t, theme.TextStyle(round(sz, 1), colour, weight), "left", "baseline",
                               family=self.family, lang=self.lang)

        sp = sprite(text, size)
        while sp is not None and sp.width > max_width and size > min_size:
            size = max(min_size, size * max_width / sp.width * 0.98, size * 0.6)
            sp = sprite(text, size)
        while sp is not None and sp.width > max_width and len(text) > 1:
            text = text[: max(1, int(len(text) * max_width / sp.width) - 1)].rstrip() + "…"
            sp = sprite(text, size)
        return sp

    def render(self, text: ShareCardText) -> bytes:
        spec, fast = self.spec, self.fast
        fast.begin()
        m, w = spec.margin, spec.text_width
        if text.kicker:
            y, size = spec.kicker
            fast.draw_sprite(self.fit(text.kicker, size, theme.AMBER, "bold", w, size * 0.6), m, y)
        name = theme.drawable(text.name, self.family, "bold")
        greeting = text.greeting.replace("{name}", name) if name else ""
        y, size = spec.name
        fast.draw_sprite(self.fit(greeting, size, theme.TEXT, "bold", w, size * 0.45), m, y)
        y, size = spec.title
        fast.draw_sprite(self.fit(text.title, size, theme.TEXT, "normal", w, size * 0.55), m, y)
        for (value, label), (x, y), colour in zip(text.stats, spec.stat_positions, _STAT_COLOURS):
            fast.draw_sprite(self.fit(value, spec.stat_value, colour, "bold", spec.stat_width, spec.stat_value * 0.45), x, y)
            fast.draw_sprite(self.fit(label, spec.stat_label, theme.TEXT_MUTED, "normal", spec.stat_width,
                                      spec.stat_label * 0.7), x, y - spec.label_drop)
        return fast.finish()


_RENDERERS: OrderedDict[tuple, _CardRenderer] = OrderedDict()


def share_alt(text: ShareCardText) -> str:
    stats = text.alt_separator.join(text.alt_stat.format(value=v, label=label) for v, label in text.stats)
    name = theme.one_line(text.name)
    greeting = text.greeting.replace("{name}", name) if name else ""
    return theme.one_line(
        text.alt.format(greeting=greeting, name=name, title=text.title, kicker=text.kicker, stats=stats)
    )


def render_share_card(text: ShareCardText, size: str = "og") -> Chart:
    """A share card.  ``size``: ``"og"`` (1200×630, link previews) or ``"story"`` (1080×1920).

    The PNG is exactly that many pixels (``Chart.scale`` is 1).
    """
    if size not in _SPECS:
        raise ValueError(f"size must be one of {sorted(_SPECS)}")
    key = (size, text.brand, text.footer, text.lang)
    r = _RENDERERS.get(key)
    if r is None:
        r = _RENDERERS[key] = _CardRenderer(size, text.brand, text.footer, text.lang)
        if len(_RENDERERS) > 8:
            _RENDERERS.popitem(last=False)
    else:
        _RENDERERS.move_to_end(key)
    png = r.render(text)
    w, h = SIZES[size]
    return Chart(png=png, alt=share_alt(text), width=w, height=h, filename=f"share-{size}.png", scale=1)


def render_share_cards(text: ShareCardText, sizes: Sequence[str] = ("og", "story")) -> dict[str, Chart]:
    """Both formats at once: ``{"og": Chart, "story": Chart}``."""
    return {s: render_share_card(text, s) for s in sizes}
