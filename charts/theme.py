"""The valuemail brand look for every chart: one palette, fonts, sizes.

Pure code (matplotlib only, never pyplot, no Dagster).

Design rules the charts follow:

* **One palette.** Charts sit on a deep-indigo card (:data:`NIGHT`) with rounded, transparent
  corners, so the same PNG reads well in a light e-mail body *and* in a dark-mode client (the
  card carries its own background; no thin grey text on white anywhere).  Data is teal
  (:data:`TEAL`), the one thing we want the eye to land on is amber (:data:`AMBER`), text is
  white or a light lavender (:data:`TEXT_MUTED`, contrast 9:1 on the card — well above WCAG
  AA 4.5:1).
* **Sizes in CSS pixels.** Figures use ``dpi = 72 * scale``, so a font size of ``14`` (points)
  is exactly 14 CSS px in the e-mail whatever the pixel density; e-mail charts are 600×300 CSS
  px rendered at ``scale=2`` (1200×600 PNG) for sharp phone / retina screens.
* **Fonts.** DejaVu Sans is always there (matplotlib ships it); when Noto Sans CJK is installed
  (Debian ``fonts-noto-cjk``) it is registered as a per-glyph fallback, and becomes the first
  choice for Chinese / Japanese / Korean so Han characters use the right regional forms.
  Characters no installed font can draw (emoji, private-use…) are dropped from caller text
  instead of turning into "tofu" boxes: see :func:`drawable`.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from matplotlib import font_manager, ft2font
from matplotlib.colors import to_rgb

log = logging.getLogger(__name__)
_warned_missing: set[tuple[str, ...]] = set()

# --- palette -------------------------------------------------------------------------------
NIGHT = "#1E1B4B"  # card background: deep indigo
NIGHT_DEEP = "#13103A"  # share-card base, a shade darker
INDIGO = "#6366F1"  # brand accent (buttons, links, shapes on the share card)
VIOLET = "#A78BFA"  # secondary accent for shapes
TEAL = "#2DD4BF"  # data
AMBER = "#FBBF24"  # highlight: busiest day, "you are here"
CORAL = "#FB7185"  # third accent, share card only
TEXT = "#FFFFFF"  # primary text on the card
TEXT_MUTED = "#C7C4F2"  # secondary text on the card (lavender, 9.4:1 on NIGHT)
TRACK = "#3A3577"  # quiet data: zero-stubs, the peer distribution, baselines
TRACK_LIGHT = "#5B55A8"  # a step brighter than TRACK, for larger quiet areas

#: Every colour above, by name (the e-mail templates may want the same values).
PALETTE: dict[str, str] = {
    "night": NIGHT,
    "night_deep": NIGHT_DEEP,
    "indigo": INDIGO,
    "violet": VIOLET,
    "teal": TEAL,
    "amber": AMBER,
    "coral": CORAL,
    "text": TEXT,
    "text_muted": TEXT_MUTED,
    "track": TRACK,
    "track_light": TRACK_LIGHT,
}

# --- geometry ------------------------------------------------------------------------------
#: e-mail chart size in CSS pixels and pixel density
EMAIL_WIDTH = 600
EMAIL_HEIGHT = 300
SCALE = 2
#: rounded corners of the chart card, CSS px
CARD_RADIUS = 14

#: Open Graph / link preview and vertical "story" share-card sizes, in real pixels
OG_SIZE = (1200, 630)
STORY_SIZE = (1080, 1920)


def rgb(colour: str) -> tuple[int, int, int]:
    """``"#RRGGBB"`` → ``(r, g, b)`` in 0..255."""
    r, g, b = to_rgb(colour)
    return round(r * 255), round(g * 255), round(b * 255)


def relative_luminance(colour: str) -> float:
    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in to_rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(fg: str, bg: str) -> float:
    """WCAG contrast ratio of two colours (1..21)."""
    a, b = sorted((relative_luminance(fg), relative_luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


# --- fonts ---------------------------------------------------------------------------------
LATIN_FAMILY = "DejaVu Sans"
CJK_FAMILY = "Noto Sans CJK SC"
_CJK_FAMILY_BY_LANG = {"zh": "Noto Sans CJK SC", "ja": "Noto Sans CJK JP", "ko": "Noto Sans CJK KR"}
_CJK_TRADITIONAL = ("zh-hant", "zh-tw", "zh-hk", "zh-mo")

#: where Debian / Ubuntu / Fedora / Homebrew put Noto Sans CJK (plus $VALUEMAIL_CJK_FONT)
_CJK_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Bold.ttc",
    "/opt/homebrew/share/fonts/NotoSansCJK-Regular.ttc",
)


@functools.cache
def cjk_available() -> bool:
    """Register Noto Sans CJK with matplotlib (once per process) and say whether it is there.

    Registered explicitly because matplotlib's font cache is built once: a font installed
    after that (``apt-get install fonts-noto-cjk`` by the bootstrap) would otherwise be missed.
    """
    candidates = list(_CJK_CANDIDATES)
    if extra := os.environ.get("VALUEMAIL_CJK_FONT"):
        candidates[:0] = extra.split(os.pathsep)
    known = {Path(f.fname).resolve() for f in font_manager.fontManager.ttflist}
    for path in candidates:
        p = Path(path)
        if p.is_file() and p.resolve() not in known:
            try:
                font_manager.fontManager.addfont(str(p))
            except (OSError, RuntimeError, ValueError):  # unreadable font file: skip it
                continue
    names = {f.name for f in font_manager.fontManager.ttflist}
    return CJK_FAMILY in names


def font_family(lang: str | None = None) -> tuple[str, ...]:
    """The font fallback list for text in language ``lang`` (a BCP 47 tag such as ``zh-CN``).

    Latin-first (DejaVu Sans covers Hungarian ő/ű, Greek, Cyrillic, Hebrew, Arabic) with Noto
    Sans CJK as per-glyph fallback; CJK-first for ``zh``/``ja``/``ko`` when Noto is installed.
    """
    if not cjk_available():
        return (LATIN_FAMILY,)
    tag = (lang or "").lower().replace("_", "-")
    primary = tag.split("-", 1)[0]
    cjk = _CJK_FAMILY_BY_LANG.get(primary, CJK_FAMILY)
    if primary == "zh" and tag.startswith(_CJK_TRADITIONAL):
        cjk = "Noto Sans CJK TC"
    if primary in _CJK_FAMILY_BY_LANG:
        return (cjk, LATIN_FAMILY)
    return (LATIN_FAMILY, cjk)


def raqm_language(lang: str | None) -> str | None:
    """The language tag handed to matplotlib's text shaper (libraqm), or None."""
    if not lang:
        return None
    return lang.replace("_", "-")


