"""Fixed and synthetic :class:`EmailData` for golden tests, benchmarks and previews without a database.

Pure code.  :func:`fixture` gives the named, hand-written customers the golden files are made
from; :func:`synthetic` gives any number of varied customers (deterministic for a seed).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from report_templates.model import ChartImage, EmailData, FeatureCount, Links, first_name
from report_templates.view import Brand, Thresholds, ValueModelTexts

BASE = "https://valuemail.example"

BRAND = Brand(
    product="valuemail",
    postal_address="valuemail Ltd · 1 Example Street · Budapest 1051 · Hungary",
)

VALUE_MODEL = ValueModelTexts(
    version="2026-11-01",
    features={
        "workflow_run": "Automated workflows",
        "report_generated": "Reports",
        "invoice_created": "Invoices",
        "email_automated": "Automated emails",
        "document_signed": "E-signatures",
        "data_sync": "Data sync",
    },
    explain={
        "workflow_run": "Each workflow run replaces about 3 minutes of manual work (median of 1,200 timed runs, 2025 study).",
        "report_generated": "Each scheduled report saves 15 minutes of copying numbers into a spreadsheet.",
        "invoice_created": "Each generated invoice saves 6 minutes of manual invoicing.",
        "email_automated": "Each automated email saves the 2 minutes it takes to write and send it by hand.",
        "document_signed": "Each e-signed document saves 10 minutes and $1.50 of printing and postage.",
        "data_sync": "Each sync saves 5 minutes of exporting and importing records.",
    },
    saves_money=True,  # e-signatures save printing and postage
)

#: the same event types valued one way only: time, money (a ProfitWell-style product), or not at all
VALUE_MODELS = {
    "time_only": replace(VALUE_MODEL, saves_money=False),
    "money_only": replace(VALUE_MODEL, explain={}, saves_time=False),
    "tasks_only": replace(VALUE_MODEL, explain={}, saves_time=False, saves_money=False),
}


def value_model_for(name: str) -> ValueModelTexts:
    """The value model a named fixture's numbers were counted with."""
    return VALUE_MODELS.get(name, VALUE_MODEL)

THRESHOLDS = Thresholds()

PERIODS = {
    "weekly": (date(2026, 11, 16), date(2026, 11, 23)),
    "monthly": (date(2026, 11, 1), date(2026, 12, 1)),
    "yearly": (date(2026, 1, 1), date(2027, 1, 1)),
}


def links(customer_id: str, campaign: str = "weekly", period: str = "2026-11-16") -> Links:
    return Links(
        preferences_url=f"{BASE}/p/pref-{customer_id}",
        unsubscribe_url=f"{BASE}/u/unsub-{customer_id}",
        cta_url=f"{BASE}/app?utm_source=valuemail&utm_medium=email&utm_campaign={campaign}",
        share_url=f"{BASE}/s/share-{customer_id}-{period}/",
    )


def charts_for(campaign: str, customer_id: str, tasks_alt: str = "") -> tuple[ChartImage, ...]:
    kinds = {"weekly": ("weekly_activity", "peer_position"), "monthly": ("monthly_activity", "peer_position"),
             "yearly": ("year_months", "peer_position", "share_card")}[campaign]
    out = []
    for kind in kinds:
        w, h = (1200, 630) if kind == "share_card" else (600, 300)
        out.append(ChartImage(kind=kind, src=f"cid:{kind}.{customer_id}@valuemail", alt=tasks_alt or f"{kind} chart",
                              width=w, height=h))
    return tuple(out)


