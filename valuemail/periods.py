"""Campaign periods: Monday-start weeks, calendar months, calendar years — all UTC.

A period is named by its first day (``2026-11-16``, ``2026-11-01``, ``2026-01-01``).
A run has a data cut-off (a day, exclusive: the scheduled day, ``--as-of``, or today): a
period that has not ended by then is measured up to the cut-off (:attr:`Period.as_of`) —
the year-to-date wrapped sent on 1 December covers 1 January – 30 November.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone

from valuemail.config import Config, ConfigError

CAMPAIGNS = ("weekly", "monthly", "yearly")


@dataclass(frozen=True, order=True)
class Period:
    campaign: str
    start: date
    # The run's data cut-off (exclusive day); None = the period is measured to its end.
    # Not part of the period's identity: the same partition, measured up to a point.
    cutoff: date | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.campaign not in CAMPAIGNS:
            raise ValueError(f"unknown campaign {self.campaign!r}; expected one of {', '.join(CAMPAIGNS)}")
        if period_start(self.campaign, self.start) != self.start:
            raise ValueError(f"{self.start} is not the first day of a {self.campaign} period")
        if self.cutoff is not None and self.cutoff <= self.start:
            raise ValueError(f"the {self.campaign} period {self.key} had not begun by the cut-off {self.cutoff}")

    @property
    def key(self) -> str:
        return self.start.isoformat()

    @property
    def end(self) -> date:
        """First day *after* the period (exclusive bound)."""
        return _advance(self.campaign, self.start, 1)

    @property
    def start_ts(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day)

    @property
    def end_ts(self) -> datetime:
        end = self.end
        return datetime(end.year, end.month, end.day)

    @property
    def as_of(self) -> date:
        """First day *not* measured: the period's end, or the cut-off when it had not ended by then."""
        return min(self.end, self.cutoff) if self.cutoff else self.end

    @property
    def as_of_ts(self) -> datetime:
        return datetime(self.as_of.year, self.as_of.month, self.as_of.day)

    @property
    def previous_as_of(self) -> date:
        """How far the previous period is measured for a like-for-like comparison: as far into it as
        :attr:`as_of` is into this one (same weekday, day of the month, or calendar day; clamped)."""
        previous = self.previous()
        if self.as_of == self.end:
            return previous.end
        if self.campaign == "weekly":
            return self.as_of - timedelta(weeks=1)
        last = self.as_of - timedelta(days=1)  # the last day measured
        year = previous.start.year
        month = last.month if self.campaign == "yearly" else previous.start.month
        return date(year, month, min(last.day, monthrange(year, month)[1])) + timedelta(days=1)

    def until(self, cutoff: date) -> "Period":
        """The same period measured up to ``cutoff`` (exclusive); a period already ended is unchanged."""
        return replace(self, cutoff=cutoff)

    def previous(self, n: int = 1) -> "Period":
        return Period(self.campaign, _advance(self.campaign, self.start, -n))

    def next(self, n: int = 1) -> "Period":
        return Period(self.campaign, _advance(self.campaign, self.start, n))

    def __str__(self) -> str:
        return f"{self.campaign}:{self.key}"


def period_start(campaign: str, day: date) -> date:
    if campaign == "weekly":
        return day - timedelta(days=day.weekday())
    if campaign == "monthly":
        return day.replace(day=1)
    if campaign == "yearly":
        return day.replace(month=1, day=1)
    raise ValueError(f"unknown campaign {campaign!r}")


def _advance(campaign: str, start: date, n: int) -> date:
    if campaign == "weekly":
        return start + timedelta(weeks=n)
    if campaign == "monthly":
        months = start.year * 12 + start.month - 1 + n
        return date(months // 12, months % 12 + 1, 1)
    return date(start.year + n, 1, 1)


def parse_period(campaign: str, text: str) -> Period:
    """Parse ``2026-11-16`` (or ``2026-11`` / ``2026`` for monthly / yearly) strictly."""
    try:
        if campaign == "yearly" and len(text) == 4:
            day = date(int(text), 1, 1)
        elif campaign == "monthly" and len(text) == 7:
            day = date.fromisoformat(text + "-01")
        else:
            day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"period {text!r} is not a date (YYYY-MM-DD)") from None
    return Period(campaign, day)


def last_complete_period(campaign: str, now: datetime | None = None) -> Period:
    """The most recent period that has fully ended before ``now`` (UTC)."""
    now = now or datetime.now(timezone.utc)
    current = Period(campaign, period_start(campaign, now.date()))
    return current.previous()


def resolve_period(config: Config, campaign: str, text: str | None, now: datetime) -> Period:
    """``--period`` (default: the last complete period at ``now``), or a one-line error naming the
    periods there are (the Dagster partitions) and the key that adds older ones."""
    period = parse_period(campaign, text) if text else last_complete_period(campaign, now)
    oldest, latest = available_periods(campaign, first_day(config), now)
    if not oldest <= period <= latest:
        raise ValueError(f"there is no {campaign} period {period.key}: the {campaign} periods run from "
                         f"{oldest.key} to {latest.key} (older history: set [schedules] first_period in the config)")
    return period


def data_cutoff(as_of: date | None, now: datetime) -> date:
    """A run's data cut-off (exclusive): ``--as-of``, else today (UTC); never a day after today."""
    today = now.astimezone(timezone.utc).date()
    if as_of is not None and as_of > today:
        raise ValueError(f"--as-of {as_of} is after today ({today}): a cut-off cannot be in the future")
    return as_of or today


def first_day(config: Config) -> date:
    """``[schedules] first_period``: the oldest day a campaign period may cover (the partitions' start).
    The configuration's schema admits 'YYYY-MM-DD' from 1900 on; this catches '2024-13-01'."""
    text = str(config.section("schedules")["first_period"])
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"schedules.first_period: {text!r} is not a date (YYYY-MM-DD) ({', '.join(config.source)})") from None
    return day


def available_periods(campaign: str, first: date, now: datetime) -> tuple[Period, Period]:
    """The first and the last period a run may cover at ``now``: from the one holding ``first`` to the
    last complete one — for the yearly wrapped, the current year, which it covers to date."""
    current = Period(campaign, period_start(campaign, now.date()))
    return Period(campaign, period_start(campaign, first)), current if campaign == "yearly" else current.previous()
