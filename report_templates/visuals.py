"""Which charts an e-mail shows, their text in the customer's language, and drawing them.

Pure code.  The drawing itself is the charts package's (matplotlib, ``charts/``); this module
decides *which* charts a customer's e-mail gets and writes every word on them from our message
catalogs (day names, titles, alt text), so a chart is always in the e-mail's language.

Kinds
    ``weekly_activity``  weekly: tasks per day, Monday first (``charts.bars.render_weekly``)
    ``monthly_activity`` monthly: tasks by weekday over the month (same chart, summed per weekday)
    ``year_months``      yearly: tasks per month (``charts.bars.render_year``)
    ``peer_position``    all: "you are here" in the cohort histogram (``charts.peer.render_peer``),
                         only for cohorts of at least k customers
    ``share_card``       yearly e-mail + every share page: 1200×630 card (``charts.share``)

A missing ``charts`` function (the package is optional at import time) or a chart that refuses
its input (a cohort below k) simply means that chart is left out; the e-mail's shape adapts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Sequence

from report_templates import i18n
from report_templates.i18n import Localizer
from report_templates.model import EmailData, first_name
from report_templates.view import peer_phrase

log = logging.getLogger(__name__)

KINDS = ("weekly_activity", "monthly_activity", "year_months", "peer_position", "share_card")
EMAIL_KINDS = {
    "weekly": ("weekly_activity", "peer_position"),
    "monthly": ("monthly_activity", "peer_position"),
    "yearly": ("year_months", "peer_position", "share_card"),
}


@dataclass(frozen=True)
class PeerHistogram:
    """One cohort's distribution of a metric (from ``peer_distribution``): never single values."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]

    @property
    def size(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class DrawnChart:
    kind: str
    png: bytes
    alt: str
    width: int  # CSS px
    height: int
    filename: str


def _weekday_totals(data: EmailData) -> list[int]:
    totals = [0] * 7
    for i, n in enumerate(data.daily_tasks):
        totals[(data.period_start + timedelta(days=i)).weekday()] += n
    return totals


def bar_labels(kind: str, loc: Localizer):
    """Localised ``charts.bars.BarLabels`` for one bar chart kind."""
    from charts.bars import BarLabels

    _ = loc.gettext
    if kind == "year_months":
        return BarLabels(
            categories=loc.month_abbr, names=loc.month_names, title=_("Tasks per month"),
            alt=_("{title}: {values}. Best month: {top} ({top_value})."),
            alt_tie=_("{title}: {values}. Best months: {top} ({top_value} each)."), alt_item=_("{name} {value}"),
            alt_separator=_(", "), alt_empty=_("{title}: no tasks this year."), empty=_("A quiet year"), lang=loc.lang,
        )
    title = _("Tasks per day") if kind == "weekly_activity" else _("Tasks by weekday, whole month")
    return BarLabels(
        categories=loc.weekday_abbr, names=loc.weekday_names, title=title,
        alt=_("{title}: {values}. Busiest: {top} ({top_value})."),
        alt_tie=_("{title}: {values}. Busiest: {top} ({top_value} each)."), alt_item=_("{name} {value}"),
        alt_separator=_(", "), alt_empty=_("{title}: no tasks."), empty=_("A quiet week"), lang=loc.lang,
    )


def peer_headline(data: EmailData, loc: Localizer) -> str:
    return peer_phrase(loc, data.tasks_percentile or 0)


def headline_stats(data: EmailData, loc: Localizer, task_label: str) -> list[tuple[str, str]]:
    """The public headline figures (share card, share page): the time saved when there is some,
    then the tasks — never money (private) and never "0 min saved"."""
    _ = loc.gettext
    stats = [(loc.format_minutes(data.minutes_saved), _("saved"))] if data.minutes_saved > 0 else []
    stats.append((loc.format_int(data.tasks), task_label))
    return stats


def share_card_text(data: EmailData, loc: Localizer, product: str = "valuemail"):
    """What the share card says: first name + the customer's own headline numbers only."""
    from charts.share import ShareCardText

    _, ngettext = loc.gettext, loc.ngettext
    year = str(data.period_start.year)
    if data.campaign == "yearly":
        title = _("my %(year)s with %(product)s") % {"year": year, "product": product}
        kicker = _("%(year)s · WRAPPED") % {"year": year}
    elif data.campaign == "monthly":
        label = loc.period_label("monthly", data.period_start, data.period_end)
        title = _("my month with %(product)s") % {"product": product}
        kicker = label.upper()
    else:
        label = loc.period_label("weekly", data.period_start, data.period_end)
        title = _("my week with %(product)s") % {"product": product}
        kicker = label.upper()
    stats = headline_stats(data, loc, ngettext("task done for me", "tasks done for me", data.tasks))
    if data.top_features:
        top = data.top_features[0]
        stats.append((loc.value_model_text(top.event_type, "feature", top.feature), _("top feature")))
    choice = i18n.choose_locale(data.locale)
    name = first_name(data.name, choice.requested or choice.used)
    return ShareCardText(
        name=name or _("Hello"), greeting=_("{name},") if name else "{name}", title=title, stats=tuple(stats),
        kicker=kicker, brand=product, footer=_("Counted from my own activity"),
        alt=_("{greeting} {title}: {stats}."), alt_stat=_("{value} {label}"), alt_separator=_(", "), lang=loc.lang,
    )


def draw_chart(kind: str, data: EmailData, *, peer: PeerHistogram | None = None, min_cohort: int = 50,
               product: str = "valuemail") -> DrawnChart | None:
    """Draw one chart for ``data`` in its language; ``None`` when it doesn't apply or can't be drawn."""
    loc = i18n.localizer(i18n.choose_locale(data.locale).used)
    try:
        chart = _draw(kind, data, loc, peer, min_cohort, product)
    except ImportError as exc:  # the charts package doesn't have this chart (yet)
        log.warning("chart %s not available: %s", kind, exc)
        return None
    except ValueError as exc:  # e.g. cohort below k: the chart refuses, the e-mail goes without it
        log.info("chart %s skipped for %s: %s", kind, data.customer_id, exc)
        return None
    if chart is None:
        return None
    return DrawnChart(kind, chart.png, chart.alt, chart.width, chart.height, f"{kind}.png")


def peer_chart_key(data: EmailData) -> tuple | None:
    """Everything a customer's peer chart is drawn from besides the period's histograms:
    cohort, language, own tasks and percentile.  Customers with the same key get the same PNG,
    so it is drawn once.  ``None`` when no peer chart applies (keep in step with :func:`_draw`)."""
    if data.tasks_percentile is None or data.tasks <= 0:
        return None
    return (data.peer_cohort or "", i18n.choose_locale(data.locale).used, data.tasks, data.tasks_percentile)


def _draw(kind: str, data: EmailData, loc: Localizer, peer: PeerHistogram | None, min_cohort: int, product: str) -> Any:
    fmt = loc.format_int
    if kind == "weekly_activity":
        if len(data.daily_tasks) != 7 or not any(data.daily_tasks):
            return None
        from charts.bars import render_weekly

        return render_weekly(list(data.daily_tasks), bar_labels(kind, loc), [fmt(v) for v in data.daily_tasks])
    if kind == "monthly_activity":
        if not any(data.daily_tasks) and not any(data.weekday_tasks):
            return None
        from charts.bars import render_weekly

        totals = list(data.weekday_tasks) if len(data.weekday_tasks) == 7 else _weekday_totals(data)
        return render_weekly(totals, bar_labels(kind, loc), [fmt(v) for v in totals])
    if kind == "year_months":
        if len(data.monthly_tasks) != 12 or not any(data.monthly_tasks):
            return None
        from charts.bars import render_year

        return render_year(list(data.monthly_tasks), bar_labels(kind, loc), [fmt(v) for v in data.monthly_tasks])
    if kind == "peer_position":
        if peer is None or data.tasks_percentile is None or data.tasks <= 0:
            return None
        from charts.peer import PeerLabels, render_peer

        _ = loc.gettext
        labels = PeerLabels(headline=peer_headline(data, loc), you=_("You"), low=_("Fewer tasks"), high=_("More tasks"),
                            alt=_("{headline}. Chart: how many customers on your plan did how much; you are marked."),
                            lang=loc.lang)
        return render_peer(peer.counts, peer.edges, data.tasks, labels, min_cohort=min_cohort)
    if kind == "share_card":
        if data.tasks <= 0:
            return None
        from charts.share import render_share_card

        return render_share_card(share_card_text(data, loc, product), "og")
    raise ValueError(f"unknown chart kind {kind!r}")


def email_chart_kinds(campaign: str) -> Sequence[str]:
    return EMAIL_KINDS[campaign]