def with_chart_alts(data: EmailData) -> EmailData:
    """Realistic alt texts in the customer's language, made here from the catalog's alt patterns.

    (Not by calling charts/: the golden files test the templates, and must not change when the
    chart code words its alt text differently.)
    """
    from report_templates import i18n, visuals

    loc = i18n.localizer(i18n.choose_locale(data.locale).used)
    _ = loc.gettext
    alts = {}
    for chart in data.charts:
        if chart.kind in ("weekly_activity", "monthly_activity", "year_months"):
            yearly = chart.kind == "year_months"
            values = (list(data.monthly_tasks) if yearly else
                      list(data.daily_tasks[:7]) if chart.kind == "weekly_activity" else visuals._weekday_totals(data))
            if len(values) not in (7, 12) or not any(values):
                continue
            names = loc.month_names if yearly else loc.weekday_names
            title = _("Tasks per month") if yearly else _("Tasks per day") if chart.kind == "weekly_activity" \
                else _("Tasks by weekday, whole month")
            items = _(", ").join(_("{name} {value}").format(name=n, value=loc.format_int(v)) for n, v in zip(names, values))
            most = max(values)
            tops = [n for n, v in zip(names, values) if v == most]
            if len(tops) > 1:
                pattern = _("{title}: {values}. Best months: {top} ({top_value} each).") if yearly else \
                    _("{title}: {values}. Busiest: {top} ({top_value} each).")
            else:
                pattern = _("{title}: {values}. Best month: {top} ({top_value}).") if yearly else \
                    _("{title}: {values}. Busiest: {top} ({top_value}).")
            alts[chart.kind] = pattern.format(title=title, values=items, top=_(", ").join(tops), top_value=loc.format_int(most))
        elif chart.kind == "peer_position" and data.tasks_percentile is not None:
            alts[chart.kind] = _("{headline}. Chart: how many customers on your plan did how much; you are marked.").format(
                headline=visuals.peer_headline(data, loc))
        elif chart.kind == "share_card" and data.tasks:
            name = first_name(data.name, i18n.choose_locale(data.locale).requested or loc.locale)
            alts[chart.kind] = _("{greeting} {title}: {stats}.").format(
                greeting=_("{name},").format(name=name) if name else "",
                title=_("my %(year)s with %(product)s") % {"year": data.period_start.year, "product": BRAND.product},
                stats=_(", ").join(f"{value} {label}" for value, label in visuals.headline_stats(
                    data, loc, loc.ngettext("task done for me", "tasks done for me", data.tasks)))).strip()
    return replace(data, charts=tuple(replace(c, alt=alts.get(c.kind, c.alt)) for c in data.charts))


NAMES = {  # as each language writes a full name (Hungarian: family name first)
    "active": {"en": "Anna Kovács", "hu": "Kovács Anna", "zh-CN": "王芳"},
    "new": {"en": "Bence Tóth", "hu": "Tóth Bence", "zh-CN": "李明"},
}


def fixture(name: str, campaign: str = "weekly", locale: str = "en") -> EmailData:
    """A named customer: ``active``, ``new``, ``low``, ``empty``, ``hostile``, ``rtl``, ``long``, ``minimal``, and
    ``time_only``, ``money_only``, ``tasks_only`` (counted with :func:`value_model_for` of the name);
    ``to_date`` (yearly): the year measured up to a cut-off."""
    start, end = PERIODS[campaign]
    n_days = (end - start).days
    daily = tuple([12, 41, 18, 25, 30, 6, 5][i % 7] for i in range(n_days))
    monthly = (180, 160, 312, 240, 200, 210, 150, 120, 260, 280, 300, 190)
    scale = {"weekly": 1, "monthly": 4, "yearly": 50}[campaign]
    base = EmailData(
        campaign=campaign,
        period_start=start,
        period_end=end,
        customer_id=f"cust-{name}",
        links=links(f"cust-{name}", campaign, start.isoformat()),
        name=NAMES["active"].get(locale, "Anna Kovács"),
        locale=locale,
        stage="active",
        plan="pro",
        signed_up_at=datetime(2024, 3, 2),
        tasks=137 * scale,
        minutes_saved=Decimal("275.00") * scale,
        money_saved=Decimal("12.50") * scale,
        currency="USD",
        active_days=min(n_days, 5 * scale),
        daily_tasks=daily,
        monthly_tasks=monthly if campaign == "yearly" else (),
        top_features=(
            FeatureCount("workflow_run", "Automated workflows", 82 * scale),
            FeatureCount("report_generated", "Reports", 30 * scale),
            FeatureCount("invoice_created", "Invoices", 25 * scale),
        ),
        prev_tasks=111 * scale,
        tasks_change_pct=23.4,
        lifetime_tasks=4210 * scale,
        milestones=(1000,),
        streak_weeks=5,
        busiest_day=start + timedelta(days=1) if campaign != "yearly" else date(2026, 3, 17),
        busiest_day_tasks=41 if campaign != "yearly" else 120,
        first_uses=("invoice_created",),
        peer_cohort="pro",
        peer_cohort_size=1240,
        tasks_percentile=87.0,
        charts=charts_for(campaign, f"cust-{name}"),
    )
    return with_chart_alts(_fixture(name, base, start, n_days, scale, locale))


