"""What an e-mail says: the headline fits the product, and no sentence contradicts another (issue #12, 4–5).

Real renderer, real catalogs, real chart alt texts (charts.bars.bar_alt); the property test at the
end renders random metric rows through ``email_data_from_row`` like the pipeline does.
"""

from __future__ import annotations

import functools
import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charts.bars import bar_alt
from report_templates import i18n, samples, visuals
from report_templates.model import email_data_from_row
from report_templates.render import EmailRenderer
from report_templates.share_page import page_for
from report_templates.view import Thresholds, ValueModelTexts, headline_kind
from valuemail.config import ConfigError, EventValue, ValueModel, load_config
from valuemail.emails import EmailSettings, render_period_emails

CAMPAIGNS = ("weekly", "monthly", "yearly")
LOCALES = ("en", "zh-CN", "hu")


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS)


def _zero_time(locale: str) -> re.Pattern:
    """"0 min" / "0 perc" / "0分钟" as a figure of its own (not the end of "10 min")."""
    return re.compile(r"(?<!\d)" + re.escape(i18n.localizer(locale).format_minutes(0)))


def _zero_money(locale: str) -> re.Pattern:
    """"$0.00" / "0,00 USD" / "US$0.00" as a figure of its own (not the end of "30,00 USD")."""
    return re.compile(r"(?<!\d)" + re.escape(i18n.localizer(locale).format_money(0, "USD")))


def _says(e, pattern: re.Pattern) -> bool:
    return any(pattern.search(part) for part in (e.subject, e.preheader, e.text, e.html))


# ------------------------------------------------------------------------- 4. the headline fits
@pytest.mark.parametrize("campaign", CAMPAIGNS)
@pytest.mark.parametrize("locale", LOCALES)
def test_no_time_saved_leads_with_the_money_and_never_says_zero_minutes(renderer, campaign, locale):
    data = replace(samples.fixture("active", campaign, locale), minutes_saved=Decimal(0))
    e = renderer.render(data)
    money = i18n.localizer(locale).format_money(data.money_saved, data.currency)
    assert not _says(e, _zero_time(locale))
    assert money in e.subject
    assert re.search(rf"^{re.escape(money)} — ", e.text, re.M)  # the hero line of the text part


@pytest.mark.parametrize("campaign", CAMPAIGNS)
@pytest.mark.parametrize("locale", LOCALES)
def test_neither_time_nor_money_leads_with_the_tasks(renderer, campaign, locale):
    data = replace(samples.fixture("active", campaign, locale), minutes_saved=Decimal(0), money_saved=Decimal(0))
    e = renderer.render(data)
    loc = i18n.localizer(locale)
    assert not _says(e, _zero_time(locale))
    assert not _says(e, _zero_money(locale))
    assert re.search(rf"^{re.escape(loc.format_int(data.tasks))} — ", e.text, re.M)
    assert loc.ngettext("%(n)s task", "%(n)s tasks", data.tasks) % {"n": loc.format_int(data.tasks)} in e.subject


def test_short_version_of_a_money_product_mentions_the_money(renderer):
    data = replace(samples.fixture("low", "weekly"), minutes_saved=Decimal(0), money_saved=Decimal("4.20"))
    e = renderer.render(data)
    assert e.variant == "low"
    assert "$4.20" in e.subject and "$4.20 — money saved by 3 tasks" in e.text
    assert not _says(e, _zero_time("en"))


def test_the_value_model_and_the_setting_choose_the_headline():
    data = samples.fixture("active", "weekly")  # both time and money saved
    money_only = replace(samples.VALUE_MODEL, saves_time=False, saves_money=True)
    nothing = replace(samples.VALUE_MODEL, saves_time=False, saves_money=False)
    assert headline_kind(data, samples.VALUE_MODEL) == "time"
    assert headline_kind(data, money_only) == "money"
    assert headline_kind(data, nothing) == "time"  # measured time still counts
    assert headline_kind(replace(data, minutes_saved=Decimal(0)), samples.VALUE_MODEL) == "money"
    assert headline_kind(data, samples.VALUE_MODEL, "tasks") == "tasks"
    assert headline_kind(data, samples.VALUE_MODEL, "money") == "money"
    # a fixed choice never makes a zero the headline
    assert headline_kind(replace(data, money_saved=Decimal(0)), samples.VALUE_MODEL, "money") == "time"
    assert headline_kind(replace(data, minutes_saved=Decimal(0)), money_only, "time") == "money"

    e = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, Thresholds(headline="money")).render(data)
    assert e.subject == "Anna, you saved $12.50 this week"
    assert "$12.50 — money saved by 137 tasks valuemail ran for you" in e.text
    assert "4 hr 35 min time saved" in e.text  # the time is a tile beside it, not lost
    e = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, Thresholds(headline="tasks")).render(data)
    assert e.subject == "Anna, 137 tasks done for you this week"
    assert "137 — tasks valuemail ran for you" in e.text
    assert "  137 tasks" not in e.text  # the headline is not repeated as a tile


