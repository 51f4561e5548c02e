"""From :class:`EmailData` to what a template shows: the *shape* and the per-customer *values*.

Pure code.  The shape decides the layout (campaign, language, variant, how many rows each
optional block has) and is the compile-cache key; the values are the customer's strings, every
one already formatted for the language (numbers, money, durations, dates via
:class:`i18n.Localizer`) and every one plain text — escaping happens when they go into HTML.

Optional content is *data-driven* wherever possible: the highlights and the stat tiles are
lists of (label, value) rows, so the shape only records how many rows there are, not which.
That keeps the number of compiled templates small (a few dozen per campaign and language).

This runs once per customer, so it is written for speed: per-language tables (dicts, so a hit
is one lookup in C) for the phrases that depend on a number ("137 tasks") or a few keys, one
regex per link check, a tuple as the shape.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Callable, Mapping, NamedTuple

from report_templates import i18n
from report_templates.i18n import Localizer, LocaleChoice
from report_templates.model import EmailData, first_name

SUBJECT_MAX = 50
PREHEADER_MAX = 110
MAX_FEATURES = 3
MAX_HIGHLIGHTS = 4


def N_(message: str) -> str:
    """Mark a string for the catalog without translating it here (Babel extracts ``N_``)."""
    return message


FOUNDER_ROLE = N_("co-founder")


# ------------------------------------------------------------------------------- links
class UnsafeLinkError(ValueError):
    """A link that must not go into an e-mail: not https, or malformed."""


# scheme, a host (letters, digits, dots, dashes; no user:password@), optional port, then a path /
# query / fragment without spaces, quotes, angle brackets, backslashes or control characters
_HTTPS_URL = re.compile(r"https://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:[/?#][^\s\"'<>\\`\x00-\x1f\x7f]*)?")
_CID_SRC = re.compile(r"cid:[A-Za-z0-9._\-]+@[A-Za-z0-9.\-]+")


def check_url(url: str | None, what: str) -> str:
    """Return ``url`` if it is an absolute ``https://`` URL; raise :class:`UnsafeLinkError` otherwise.

    Refused: any other scheme (``http:``, ``javascript:``, ``data:``, ``mailto:``), credentials
    in the URL, spaces, quotes, angle brackets, backslashes and control characters.
    """
    if isinstance(url, str) and _HTTPS_URL.fullmatch(url):
        return url
    if not isinstance(url, str) or not url:
        raise UnsafeLinkError(f"{what}: missing link")
    raise UnsafeLinkError(f"{what}: only plain https:// links may go into an e-mail, got {url[:80]!r}")


@functools.lru_cache(maxsize=256)
def _check_cta(url: str) -> str:
    """:func:`check_url` for the call-to-action link, which is the same for a whole send: checked
    once per distinct URL (a refused one raises and is not cached)."""
    return check_url(url, "call-to-action link")


def check_src(src: str, what: str) -> str:
    """An image source: ``cid:<id>@<domain>`` (an inline part) or an https URL."""
    if isinstance(src, str) and src.startswith("cid:"):
        if not _CID_SRC.fullmatch(src):
            raise UnsafeLinkError(f"{what}: malformed content id {src[:80]!r}")
        return src
    return check_url(src, what)


# ------------------------------------------------------------------------------- static facts
@dataclass(frozen=True)
class Colours:
    """The e-mail palette (the charts' palette, see charts/theme.py, plus light surfaces)."""

    page: str = "#F1F0FA"  # page background
    card: str = "#FFFFFF"
    ink: str = "#1E1B4B"  # headings and numbers on white (charts' NIGHT, 15:1)
    body: str = "#2E2B55"  # body text on white (12:1)
    muted: str = "#5E5A86"  # secondary text on white (6.5:1)
    rule: str = "#E6E3F5"
    night: str = "#1E1B4B"  # hero card (same as the charts' card, so the PNGs sit on it)
    night_deep: str = "#13103A"
    pill: str = "#2C2868"
    on_night: str = "#FFFFFF"
    on_night_muted: str = "#C7C4F2"  # 9.4:1 on night
    teal: str = "#2DD4BF"
    amber: str = "#FBBF24"
    coral: str = "#FB7185"
    violet: str = "#A78BFA"
    button: str = "#4F46E5"  # white text 6.3:1
    link: str = "#4338CA"
    bar: str = "#2DD4BF"


@dataclass(frozen=True)
class Brand:
    """The sender's static facts (from the ``[sender]`` and ``[emails]`` configuration)."""

    product: str = "valuemail"
    postal_address: str = ""
    founder_name: str = "Dora Kovács"
    founder_role: str = FOUNDER_ROLE  # English; translated by the catalog
    colours: Colours = field(default_factory=Colours)


@dataclass(frozen=True)
class ValueModelTexts:
    """The English feature labels and "how we counted" sentences of one value-model version."""

    version: str
    features: Mapping[str, str]  # event_type → label
    explain: Mapping[str, str]  # event_type → one sentence
    saves_time: bool = True  # some event type has a default of minutes saved per unit
    saves_money: bool = False  # some event type has a default of money saved per unit

    @classmethod
    def from_value_model(cls, model) -> "ValueModelTexts":
        return cls(
            version=model.version,
            features={k: ev.feature for k, ev in model.events.items()},
            explain={k: ev.explain for k, ev in model.events.items()},
            saves_time=any(ev.minutes_per_unit > 0 for ev in model.events.values()),
            saves_money=any(ev.money_per_unit > 0 for ev in model.events.values()),
        )


@dataclass(frozen=True)
class Thresholds:
    """Below ``low_tasks[campaign]`` tasks a customer gets the short version; new = signed up
    less than ``new_days`` before the period ended (used only when segments has no stage);
    ``headline`` is the figure the e-mail leads with (see :func:`headline_kind`)."""

    low_tasks: Mapping[str, int] = field(default_factory=lambda: {"weekly": 5, "monthly": 15, "yearly": 60})
    new_days: int = 30
    streak_min_weeks: int = 2
    peer_min_percentile: float = 50.0  # "more tasks than X%" is only said when X ≥ this
    headline: str = "auto"  # auto | time | money | tasks

    def __hash__(self) -> int:  # frozen dataclass with a dict field
        return hash((tuple(sorted(self.low_tasks.items())), self.new_days, self.streak_min_weeks, self.headline))


# ------------------------------------------------------------------------------- shape
class Shape(NamedTuple):
    """Everything that changes the *layout* of an e-mail (the compile-cache key)."""

    campaign: str
    locale: str
    variant: str  # new | active | low
    headline: str  # time | money | tasks: the figure the e-mail leads with
    period_start: date
    period_end: date
    empty: bool  # no tasks at all in the period
    has_change: bool  # a comparison with the previous period
    n_tiles: int  # stat tiles (0–3)
    charts: tuple  # chart kinds shown, in order
    n_highlights: int  # highlight rows (label + value)
    n_features: int  # top-feature rows (0–3)
    n_explain: int  # "how we counted" lines (0–3)
    has_share: bool
    first_period: bool  # the customer signed up during this period ("your first week")
    has_money_note: bool  # money saved includes time valued at the customer's hourly rate
    has_workdays: bool  # yearly: "that's N working days"
    has_best_month: bool  # yearly


@dataclass
class View:
    shape: Shape
    values: dict[str, str]
    locale: LocaleChoice
    images: tuple
    fallbacks: tuple[str, ...]


def choose_variant(data: EmailData, thresholds: Thresholds) -> str:
    """``new`` (onboarding, founder's note), ``low`` (short version) or ``active`` (full stats)."""
    if data.variant:
        return data.variant
    stage = data.stage
    if stage is None and data.signed_up_at is not None:
        end = datetime(data.period_end.year, data.period_end.month, data.period_end.day)
        signed = data.signed_up_at.replace(tzinfo=None)
        stage = "new" if timedelta(0) <= end - signed <= timedelta(days=thresholds.new_days) else None
    if stage in ("new", "prospect"):
        return "new"
    if stage in ("lapsed", "churned", "seasonal"):
        return "low"
    if data.tasks < thresholds.low_tasks.get(data.campaign, 1):
        return "low"
    return "active"


def headline_kind(data: EmailData, vm: ValueModelTexts, setting: str = "auto") -> str:
    """The figure an e-mail leads with: ``time``, ``money`` or ``tasks`` — never a zero.

    ``auto``: what the value model values (time first, unless it values only money), then the
    other measure, then the task count — the first the customer has more than nothing of.  A
    fixed ``setting`` is tried first, with the same order behind it when the customer has none.
    """
    have = {"time": data.minutes_saved > 0, "money": data.money_saved > 0, "tasks": True}
    order = ("money", "time") if vm.saves_money and not vm.saves_time else ("time", "money")
    if setting != "auto":
        order = (setting, *order)
    return next(kind for kind in (*order, "tasks") if have[kind])


def signed_up_on(data: EmailData) -> date | None:
    return data.signed_up_at.date() if data.signed_up_at is not None else None


def previous_period_start(campaign: str, start: date) -> date:
    if campaign == "weekly":
        return start - timedelta(days=7)
    if campaign == "monthly":
        return (start - timedelta(days=1)).replace(day=1)
    return start.replace(year=start.year - 1)


def fit(limit: int, *candidates: str) -> str:
    """The first candidate of at most ``limit`` characters (the last one is cut if none fits)."""
    for text in candidates:
        if text and len(text) <= limit:
            return text
    last = [c for c in candidates if c][-1]
    return last[: limit - 1].rstrip() + "…"


_SPACES = re.compile(r"[ \t\r\n\f\v\u0085\u2028\u2029]+")  # not no-break spaces: numbers keep theirs


def _label(text: str, limit: int) -> str:
    """A configuration or chart text (trusted but not assumed tidy): NFC, one line, bounded."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if not text.isprintable() or "  " in text or text != text.strip():  # line breaks, tabs, runs of spaces
        text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_MEMO_MAX = 50_000  # entries per phrase table: numbers and names repeat, but not without bound


class _Memo(dict):
    """``key → phrase``, each made once by ``make(key)``: a hit is a plain dict lookup (in C),
    which matters for the dozen phrases every e-mail looks up."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[Any], Any]):
        super().__init__()
        self.make = make

    def __missing__(self, key: Any) -> Any:
        value = self.make(key)
        if len(self) < _MEMO_MAX:
            self[key] = value
        return value


class _Phrases:
    """Per-language caches of the strings that depend on one number or one key."""

    __slots__ = ("loc", "tasks", "tasks_ran", "tasks_since_start", "weeks_in_a_row", "workdays", "task_noun", "active_day_noun",
                 "days_of", "greeting", "change", "preheader", "feature", "explain")

    def __init__(self, loc: Localizer):
        self.loc = loc
        self.tasks = self.plural("%(n)s task", "%(n)s tasks")
        self.tasks_since_start = self.plural("%(n)s task since you started", "%(n)s tasks since you started")
        self.weeks_in_a_row = self.plural("%(n)s week in a row", "%(n)s weeks in a row")
        self.workdays = self.plural("That’s %(n)s full working day (8 hours each).",
                                    "That’s %(n)s full working days (8 hours each).")
        self.task_noun = self.noun("task", "tasks")
        self.tasks_ran = self.noun("task %(product)s ran for you", "tasks %(product)s ran for you")
        self.active_day_noun = self.noun("active day", "active days")
        self.days_of = _Memo(lambda key: _days_of(loc, *key))  # (active days, days in the period)
        _ = loc.gettext
        self.greeting = _Memo(lambda name: (_("Hi %(name)s,") % {"name": name}) if name else _("Hi there,"))
        self.change = _Memo(lambda key: _change(loc, *key))  # (campaign, rounded percentage)
        self.preheader = _Memo(lambda key: _preheader(loc, *key))  # (tasks phrase, weekday, top feature)
        self.feature = self.value_model_text("feature", 60)
        self.explain = self.value_model_text("explain", 300)

    def plural(self, singular: str, plural: str) -> _Memo:
        """``n →`` the catalog's plural form for ``n`` with the number in it ("137 tasks")."""
        loc = self.loc
        return _Memo(lambda n: loc.ngettext(singular, plural, n) % {"n": loc.format_int(n)})

    def noun(self, singular: str, plural: str) -> _Memo:
        """``n →`` the catalog's plural form for ``n`` without the number ("task" / "tasks")."""
        loc = self.loc
        return _Memo(lambda n: loc.ngettext(singular, plural, n))

    def value_model_text(self, kind: str, limit: int) -> _Memo:
        """``(event type, English text) →`` (the text in this language, whether it fell back to English)."""
        loc = self.loc

        def make(key: tuple[str, str]) -> tuple[str, bool]:
            event_type, english = key
            text = loc.value_model_text(event_type, kind, english)
            return _label(text, limit), loc.locale != i18n.DEFAULT_LOCALE and text == english and bool(english)

        return _Memo(make)


_PHRASES: dict[str, _Phrases] = {}
# slot names, built once (f-strings per customer add up)
_TILE_KEYS = tuple((f"tile_{i}_value", f"tile_{i}_label") for i in range(1, 4))
_FEATURE_KEYS = tuple((f"feature_{i}", f"feature_{i}_phrase", f"feature_{i}_pct", f"feature_{i}_rest") for i in range(1, 4))
_EXPLAIN_KEYS = tuple((f"explain_{i}", f"explain_{i}_feature") for i in range(1, 4))
_HL_KEYS = tuple((f"hl_{i}_label", f"hl_{i}_value") for i in range(1, 10))
_CHART_KEYS = {kind: (f"chart_{kind}_src", f"chart_{kind}_alt") for kind in
               ("weekly_activity", "monthly_activity", "year_months", "peer_position", "share_card")}
_PCT = tuple(str(i) for i in range(101))


def _phrases(loc: Localizer) -> _Phrases:
    p = _PHRASES.get(loc.locale)
    if p is None:
        p = _PHRASES[loc.locale] = _Phrases(loc)
    return p


def build_view(data: EmailData, brand: Brand, vm: ValueModelTexts, thresholds: Thresholds) -> View:  # noqa: C901, PLR0912, PLR0915 - one flat list of blocks
    """The shape and the formatted values of one customer's e-mail."""
    choice = i18n.choose_locale(data.locale)
    loc: Localizer = i18n.localizer(choice.used)
    ph = _phrases(loc)
    _ = loc.gettext
    tasks_n = ph.tasks  # n → "n tasks"
    fmt = loc.format_int
    campaign = data.campaign
    weekly, yearly = campaign == "weekly", campaign == "yearly"
    variant = choose_variant(data, thresholds)
    tasks = data.tasks
    empty = tasks == 0
    name = first_name(data.name, choice.requested or choice.used)
    product = brand.product
    values: dict[str, str] = {}
    fallbacks: list[str] = []

    # --- headline: the figure the value model and the customer's numbers make the point with ----
    headline = headline_kind(data, vm, thresholds.headline)
    time_saved = loc.format_minutes(data.minutes_saved)
    money_saved = loc.format_money(data.money_saved, data.currency) if data.money_saved > 0 else ""  # shown only then
    tasks_phrase = tasks_n[tasks]
    if headline == "tasks":
        values["headline"] = fmt(tasks)
        values["headline_caption"] = ph.tasks_ran[tasks] % {"product": product}
    else:
        values["headline"] = time_saved if headline == "time" else money_saved
        caption = (_("saved by %(tasks)s %(product)s ran for you") if headline == "time"
                   else _("money saved by %(tasks)s %(product)s ran for you"))
        values["headline_caption"] = caption % {"tasks": tasks_phrase, "product": product}
    values["greeting"] = ph.greeting[name]
    # nothing is compared with, or counted from, before the customer signed up
    signed_up = signed_up_on(data)
    first_period = variant == "new" and signed_up is not None and data.period_start <= signed_up < data.period_end
    has_active_days = data.active_days > 0 and not empty  # 0 with tasks: "not computed", not a fact

    # --- change vs the previous period ---------------------------------------------------------
    has_change = False
    if not empty and variant != "low":
        pct = data.tasks_change_pct
        if pct is None and data.prev_tasks:
            pct = (tasks - data.prev_tasks) * 100.0 / data.prev_tasks
        since_signup = signed_up is None or signed_up <= previous_period_start(campaign, data.period_start)
        if pct is not None and data.prev_tasks != 0 and since_signup:
            values["change"] = ph.change[campaign, int(round(pct))]
            has_change = True

    # --- stat tiles ------------------------------------------------------------------------------
    features = list(data.top_features[:MAX_FEATURES]) if not empty else []
    feature_labels: list[str] = []
    for f in features:
        label, fell_back = ph.feature[f.event_type, vm.features.get(f.event_type, f.feature)]
        feature_labels.append(label)
        if fell_back:
            fallbacks.append(f"value_model.{f.event_type}.feature")
    tiles: list[tuple[str, str]] = []
    if not empty and variant != "low":  # the figures beside the headline: never the headline again
        if headline != "tasks":
            tiles.append((fmt(tasks), ph.task_noun[tasks]))
        if has_active_days:
            tiles.append((fmt(data.active_days), ph.active_day_noun[data.active_days]))
        measures = []
        if headline != "time" and data.minutes_saved > 0:
            measures.append((time_saved, _("time saved")))
        if headline != "money" and data.money_saved > 0:
            measures.append((money_saved, _("saved in value") if data.money_from_time else _("saved in costs")))
        if not measures and features:
            measures.append((fmt(features[0].tasks), feature_labels[0]))
        tiles = (tiles + measures)[:3]
    for (kv, kl), (value, label) in zip(_TILE_KEYS, tiles):
        values[kv] = value
        values[kl] = label

    # --- the short version's sentence --------------------------------------------------------------
    if empty:
        values["summary"] = _("Automations you switch on keep working while you do something else. Pick one of your everyday chores and let it run for you.")
        values["empty_line"] = (_("No tasks ran for you this week.") if weekly else _("No tasks ran for you this year.")
                                if yearly else _("No tasks ran for you this month."))
    elif variant == "low":
        if has_active_days:
            period_days = (data.period_end - data.period_start).days
            days = ph.days_of[data.active_days, period_days]
            sentence = (_("A quieter week: %(product)s ran %(tasks)s %(days)s.") if weekly
                        else _("A quieter year: %(product)s ran %(tasks)s %(days)s.") if yearly
                        else _("A quieter month: %(product)s ran %(tasks)s %(days)s."))
            values["summary"] = sentence % {"product": product, "tasks": tasks_phrase, "days": days}
        else:
            sentence = (_("A quieter week: %(product)s ran %(tasks)s.") if weekly
                        else _("A quieter year: %(product)s ran %(tasks)s.") if yearly
                        else _("A quieter month: %(product)s ran %(tasks)s."))
            values["summary"] = sentence % {"product": product, "tasks": tasks_phrase}

    # --- top features and how we counted -------------------------------------------------------------
    top = features[0].tasks if features else 0
    for (k_label, k_phrase, k_pct, k_rest), f, label in zip(_FEATURE_KEYS, features, feature_labels):
        pct = max(4, min(100, round(f.tasks * 100 / top))) if top else 0
        values[k_label] = label
        values[k_phrase] = tasks_n[f.tasks]
        values[k_pct] = _PCT[pct]
        values[k_rest] = _PCT[100 - pct]
    n_explain = 0
    for f, label in zip(features, feature_labels):
        english = vm.explain.get(f.event_type)
        if not english:
            continue
        text, fell_back = ph.explain[f.event_type, english]
        if fell_back:
            fallbacks.append(f"value_model.{f.event_type}.explain")
        k_text, k_feature = _EXPLAIN_KEYS[n_explain]
        n_explain += 1
        values[k_text] = text
        values[k_feature] = label

    has_money_note = bool(not empty and variant != "low" and data.money_saved > 0 and data.money_from_time
                          and data.hourly_rate)
    if has_money_note:
        values["money_note"] = _("Money saved includes the time saved, valued at your hourly rate of %(rate)s.") % {
            "rate": loc.format_money(data.hourly_rate, data.currency)}

    # --- highlights (label, value) rows ------------------------------------------------------------------
    # in order of priority; at most MAX_HIGHLIGHTS (concise: the most telling few)
    highlights: list[tuple[str, str]] = []
    charts = {c.kind: c for c in data.charts} if data.charts else {}
    percentile = data.tasks_percentile
    has_peer = percentile is not None and percentile >= max(1, thresholds.peer_min_percentile) and not empty
    peer_chart = charts.get("peer_position") if has_peer else None
    if not empty and variant != "low":
        busiest_day, busiest_tasks = data.busiest_day, data.busiest_day_tasks
        daily = data.daily_tasks
        most = max(daily) if daily else 0
        if busiest_day is None and most > 0:  # the first day with the most tasks (index/max run in C: a year is 365 days)
            busiest_day, busiest_tasks = data.period_start + timedelta(days=daily.index(most)), most
        tied = most > 0 and busiest_tasks == most and daily.count(most) > 1  # no one busiest day to name
        if busiest_day and busiest_tasks and not tied and data.period_start <= busiest_day < data.period_end:
            day = loc.format_date(busiest_day) if yearly else loc.format_day(busiest_day)
            values["busiest_weekday"] = loc.weekday_names[busiest_day.weekday()]
            highlights.append((_("Biggest day") if yearly else _("Busiest day"),
                               _("%(day)s · %(tasks)s") % {"day": day, "tasks": tasks_n[busiest_tasks]}))
        if data.milestones:
            highlights.append((_("Milestone"), _("You passed %(milestone)s") % {
                "milestone": ph.tasks_since_start[max(data.milestones)]}))
        if data.money_other:
            highlights.append((_("Also saved"), ", ".join(loc.format_money(a, c) for c, a in data.money_other)))
        if has_peer and peer_chart is None:  # with the chart, its headline already says it
            highlights.append((_("Compared with others"), peer_phrase(loc, percentile)))
        streak = data.streak_weeks or 0
        if signed_up is not None:  # a streak counts only weeks since the sign-up
            streak = min(streak, ((data.period_end - signed_up).days + 6) // 7)
        if len(highlights) < MAX_HIGHLIGHTS and streak and streak >= thresholds.streak_min_weeks:
            highlights.append((_("Streak"), _("Active %(streak)s") % {"streak": ph.weeks_in_a_row[streak]}))
        if len(highlights) < MAX_HIGHLIGHTS and data.first_uses:
            first_use = next((e for e in data.first_uses if e in vm.features), None)
            if first_use:
                label, _fb = ph.feature[first_use, vm.features[first_use]]
                highlights.append((_("First time"), _("You used %(feature)s for the first time") % {"feature": label}))
        if len(highlights) < MAX_HIGHLIGHTS and yearly and data.lifetime_tasks and data.lifetime_tasks > tasks:
            highlights.append((_("All together"), ph.tasks_since_start[data.lifetime_tasks]))
        del highlights[MAX_HIGHLIGHTS:]
    for (kl, kv), (label, value) in zip(_HL_KEYS, highlights):
        values[kl] = label
        values[kv] = value

    # --- yearly extras ------------------------------------------------------------------------------------
    has_workdays = has_best_month = False
    if yearly and not empty:
        workdays = int(data.minutes_saved) // 480
        if workdays > 0 and headline == "time":
            has_workdays = True
            values["workdays"] = ph.workdays[workdays]
        months = data.monthly_tasks
        best_tasks = max(months) if len(months) == 12 else 0
        if best_tasks > 0:  # ties named as the chart's alt text names them: all of them, "each"
            has_best_month = True
            best = [loc.month_names[i] for i, n in enumerate(months) if n == best_tasks]
            sentence = _("Best month: %(month)s, %(tasks)s") if len(best) == 1 else _("Best months: %(month)s, %(tasks)s each")
            values["best_month"] = sentence % {"month": _(", ").join(best), "tasks": tasks_n[best_tasks]}

    # --- charts -------------------------------------------------------------------------------------------
    chart_kinds: list[str] = []
    images = []
    if not empty and variant != "low" and data.charts:
        wanted = ("year_months", "peer_position", "share_card") if yearly else (
            ("weekly_activity", "peer_position") if weekly else ("monthly_activity", "peer_position"))
        for kind in wanted:
            chart = peer_chart if kind == "peer_position" else charts.get(kind)
            if chart is None:
                continue
            k_src, k_alt = _CHART_KEYS[kind]
            values[k_src] = check_src(chart.src, "chart")
            values[k_alt] = _label(chart.alt, 400)
            chart_kinds.append(kind)
            images.append(chart)

    # --- links --------------------------------------------------------------------------------------------
    links = data.links
    values["cta_url"] = _check_cta(links.cta_url)
    pref = values["preferences_url"] = check_url(links.preferences_url, "preferences link")
    values["unsubscribe_url"] = check_url(links.unsubscribe_url, "unsubscribe link")
    values["feedback_base"] = pref + ("&" if "?" in pref else "?") + "nps="
    has_share = bool(links.share_url) and not empty
    if has_share:
        values["share_url"] = check_url(links.share_url, "share-page link")

    # --- subject and preheader ------------------------------------------------------------------------------
    values["subject"] = _subject(data, first_period, name, headline, values["headline"], tasks_phrase, loc, product)
    # the same few words for many customers: memoised on what it says
    values["preheader"] = ph.preheader[tasks_phrase if tasks else None, None if yearly else values.get("busiest_weekday"),
                                       feature_labels[0] if feature_labels else None]

    shape = Shape(
        campaign, choice.used, variant, headline, data.period_start, data.period_end, empty, has_change, len(tiles),
        tuple(chart_kinds), len(highlights), len(features), n_explain, has_share, first_period, has_money_note, has_workdays,
        has_best_month,
    )
    return View(shape, values, choice, tuple(images), tuple(dict.fromkeys(fallbacks)))


def _subject(data: EmailData, first_period: bool, name: str, headline: str, figure: str, tasks_phrase: str,
             loc: Localizer, product: str) -> str:
    """The first candidate that fits: with the name, without it, short.  ``figure`` is the
    headline (time or money saved: "… saved"; the task count: "… done for you")."""
    _ = loc.gettext
    campaign = data.campaign
    t = {"name": name, "time": figure, "tasks": tasks_phrase, "year": str(data.period_start.year), "product": product,
         "month": loc.month_names[data.period_start.month - 1]}
    if data.tasks == 0:
        generic = (_("Your week with %(product)s") if campaign == "weekly" else _("Your month with %(product)s")
                   if campaign == "monthly" else _("Your %(year)s with %(product)s"))
        return fit(SUBJECT_MAX, generic % t)
    saved = headline != "tasks"
    if campaign == "weekly":
        if first_period and saved:
            named, plain, short = (_("%(name)s, your first week: %(time)s saved"), _("Your first week: %(time)s saved"),
                                   _("%(time)s saved this week"))
        elif first_period:
            named, plain, short = (_("%(name)s, your first week: %(tasks)s done for you"),
                                   _("Your first week: %(tasks)s done for you"), _("%(tasks)s done for you this week"))
        elif saved:
            named, plain, short = (_("%(name)s, you saved %(time)s this week"), _("You saved %(time)s this week"),
                                   _("%(time)s saved this week"))
        else:
            named, plain, short = (_("%(name)s, %(tasks)s done for you this week"), _("%(tasks)s done for you this week"),
                                   _("%(tasks)s done for you this week"))
    elif campaign == "monthly":
        named, plain, short = ((_("%(name)s, %(month)s: %(time)s saved"), _("Your %(month)s: %(time)s saved"),
                                _("%(time)s saved this month")) if saved else
                               (_("%(name)s, %(month)s: %(tasks)s done for you"), _("Your %(month)s: %(tasks)s done for you"),
                                _("%(tasks)s done for you this month")))
    else:
        named, plain = ((_("%(name)s, your %(year)s Wrapped: %(time)s saved"), _("Your %(year)s Wrapped: %(time)s saved"))
                        if saved else (_("%(name)s, your %(year)s Wrapped: %(tasks)s done"),
                                       _("Your %(year)s Wrapped: %(tasks)s done")))
        short = _("Your %(year)s Wrapped is here")
    if name:  # the first that fits wins, so build them one at a time
        first = named % t
        if len(first) <= SUBJECT_MAX:
            return first
    second = plain % t
    if len(second) <= SUBJECT_MAX:
        return second
    return fit(SUBJECT_MAX, short % t)


def _days_of(loc: Localizer, n: int, total: int) -> str:
    """"on 3 of 7 days" (the plural follows the period's length)."""
    return loc.ngettext("on %(n)s of %(total)s day", "on %(n)s of %(total)s days", total) % {
        "n": loc.format_int(n), "total": loc.format_int(total)}


def _change(loc: Localizer, campaign: str, rounded: int) -> str:
    """"▲ 23% more tasks than last week" for a change rounded to a whole percentage."""
    _ = loc.gettext
    last = _("last week") if campaign == "weekly" else _("last year") if campaign == "yearly" else _("last month")
    share = loc.format_percent(abs(rounded))
    if rounded > 0:
        return "▲ " + _("%(pct)s more tasks than %(last)s") % {"pct": share, "last": last}
    if rounded < 0:
        return "▼ " + _("%(pct)s fewer tasks than %(last)s") % {"pct": share, "last": last}
    return _("As many tasks as %(last)s") % {"last": last}


def peer_phrase(loc: Localizer, percentile: float) -> str:
    """Where the customer stands among the *other* customers on the plan, never "100%": from 99
    on it is "in the top 1%"."""
    if percentile >= 99:
        return loc.gettext("In the top %(pct)s of customers on your plan by tasks") % {"pct": loc.format_percent(1)}
    return loc.gettext("More tasks than %(pct)s of customers on your plan") % {"pct": loc.format_percent(int(percentile))}


def _preheader(loc: Localizer, tasks_phrase: str | None, busiest_weekday: str | None, top_feature: str | None) -> str:
    """``tasks_phrase`` is None when there were no tasks; ``busiest_weekday`` None when not shown."""
    _ = loc.gettext
    if tasks_phrase is None:
        return fit(PREHEADER_MAX, _("No tasks this time. Here is how to get the most out of your account."))
    parts = [tasks_phrase + " " + _("done for you")]
    if busiest_weekday:
        parts.append(_("busiest day: %(day)s") % {"day": busiest_weekday})
    if top_feature:
        parts.append(_("top: %(feature)s") % {"feature": top_feature})
    return fit(PREHEADER_MAX, _(" · ").join(parts), parts[0])
