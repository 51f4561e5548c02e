"""Charts: valid PNGs at 2×, alt text, determinism, blitting correctness, hostile input.

Every rendered sample is written to ``test-artifacts/charts/`` (git-ignored) to look at.
"""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import charts
from charts import (
    BarLabels,
    Chart,
    PeerLabels,
    ShareCardText,
    format_count,
    position_in,
    render_many,
    render_peer,
    render_share_card,
    render_weekly,
    render_year,
    theme,
)
from charts import _engine, bars

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "charts"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

WEEK = [12, 5, 8, 31, 20, 3, 0]
WEEK_B = [40, 2, 0, 7, 9, 33, 18]
ZH = BarLabels(
    categories=("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    names=("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
    title="每天完成的任务",
    alt="{title}：{values}。最忙的一天：{top}（{top_value}）。",
    alt_separator="，",
    alt_empty="{title}：本周没有任务。",
    empty="这周很安静",
    lang="zh-CN",
)
HU = BarLabels(
    categories=("H", "K", "Sze", "Cs", "P", "Szo", "V"),
    names=("hétfő", "kedd", "szerda", "csütörtök", "péntek", "szombat", "vasárnap"),
    title="Elvégzett feladatok naponta",
    alt="{title}: {values}. A legaktívabb nap: {top} ({top_value}).",
    empty="Csendes hét",
    lang="hu",
)
COUNTS = [3, 10, 25, 48, 70, 82, 75, 60, 44, 30, 20, 12, 8, 5, 3, 2]
EDGES = list(range(0, 170, 10))
CARD = ShareCardText(
    name="Anna",
    title="your 2026 in valuemail",
    kicker="2026 · WRAPPED",
    stats=(("1,284", "tasks done"), ("312 h", "saved"), ("Top 5%", "on the Pro plan")),
    footer="valuemail.example",
)
HOSTILE_NAMES = [
    "<script>alert(1)</script>",
    '"><mj-image src="https://evil.example/x.png">',
    "Eve\r\nBcc: victim@example.com",
    "Zoë 😀🎉👩‍👩‍👧",
    "مريم",
    "שׂרה",
    "$x^2$ \\frac{1}{0} $",
    "A" * 300,
    "",
    "\u202eevil\u202c",
]


def save(chart: Chart, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.write_bytes(chart.png)
    return path


def decode(chart: Chart) -> Image.Image:
    assert chart.png.startswith(PNG_SIGNATURE)
    assert b"<svg" not in chart.png[:200]
    img = Image.open(io.BytesIO(chart.png))
    img.load()
    assert img.format == "PNG"
    return img


def rgba(chart: Chart) -> np.ndarray:
    return np.asarray(decode(chart).convert("RGBA")).astype(np.int16)


def check_png(chart: Chart, css_w: int, css_h: int, scale: int) -> Image.Image:
    img = decode(chart)
    assert (chart.width, chart.height, chart.scale) == (css_w, css_h, scale)
    assert img.size == (css_w * scale, css_h * scale) == (chart.pixel_width, chart.pixel_height)
    assert chart.filename.endswith(".png") and chart.content_type == "image/png"
    assert chart.alt.strip()
    return img


def colour_mask(arr: np.ndarray, colour: str, tol: int = 12) -> np.ndarray:
    r, g, b = theme.rgb(colour)
    return (np.abs(arr[..., 0] - r) <= tol) & (np.abs(arr[..., 1] - g) <= tol) & (np.abs(arr[..., 2] - b) <= tol)


# --- weekly ---------------------------------------------------------------------------------
def test_weekly_chart_is_a_2x_png_with_alt_text():
    chart = render_weekly(WEEK)
    save(chart, "weekly_en.png")
    img = check_png(chart, 600, 300, 2)
    assert img.mode == "P"  # palette PNG: small and fast
    assert len(chart.png) < 30_000
    assert chart.alt == (
        "Tasks per day: Monday 12, Tuesday 5, Wednesday 8, Thursday 31, Friday 20, Saturday 3, Sunday 0. "
        "Busiest day: Thursday (31)."
    )


def test_weekly_highlights_the_busiest_day_only():
    arr = rgba(render_weekly(WEEK))
    amber = colour_mask(arr, theme.AMBER, tol=4)
    teal = colour_mask(arr, theme.TEAL, tol=4)
    cols = np.flatnonzero(amber.any(axis=0))
    # the amber bar sits in the 4th of 7 slots (Thursday)
    slot = (600 - 2 * 26) * 2 / 7
    assert 26 * 2 + 3 * slot <= cols.min() and cols.max() <= 26 * 2 + 4 * slot
    # bar areas are proportional to the values: teal = Mon+Tue+Wed+Fri+Sat, Sunday (0) a stub
    assert teal.sum() / amber.sum() == pytest.approx((12 + 5 + 8 + 20 + 3) / 31, rel=0.08)


def test_weekly_card_has_transparent_rounded_corners_and_readable_colours():
    arr = rgba(render_weekly(WEEK))
    assert arr[0, 0, 3] == 0 and arr[-1, -1, 3] == 0  # corners show the e-mail background
    assert arr[300, 600, 3] == 255
    assert tuple(arr[300, 600, :3]) in {theme.rgb(theme.NIGHT), theme.rgb(theme.TEAL), theme.rgb(theme.AMBER)}
    for fg in (theme.TEXT, theme.TEXT_MUTED, theme.AMBER, theme.TEAL):
        assert theme.contrast_ratio(fg, theme.NIGHT) >= 7, fg


def test_weekly_is_deterministic_and_survives_a_cache_reset():
    first = render_weekly(WEEK).png
    assert render_weekly(WEEK).png == first
    charts.clear_caches()
    assert render_weekly(WEEK).png == first


def test_cached_renderer_leaves_no_stale_bars():
    charts.clear_caches()
    fresh_a = render_weekly(WEEK)
    fresh_b = render_weekly(WEEK_B)
    again_a = render_weekly(WEEK)
    assert np.abs(rgba(fresh_a) - rgba(fresh_b)).max() > 100  # the two weeks do differ
    assert again_a.png == fresh_a.png
    # and against a renderer that never saw B
    charts.clear_caches()
    assert np.abs(rgba(render_weekly(WEEK)) - rgba(again_a)).sum() == 0
    # the same for every kind of per-customer chart
    for render, a, b in (
        (render_year, list(range(1, 13)), [5] * 11 + [90]),
        (lambda v: render_peer(COUNTS, EDGES, v, PeerLabels(headline=f"h{v}")), 97, 3),
    ):
        charts.clear_caches()
        fresh = render(a).png
        render(b)
        assert render(a).png == fresh


def test_palette_quantisation_matches_the_agg_render(monkeypatch):
    """The PNG (palette) is visually the matplotlib Agg image it was made from."""
    charts.clear_caches()
    monkeypatch.setattr(_engine.FastCanvas, "exact", True)  # everything drawn in Agg first
    chart = render_weekly(WEEK)
    renderer = next(iter(bars._RENDERERS.values()))
    agg = renderer.fast.rgba().astype(np.int16)
    png = rgba(chart)
    opaque = agg[..., 3] == 255
    diff = np.abs(png[..., :3] - agg[..., :3])[opaque]
    assert diff.mean() < 0.5
    assert np.percentile(diff.max(axis=1), 99.9) <= 16  # anti-aliased edges may move a ramp step


@pytest.mark.parametrize("kind", ["weekly", "year", "peer", "all_zero"])
def test_fast_shortcuts_match_the_exact_path(monkeypatch, kind):
    """Solid fills and text pasted in palette space give what Agg + quantisation gives."""
    render = {
        "weekly": lambda: render_weekly(WEEK),
        "year": lambda: render_year(list(range(1, 13))),
        "peer": lambda: render_peer(COUNTS, EDGES, 97, PeerLabels(headline="Busier than 82% of teams")),
        "all_zero": lambda: render_weekly([0] * 7),
    }[kind]
    charts.clear_caches()
    fast = rgba(render())
    charts.clear_caches()
    monkeypatch.setattr(_engine.FastCanvas, "exact", True)
    exact = rgba(render())
    diff = np.abs(fast - exact).max(axis=2)
    assert diff.mean() < 0.05
    assert np.percentile(diff, 99.9) <= 20


def test_text_sprites_match_matplotlib_text_drawing():
    """Blitting a cached text sprite looks like drawing the Text artist there directly."""
    charts.clear_caches()
    render_weekly(WEEK)
    fast = next(iter(bars._RENDERERS.values())).fast
    family = theme.font_family("en")
    style = theme.VALUE
    x, y = 400, 300
    fast.begin(full=True)
    text = fast.fig.text(x, y, "1,234", ha="center", va="baseline",
                         **_engine.text_kwargs(family, "en", style))
    text.draw(fast.renderer)
    direct = fast.rgba().astype(np.int16)
    text.remove()
    fast.begin(full=True)
    fast.draw_sprite(fast.sprite("1,234", style, "center", "baseline", family=family, lang="en"), x, y)
    blitted = fast.rgba().astype(np.int16)
    fast.begin()
    diff = np.abs(direct - blitted)
    assert (direct != rgba_background(fast)).any()  # the text was drawn at all
    assert diff.max() <= 40 and diff.mean() < 0.05


def rgba_background(fast) -> np.ndarray:
    fast.begin(full=True)
    return fast.rgba().astype(np.int16)


def test_all_zero_week_and_zero_days():
    chart = render_weekly([0] * 7)
    save(chart, "weekly_all_zero.png")
    check_png(chart, 600, 300, 2)
    assert chart.alt == "Tasks per day: no tasks this week."
    arr = rgba(chart)
    assert not colour_mask(arr, theme.AMBER, tol=4).any()  # nothing highlighted
    assert colour_mask(arr, theme.TRACK, tol=2).sum() > 1000  # zero stubs are drawn
    one = render_weekly([0, 0, 0, 1, 0, 0, 0])
    assert "Busiest day: Thursday (1)" in one.alt


def test_huge_numbers_are_compact_and_fit():
    values = [1_234_567_890, 999_999, 45_000, 12_345, 2_000_000_000_000, 7, 0]
    chart = render_weekly(values)
    save(chart, "weekly_huge.png")
    check_png(chart, 600, 300, 2)
    assert "Friday (2T)" in chart.alt and "Monday 1.2B" in chart.alt
    assert format_count(999_999) == "1M" and format_count(999_950_000) == "1B"
    assert format_count(2.5) == "2.5" and format_count(0) == "0" and format_count(12_345) == "12.3k"
    assert format_count(9_999) == "9,999" and format_count(10_000) == "10k" and format_count(3e15) == "3000T"


def test_ties_highlight_every_busiest_day():
    chart = render_weekly([3, 3, 1, 0, 3, 2, 1])
    assert chart.alt.endswith("Busiest days: Monday, Tuesday, Friday (3 each).")  # ties: all named, "each"


def test_localised_labels_and_values_chinese_and_hungarian():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph warns: fail on it
        zh = render_weekly(WEEK, ZH)
        hu = render_weekly([1200, 1500, 800, 3100, 2000, 300, 0], HU,
                           value_labels=["1 200", "1 500", "800", "3 100", "2 000", "300", "0"])
    save(zh, "weekly_zh.png")
    save(hu, "weekly_hu.png")
    check_png(zh, 600, 300, 2)
    assert zh.alt == "每天完成的任务：星期一 12，星期二 5，星期三 8，星期四 31，星期五 20，星期六 3，星期日 0。最忙的一天：星期四（31）。"
    assert hu.alt.endswith("A legaktívabb nap: csütörtök (3 100).")
    assert render_weekly([0] * 7, ZH).alt == "每天完成的任务：本周没有任务。"
    if theme.cjk_available():
        # the Chinese labels really drew (no tofu, no dropped glyphs): more white/lavender ink than Latin
        assert theme.drawable("周四", theme.font_family("zh-CN")) == "周四"


def test_cjk_font_is_registered_when_installed():
    fam = theme.font_family("zh-CN")
    if not theme.cjk_available():
        assert fam == ("DejaVu Sans",)
        pytest.skip("Noto Sans CJK not installed (scripts/bootstrap --browser installs fonts-noto-cjk)")
    assert fam[0] == "Noto Sans CJK SC"
    assert theme.font_family("hu") == ("DejaVu Sans", "Noto Sans CJK SC")
    assert theme.font_family("zh-TW")[0] == "Noto Sans CJK TC"


def test_bad_input_is_refused():
    for bad in ([1, 2, 3], [1, 2, 3, 4, 5, 6, -1], [1, 2, 3, 4, 5, 6, float("nan")], [0] * 8):
        with pytest.raises(ValueError):
            render_weekly(bad)
    with pytest.raises(ValueError):
        render_weekly(WEEK, value_labels=["1"])
    with pytest.raises(ValueError):
        render_weekly(WEEK, BarLabels(categories=("a", "b")))


def test_value_labels_with_mathtext_and_markup_are_drawn_literally():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chart = render_weekly(WEEK, value_labels=["$x$", "<b>", "5\r\n", "$", "\\alpha", "8", "0"])
    check_png(chart, 600, 300, 2)
    assert "Monday $x$, Tuesday <b>, Wednesday 5, Thursday $" in chart.alt


def test_week_labels_are_tuples_and_hashable():
    labels = BarLabels(categories=["H", "K", "Sze", "Cs", "P", "Szo", "V"])
    assert isinstance(labels.categories, tuple)
    hash(labels)
    assert render_weekly(WEEK, labels).alt.startswith(": H 12")  # no title given: still formats


# --- year -----------------------------------------------------------------------------------
def test_year_chart():
    values = [120, 98, 310, 200, 150, 160, 170, 180, 190, 200, 210, 50]
    chart = render_year(values)
    save(chart, "year_en.png")
    check_png(chart, 600, 300, 2)
    assert chart.filename == "year-by-month.png"
    assert chart.alt.startswith("Tasks per month: January 120, February 98, March 310")
    assert chart.alt.endswith("Best month: March (310).")
    assert len(chart.png) < 30_000
    zero = render_year([0] * 12)
    save(zero, "year_zero.png")
    assert zero.alt == "Tasks per month: no tasks this year."
    with pytest.raises(ValueError):
        render_year(WEEK)


# --- peer -----------------------------------------------------------------------------------
def test_peer_chart_marks_the_customer():
    labels = PeerLabels(headline="Busier than 82% of teams on your plan")
    chart = render_peer(COUNTS, EDGES, 97, labels)
    save(chart, "peer_en.png")
    check_png(chart, 600, 300, 2)
    assert chart.alt.startswith("Busier than 82% of teams on your plan")
    assert len(chart.png) < 30_000
    arr = rgba(chart)
    amber_cols = np.flatnonzero(colour_mask(arr, theme.AMBER, tol=4).any(axis=0))
    x = 2 * (26 + (600 - 52) * position_in(EDGES, 97) / len(COUNTS))
    assert amber_cols.min() < x < amber_cols.max()  # stem, pill and bucket are around the value
    teal_cols = np.flatnonzero(colour_mask(arr, theme.TEAL, tol=4).any(axis=0))
    assert teal_cols.max() < x  # buckets below the customer are teal, none above


def test_peer_chart_edges_and_localised():
    hu = PeerLabels(headline="Kevesebb feladat, mint a csapatok 95%-ánál — de ez csak a kezdet, hajrá!",
                    you="Te", low="Kevesebb feladat", high="Több feladat", lang="hu",
                    alt="{headline} Az ábra a hasonló csapatok eloszlását mutatja.")
    low = render_peer(COUNTS, EDGES, -5, hu)  # below the first edge: clamped
    save(low, "peer_hu_low.png")
    top = render_peer(COUNTS, EDGES, 10_000, PeerLabels(headline="Top 1%"))
    save(top, "peer_top.png")
    zh = render_peer(COUNTS, EDGES, 55, PeerLabels(headline="你比同套餐 62% 的团队更忙", you="你",
                                                   low="较少", high="较多", lang="zh-CN"))
    save(zh, "peer_zh.png")
    for c in (low, top, zh):
        check_png(c, 600, 300, 2)
    assert low.alt.endswith("eloszlását mutatja.")


def test_peer_refuses_small_cohorts_and_bad_buckets():
    with pytest.raises(ValueError, match="smaller than the minimum"):
        render_peer([10, 10, 9], [0, 1, 2, 3], 1, PeerLabels(headline="x"))
    assert render_peer([10, 10, 9], [0, 1, 2, 3], 1, PeerLabels(headline="x"), min_cohort=20).png
    with pytest.raises(ValueError):
        render_peer([30, 30], [0, 1], 1, PeerLabels(headline="x"))
    with pytest.raises(ValueError):
        render_peer([30, -1, 30], [0, 1, 2, 3], 1, PeerLabels(headline="x"))
    with pytest.raises(ValueError):
        position_in([0, 2, 1], 1)
    assert position_in([0, 10, 20], 15) == 1.5
    assert position_in([0, 10, 20], 20) == 2.0
    assert position_in([0, 10, 20], -3) == 0.0


# --- share cards ----------------------------------------------------------------------------
@pytest.mark.parametrize("size, px", [("og", (1200, 630)), ("story", (1080, 1920))])
def test_share_cards(size, px):
    chart = render_share_card(CARD, size)
    save(chart, f"share_{size}.png")
    img = check_png(chart, *px, 1)
    assert img.size == px
    assert chart.alt == "Anna, your 2026 in valuemail: 1,284 tasks done, 312 h saved, Top 5% on the Pro plan."
    assert len(chart.png) < 150_000
    arr = rgba(chart)
    assert (arr[..., 3] == 255).all()  # full bleed: platforms crop / round it themselves


def test_share_card_in_chinese_and_hungarian():
    zh = ShareCardText(name="王小明", greeting="{name}，", title="你的 2026 年度回顾", kicker="2026 · 年度总结",
                       stats=(("1,284", "项任务"), ("312 小时", "节省时间")), lang="zh-CN",
                       alt="{greeting}{title}：{stats}。", alt_separator="，", alt_stat="{value}{label}")
    hu = ShareCardText(name="Őrsi Ödön", title="a 2026-os éved a valuemailben", kicker="2026 · ÉVÉRTÉKELŐ",
                       stats=(("1 284", "elvégzett feladat"), ("312 óra", "megspórolt idő"), ("Top 5%", "a Pro csomagban")),
                       lang="hu")
    for name, text in (("zh", zh), ("hu", hu)):
        for size in ("og", "story"):
            chart = render_share_card(text, size)
            save(chart, f"share_{size}_{name}.png")
            decode(chart)
    assert render_share_card(zh).alt == "王小明，你的 2026 年度回顾：1,284项任务，312 小时节省时间。"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_share_card_hostile_names(name):
    text = ShareCardText(name=name, title="your 2026 in valuemail", stats=(("1", "task"),))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing-glyph or mathtext warnings either
        chart = render_share_card(text, "og")
    decode(chart)
    assert "\r" not in chart.alt and "\n" not in chart.alt and "\u202e" not in chart.alt
    assert not chart.alt.startswith((",", " "))
    safe = "".join(c if c.isalnum() else "_" for c in name)[:20] or "empty"
    save(chart, f"share_hostile_{safe}.png")


def test_no_break_spaces_in_value_labels():
    """Babel groups digits with (narrow) no-break spaces in many locales: drawn as such, and the
    alt text writes them as plain spaces, like the e-mail's text part."""
    labels = ["1\u00a0200", "1\u202f500", "800", "3\u00a0100", "2\u00a0000", "300", "0"]
    chart = render_weekly([1200, 1500, 800, 3100, 2000, 300, 0], HU, value_labels=labels)
    assert "hétfő 1 200, kedd 1 500" in chart.alt
    assert chart.alt == bars.bar_alt(np.array([1200, 1500, 800, 3100, 2000, 300, 0.0]), HU, labels)
    fam = theme.font_family("hu")
    assert theme.drawable("1\u00a0200", fam) == "1\u00a0200"
    assert theme.one_line(" a\r\n b\u00a0c\t ") == "a b c"


def test_drawable_cleans_caller_text():
    fam = theme.font_family(None)
    assert theme.drawable("Eve\r\nBcc: x", fam) == "Eve Bcc: x"
    assert theme.drawable("Zoë 🚀✨", fam) == "Zoë"  # DejaVu has no rocket / sparkles: dropped, not tofu
    assert theme.drawable("a\u202eb\x00c", fam) == "abc"
    assert theme.drawable("$x^2$", fam) == "$x^2$"


def test_share_card_validation():
    with pytest.raises(ValueError):
        ShareCardText(name="a", title="b", stats=())
    with pytest.raises(ValueError):
        render_share_card(CARD, "square")


def parse_png(data: bytes) -> dict[bytes, bytes]:
    """Strict chunk walk: CRCs checked, IDATs joined."""
    import struct
    import zlib

    assert data[:8] == PNG_SIGNATURE
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    assert list(chunks)[0] == b"IHDR" and list(chunks)[-1] == b"IEND"
    return chunks


@pytest.mark.parametrize("week", [WEEK, WEEK_B, [0] * 7, [3, 3, 1, 0, 3, 2, 1], WEEK])
def test_png_stream_is_strictly_valid(week):
    """The zlib stream is assembled from cached pieces: zlib itself must accept it (Adler-32)."""
    import zlib

    chunks = parse_png(render_weekly(week).png)
    raw = zlib.decompress(chunks[b"IDAT"])  # raises on a bad checksum
    assert len(raw) == 600 * (1200 + 1)
    assert raw[:: 1200 + 1] == bytes(600)  # filter type 0 on every row
    assert len(chunks[b"PLTE"]) % 3 == 0 and len(chunks[b"PLTE"]) // 3 <= 256
    assert max(raw) < len(chunks[b"PLTE"]) // 3


def test_adler32_combine():
    import os
    import zlib

    for n in (0, 1, 5552, 70_000):
        a, b = os.urandom(999), os.urandom(n)
        assert _engine._adler32_combine(zlib.adler32(a), zlib.adler32(b), n) == zlib.adler32(a + b)


# --- chart object, batch, purity -----------------------------------------------------------
def test_chart_cid_is_stable_and_content_addressed():
    a, b = render_weekly(WEEK), render_weekly(WEEK_B)
    assert a.cid == render_weekly(WEEK).cid
    assert a.cid != b.cid
    assert a.cid.startswith("weekly-activity.") and a.cid.endswith("@valuemail")
    assert "<" not in a.cid and " " not in a.cid


@pytest.mark.slow
def test_render_many_on_two_processes_matches_in_process():
    weeks = [[(i * 7 + d) % 23 for d in range(7)] for i in range(150)]
    local = [render_weekly(w).png for w in weeks]
    pooled = list(render_many(render_weekly, [(w,) for w in weeks], workers=2, chunksize=16))
    assert [c.png for c in pooled] == local
    kw = list(render_many(render_weekly, [{"values": w, "labels": ZH} for w in weeks[:5]], workers=1))
    assert [c.alt for c in kw] == [render_weekly(w, ZH).alt for w in weeks[:5]]


def test_render_many_raises_item_errors():
    with pytest.raises(ValueError):
        list(render_many(render_weekly, [([1, 2],)], workers=1))


def test_charts_use_neither_pyplot_nor_dagster():
    code = (
        "import sys, charts; charts.render_weekly([1,2,3,4,5,6,7]);"
        "bad = [m for m in sys.modules if m == 'matplotlib.pyplot' or m.startswith('dagster')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parent.parent
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
