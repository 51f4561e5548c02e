"""Languages: deliberate locale fallback, complete catalogs, Babel-exact formatting, value-model texts."""

from __future__ import annotations

import logging
import random
import subprocess
import sys
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from babel.numbers import format_currency, format_decimal, format_percent
from babel.units import format_unit

from report_templates import catalogs, i18n, samples
from report_templates.model import FeatureCount
from report_templates.render import EmailRenderer
from report_templates.view import ValueModelTexts
from valuemail.config import load_config


@pytest.mark.parametrize("requested,used,reason", [
    ("en", "en", "exact"), ("hu", "hu", "exact"), ("zh-CN", "zh-CN", "exact"), ("zh_CN", "zh-CN", "exact"),
    ("hu-HU", "hu", "region"), ("hu_HU", "hu", "region"), ("en-GB", "en", "region"), ("EN-us", "en", "region"),
    ("zh-Hans-CN", "zh-CN", "script"), ("zh-Hans", "zh-CN", "script"), ("zh", "zh-CN", "language"),
    ("zh-SG", "zh-CN", "region"), ("zh-TW", "en", "traditional_chinese"), ("zh-Hant-HK", "en", "traditional_chinese"),
    ("de", "en", "unsupported"), ("de-AT", "en", "unsupported"), ("", "en", "missing"), (None, "en", "missing"),
    ("not a locale!", "en", "invalid"), ("x" * 50, "en", "invalid"),
])
def test_locale_choice_is_deliberate(requested, used, reason):
    choice = i18n.choose_locale(requested)
    assert (choice.used, choice.reason) == (used, reason)
    assert choice.is_fallback == (reason != "exact")


def test_fallbacks_are_logged_once_per_tag(caplog):
    i18n.choose_locale.cache_clear()
    i18n._logged_choices.discard("locale:fr-CA")
    with caplog.at_level(logging.WARNING, logger="report_templates.i18n"):
        for _ in range(3):
            i18n.choose_locale("fr-CA")
    messages = [r.getMessage() for r in caplog.records if "fr-CA" in r.getMessage()]
    assert len(messages) == 1 and "en" in messages[0] and "unsupported" in messages[0]


def test_catalogs_are_complete_and_keep_their_placeholders():
    """Every message of the templates and code, and every value-model text, in zh-CN and hu."""
    problems = catalogs.check(load_config().value_model)
    assert not problems, "\n".join(map(str, problems[:20]))


def test_catalog_check_finds_missing_and_broken_entries(tmp_path, monkeypatch):
    from babel.messages.catalog import Catalog

    cat = Catalog(locale="hu")
    cat.add("Hi %(name)s,", "Szia %(nev)s!")  # renamed placeholder
    monkeypatch.setattr(catalogs, "read", lambda locale: cat)
    problems = catalogs.check()
    issues = {(p.msgid, p.issue.split(" ")[0]) for p in problems if p.locale == "hu"}
    assert ("Hi %(name)s,", "unknown") in issues
    assert ("Unsubscribe", "untranslated") in issues


def _babel(loc: str) -> str:
    return i18n._BABEL_ID[loc]


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_fast_number_formatting_equals_babel(locale):
    loc = i18n.localizer(locale)
    rng = random.Random(4)
    ints = [0, 1, 7, 999, 1000, 1234, 99_999, 1_000_000, 987_654_321] + [rng.randrange(10**9) for _ in range(300)]
    for n in ints:
        assert loc.format_int(n) == format_decimal(n, locale=_babel(locale)), n
    for currency in ("USD", "EUR", "HUF", "JPY", "CNY"):
        for cents in [0, 1, 150, 123456, 99999999] + [rng.randrange(10**10) for _ in range(100)]:
            amount = Decimal(cents) / 100
            assert loc.format_money(amount, currency) == format_currency(amount, currency, locale=_babel(locale)), (currency, amount)
    for pct in (0, 5, 23, 87, 100, 250):
        assert loc.format_percent(pct) == format_percent(pct / 100, locale=_babel(locale))


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_durations_are_babel_units(locale):
    loc = i18n.localizer(locale)
    length = i18n.Localizer._UNIT_LENGTH[locale]
    unit = lambda n, u: format_unit(n, f"duration-{u}", length=length, locale=_babel(locale))  # noqa: E731
    assert loc.format_minutes(Decimal("35")) == unit(35, "minute")
    assert loc.format_minutes(Decimal("120")) == unit(2, "hour")
    assert loc.format_minutes(0) == unit(0, "minute")
    assert loc.format_minutes(Decimal("0.5")) == unit(30, "second")
    both = loc.format_minutes(Decimal("275.4"))
    assert unit(4, "hour") in both and unit(35, "minute") in both
    assert loc.format_minutes(Decimal("2.5")) == unit(2, "minute")  # half-even, never rounded up
    assert loc.format_minutes(Decimal("60000")).startswith(unit(1000, "hour").split()[0][:1])