@functools.cache
def _charmap(family: str, weight: str) -> frozenset[int]:
    prop = font_manager.FontProperties(family=family, weight=weight)
    path = font_manager.findfont(prop, fallback_to_default=False)
    face = getattr(path, "face_index", 0)
    return frozenset(ft2font.FT2Font(str(getattr(path, "path", path)), face_index=face).get_charmap())


@functools.cache
def _coverage(families: tuple[str, ...], weight: str) -> frozenset[int]:
    covered: set[int] = set()
    for family in families:
        try:
            covered |= _charmap(family, weight)
        except ValueError:  # family not installed
            continue
    return frozenset(covered)


# breaking whitespace only: no-break spaces (Babel's digit group separators, e.g. "1\u00a0200"
# in Hungarian) are kept
_SPACES = re.compile(r"[ \t\n\r\f\v\x1c-\x1f\x85\u1680\u2000-\u200a\u2028\u2029\u205f\u3000]+")


def drawable(text: str, families: tuple[str, ...], weight: str = "normal") -> str:
    """Caller text made safe to draw: one line, no control characters, no glyphs we can't draw.

    Line breaks and tabs become spaces (a name with CR/LF stays on one line), control and format
    characters are removed, and so is anything none of ``families`` has a glyph for (emoji,
    private-use) — matplotlib would draw an empty box for those.  Combining marks follow their
    base character.  Mathtext is never involved: every caller string is drawn with
    ``parse_math=False``.
    """
    covered = _coverage(families, weight)
    out = []
    for ch in _SPACES.sub(" ", unicodedata.normalize("NFC", text)):
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Co", "Cn"):
            continue
        if cat == "Cf" and ch not in "\u200c\u200d":  # keep ZWNJ/ZWJ for Persian / Indic shaping
            continue
        if ch == " " or ord(ch) in covered:
            out.append(ch)
        elif cat == "Zs":  # a space the fonts lack (e.g. narrow no-break): a plain space
            out.append(" ")
        elif cat.startswith("L") and families not in _warned_missing:  # letters, not emoji
            _warned_missing.add(families)
            log.warning("charts: no installed font draws %r (U+%04X); dropped. For Chinese, Japanese or "
                        "Korean text install Noto Sans CJK (Debian: fonts-noto-cjk).", ch, ord(ch))
    return "".join(out).strip()


def one_line(text: str) -> str:
    """Alt text hygiene: NFC, no control / bidi-override characters, every run of whitespace
    (no-break spaces too, as the e-mail's plain-text part writes them) one space, trimmed."""
    out = []
    for ch in " ".join(unicodedata.normalize("NFC", text).split()):
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Co", "Cn"):
            continue
        if cat == "Cf" and ch not in "\u200c\u200d":
            continue
        out.append(ch)
    return " ".join("".join(out).split())


@dataclass(frozen=True, slots=True)
class TextStyle:
    """Font size (CSS px), weight and colour of one kind of chart text."""

    size: float
    color: str
    weight: str = "normal"


# Text styles used by the e-mail charts, sizes in CSS px.  A 600 px e-mail is shown ~57 % wide
# on a 375 px phone, so 18 px here is ~10 px on the phone's screen: the floor for anything the
# reader needs; numbers and the title are bigger.
TITLE = TextStyle(22, TEXT, "bold")
AXIS = TextStyle(18, TEXT_MUTED)
VALUE = TextStyle(20, TEXT, "bold")
VALUE_HIGHLIGHT = TextStyle(24, AMBER, "bold")
NOTE = TextStyle(22, TEXT_MUTED, "bold")