def test_what_the_value_model_values_is_read_from_its_per_unit_defaults():
    def model(**events):
        return ValueModelTexts.from_value_model(ValueModel("v1", "USD", False, {
            k: EventValue(k, k.title(), True, Decimal(m), Decimal(d)) for k, (m, d) in events.items()}))

    recovered = model(payment_recovered=(0, "4.20"), churn_prevented=(0, "19"))  # ProfitWell-style
    assert (recovered.saves_time, recovered.saves_money) == (False, True)
    assert (model(workflow_run=(3, 0)).saves_time, model(workflow_run=(3, 0)).saves_money) == (True, False)
    data = replace(samples.fixture("active", "weekly"), minutes_saved=Decimal(5))  # a little measured time
    assert headline_kind(data, recovered) == "money"


def test_headline_setting_is_read_and_checked(tmp_path):
    config = load_config(home=tmp_path, overrides={"emails": {"headline": "tasks"}})
    assert EmailSettings.from_config(config).thresholds.headline == "tasks"
    assert EmailSettings.from_config(load_config(home=tmp_path)).thresholds.headline == "auto"
    with pytest.raises(ConfigError, match=r"\[emails\] headline: got \"minutes\" \(allowed: 'auto' \| 'time' \| 'money' \| 'tasks'\)"):
        load_config(home=tmp_path, overrides={"emails": {"headline": "minutes"}})


def test_a_money_only_product_mails_its_money_through_the_stage(tmp_path, warehouse):
    """The pipeline's own path: config value model → EmailSettings → emails rows and files (real DuckDB)."""
    from test_email_stage import WEEK, links_for, make_warehouse

    events = load_config(home=tmp_path).raw["value_model"]["events"]
    config = load_config(home=tmp_path, overrides={"value_model": {"events": {
        k: {"minutes_per_unit": 0, "money_per_unit": 1.5} for k in events}}})
    make_warehouse(warehouse)
    warehouse.execute("UPDATE customer_metrics SET minutes_saved = 0, money_saved = tasks * 1.5")
    render_period_emails(warehouse, config, WEEK, links_for=links_for)
    rows = warehouse.execute("SELECT customer_id, locale_used, subject, text_path FROM emails").fetchall()
    assert len(rows) == 5
    for customer_id, locale, subject, text_path in rows:
        text = Path(text_path).read_text(encoding="utf-8")
        assert not _zero_time(locale).search(subject + text), customer_id
    anna = next(r for r in rows if r[0] == "c-anna")
    assert anna[2] == "Anna, you saved $205.50 this week"
    assert "$205.50 — money saved by 137 tasks valuemail ran for you" in Path(anna[3]).read_text(encoding="utf-8")


@pytest.mark.parametrize("locale", LOCALES)
def test_share_card_and_page_never_say_zero_minutes(locale):
    data = replace(samples.fixture("active", "yearly", locale), minutes_saved=Decimal(0))
    loc = i18n.localizer(locale)
    zero = loc.format_minutes(0)
    card = visuals.share_card_text(data, loc)
    assert zero not in [value for value, _label in card.stats]
    assert card.stats[0][0] == loc.format_int(data.tasks)
    page, _locale = page_for(data, samples.BRAND, samples.VALUE_MODEL, url="https://valuemail.example/s/x/",
                             image_url="", image_alt="", home_url="https://valuemail.example/")
    assert not _zero_time(locale).search(" ".join([page.title, page.description, *(v for v, _ in page.stats)]))


# ------------------------------------------------------------------------- 5. no contradictions
def _first_week(locale: str = "en"):
    """A weekly "new" customer who signed up on the period's second day — with a previous week
    and a streak in the metrics row that reach back before the sign-up."""
    data = samples.fixture("new", "weekly", locale)
    return replace(data, signed_up_at=datetime.combine(data.period_start + timedelta(days=1), datetime.min.time()),
                   prev_tasks=36, tasks_change_pct=-66.7, streak_weeks=3)


@pytest.mark.parametrize("locale", LOCALES)
def test_first_week_is_not_compared_with_before_the_sign_up(renderer, locale):
    e = renderer.render(_first_week(locale))
    _ = i18n.localizer(locale).gettext
    assert e.variant == "new"
    assert _("Your first week") in e.html
    assert "▼" not in e.text and "▲" not in e.text
    assert _("Streak") not in e.text