def _fixture(name: str, base: EmailData, start: date, n_days: int, scale: int, locale: str) -> EmailData:
    campaign = base.campaign
    end = base.period_end
    if name == "active":
        return base
    if name == "new":
        return replace(base, stage="new", name=NAMES["new"].get(locale, "Bence Tóth"), signed_up_at=datetime.combine(start, datetime.min.time()) - timedelta(days=9),
                       tasks=12 * scale, minutes_saved=Decimal("36") * scale, money_saved=Decimal(0), prev_tasks=None,
                       tasks_change_pct=None, lifetime_tasks=None, milestones=(), streak_weeks=None, tasks_percentile=None,
                       top_features=(FeatureCount("workflow_run", "Automated workflows", 9 * scale),
                                     FeatureCount("email_automated", "Automated emails", 3 * scale)),
                       busiest_day_tasks=5, first_uses=(), active_days=min(n_days, 3 * scale),
                       daily_tasks=tuple([2, 5, 0, 3, 2, 0, 0][i % 7] for i in range(n_days)))
    if name == "low":
        return replace(base, tasks=3, minutes_saved=Decimal("9"), money_saved=Decimal(0), active_days=1,
                       daily_tasks=tuple(3 if i == 2 else 0 for i in range(n_days)), prev_tasks=14, tasks_change_pct=-78.6,
                       top_features=(FeatureCount("workflow_run", "Automated workflows", 3),), milestones=(),
                       streak_weeks=None, tasks_percentile=None, busiest_day=None, busiest_day_tasks=None, first_uses=())
    if name == "empty":
        return replace(base, tasks=0, minutes_saved=Decimal(0), money_saved=Decimal(0), active_days=0,
                       daily_tasks=(0,) * n_days, prev_tasks=None, tasks_change_pct=None, top_features=(), milestones=(),
                       streak_weeks=None, tasks_percentile=None, busiest_day=None, busiest_day_tasks=None, first_uses=(),
                       lifetime_tasks=None, charts=())
    if name == "minimal":  # nothing but the required fields: every optional value missing
        return EmailData(campaign=campaign, period_start=start, period_end=end, customer_id="cust-minimal",
                         links=Links(f"{BASE}/p/x", f"{BASE}/u/x", f"{BASE}/app"), tasks=7, minutes_saved=Decimal("21"))
    if name == "time_only":
        return replace(base, money_saved=Decimal(0))
    if name == "money_only":
        return replace(base, minutes_saved=Decimal(0), money_saved=Decimal("412.80") * scale)
    if name == "tasks_only":
        return replace(base, minutes_saved=Decimal(0), money_saved=Decimal(0))
    if name == "to_date":  # the wrapped sent on 1 December: the year measured up to 30 November
        return replace(base, period_end=date(start.year, 12, 1), monthly_tasks=base.monthly_tasks[:11] + (0,))
    if name == "hostile":
        return replace(base, name='"><mj-image src="https://evil.example/x.png"><script>alert(1)</script>\r\nBcc: x@evil.example')
    if name == "rtl":
        return replace(base, name="\u202eمحمد\u202c العربي 😀", locale=locale)
    if name == "long":
        return replace(base, name="Wolfeschlegelsteinhausenbergerdorffvoralternwarengewissenhaftschaferswessenschafewarenwohlgepflegeundsorgfaltigkeitbeschutzenvonangreifendurchihrraubgierigfeindewelchevoralternzwolftausendjahresvorandieerscheinenvanderersteerdemenschderraumschiffgebrauchlicht " * 1,
                       tasks=9_876_543, minutes_saved=Decimal("987654.50"), money_saved=Decimal("1234567.89"),
                       lifetime_tasks=99_999_999, milestones=(1_000_000,), peer_cohort_size=987_654,
                       top_features=(FeatureCount("workflow_run", "Automated workflows", 9_000_000),
                                     FeatureCount("report_generated", "Reports", 876_543)))
    raise KeyError(name)


