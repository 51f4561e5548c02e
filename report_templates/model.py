"""What an e-mail template needs, as plain dataclasses — and the mapping from warehouse rows.

Pure code.  The templates are tested with :class:`EmailData` built by hand (no database); the
pipeline builds it with :func:`email_data_from_row` from whatever the ``customers``,
``customer_metrics`` and ``segments`` rows hold.  The mapping is deliberately defensive: the
metrics contract grows over time, so a missing column, a NULL, a JSON string instead of a list
or a value of the wrong type gives the field's empty default (and is never shown) instead of an
exception in the middle of a million-customer run.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

log = logging.getLogger(__name__)

CAMPAIGNS = ("weekly", "monthly", "yearly")
#: lifecycle stages written by the segments stage (metrics engineer's contract)
STAGES = ("prospect", "new", "active", "lapsed", "churned", "seasonal")
#: template variants: onboarding tone, full stats, short version
VARIANTS = ("new", "active", "low")

NAME_MAX = 40  # characters of a first name we show; longer names are cut with "…"


@dataclass(frozen=True, slots=True)
class FeatureCount:
    """One of the customer's top features in the period."""

    event_type: str
    feature: str  # the value model's English label (translated by the catalog at render time)
    tasks: int


@dataclass(frozen=True, slots=True)
class ChartImage:
    """A chart shown in the e-mail: inline (``cid:``) or hosted (``https://``)."""

    kind: str  # weekly_activity | monthly_activity | year_months | peer_position | share_card
    src: str  # "cid:<content-id>" or an https URL
    alt: str
    width: int = 600  # CSS px
    height: int = 300
    path: str | None = None  # the PNG on disk (inline images only)

    @property
    def cid(self) -> str | None:
        return self.src[4:] if self.src.startswith("cid:") else None


@dataclass(frozen=True, slots=True)
class Links:
    """Every per-customer URL in the message (each is checked: https only)."""

    preferences_url: str
    unsubscribe_url: str
    cta_url: str
    share_url: str | None = None


@dataclass(frozen=True, slots=True)
class EmailData:
    """One customer's e-mail for one period: the numbers (already computed) and who it is for.

    Every figure is the customer's own, from ``customer_metrics``; peer figures are only the
    customer's percentile within a cohort of at least *k* (never another customer's values).
    """

    campaign: str
    period_start: date
    period_end: date  # exclusive: the period's end, or the cut-off when it was measured to date
    customer_id: str
    links: Links
    name: str | None = None
    locale: str | None = None
    stage: str | None = None  # lifecycle stage from segments (None: not computed)
    variant: str | None = None  # forced variant (tests/preview); None: chosen by choose_variant
    plan: str | None = None
    signed_up_at: datetime | None = None
    # headline figures
    tasks: int = 0
    minutes_saved: Decimal = Decimal(0)
    money_saved: Decimal = Decimal(0)
    currency: str = "USD"
    money_other: tuple[tuple[str, Decimal], ...] = ()  # measured savings in other currencies
    active_days: int = 0
    daily_tasks: tuple[int, ...] = ()  # one per day of the period
    monthly_tasks: tuple[int, ...] = ()  # 12 for yearly
    weekday_tasks: tuple[int, ...] = ()  # 7, Monday first (summed over the period)
    money_from_time: Decimal | None = None  # part of money_saved that is time valued at hourly_rate
    hourly_rate: Decimal | None = None
    top_features: tuple[FeatureCount, ...] = ()
    # comparisons and highlights
    prev_tasks: int | None = None
    prev_minutes_saved: Decimal | None = None
    tasks_change_pct: float | None = None
    lifetime_tasks: int | None = None
    milestones: tuple[int, ...] = ()  # lifetime-task milestones crossed in this period
    streak_weeks: int | None = None
    busiest_day: date | None = None
    busiest_day_tasks: int | None = None
    first_uses: tuple[str, ...] = ()  # event types used for the first time in this period
    peer_cohort: str | None = None
    peer_cohort_size: int | None = None
    tasks_percentile: float | None = None  # 0–100: share of the cohort with strictly fewer tasks (rounded down)
    charts: tuple[ChartImage, ...] = ()

    def chart(self, *kinds: str) -> ChartImage | None:
        for chart in self.charts:
            if chart.kind in kinds:
                return chart
        return None


