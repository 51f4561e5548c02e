"""Campaign partitions: Monday-start weeks, calendar months, calendar years (UTC).

Every key is the period's first day (``2026-11-16``, ``2026-11-01``, ``2026-01-01``),
the same name the warehouse tables use in their ``period`` column.  They start at the
period holding ``[schedules] first_period`` of the configuration in $VALUEMAIL_CONFIG when this
module is first imported (the runner sets it before importing the definitions).
"""

from __future__ import annotations

from datetime import datetime, time

import dagster as dg

from valuemail.config import load_config
from valuemail.periods import first_day, period_start

KEY_FORMAT = "%Y-%m-%d"
_FIRST = first_day(load_config())


def _start(campaign: str) -> datetime:
    return datetime.combine(period_start(campaign, _FIRST), time())


weekly_partitions = dg.WeeklyPartitionsDefinition(start_date=_start("weekly"), day_offset=1, fmt=KEY_FORMAT)
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=_start("monthly"), fmt=KEY_FORMAT)
# Dagster has no yearly class: a time window with a yearly cron.  end_offset=1 makes the
# current year a partition too, so a "wrapped" can cover the year to date (Spotify sends
# its Wrapped in early December).
yearly_partitions = dg.TimeWindowPartitionsDefinition(start=_start("yearly"), cron_schedule="0 0 1 1 *", fmt=KEY_FORMAT,
                                                      end_offset=1)

PARTITIONS: dict[str, dg.TimeWindowPartitionsDefinition] = {
    "weekly": weekly_partitions,
    "monthly": monthly_partitions,
    "yearly": yearly_partitions,
}