def test_comparisons_and_streaks_stop_at_the_sign_up(renderer):
    base = replace(samples.fixture("active", "weekly"), prev_tasks=100, tasks_change_pct=37.0, streak_weeks=5)
    start = datetime.combine(base.period_start, datetime.min.time())
    # signed up before the previous week began: the comparison stands
    assert "▲ 37% more tasks than last week" in renderer.render(replace(base, signed_up_at=start - timedelta(days=7))).text
    # signed up during the previous week: no comparison with a week they were not (fully) there for
    e = renderer.render(replace(base, signed_up_at=start - timedelta(days=3)))
    assert "than last week" not in e.text
    assert "Active 2 weeks in a row" in e.text  # the streak counts only weeks since the sign-up
    # signed up well before: the streak from the metrics row as it is
    assert "Active 5 weeks in a row" in renderer.render(replace(base, signed_up_at=start - timedelta(days=400))).text
    # a customer who signed up 9 days before the week began is not in their first week
    new = samples.fixture("new", "weekly")
    assert "Your first week" not in renderer.render(new).html
    assert "first week" not in renderer.render(new).subject


@pytest.mark.parametrize("percentile,phrase", [
    (100.0, "In the top 1% of customers on your plan by tasks"),
    (99.0, "In the top 1% of customers on your plan by tasks"),
    (98.0, "More tasks than 98% of customers on your plan"),
])
def test_percentile_is_never_printed_as_100_percent(renderer, percentile, phrase):
    base = samples.fixture("active", "weekly")
    without_chart = replace(base, tasks_percentile=percentile, charts=tuple(c for c in base.charts if c.kind != "peer_position"))
    e = renderer.render(without_chart)
    assert phrase in e.text and "100%" not in e.text
    assert visuals.peer_headline(without_chart, i18n.localizer("en")) == phrase  # the chart's headline


def test_percentile_zero_is_never_printed():
    r = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, Thresholds(peer_min_percentile=0))
    base = samples.fixture("active", "weekly")
    e = r.render(replace(base, tasks_percentile=0.0, charts=()))
    assert " 0%" not in e.text and "Compared with others" not in e.text


@pytest.mark.parametrize("locale", LOCALES)
def test_a_tied_best_month_is_phrased_like_the_chart_says_it(renderer, locale):
    months = (5, 8, 3, 0, 0, 2, 4, 6, 1, 19, 19, 7)  # October and November tie
    data = replace(samples.fixture("active", "yearly", locale), monthly_tasks=months)
    loc = i18n.localizer(locale)
    alt = bar_alt(np.array(months, dtype=float), visuals.bar_labels("year_months", loc), [loc.format_int(v) for v in months])
    e = renderer.render(replace(data, charts=tuple(replace(c, alt=alt) if c.kind == "year_months" else c for c in data.charts)))
    _ = loc.gettext
    both = _(", ").join(loc.month_names[9:11])
    tasks = loc.ngettext("%(n)s task", "%(n)s tasks", 19) % {"n": "19"}
    assert _("Best months: %(month)s, %(tasks)s each") % {"month": both, "tasks": tasks} in e.text
    assert _("{title}: {values}. Best months: {top} ({top_value} each).").split("{values}")[1].format(top=both, top_value="19") in e.text
    assert _("Best month: %(month)s, %(tasks)s") % {"month": loc.month_names[9], "tasks": tasks} not in e.text


def test_a_tied_busiest_day_is_not_named_as_the_busiest(renderer):
    data = replace(samples.fixture("active", "weekly"), daily_tasks=(12, 41, 18, 41, 30, 6, 5),
                   busiest_day=samples.PERIODS["weekly"][0] + timedelta(days=1), busiest_day_tasks=41)
    e = renderer.render(data)
    assert "Busiest day" not in e.text and "busiest day" not in e.preheader
    labels = visuals.bar_labels("weekly_activity", i18n.localizer("en"))
    assert bar_alt(np.array(data.daily_tasks, dtype=float), labels, [str(v) for v in data.daily_tasks]).endswith(
        "Busiest: Tuesday, Thursday (41 each).")


# ------------------------------------------------------------------------- the property test
_PERIODS = {c: samples.PERIODS[c] for c in CAMPAIGNS}


