"""Campaign partitions: Monday-start weeks, calendar months, calendar years (UTC).

Every key is the period's first day (``2026-11-16``, ``2026-11-01``, ``2026-01-01``),
the same name the warehouse tables use in their ``period`` column.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg

START = datetime(2024, 1, 1)
KEY_FORMAT = "%Y-%m-%d"

weekly_partitions = dg.WeeklyPartitionsDefinition(start_date=START, day_offset=1, fmt=KEY_FORMAT)
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=START, fmt=KEY_FORMAT)
# Dagster has no yearly class: a time window with a yearly cron.  end_offset=1 makes the
# current year a partition too, so a "wrapped" can cover the year to date (Spotify sends
# its Wrapped in early December).
yearly_partitions = dg.TimeWindowPartitionsDefinition(start=START, cron_schedule="0 0 1 1 *", fmt=KEY_FORMAT, end_offset=1)

PARTITIONS: dict[str, dg.TimeWindowPartitionsDefinition] = {
    "weekly": weekly_partitions,
    "monthly": monthly_partitions,
    "yearly": yearly_partitions,
}