# ------------------------------------------------------------------------------- names
_CONTROL_OR_FORMAT = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_text(value: str | None, limit: int | None = None) -> str:
    """One line of caller text: no control/bidi-override characters, spaces squashed, NFC."""
    text = unicodedata.normalize("NFC", str(value or ""))
    text = _CONTROL_OR_FORMAT.sub(" ", text)
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


_FIRST_NAMES: dict[tuple[str | None, str], str] = {}
#: CLDR personNames "nameOrderLocales": languages whose names are written surname first
SURNAME_FIRST = frozenset({"hu", "ja", "ko", "vi", "yue", "zh"})
#: …of which these address people by the full name (and write it without spaces)
FULL_NAME = frozenset({"ja", "ko", "yue", "zh"})


def first_name(name: str | None, language: str = "en") -> str:
    """:func:`_first_name`, memoised (names repeat across a million customers)."""
    key = (name, language)
    hit = _FIRST_NAMES.get(key)
    if hit is None:
        hit = _first_name(name, language)
        if len(_FIRST_NAMES) < 100_000:
            _FIRST_NAMES[key] = hit
    return hit


def _first_name(name: str | None, language: str = "en") -> str:
    """The name to greet the customer by, cleaned and cut at :data:`NAME_MAX` characters.

    Name order follows the customer's language (CLDR): the first word for given-name-first
    languages ("Anna Kovács" → "Anna"), the last word for Hungarian ("Kovács Anna" → "Anna"), the
    whole name for Chinese, Japanese and Korean ("刘梓萱" → "刘梓萱", as a greeting there does).

    Bidi control characters (U+202E …) are removed so a name can't reverse the text around it.
    A first word that doesn't look like a name — no letter at all, or markup/URL characters such
    as ``<>"{}=/@`` — gives ``""`` and the e-mail greets generically ("Hi there").  That is about
    quality, not safety: every value is escaped wherever it goes.
    """
    text = clean_text(name)
    if not text:
        return ""
    lang = (language or "en").split("-", 1)[0].lower()
    if lang in FULL_NAME:
        word = clean_text(text, NAME_MAX)
    elif lang in SURNAME_FIRST:
        word = clean_text(text.rsplit(" ", 1)[-1], NAME_MAX)
    else:
        word = clean_text(text.split(" ", 1)[0], NAME_MAX)
    if _NOT_A_NAME.search(word) or not any(unicodedata.category(ch).startswith("L") for ch in word):
        return ""
    return word


_NOT_A_NAME = re.compile(r"[<>\"{}\[\]|\\^`=;@/:#%&*+$~]")



# ------------------------------------------------------------------------------- mapping
def _int(value: Any, default: int | None = 0) -> int | None:
    if value is None or isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


def _nonneg_int(value: Any, default: int | None = 0) -> int | None:
    n = _int(value, default)
    return n if n is None or n >= 0 else default


def _decimal(value: Any, default: Decimal | None = Decimal(0)) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return default
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return default
    return d if d.is_finite() else default


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def _json(value: Any) -> Any:
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _int_list(value: Any) -> tuple[int, ...]:
    value = _json(value)
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(max(0, _int(v, 0) or 0) for v in value)


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _features(value: Any) -> tuple[FeatureCount, ...]:
    value = _json(value)
    if not isinstance(value, (list, tuple)):
        return ()
    out = []
    for item in value:
        item = _json(item)
        if not isinstance(item, Mapping):
            continue
        event_type = str(item.get("event_type") or "")
        tasks = _nonneg_int(item.get("tasks"), 0) or 0
        if event_type and tasks > 0:
            out.append(FeatureCount(event_type, str(item.get("feature") or event_type), tasks))
    return tuple(sorted(out, key=lambda f: (-f.tasks, f.event_type)))


