"""Charts for value e-mails and share pages: pure functions returning PNG bytes + alt text.

matplotlib (Agg, never pyplot) only; no Dagster.  Every ``render_*`` returns a
:class:`Chart` (``png``, ``alt``, ``width``/``height`` in CSS px, ``filename``, ``cid``).
Every string drawn comes from the caller already localised; numbers shown are passed in
already formatted for the customer's locale (``value_labels``, headline strings).

=====================  ======================================  =====================
function               what                                    size (CSS px / PNG)
=====================  ======================================  =====================
render_weekly          the week by day, busiest day amber      600×300 / 1200×600
render_year            the year by month, best month amber     600×300 / 1200×600
render_peer            "you are here" in the cohort histogram  600×300 / 1200×600
render_share_card      Wrapped-style card with name + numbers  1200×630 or 1080×1920
render_many            any of the above on a process pool
=====================  ======================================  =====================

Speed: per-customer charts are drawn on a cached matplotlib background with only the data
blitted, quantised to a palette PNG — see :mod:`charts._engine` and ``bench/stage_charts.py``.
"""

from __future__ import annotations

from . import theme
from .bars import WEEK_EN, YEAR_EN, BarLabels, format_count, render_weekly, render_year
from .batch import ChartPool, render_many
from .model import Chart
from .peer import PeerLabels, position_in, render_peer
from .share import ShareCardText, render_share_card, render_share_cards

__all__ = [
    "Chart",
    "BarLabels",
    "WEEK_EN",
    "YEAR_EN",
    "PeerLabels",
    "ShareCardText",
    "ChartPool",
    "format_count",
    "position_in",
    "render_weekly",
    "render_year",
    "render_peer",
    "render_share_card",
    "render_share_cards",
    "render_many",
    "clear_caches",
    "theme",
]


def clear_caches() -> None:
    """Forget every cached figure, palette and text sprite in this process (tests use it)."""
    from . import _engine, bars, peer, share

    bars._RENDERERS.clear()
    peer._RENDERERS.clear()
    share._RENDERERS.clear()
    _engine._SPRITES.clear()
    _engine._LUT_CACHE.clear()