FIXTURES = ("active", "new", "low", "empty", "minimal", "hostile", "rtl", "long", "time_only", "money_only", "tasks_only")


def synthetic(n: int, seed: int = 0, campaign: str = "weekly") -> list[EmailData]:
    """``n`` varied customers (all variants, all three languages, names from several scripts)."""
    rng = random.Random(seed)
    start, end = PERIODS[campaign]
    n_days = (end - start).days
    names = ["Anna Kovács", "李明", "Ödön Szűcs", "Maria Garcia", "Ngozi Okafor", "", None, "O'Brien <b>", "Zoë Ďurová"]
    locales = ["en", "en-US", "hu-HU", "hu", "zh-CN", "zh-Hans-CN", "de", None]
    stages = ["active"] * 6 + ["new", "lapsed", None]
    features = list(VALUE_MODEL.features)
    out = []
    for i in range(n):
        tasks = rng.choice([0, 2, 4]) if rng.random() < 0.1 else int(rng.lognormvariate(4, 1.1)) + 1
        daily = [0] * n_days
        for _ in range(min(tasks, 400)):
            daily[rng.randrange(n_days)] += 1
        picked = rng.sample(features, k=rng.randint(0, 3)) if tasks else []
        remaining = tasks
        top = []
        for j, f in enumerate(picked):
            share = remaining if j == len(picked) - 1 else rng.randint(0, remaining)
            if share:
                top.append(FeatureCount(f, VALUE_MODEL.features[f], share))
            remaining -= share
        cid = f"c{seed}-{i:07d}"
        # customer_metrics always has the busiest day (the first of the busiest, NULL without tasks);
        # without it the renderer works it out from daily_tasks, which the pipeline never needs
        most = max(daily)
        prev = rng.choice([None, int(tasks * rng.uniform(0.5, 1.5))])
        out.append(EmailData(
            campaign=campaign, period_start=start, period_end=end, customer_id=cid,
            links=links(cid, campaign, start.isoformat()),
            name=rng.choice(names), locale=rng.choice(locales), stage=rng.choice(stages),
            tasks=tasks, minutes_saved=Decimal(tasks * rng.choice([1, 2, 3, 5])) + Decimal(rng.randint(0, 99)) / 100,
            money_saved=Decimal(rng.choice([0, 0, rng.randint(1, 50000)])) / 100, currency="USD",
            active_days=sum(1 for d in daily if d), daily_tasks=tuple(daily),
            busiest_day=start + timedelta(days=daily.index(most)) if most else None, busiest_day_tasks=most or None,
            monthly_tasks=tuple(rng.randint(0, 300) for _ in range(12)) if campaign == "yearly" else (),
            top_features=tuple(sorted(top, key=lambda f: -f.tasks)),
            prev_tasks=prev, lifetime_tasks=tasks + rng.randint(0, 10000),
            milestones=(rng.choice([100, 1000, 10000]),) if rng.random() < 0.1 else (),
            streak_weeks=rng.choice([None, 1, 2, 5, 12]),
            tasks_percentile=rng.choice([None, rng.uniform(0, 100)]),
            peer_cohort_size=rng.choice([None, 1240]),
            first_uses=(rng.choice(features),) if rng.random() < 0.1 else (),
            charts=charts_for(campaign, cid, "Tasks per day"),
        ))
    return out
