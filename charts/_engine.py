"""The fast path: matplotlib Agg with a cached background, blitted data, palette PNG output.

Why: one e-mail per customer per week means one chart per customer; naive pyplot is ~8
charts/s here.  Almost everything in a per-customer chart is the same for every customer (card,
title, labels, the cohort histogram), and the changing part is a handful of bars and numbers.
A :class:`FastCanvas`

1. draws the static art once (``build`` callback) and keeps it twice: as an Agg background
   (``copy_from_bbox``) and as PNG-ready palette indices (one filter byte + one index a pixel);
2. per chart: ``restore_region`` (one memcpy), then draws the changing shapes with
   ``Artist.draw(renderer)`` — matplotlib's blitting;
3. text comes from a sprite cache: each distinct label is rasterised *once* by matplotlib's own
   text engine (libraqm shaping, hinting, anti-aliasing) on a scratch figure.  Laying out and
   rasterising text is ~0.5 ms a label in matplotlib 3.11 — more than the rest of a chart.  A
   sprite on a known solid surface (``over=``) is pasted straight into the palette indices
   (its indexed form is cached too); otherwise it is composited in Agg with ``draw_image``;
4. only the *dirty rectangles* are converted to palette indices, with a 5-bit RGB lookup
   table; rectangles known to be one solid colour (a bar's body) are plain fills;
5. encodes an 8-bit palette PNG with zlib level 3; rows that never change (above the highest
   possible label) are compressed once and the zlib state is resumed per chart.

The palette is built per canvas from the colours its art can contain: anti-aliasing ramps
between each surface and each ink drawn on it (up to 32 steps — indistinguishable from full RGB
anti-aliasing at 2×), the card's translucent corner pixels, and the most frequent other colours
of the static background.  The result is ~1/10 of an RGBA PNG and much faster to encode.
``FastCanvas.exact = True`` turns every shortcut off (everything through Agg + lookup): the
tests compare the two paths, and blitting A, B, A against a fresh A.

Not thread-safe (module-level caches): use processes (:mod:`charts.batch`).
"""

from __future__ import annotations

import itertools
import math
import sys
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.path import Path
from matplotlib.transforms import IdentityTransform

from . import _png, theme

if sys.byteorder != "little":  # pragma: no cover - the RGBA→uint32 key trick assumes it
    raise ImportError("charts._engine assumes a little-endian machine")

RAMP_STEPS = 32
_KEY_MASK = 0x1F1F1F  # 5 bits of R, G, B from a little-endian RGBA uint32, >> 3
_LUT, _FILL, _PASTE = "lut", "fill", "paste"  # per-frame operations on the palette indices
_ZLIB_HEADER = b"\x78\x5e"  # deflate, 32 KiB window, "fast" compression level (RFC 1950)
_ADLER_BASE = 65521


def _adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """Adler-32 of ``a + b`` from ``adler32(a)``, ``adler32(b)`` and ``len(b)`` (zlib's
    ``adler32_combine``, which Python's zlib module does not expose)."""
    rem = len2 % _ADLER_BASE
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % _ADLER_BASE
    sum1 = (sum1 + (adler2 & 0xFFFF) + _ADLER_BASE - 1) % _ADLER_BASE
    sum2 = (sum2 + ((adler1 >> 16) & 0xFFFF) + ((adler2 >> 16) & 0xFFFF) + _ADLER_BASE - rem) % _ADLER_BASE
    return sum1 | (sum2 << 16)


