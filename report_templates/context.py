"""Turn a customer's metrics row into the values a template shows.

Pure code.  All formatting of numbers happens here, so templates only place strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

SUBJECT_MAX = 50


@dataclass(frozen=True)
class Links:
    preferences_url: str
    unsubscribe_url: str
    cta_url: str


def first_name(name: str | None) -> str:
    name = (name or "").strip()
    return name.split()[0] if name else ""


def format_minutes(minutes: Decimal | float | int) -> str:
    total = int(round(float(minutes)))
    hours, mins = divmod(total, 60)
    if hours and mins:
        return f"{hours} h {mins} min"
    if hours:
        return f"{hours} h"
    return f"{mins} min"


def fit_subject(*candidates: str) -> str:
    """The first candidate that fits in SUBJECT_MAX characters (the last one is cut if none does)."""
    candidates = tuple(c for c in candidates if c)
    for subject in candidates:
        if len(subject) <= SUBJECT_MAX:
            return subject
    return candidates[-1][: SUBJECT_MAX - 1] + "…"


def weekly_context(
    customer: Mapping[str, Any],
    metrics: Mapping[str, Any],
    links: Links,
    sender: Mapping[str, Any],
    how_we_counted: str,
    chart_cid: str | None = None,
    chart_alt: str = "",
) -> dict[str, Any]:
    name = first_name(customer.get("name"))
    saved = format_minutes(metrics["minutes_saved"])
    tasks = f"{int(metrics['tasks']):,}"
    return {
        "locale": customer.get("locale") or "en",
        "subject": fit_subject(
            f"{name}, we saved you {saved} this week" if name else "",
            f"You saved {saved} this week",
        ),
        "preheader": f"{tasks} tasks done for you across {metrics['active_days']} days.",
        "headline": f"{name + ', y' if name else 'Y'}our automations did {tasks} tasks and saved you {saved}.",
        "tasks": tasks,
        "time_saved": saved,
        "active_days": str(metrics["active_days"]),
        "how_we_counted": how_we_counted,
        "chart_cid": chart_cid,
        "chart_alt": chart_alt,
        "cta_label": "See all your workflows",
        "cta_url": links.cta_url,
        "preferences_url": links.preferences_url,
        "unsubscribe_url": links.unsubscribe_url,
        "postal_address": sender["postal_address"],
    }