@st.composite
def metric_rows(draw):
    """A customers + customer_metrics + segments row as the warehouse holds it (consistent numbers)."""
    campaign = draw(st.sampled_from(CAMPAIGNS))
    start, end = _PERIODS[campaign]
    n_days = (end - start).days
    daily = draw(st.lists(st.integers(0, 40), min_size=n_days, max_size=n_days))
    tasks = sum(daily)
    most = max(daily)
    months = [0] * 12
    for i, n in enumerate(daily):
        months[(start + timedelta(days=i)).month - 1] += n
    signed_up = start + timedelta(days=draw(st.integers(-800, n_days - 1)))
    minutes = draw(st.sampled_from([0, 0, 1])) * tasks * draw(st.integers(0, 5))
    money = draw(st.sampled_from([Decimal(0), Decimal("0.75"), Decimal("12.40")])) * tasks
    row = {
        "customer_id": "c1", "name": draw(st.sampled_from(["Anna Kovács", "李明", None])),
        "locale": draw(st.sampled_from(LOCALES)), "stage": draw(st.sampled_from(["new", "active", "lapsed", None])),
        "plan": "pro", "signed_up_at": datetime.combine(signed_up, datetime.min.time()),
        "tasks": tasks, "minutes_saved": minutes, "money_saved": money, "currency": "USD",
        "active_days": sum(1 for n in daily if n), "daily_tasks": daily,
        "monthly_tasks": months if campaign == "yearly" else None,
        "busiest_day": start + timedelta(days=daily.index(most)) if most else None, "busiest_day_tasks": most or None,
        "prev_tasks": draw(st.one_of(st.none(), st.integers(0, 500))),
        "streak_weeks": draw(st.one_of(st.none(), st.integers(0, 60))),
        "tasks_beat_pct": draw(st.one_of(st.none(), st.integers(0, 100))),
        "lifetime_tasks": tasks + draw(st.integers(0, 5000)),
        "top_features": [{"event_type": "workflow_run", "tasks": tasks}] if tasks else [],
    }
    return campaign, start, end, row


@functools.cache
def _renderer(headline: str) -> EmailRenderer:
    return EmailRenderer(samples.BRAND, samples.VALUE_MODEL, Thresholds(headline=headline))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(metric_rows(), st.sampled_from(["auto", "time", "money", "tasks"]))
def test_random_metric_rows_never_contradict_themselves(case, headline):
    campaign, start, end, row = case
    data = email_data_from_row(row, campaign=campaign, period_start=start, period_end=end,
                               links=samples.links("c1", campaign), charts=samples.charts_for(campaign, "c1"))
    loc = i18n.localizer(i18n.choose_locale(data.locale).used)
    if campaign == "yearly":  # the chart's own alt text, as charts/ writes it
        months = row["monthly_tasks"]
        alt = bar_alt(np.array(months, dtype=float), visuals.bar_labels("year_months", loc), [loc.format_int(v) for v in months])
        data = replace(data, charts=tuple(replace(c, alt=alt) if c.kind == "year_months" else c for c in data.charts))
    e = _renderer(headline).render(data)
    text = e.subject + "\n" + e.preheader + "\n" + e.text
    _ = loc.gettext
    tasks_n = lambda n: loc.ngettext("%(n)s task", "%(n)s tasks", n) % {"n": loc.format_int(n)}  # noqa: E731
    signed_up: date = row["signed_up_at"].date()

    # the headline is never a zero
    assert not _zero_time(loc.locale).search(text)
    assert not _zero_money(loc.locale).search(text)
    if data.tasks:
        hero = re.search(r"^(.+?) — ", e.text, re.M).group(1)
        assert hero not in ("0", loc.format_minutes(0), loc.format_money(0, "USD"))
    # a percentile among the other customers is never 100% or 0% (a change may well be +100%)
    for line in text.splitlines():
        if not line.startswith(("▲", "▼")):
            assert not re.search(r"(?<![\d.,])(100|0)\s?%", line), line
    # nothing reaches back before the sign-up
    previous = {"weekly": start - timedelta(days=7), "monthly": (start - timedelta(days=1)).replace(day=1),
                "yearly": start.replace(year=start.year - 1)}[campaign]
    last = {"weekly": _("last week"), "monthly": _("last month"), "yearly": _("last year")}[campaign]
    if signed_up > previous:
        assert "▲" not in text and "▼" not in text and _("As many tasks as %(last)s") % {"last": last} not in text
    streak = [line for line in e.text.splitlines() if line.startswith(f"- {_('Streak')}: ")]
    if streak:
        assert int(re.search(r"\d+", streak[0]).group()) <= ((end - signed_up).days + 6) // 7
    if _("Your first week") in e.html:
        assert signed_up >= start
    # ties are named the way the chart names them: all of them, "each"
    if campaign == "yearly" and data.tasks and e.variant != "low":
        best = max(months)
        names = _(", ").join(loc.month_names[i] for i, n in enumerate(months) if n == best)
        tied = months.count(best) > 1
        pattern = _("Best months: %(month)s, %(tasks)s each") if tied else _("Best month: %(month)s, %(tasks)s")
        assert pattern % {"month": names, "tasks": tasks_n(best)} in e.text
        assert alt in e.text
    if row["busiest_day"] and row["daily_tasks"].count(row["busiest_day_tasks"]) > 1:
        assert _("Busiest day") not in e.text and _("Biggest day") not in e.text