def test_examples_read_naturally():
    en, zh, hu = (i18n.localizer(x) for x in ("en", "zh-CN", "hu"))
    assert en.format_minutes(275) == "4 hr 35 min"
    assert zh.format_minutes(275) == "4小时35分钟"
    assert hu.format_minutes(275) == "4 óra és 35 perc"
    assert hu.format_int(16460) == "16\u00a0460"
    assert hu.format_money(Decimal("12.5"), "USD") == "12,50\u00a0USD"
    assert zh.format_money(Decimal("12.5"), "USD") == "US$12.50"
    day = date(2026, 11, 17)
    assert en.format_day(day) == "Tuesday, November 17"
    assert hu.format_day(day) == "november 17., kedd"
    assert zh.format_day(day) == "11月17日星期二"
    assert en.period_label("weekly", date(2026, 11, 16), date(2026, 11, 23)) == "Nov 16\u2009–\u200922, 2026"
    assert hu.period_label("monthly", date(2026, 11, 1), date(2026, 12, 1)) == "2026. november"
    assert zh.period_label("yearly", date(2026, 1, 1), date(2027, 1, 1)) == "2026年"


def test_month_and_day_names_do_not_leak_between_languages():
    """Babel 2.18 resolves some stand-alone names through a shared alias: Chinese leaked into Hungarian."""
    code = (
        "from report_templates import i18n\n"
        "z = i18n.Localizer('zh-CN'); h = i18n.Localizer('hu'); e = i18n.Localizer('en')\n"
        "print(z.month_names[10], h.month_names[10], e.month_names[10], h.weekday_names[1], h.month_abbr[10])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["十一月", "november", "November", "kedd", "nov."]


def test_emails_are_in_the_customers_language():
    r = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS)
    hu = r.render(samples.fixture("active", "weekly", "hu"))
    zh = r.render(samples.fixture("active", "weekly", "zh-CN"))
    assert hu.subject == "Anna, a heti megtakarításod: 4 óra és 35 perc"
    assert "Leiratkozás" in hu.html and "Unsubscribe" not in hu.html
    assert zh.subject == "王芳，本周为您节省了 4小时35分钟"
    assert "退订" in zh.html and "Unsubscribe" not in zh.html
    # value-model texts translated by event type
    assert "Automatizált munkafolyamatok" in hu.html and "自动化工作流" in zh.html
    assert "Each workflow run" not in hu.text and "Each workflow run" not in zh.text
    assert hu.fallbacks == () and zh.fallbacks == ()


def test_stale_or_missing_value_model_translation_falls_back_to_english_logged(caplog):
    """An analyst changed the English (3 → 4 minutes): the old translation must not be shown."""
    vm = ValueModelTexts(
        version="2026-12-01",
        features={**samples.VALUE_MODEL.features, "brand_new_event": "Brand-new feature"},
        explain={**samples.VALUE_MODEL.explain,
                 "workflow_run": "Each workflow run replaces about 4 minutes of manual work.",
                 "brand_new_event": "Each one saves 9 minutes."},
    )
    r = EmailRenderer(samples.BRAND, vm, samples.THRESHOLDS)
    data = replace(samples.fixture("active", "weekly", "hu"),
                   top_features=(FeatureCount("workflow_run", "Automated workflows", 80),
                                 FeatureCount("brand_new_event", "Brand-new feature", 20)))
    with caplog.at_level(logging.WARNING, logger="report_templates.i18n"):
        e = r.render(data)
    assert "Each workflow run replaces about 4 minutes of manual work." in e.html
    assert "3 perc" not in e.html  # the stale Hungarian sentence with the old number
    assert "Brand-new feature" in e.html and "Each one saves 9 minutes." in e.text
    assert set(e.fallbacks) == {"value_model.workflow_run.explain", "value_model.brand_new_event.feature",
                                "value_model.brand_new_event.explain"}
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "value_model.workflow_run.explain" in logged and "messages.po" in logged


@pytest.mark.parametrize("locale, dates", [("en", "Jan 1\u2009–\u2009Nov 30, 2026 so far"),
                                           ("hu", "2026. jan. 1.\u2009–\u2009nov. 30. (eddig)"),
                                           ("zh-CN", "2026年1月1日至11月30日（截至目前）")])
def test_a_year_to_date_says_which_dates_it_covers_in_every_language(locale, dates):
    """Issue #12: the wrapped sent on 1 December covers 1 Jan - 30 Nov, and says so (HTML and text)."""
    assert i18n.localizer(locale).period_label("yearly", date(2026, 1, 1), date(2027, 1, 1)).rstrip(".年") == "2026"
    assert i18n.localizer(locale).period_label("yearly", date(2026, 1, 1), date(2026, 12, 1)) == dates
    r = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS)
    full = samples.fixture("active", "yearly", locale)
    to_date = r.render(replace(full, period_end=date(2026, 12, 1)))
    assert dates in to_date.html and dates in to_date.text
    assert dates not in r.render(full).html and dates not in r.render(full).text
