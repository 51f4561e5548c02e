"""Campaign periods: Monday-start weeks, calendar months, calendar years — all UTC.

A period is named by its first day (``2026-11-16``, ``2026-11-01``, ``2026-01-01``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

CAMPAIGNS = ("weekly", "monthly", "yearly")


@dataclass(frozen=True, order=True)
class Period:
    campaign: str
    start: date

    def __post_init__(self) -> None:
        if self.campaign not in CAMPAIGNS:
            raise ValueError(f"unknown campaign {self.campaign!r}; expected one of {', '.join(CAMPAIGNS)}")
        if period_start(self.campaign, self.start) != self.start:
            raise ValueError(f"{self.start} is not the first day of a {self.campaign} period")

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
