"""Why did (or didn't) a customer get an e-mail?  Everything the decision and the send used, in one place.

Used by ``valuemail explain CUSTOMER_ID --campaign C --period P``.  Read-only: it opens the
warehouse read-only and the preference store for reading.
"""

from __future__ import annotations

from typing import Any

import duckdb

from delivery.addresses import AddressRules
from delivery.eligibility import REASONS
from valuemail.config import Config
from valuemail.periods import Period
from valuemail.text import printable


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}


def _row(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> dict[str, Any] | None:
    cur = con.execute(sql, params)
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row))


def explain(con: duckdb.DuckDBPyConnection, config: Config, customer_id: str, period: Period, store=None) -> dict[str, Any]:
    tables = _tables(con)
    p = [period.campaign, period.start, customer_id]
    out: dict[str, Any] = {"customer_id": customer_id, "campaign": period.campaign, "period": period.key,
                           "precedence": list(REASONS)}
    out["customer"] = _row(con, "SELECT customer_id, email, name, locale, timezone, plan, country, signed_up_at "
                                "FROM customers WHERE customer_id = ?", [customer_id]) if "customers" in tables else None
    out["metrics"] = _row(con, "SELECT * EXCLUDE (campaign, period, customer_id) FROM customer_metrics "
                               "WHERE campaign = ? AND period = ? AND customer_id = ?", p) if "customer_metrics" in tables else None
    out["segment"] = _row(con, "SELECT * EXCLUDE (campaign, period, customer_id) FROM segments "
                               "WHERE campaign = ? AND period = ? AND customer_id = ?", p) if "segments" in tables else None
    out["decision"] = _row(con, "SELECT reason, detail, decided_at, stage, tier, frequency, effective_frequency, "
                                "consecutive_unopened, email, domain FROM eligibility "
                                "WHERE campaign = ? AND period = ? AND customer_id = ?", p) if "eligibility" in tables else None
    out["delivery"] = _row(con, "SELECT status, attempts, transport, message_id, transport_id, error_kind, last_error, "
                                "created_at, claimed_at, sent_at, updated_at FROM outbox "
                                "WHERE campaign = ? AND period = ? AND customer_id = ?", p) if "outbox" in tables else None
    out["events"] = []
    if "email_events" in tables:
        cur = con.execute("SELECT occurred_at, event_type, bounce_type, detail FROM email_events "
                          "WHERE campaign = ? AND period = ? AND customer_id = ? ORDER BY occurred_at", p)
        out["events"] = [dict(zip([d[0] for d in cur.description], r)) for r in cur.fetchall()]
    email = (out["customer"] or {}).get("email")
    rules = AddressRules.from_config(config.section("delivery"))
    reason, detail = rules.classify(email) if email is not None else ("invalid_email", "no customer row")
    out["address_rules"] = {"reason": reason, "detail": detail} if reason else {"reason": None, "detail": "passes"}
    if store is not None:
        profile = store.profile(customer_id)
        state = store.state(customer_id)
        out["preferences"] = {
            "frequency": state.frequency,
            "frequency_chosen": bool(profile and profile.frequency_chosen),
            "suppression": state.suppression,
            "suppressed_since": profile.suppressed_since if profile else None,
            "allows_now": state.allows(period.campaign)[0],
        }
    return out


def _fmt(value: Any) -> str:
    """A value for the terminal: control characters from data (ESC, BEL, CR/LF) shown escaped."""
    if value is None:
        return "—"
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ", timespec="seconds") if hasattr(value, "hour") else value.isoformat()
    return printable(value)


def format_explanation(info: dict[str, Any]) -> str:
    lines = [f"customer {_fmt(info['customer_id'])} — {info['campaign']} e-mail for the period starting {info['period']}", ""]

    def section(title: str, data: dict | None, empty: str) -> None:
        lines.append(title)
        if not data:
            lines.append(f"    {empty}")
        else:
            width = max(len(k) for k in data)
            lines.extend(f"    {k:<{width}}  {_fmt(v)}" for k, v in data.items())
        lines.append("")

    section("customer", info.get("customer"), "not in the customers table")
    section("metrics (customer_metrics)", info.get("metrics"), "no activity in the period (no metrics row)")
    decision = info.get("decision") or {}
    segment = info.get("segment") or {}
    section("segment", {
        "stage": segment.get("stage", decision.get("stage")),
        "tier": segment.get("tier", decision.get("tier")),
        "consecutive_unopened": segment.get("consecutive_unopened", decision.get("consecutive_unopened")),
        **({k: v for k, v in segment.items() if k not in ("stage", "tier", "consecutive_unopened")}),
    } if (segment or decision) else None, "no segment row")
    section("preferences (preference store, now)", info.get("preferences"), "store not consulted")
    section("address rules", info.get("address_rules"), "—")
    if decision:
        lines.append(f"decision    {_fmt(decision['reason'].upper())}  — {_fmt(decision.get('detail'))}")
        lines.append(f"            decided {_fmt(decision.get('decided_at'))} UTC; precedence #{info['precedence'].index(decision['reason']) + 1} "
                     f"of {len(info['precedence'])} ({' > '.join(info['precedence'])})"
                     if decision["reason"] in info["precedence"] else "")
    else:
        lines.append("decision    none yet: the eligibility asset has not run for this period")
    lines.append("")
    section("delivery state (outbox)", info.get("delivery"), "no ledger row: nothing was queued for this customer")
    lines.append("engagement events")
    if info.get("events"):
        for ev in info["events"]:
            extra = " ".join(_fmt(x) for x in (ev.get("bounce_type"), ev.get("detail")) if x)
            lines.append(f"    {_fmt(ev['occurred_at'])}  {_fmt(ev['event_type'])}  {extra}".rstrip())
    else:
        lines.append("    none recorded")
    return "\n".join(lines)
