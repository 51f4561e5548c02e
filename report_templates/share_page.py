"""What a public share page says (pure): first name and the customer's own numbers, nothing else.

The page is public once shared, so it shows only what the customer would post themselves: the
first name (never the full name, e-mail, company or id), the period, and their own headline
figures — time saved, tasks, top feature.  No peer percentile (it describes other people), no
money (often sensitive for a business).  :mod:`valuemail.share` stores and publishes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from report_templates import i18n
from report_templates.model import EmailData, first_name
from report_templates.view import Brand, ValueModelTexts, check_url
from report_templates.visuals import headline_stats

TEMPLATES_DIR = Path(__file__).resolve().parent
_OG_LOCALE = {"en": "en_US", "zh-CN": "zh_CN", "hu": "hu_HU"}


@dataclass(frozen=True)
class SharePage:
    title: str  # <title>, og:title
    description: str  # og:description
    kicker: str
    heading: str
    stats: tuple[tuple[str, str], ...]
    note: str
    cta: str
    url: str  # the page's own public URL
    home_url: str
    image_url: str  # absolute URL of the share card (og:image)
    image_src: str  # how the page itself refers to the card (relative: "card.png")
    image_alt: str
    image_width: int = 1200
    image_height: int = 630


def page_for(data: EmailData, brand: Brand, vm: ValueModelTexts, *, url: str, image_url: str, image_alt: str,
             home_url: str, image_src: str = "card.png") -> tuple[SharePage, str]:
    """The share page of ``data`` and the language it is in."""
    locale = i18n.choose_locale(data.locale).used
    loc = i18n.localizer(locale)
    _ = loc.gettext
    choice = i18n.choose_locale(data.locale)
    name = first_name(data.name, choice.requested or choice.used)
    product = brand.product
    year = str(data.period_start.year)
    if data.campaign == "yearly":
        kicker = _("%(year)s · WRAPPED") % {"year": year}
        heading = (_("%(name)s’s %(year)s with %(product)s") if name else _("A %(year)s with %(product)s")) % {
            "name": name, "year": year, "product": product}
    else:
        kicker = loc.period_label(data.campaign, data.period_start, data.period_end)
        if data.campaign == "weekly":
            heading = (_("%(name)s’s week with %(product)s") if name else _("A week with %(product)s")) % {
                "name": name, "product": product}
        else:
            heading = (_("%(name)s’s month with %(product)s") if name else _("A month with %(product)s")) % {
                "name": name, "product": product}
    stats = headline_stats(data, loc, loc.ngettext("task done automatically", "tasks done automatically", data.tasks))
    if data.top_features:
        top = data.top_features[0]
        stats.append((loc.value_model_text(top.event_type, "feature", vm.features.get(top.event_type, top.feature)),
                      _("top feature")))
    tasks = loc.ngettext("%(n)s task", "%(n)s tasks", data.tasks) % {"n": loc.format_int(data.tasks)}
    if data.minutes_saved > 0:
        figure = loc.format_minutes(data.minutes_saved)
        description = _("%(time)s saved by %(tasks)s, counted from real activity.") % {"time": figure, "tasks": tasks}
    else:
        figure = tasks
        description = _("%(tasks)s done automatically, counted from real activity.") % {"tasks": tasks}
    page = SharePage(
        title=f"{heading} · {figure}",
        description=description,
        kicker=kicker,
        heading=heading,
        stats=tuple(stats),
        note=_("Every number here is counted from real activity in %(product)s, never estimated.") % {"product": product},
        cta=_("Try %(product)s") % {"product": product},
        url=check_url(url, "share page"),
        home_url=check_url(home_url, "home page"),
        image_url=check_url(image_url, "share card") if image_url else "",
        image_src=image_src,
        image_alt=image_alt,
    )
    return page, locale


_ENV: Environment | None = None


def _environment() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = Environment(
            loader=FileSystemLoader(str(TEMPLATES_DIR)),
            autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    return _ENV


def render_page(page: SharePage, locale: str, brand: Brand) -> str:
    """The page's HTML (autoescaped; StrictUndefined)."""
    from report_templates.render import _fonts_for

    loc = i18n.localizer(locale)
    fonts = _fonts_for(locale)
    if not re.fullmatch(r"[A-Za-z0-9 ,'-]+", fonts):  # goes into <style> unescaped (entities don't work there)
        raise ValueError(f"unexpected characters in the font stack {fonts!r}")
    return _environment().get_template("share.html.j2").render(
        p=page, brand=brand, c=brand.colours,
        t={"lang": loc.lang, "dir": loc.direction, "fonts": fonts, "og_locale": _OG_LOCALE[locale]},
    )