def _money_other(value: Any) -> tuple[tuple[str, Decimal], ...]:
    value = _json(value)
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(value, Mapping):
        pairs = value.items()
    elif isinstance(value, (list, tuple)):
        pairs = [((_json(v) or {}).get("currency"), (_json(v) or {}).get("amount")) for v in value if isinstance(_json(v), Mapping)]
    else:
        return ()
    out = []
    for currency, amount in pairs:
        amount = _decimal(amount, None)
        if isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency) and amount is not None and amount > 0:
            out.append((currency, amount))
    return tuple(sorted(out))


def _first_uses(value: Any) -> tuple[str, ...]:
    value = _json(value)
    if isinstance(value, Mapping):
        value = list(value.keys())
    if not isinstance(value, (list, tuple)):
        return ()
    out = []
    for item in value:
        item = _json(item)
        if isinstance(item, Mapping):
            item = item.get("event_type")
        if isinstance(item, str) and item:
            out.append(item)
    return tuple(dict.fromkeys(out))


def email_data_from_row(
    row: Mapping[str, Any],
    *,
    campaign: str,
    period_start: date,
    period_end: date,
    links: Links,
    charts: tuple[ChartImage, ...] = (),
    feature_labels: Mapping[str, str] | None = None,
) -> EmailData:
    """Build :class:`EmailData` from one joined row (customers + customer_metrics + segments).

    Unknown columns are ignored, missing ones take the empty default.  ``feature_labels``
    (event type → English label from the value model) fills in labels the metrics row lacks.
    """
    g = row.get
    features = _features(g("top_features"))
    if feature_labels:
        features = tuple(
            FeatureCount(f.event_type, feature_labels.get(f.event_type, f.feature), f.tasks) for f in features
        )
    # "more tasks than X% of …" must never overstate: the metrics stage's tasks_beat_pct is the
    # percentile rounded down; without it, round tasks_percentile down here
    percentile = _float(g("tasks_beat_pct"))
    if percentile is None:
        percentile = _float(g("tasks_percentile"))
        percentile = float(int(percentile)) if percentile is not None and percentile >= 0 else percentile
    if percentile is not None and not 0 <= percentile <= 100:
        percentile = None
    currency = g("currency")
    return EmailData(
        campaign=campaign,
        period_start=period_start,
        period_end=period_end,
        customer_id=str(g("customer_id")),
        links=links,
        name=g("name") if isinstance(g("name"), str) else None,
        locale=g("locale") if isinstance(g("locale"), str) else None,
        stage=g("stage") if g("stage") in STAGES else None,
        plan=g("plan") if isinstance(g("plan"), str) else None,
        signed_up_at=_datetime(g("signed_up_at")),
        tasks=_nonneg_int(g("tasks")) or 0,
        minutes_saved=max(_decimal(g("minutes_saved")) or Decimal(0), Decimal(0)),
        money_saved=max(_decimal(g("money_saved")) or Decimal(0), Decimal(0)),
        currency=currency.upper() if isinstance(currency, str) and re.fullmatch(r"[A-Za-z]{3}", currency) else "USD",
        money_other=_money_other(g("money_other")),
        active_days=_nonneg_int(g("active_days")) or 0,
        daily_tasks=_int_list(g("daily_tasks")),
        monthly_tasks=_int_list(g("monthly_tasks")),
        weekday_tasks=_int_list(g("weekday_tasks")),
        money_from_time=_decimal(g("money_from_time"), None),
        hourly_rate=_decimal(g("hourly_rate"), None),
        top_features=features,
        prev_tasks=_nonneg_int(g("prev_tasks"), None),
        prev_minutes_saved=_decimal(g("prev_minutes_saved"), None),
        tasks_change_pct=_float(g("tasks_change_pct")),
        lifetime_tasks=_nonneg_int(g("lifetime_tasks"), None),
        milestones=tuple(m for m in _int_list(g("milestones")) if m > 0),
        streak_weeks=_nonneg_int(g("streak_weeks"), None),
        busiest_day=_date(g("busiest_day")),
        busiest_day_tasks=_nonneg_int(g("busiest_day_tasks"), None),
        first_uses=_first_uses(g("first_uses")),
        peer_cohort=g("peer_cohort") if isinstance(g("peer_cohort"), str) else None,
        peer_cohort_size=_nonneg_int(g("peer_cohort_size"), None),
        tasks_percentile=percentile,
        charts=charts,
    )
