"""The send window: a period's e-mail goes out on time, or — unless a late send is asked for — not at all.

A period's e-mail is **due** on the day its schedule sends it: weekly and monthly the day
after the period ends; the yearly wrapped on ``schedules.yearly_on`` — in the period's own
year for ``yearly_covers = "year_to_date"`` (1 December, before the year has ended), in the
next year for ``"previous_year"``.  It may go out until ``delivery.send_window_<campaign>_days``
days after that (the window **closes** at 00:00 UTC of ``due + days``).  After that the
period is **stale**: "you saved 24 min this week", dated today about a week months ago,
misleads; eligibility decides ``stale_period`` for everybody instead (``--allow-late`` and
the ``valuemail/allow_late`` run tag override it).  Before the due day nothing is stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from valuemail.config import Config
from valuemail.periods import CAMPAIGNS, Period

DEFAULT_DAYS = {"weekly": 7, "monthly": 14, "yearly": 45}


def window_key(campaign: str) -> str:
    return f"delivery.send_window_{campaign}_days"


@dataclass(frozen=True)
class SendWindow:
    days: dict[str, int]
    yearly_on: tuple[int, int] = (12, 1)
    yearly_covers: str = "year_to_date"

    @classmethod
    def from_config(cls, config: Config) -> "SendWindow":
        """The window of ``config`` (its values are checked when the configuration is loaded)."""
        d = config.section("delivery")
        schedules = config.section("schedules")
        month, day = (int(x) for x in str(schedules["yearly_on"]).split("-"))
        return cls({c: int(d.get(f"send_window_{c}_days", DEFAULT_DAYS[c])) for c in CAMPAIGNS},
                   (month, day), str(schedules["yearly_covers"]))

    def due(self, period: Period) -> date:
        """The day the schedule sends ``period``'s e-mail."""
        if period.campaign != "yearly":
            return period.end
        year = period.start.year + (1 if self.yearly_covers == "previous_year" else 0)
        month, day = self.yearly_on
        return date(year, month, day)

    def closes(self, period: Period) -> date:
        """From 00:00 UTC of this day on, ``period`` is stale."""
        return self.due(period) + timedelta(days=self.days[period.campaign])

    def is_stale(self, period: Period, now: datetime) -> bool:
        """Whether the window of ``period`` has closed at ``now`` (aware, or naive UTC)."""
        if now.tzinfo is not None:
            now = now.astimezone(timezone.utc)
        return now.date() >= self.closes(period)

    def describe(self, period: Period) -> str:
        return (f"the send window closed on {self.closes(period).isoformat()} (due {self.due(period).isoformat()}"
                f" + {window_key(period.campaign)} = {self.days[period.campaign]})")