def new_figure(width: int, height: int, scale: int, transparent: bool = True) -> tuple[Figure, FigureCanvasAgg]:
    """A pyplot-free Agg figure of ``width``×``height`` CSS px at ``scale``× pixel density.

    ``dpi = 72 * scale``, so font sizes in points are CSS pixels.
    """
    dpi = 72 * scale
    fig = Figure(figsize=(width / 72, height / 72), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    if transparent:
        fig.patch.set_alpha(0.0)
    return fig, canvas


def card_patch(width_px: float, height_px: float, radius_px: float, colour: str) -> FancyBboxPatch:
    """A rounded card filling the figure, in display pixels."""
    return FancyBboxPatch(
        (0, 0), width_px, height_px,
        boxstyle=f"round,pad=0,rounding_size={radius_px}",
        transform=IdentityTransform(), facecolor=colour, edgecolor="none", linewidth=0,
    )


def text_kwargs(family: tuple[str, ...], lang: str | None, style: theme.TextStyle) -> dict:
    """Keyword arguments for a caller-text ``Text``: brand style, no mathtext, no TeX."""
    return dict(
        transform=IdentityTransform(), parse_math=False, usetex=False, fontsize=style.size,
        fontweight=style.weight, color=style.color, family=list(family),
        language=theme.raqm_language(lang),
    )


_K = 0.5522847498  # cubic Bézier handle for a quarter circle


def bars_path(x0: np.ndarray, x1: np.ndarray, y0: float | np.ndarray, y1: np.ndarray, radius: float) -> Path:
    """One compound path of bars with rounded top corners (display coordinates).

    ``y0`` (bottoms) may differ per bar; the corner radius is ``radius`` capped by half the
    width and the height.
    """
    n = len(x0)
    b = np.broadcast_to(np.asarray(y0, dtype=float), (n,))
    r = np.minimum(np.minimum(radius, (x1 - x0) / 2), y1 - b)
    h = r * _K
    xs = np.stack([x0, x0, x0, x0 + r - h, x0 + r, x1 - r, x1 - r + h, x1, x1, x1, x0], axis=1)
    ys = np.stack([b, y1 - r, y1 - r + h, y1, y1, y1, y1, y1 - r + h, y1 - r, b, b], axis=1)
    verts = np.stack([xs, ys], axis=2).reshape(-1, 2)
    one = [Path.MOVETO, Path.LINETO, Path.CURVE4, Path.CURVE4, Path.CURVE4, Path.LINETO,
           Path.CURVE4, Path.CURVE4, Path.CURVE4, Path.LINETO, Path.CLOSEPOLY]
    return Path(verts, np.tile(np.array(one, dtype=Path.code_type), n))


# --- text sprites --------------------------------------------------------------------------
class Sprite:
    """A piece of text rasterised by matplotlib: RGBA pixels and the offset from its anchor.

    Also caches its palette-index form per (palette, surface colour), for :meth:`FastCanvas.draw_sprite`
    with ``over=``.
    """

    __slots__ = ("rgba", "dx", "dy", "_indexed")

    def __init__(self, rgba: np.ndarray, dx: int, dy: int) -> None:
        self.rgba = rgba  # (h, w, 4) uint8, row 0 = *bottom* (what draw_image wants), straight alpha
        self.dx = dx  # left edge − anchor x, display px
        self.dy = dy  # bottom edge − anchor y, display px (y grows upwards)
        self._indexed: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def width(self) -> int:
        return self.rgba.shape[1]

    @property
    def height(self) -> int:
        return self.rgba.shape[0]

    def indexed(self, palette: Palette, over: str) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, mask)`` top-down: this text composited on solid ``over``, in ``palette``."""
        key = (palette.token, over)
        hit = self._indexed.get(key)
        if hit is None:
            src = self.rgba[::-1].astype(np.float32)
            a = src[:, :, 3:] / 255.0
            out = np.rint(np.asarray(theme.rgb(over), np.float32) * (1 - a) + src[:, :, :3] * a).astype(np.uint32)
            k = (out[:, :, 0] >> 3) | ((out[:, :, 1] >> 3) << 8) | ((out[:, :, 2] >> 3) << 16)
            hit = self._indexed[key] = (palette.lut[k], np.ascontiguousarray(self.rgba[::-1, :, 3] > 0))
        return hit


class _SpriteFactory:
    """Renders one text at a time on a transparent scratch figure; LRU-cached by content.

    The cache is bounded in bytes (value labels are tiny; a share card's name is ~0.5 MB).
    """

    MAX_BYTES = 48 * 2**20

    def __init__(self, scale: int) -> None:
        self.width, self.height = 1300, 240  # CSS px: wider than any e-mail chart text
        self.fig, self.canvas = new_figure(self.width, self.height, scale)
        self.px_w, self.px_h = (int(v) for v in self.canvas.get_width_height())
        margin = 24 * scale
        # anchor positions that leave the most room for each alignment
        self.anchor_x = {"left": margin, "center": self.px_w // 2, "right": self.px_w - margin}
        self.anchor_y = {"baseline": int(self.px_h * 0.3), "center": self.px_h // 2, "center_baseline": self.px_h // 2,
                         "bottom": margin, "top": self.px_h - margin}
        self.text = self.fig.text(0, 0, "", transform=IdentityTransform(), parse_math=False, usetex=False)
        self.cache: OrderedDict[tuple, Sprite | None] = OrderedDict()
        self.nbytes = 0

    def get(self, s: str, style: theme.TextStyle, ha: str, va: str, family: tuple[str, ...], lang: str | None) -> Sprite | None:
        key = (s, style, ha, va, family, lang)
        hit = self.cache.get(key, False)
        if hit is not False:
            self.cache.move_to_end(key)
            return hit
        sprite = self._render(s, style, ha, va, family, lang)
        self.cache[key] = sprite
        self.nbytes += _cost(sprite)
        while self.nbytes > self.MAX_BYTES and len(self.cache) > 1:
            self.nbytes -= _cost(self.cache.popitem(last=False)[1])
        return sprite

    def _render(self, s, style, ha, va, family, lang) -> Sprite | None:
        t = self.text
        t.set_text(s)
        t.set_fontsize(style.size)
        t.set_fontweight(style.weight)
        t.set_color(style.color)
        t.set_fontfamily(list(family))
        t.set_language(theme.raqm_language(lang))
        t.set_horizontalalignment(ha)
        t.set_verticalalignment(va)
        cx, cy = self.anchor_x[ha], self.anchor_y[va]
        t.set_position((cx, cy))
        self.canvas.draw()
        buf = np.asarray(self.canvas.buffer_rgba())
        alpha = buf[:, :, 3]
        rows = np.flatnonzero(alpha.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(alpha.any(axis=0))
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        rgba = np.ascontiguousarray(buf[r0:r1, c0:c1][::-1])
        # display y of the sprite's bottom edge is (px_h - r1)
        return Sprite(rgba, int(c0 - cx), int((self.px_h - r1) - cy))


def _cost(sprite: Sprite | None) -> int:
    # RGBA plus room for a couple of palette-index copies (1 byte index + 1 byte mask each)
    return 256 if sprite is None else sprite.rgba.nbytes * 2 + 256


_SPRITES: dict[int, _SpriteFactory] = {}


def sprites(scale: int) -> _SpriteFactory:
    factory = _SPRITES.get(scale)
    if factory is None:
        factory = _SPRITES[scale] = _SpriteFactory(scale)
    return factory


# --- palette -------------------------------------------------------------------------------
def _ramp(base: tuple[int, int, int], ink: tuple[int, int, int], steps: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, steps + 1)[1:, None]
    return np.rint(np.asarray(base) * (1 - t) + np.asarray(ink) * t)


_TOKENS = itertools.count(1)


@dataclass(frozen=True)
class Palette:
    rgba: np.ndarray  # (n, 4) uint8; translucent entries first
    chunks: bytes  # PLTE + tRNS
    lut: np.ndarray  # uint8 of size _KEY_MASK + 1: 5-bit RGB key → nearest opaque entry
    token: int = field(default_factory=lambda: next(_TOKENS))  # unique per palette object

    def index(self, colour: str) -> int:
        """The entry of an opaque palette colour (exact)."""
        r, g, b = theme.rgb(colour)
        return int(self.lut[(r >> 3) | ((g >> 3) << 8) | ((b >> 3) << 16)])

    def nearest(self, colours: np.ndarray) -> np.ndarray:
        """Exact nearest entry for ``(n, 4)`` RGBA colours (premultiplied distance)."""
        pal = self.rgba.astype(np.float32)
        col = colours.astype(np.float32)
        pal_p = np.concatenate([pal[:, :3] * pal[:, 3:] / 255, pal[:, 3:]], axis=1)
        col_p = np.concatenate([col[:, :3] * col[:, 3:] / 255, col[:, 3:]], axis=1)
        out = np.empty(len(col_p), dtype=np.uint8)
        for start in range(0, len(col_p), 4096):
            d = ((col_p[start : start + 4096, None, :] - pal_p[None, :, :]) ** 2).sum(axis=2)
            out[start : start + 4096] = d.argmin(axis=1)
        return out


def build_palette(
    surface: str,
    pairs: Iterable[tuple[str, str]],
    static_colours: tuple[np.ndarray, np.ndarray] | None = None,
    corner_alpha_steps: int = 16,
) -> Palette:
    """Palette for art on ``surface``: translucent ``surface`` (card corners), every
    ``(base, ink)`` anti-aliasing ramp, then the most frequent other colours of the static art
    (``static_colours``: distinct ``(n, 4)`` RGBA colours and their pixel counts)."""
    pairs = list(pairs)
    bg = theme.rgb(surface)
    steps = max(8, min(RAMP_STEPS, (256 - corner_alpha_steps - 1 - 8) // max(len(pairs), 1)))
    translucent = [(*bg, int(a)) for a in np.linspace(0, 255, corner_alpha_steps + 1)[:-1].round()]
    if translucent:
        translucent[0] = (0, 0, 0, 0)
    opaque: list[tuple[int, int, int]] = [bg]
    for base, ink in pairs:
        opaque.extend(tuple(int(v) for v in c) for c in _ramp(theme.rgb(base), theme.rgb(ink), steps))
    seen: set[tuple[int, ...]] = set()
    entries: list[tuple[int, int, int, int]] = []
    for c in translucent + [(*c, 255) for c in opaque]:
        if c not in seen:
            seen.add(c)
            entries.append(c)
    if len(entries) > 256:
        raise ValueError(f"palette needs {len(entries)} colours; fewer (base, ink) pairs please")
    pal = np.array(entries, dtype=np.uint8)

    if static_colours is not None and len(entries) < 256:
        # add the static art's colours that the ramps don't cover, most frequent first
        colours, counts = static_colours
        probe = Palette(pal, b"", np.empty(0, np.uint8))
        err = np.abs(pal[probe.nearest(colours)].astype(int) - colours.astype(int)).max(axis=1)
        far = np.flatnonzero(err > 6)
        far = far[np.argsort(-counts[far], kind="stable")][: 256 - len(entries)]
        if far.size:
            extra = colours[far]
            translucent_extra = extra[extra[:, 3] < 255]
            opaque_extra = extra[extra[:, 3] == 255]
            n_t = len(translucent)
            pal = np.concatenate([pal[:n_t], translucent_extra, pal[n_t:], opaque_extra]).astype(np.uint8)

    # solid colours (the surface, each ink) must map to themselves exactly: a 5-bit LUT bin
    # can also hold near-identical ramp steps, and big solid areas must not drift
    solids = [bg] + [theme.rgb(ink) for _, ink in pairs]
    lut = _build_lut(pal, solids)
    return Palette(pal, _png.palette_chunks(pal), lut)


_LUT_CACHE: OrderedDict[bytes, np.ndarray] = OrderedDict()  # 2 MB each; palettes repeat
_LUT_CACHE_SIZE = 12


def _build_lut(pal: np.ndarray, solids: Sequence[tuple[int, int, int]] = ()) -> np.ndarray:
    key = pal.tobytes() + bytes(v for c in solids for v in c)
    if key in _LUT_CACHE:
        _LUT_CACHE.move_to_end(key)
        return _LUT_CACHE[key]
    opaque = np.flatnonzero(pal[:, 3] == 255)
    levels = np.arange(32) * 8 + 4  # bin centres
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    grid = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1).astype(np.float32)
    cand = pal[opaque, :3].astype(np.float32)
    nearest = np.empty(len(grid), dtype=np.uint8)
    for start in range(0, len(grid), 4096):
        d = ((grid[start : start + 4096, None, :] - cand[None]) ** 2).sum(axis=2)
        nearest[start : start + 4096] = opaque[d.argmin(axis=1)]
    ri, gi, bi = (grid[:, 0].astype(np.int64) >> 3), (grid[:, 1].astype(np.int64) >> 3), (grid[:, 2].astype(np.int64) >> 3)
    lut = np.zeros(_KEY_MASK + 1, dtype=np.uint8)
    lut[ri | (gi << 8) | (bi << 16)] = nearest
    # exact palette colours map to themselves; solids win over ramp steps, the surface over all
    def exact(c) -> None:
        r, g, b = (int(v) for v in c[:3])
        match = np.flatnonzero((pal[:, 0] == r) & (pal[:, 1] == g) & (pal[:, 2] == b) & (pal[:, 3] == 255))
        if match.size:
            lut[(r >> 3) | ((g >> 3) << 8) | ((b >> 3) << 16)] = match[0]

    for i in opaque:
        exact(pal[i])
    for c in list(solids[1:]) + list(solids[:1]):
        exact(c)
    _LUT_CACHE[key] = lut
    if len(_LUT_CACHE) > _LUT_CACHE_SIZE:
        _LUT_CACHE.popitem(last=False)
    return lut


# --- the canvas ----------------------------------------------------------------------------
class FastCanvas:
    """A figure whose static art is drawn once; each frame blits only the changing parts.

    ``build(fig)`` adds the static artists.  ``pairs`` lists every ``(surface, ink)`` colour
    combination the *changing* art can produce (anti-aliasing ramps are made for each).

    A frame is ``begin()``; draw with ``artist.draw(canvas.renderer)`` + :meth:`mark_dirty`
    (or :meth:`draw_artist`), :meth:`mark_solid`, :meth:`draw_sprite`; then :meth:`finish`
    returns the PNG.  Everything drawn in Agg must be marked: only marked areas reach the PNG,
    and only marked areas are restored by the next ``begin()`` (``begin(full=True)`` restores
    the whole background).
    """

    #: Tests set this to True: every shortcut (solid fills, text pasted in palette space) is
    #: replaced by drawing in Agg and quantising from the buffer — the reference output.
    exact = False

    def __init__(
        self,
        width: int,
        height: int,
        scale: int,
        surface: str,
        pairs: Sequence[tuple[str, str]],
        build: Callable[[Figure], None],
        zlib_level: int = 3,
        translucent_corners: bool = True,
    ) -> None:
        self.width, self.height, self.scale = width, height, scale
        self.fig, self.canvas = new_figure(width, height, scale)
        build(self.fig)
        self.canvas.draw()
        self.renderer = self.canvas.get_renderer()
        self.px_w, self.px_h = (int(v) for v in self.canvas.get_width_height())
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        static = np.asarray(self.canvas.buffer_rgba()).view(np.uint32)[:, :, 0]
        keys, inverse, counts = np.unique(static.ravel(), return_inverse=True, return_counts=True)
        colours = keys.view(np.uint8).reshape(-1, 4)
        self.palette = build_palette(surface, pairs, (colours, counts), 16 if translucent_corners else 0)
        idx = self.palette.nearest(colours)[inverse.ravel()].reshape(self.px_h, self.px_w)
        self.bg_rows = np.zeros((self.px_h, self.px_w + 1), dtype=np.uint8)  # col 0: filter byte
        self.bg_rows[:, 1:] = idx
        self.zlib_level = zlib_level
        self.sprites = sprites(scale)
        self._gc = self.renderer.new_gc()
        # per frame: what to do to the background indices, in drawing order
        self._ops: list[tuple] = []
        # where Agg was drawn on since the last restore (None: restore everything)
        self._agg_dirty: list[tuple[int, int, int, int]] | None = None
        self._suffix_rows = 0
        self._suffixes: dict[object, tuple] = {}
        self.set_static_top(0)

    # -- per frame --
    def begin(self, full: bool = False) -> None:
        """Start a frame: put the background back where the last frames drew in Agg."""
        if full or self.exact or self._agg_dirty is None or len(self._agg_dirty) > 64:
            self.renderer.restore_region(self.background)
        else:
            right, bottom = self.px_w - 1, self.px_h - 1
            for r0, r1, c0, c1 in self._agg_dirty:  # bbox corners are inclusive, top-down
                self.renderer.restore_region(self.background, (c0, r0, min(c1, right), min(r1, bottom)), (0, 0))
        self._agg_dirty = []
        self._ops.clear()

    def _rect(self, x0: float, y0: float, x1: float, y1: float, pad: int) -> tuple[int, int, int, int] | None:
        c0 = max(math.floor(x0) - pad, 0)
        c1 = min(math.ceil(x1) + pad, self.px_w)
        r0 = max(self.px_h - math.ceil(y1) - pad, 0)
        r1 = min(self.px_h - math.floor(y0) + pad, self.px_h)
        return (r0, r1, c0, c1) if c1 > c0 and r1 > r0 else None

    def mark_dirty(self, x0: float, y0: float, x1: float, y1: float, pad: int = 2) -> None:
        """A display-coordinate box (y up) was drawn on in Agg: quantise it from the buffer."""
        if rect := self._rect(x0, y0, x1, y1, pad):
            self._ops.append((_LUT, rect))
            if self._agg_dirty is not None:
                self._agg_dirty.append(rect)

    def mark_solid(self, x0: int, y0: int, x1: int, y1: int, colour: str) -> None:
        """A pixel-aligned box is exactly ``colour`` (a bar's body): filled in the palette
        indices, no lookup.  It need not be drawn in Agg at all (outside :attr:`exact` mode)."""
        if self.exact:
            self.mark_dirty(x0, y0, x1, y1, pad=0)
        elif rect := self._rect(x0, y0, x1, y1, 0):
            self._ops.append((_FILL, rect, self.palette.index(colour)))

    def draw_artist(self, artist) -> None:
        """Draw one (animated) artist on top of the background and mark its extent dirty."""
        artist.draw(self.renderer)
        bb = artist.get_window_extent(self.renderer)
        self.mark_dirty(bb.x0, bb.y0, bb.x1, bb.y1)

    def sprite(self, s: str, style: theme.TextStyle, ha: str = "center", va: str = "baseline", *, family: tuple[str, ...], lang: str | None = None) -> Sprite | None:
        return self.sprites.get(s, style, ha, va, family, lang)

    def draw_sprite(self, sprite: Sprite | None, x: float, y: float, over: str | None = None) -> None:
        """Composite a text sprite with its anchor at display ``(x, y)`` (rounded to pixels).

        ``over``: the text lies on that solid colour only (layout guarantees it) — then it is
        pasted straight into the palette indices (cached per sprite), skipping Agg and the
        lookup.  Otherwise it is composited in Agg by ``renderer.draw_image``.
        """
        if sprite is None:
            return
        left = int(round(x)) + sprite.dx
        bottom = int(round(y)) + sprite.dy
        if over is None or self.exact:
            self.renderer.draw_image(self._gc, left, bottom, sprite.rgba)
            self.mark_dirty(left, bottom, left + sprite.width, bottom + sprite.height, pad=0)
            return
        idx, mask = sprite.indexed(self.palette, over)
        r0 = self.px_h - (bottom + sprite.height)
        c0 = left
        # clip to the canvas
        sr0, sc0 = max(0, -r0), max(0, -c0)
        r1, c1 = min(r0 + sprite.height, self.px_h), min(c0 + sprite.width, self.px_w)
        r0, c0 = max(r0, 0), max(c0, 0)
        if r1 > r0 and c1 > c0:
            h, w = r1 - r0, c1 - c0
            self._ops.append((_PASTE, (r0, r1, c0, c1), idx[sr0 : sr0 + h, sc0 : sc0 + w], mask[sr0 : sr0 + h, sc0 : sc0 + w]))

    def set_static_top(self, rows: int) -> None:
        """Promise that frames normally leave the top ``rows`` pixel rows untouched.

        Their compressed form is then computed once: each frame resumes a copy of that zlib
        state instead of compressing those rows again.  A frame that does draw there (checked
        from the operations) falls back to compressing everything.
        """
        rows = max(0, min(int(rows), self.px_h))
        self._prefix_rows = rows
        self._prefix = zlib.compressobj(self.zlib_level, zlib.DEFLATED, -15)  # raw deflate
        self._prefix_head = self._prefix.compress(self.bg_rows[:rows])
        self._prefix_adler = zlib.adler32(self.bg_rows[:rows])

    def set_static_bottom(self, rows: int) -> None:
        """Say that the bottom ``rows`` pixel rows only depend on the ``bottom_key`` given to
        :meth:`finish` (e.g. which category label is highlighted).  Their compressed form is
        cached per key — and reused only after checking the rows are byte-identical."""
        self._suffix_rows = max(0, min(int(rows), self.px_h - self._prefix_rows))
        self._suffixes.clear()

    def finish(self, bottom_key: object = None) -> bytes:
        """Apply the frame's operations to a copy of the background indices; encode the PNG."""
        rows = self.bg_rows.copy()
        top = self.px_h
        if self._ops:
            u32 = np.asarray(self.renderer.buffer_rgba()).view(np.uint32)[:, :, 0]
            lut = self.palette.lut
            for op in self._ops:
                r0, r1, c0, c1 = op[1]
                target = rows[r0:r1, c0 + 1 : c1 + 1]
                if op[0] is _LUT:
                    key = u32[r0:r1, c0:c1] >> 3
                    key &= _KEY_MASK
                    np.take(lut, key, out=target, mode="clip")
                elif op[0] is _FILL:
                    target[...] = op[2]
                else:
                    np.copyto(target, op[2], where=op[3])
                top = min(top, r0)
        return _png.assemble(self.px_w, self.px_h, self.palette.chunks, self._deflate(rows, top, bottom_key))

    def _deflate(self, rows: np.ndarray, top: int, bottom_key: object) -> bytes:
        """The zlib stream of ``rows``: cached static top rows + fresh middle + cached bottom.

        Raw deflate pieces joined at byte boundaries (a sync flush ends the middle; the bottom
        piece is an independent deflate stream ending with the final block) and the Adler-32
        of the whole combined arithmetically from the pieces' — a valid single zlib stream.
        """
        if top < self._prefix_rows:  # this frame drew into the "static" top: no shortcut
            return zlib.compress(rows, self.zlib_level)
        start, end = self._prefix_rows, self.px_h - self._suffix_rows
        comp = self._prefix.copy()
        middle = rows[start:end]
        adler = zlib.adler32(middle, self._prefix_adler)
        suffix = None
        if self._suffix_rows and bottom_key is not None:
            tail = rows[end:]
            suffix = self._suffixes.get(bottom_key)
            if suffix is None or not np.array_equal(suffix[0], tail):
                c = zlib.compressobj(self.zlib_level, zlib.DEFLATED, -15)
                suffix = (tail.copy(), c.compress(tail) + c.flush(), zlib.adler32(tail), tail.nbytes)
                if len(self._suffixes) >= 64:
                    self._suffixes.pop(next(iter(self._suffixes)))
                self._suffixes[bottom_key] = suffix
        if suffix is None:
            rest = rows[end:]
            body = self._prefix_head + comp.compress(middle) + comp.compress(rest) + comp.flush()
            adler = zlib.adler32(rest, adler)
        else:
            body = self._prefix_head + comp.compress(middle) + comp.flush(zlib.Z_SYNC_FLUSH) + suffix[1]
            adler = _adler32_combine(adler, suffix[2], suffix[3])
        return _ZLIB_HEADER + body + adler.to_bytes(4, "big")

    def rgba(self) -> np.ndarray:
        """The current Agg buffer (for tests: the pre-quantisation image)."""
        return np.asarray(self.renderer.buffer_rgba()).copy()
