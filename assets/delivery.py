"""Delivery: one eligibility decision per customer, then exactly-once sending via the outbox ledger.

Thin: read the config, call ``delivery.*`` (pure code), return metadata.  Blocking checks
guard the send: the decisions are complete and unique, nobody suppressed *now* is about to
be sent, and every ``send`` decision has a rendered, readable e-mail.
"""



from datetime import datetime, timezone

import dagster as dg

from assets._common import allow_late, markdown_table, period_of
from delivery.eligibility import REASONS
from delivery.outbox import cancel_pending
from delivery.send import deliver_period, reconcile_and_decide
from delivery.transports import make_transport
from delivery.window import SendWindow
from pipelines.partitions import PARTITIONS
from pipelines.resources import WRITER_POOL, ValuemailResource


def _by_reason(con, campaign: str, period) -> dg.MetadataValue:
    return markdown_table(
        con,
        "SELECT reason, count(*) AS customers, any_value(detail) AS example FROM eligibility "
        "WHERE campaign = ? AND period = ? GROUP BY reason ORDER BY customers DESC",
        [campaign, period.start],
        limit=len(REASONS),
    )


def build_delivery_assets(campaign: str) -> list:
    key = dg.AssetKey([campaign, "eligibility"])
    sent_key = dg.AssetKey([campaign, "sent_emails"])
    emails_key = dg.AssetKey([campaign, "emails"])

    @dg.asset(
        key=key,
        partitions_def=PARTITIONS[campaign],
        deps=[dg.AssetKey([campaign, "customer_metrics"]), dg.AssetKey([campaign, "segments"]), "customers", "email_events"],
        group_name="delivery",
        kinds={"duckdb"},
        owners=["team:growth"],
        pool=WRITER_POOL,
    )
    def eligibility(context: dg.AssetExecutionContext, valuemail: ValuemailResource) -> dg.MaterializeResult:
        """Exactly one decision per customer for the period: ``send`` or the reason why not.

        First reconciles what an interrupted run left in flight (``delivery.send.reconcile_ledger``),
        so a message that never left is decided again instead of counted as ``already_sent``.

        Reasons, in their fixed order of precedence: already_sent, stale_period (the send
        window has closed; the run tag ``valuemail/allow_late = true`` sends anyway),
        invalid_customer, invalid_email, role_address, excluded_domain, complained, bounced,
        suppressed, unsubscribed (of anyone with the same mailbox), frequency_not_due
        (preference + sunset rule), prospect, churned, lapsed, inactive_in_period,
        nothing_to_report, duplicate_address (one e-mail per mailbox), domain_cap_deferred, send.  See
        ``delivery/eligibility.py``; ``valuemail explain CUSTOMER_ID`` shows one customer's.
        """
        period = period_of(context, campaign)
        with valuemail.warehouse() as con:
            reconciled, summary = reconcile_and_decide(con, valuemail.load(), period, allow_late=allow_late(context))
            table = _by_reason(con, campaign, period)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": summary.total,
            "reconciled": dg.MetadataValue.json(reconciled.resolved),
            "send": summary.send,
            "skipped": summary.total - summary.send,
            "domain_cap_deferred": summary.by_reason.get("domain_cap_deferred", 0),
            "stale_period": summary.by_reason.get("stale_period", 0),
            "by_reason": table,
        })

    @dg.asset_check(asset=key, blocking=True, name="one_decision_per_customer",
                    description="Every customer signed up by the end of the period has exactly one decision with a known reason.")
    def one_decision_per_customer(context: dg.AssetCheckExecutionContext, valuemail: ValuemailResource) -> dg.AssetCheckResult:
        period = period_of(context, campaign)
        with valuemail.warehouse(read_only=True) as con:
            rows, distinct, unknown_reasons = con.execute(
                "SELECT count(*), count(DISTINCT customer_id), count(*) FILTER (WHERE NOT list_contains(?, reason)) "
                "FROM eligibility WHERE campaign = ? AND period = ?",
                [list(REASONS), campaign, period.start]).fetchone()
            customers = con.execute("SELECT count(*) FROM customers WHERE signed_up_at < ?", [period.as_of_ts]).fetchone()[0]
        ok = rows == distinct == customers and unknown_reasons == 0
        return dg.AssetCheckResult(passed=ok, metadata={
            "decisions": rows, "customers": customers, "unknown_reasons": unknown_reasons})

    @dg.asset_check(asset=key, blocking=True, name="send_decisions_pass_the_rules",
                    description="An independent re-check of every 'send' decision: the address passes the rules (Python "
                                "implementation) and nobody was already suppressed when the decision was made.")
    def send_decisions_pass_the_rules(context: dg.AssetCheckExecutionContext,
                                      valuemail: ValuemailResource) -> dg.AssetCheckResult:
        from delivery.addresses import AddressRules
        from delivery.prefs import mailbox_siblings, open_store, suppressed_before

        period = period_of(context, campaign)
        config = valuemail.load()
        rules = AddressRules.from_config(config.section("delivery"))
        with valuemail.warehouse(read_only=True) as con:
            rows = con.execute(
                "SELECT e.customer_id, c.email, e.decided_at FROM eligibility e JOIN customers c USING (customer_id) "
                "WHERE e.campaign = ? AND e.period = ? AND e.reason = 'send'", [campaign, period.start]).fetchall()
            siblings = mailbox_siblings(con)
        bad_address = [(cid, rules.classify(email)[0]) for cid, email, _ in rows if rules.classify(email)[0]]
        decided = {cid: at for cid, _, at in rows}
        with open_store(config) as store:
            violations, changed_since = suppressed_before(store, decided, campaign, siblings)
        return dg.AssetCheckResult(
            passed=not bad_address and not violations,
            metadata={"send_decisions": len(rows), "bad_addresses": len(bad_address),
                      "suppressed_before_decision": len(violations), "changed_since_decision": changed_since,
                      "examples": dg.MetadataValue.json((bad_address + violations)[:10])},
        )

    @dg.asset_check(asset=emails_key, blocking=True, name="ready_to_send",
                    description="Every 'send' decision has a rendered e-mail whose HTML and text files exist and whose "
                                "subject has no control characters.")
    def ready_to_send(context: dg.AssetCheckExecutionContext, valuemail: ValuemailResource) -> dg.AssetCheckResult:
        from pathlib import Path

        period = period_of(context, campaign)
        with valuemail.warehouse(read_only=True) as con:
            try:
                rows = con.execute(
                    "SELECT e.customer_id, m.subject, m.html_path, m.text_path FROM eligibility e "
                    "LEFT JOIN emails m ON m.campaign = e.campaign AND m.period = e.period AND m.customer_id = e.customer_id "
                    "WHERE e.campaign = ? AND e.period = ? AND e.reason = 'send'",
                    [campaign, period.start]).fetchall()
            except Exception as exc:  # no emails table at all
                return dg.AssetCheckResult(passed=False, description=f"cannot read emails: {exc}")
        problems = []
        for cid, subject, html, text in rows:
            if subject is None:
                problems.append((cid, "not rendered"))
            elif any(ord(ch) < 32 or ord(ch) == 127 for ch in subject):
                problems.append((cid, "control character in subject"))
            elif not (Path(html).is_file() and Path(text).is_file()):
                problems.append((cid, "HTML or text file missing"))
        return dg.AssetCheckResult(passed=not problems, metadata={
            "send_decisions": len(rows), "problems": len(problems),
            "examples": dg.MetadataValue.json(problems[:10])})

    @dg.asset(
        key=sent_key,
        partitions_def=PARTITIONS[campaign],
        deps=[emails_key, key],
        group_name="delivery",
        kinds={"email"},
        owners=["team:growth"],
        pool=WRITER_POOL,
    )
    def sent_emails(context: dg.AssetExecutionContext, valuemail: ValuemailResource) -> dg.MaterializeResult:
        """The outbox ledger for the period: each eligible customer's message sent exactly once.

        Reconciles anything an interrupted run left in flight, re-reads preferences and
        suppressions right before each chunk of sends, and ends with a report of sent /
        deferred / failed / cancelled by reason (also in the ``delivery_runs`` table).
        """
        period = period_of(context, campaign)
        config = valuemail.load()
        window = SendWindow.from_config(config)
        if window.is_stale(period, datetime.now(timezone.utc)) and not allow_late(context):
            # Decided while the window was open, sending after it closed (e.g. this step re-executed
            # alone weeks later): nothing goes out; a run with valuemail/allow_late revives them.
            with valuemail.warehouse() as con:
                cancelled = cancel_pending(con, period, "stale_period")
            context.log.warning(f"stale period: {window.describe(period)}; nothing sent, {cancelled} pending cancelled")
            return dg.MaterializeResult(metadata={"sent_this_run": 0, "cancelled_this_run": cancelled,
                                                  "stale_period": window.describe(period)})
        transport = make_transport(config)
        context.log.info(f"sending via {transport.describe()}")
        with valuemail.warehouse() as con:
            report = deliver_period(con, config, period, transport=transport, progress=context.log.info)
            ledger = markdown_table(
                con,
                "SELECT status, count(*) AS messages, any_value(last_error) AS example FROM outbox "
                "WHERE campaign = ? AND period = ? GROUP BY status ORDER BY messages DESC",
                [campaign, period.start],
            )
        metadata = {
            "sent_this_run": report.sent,
            "failed_this_run": sum(report.failed.values()),
            "deferred": sum(report.deferred.values()) + report.eligibility_deferred,
            "cancelled_this_run": sum(report.cancelled.values()),
            "unknown": sum(report.unknown.values()),
            "reconciled": sum(report.reconciled.values()),
            "messages_per_s": round(report.messages_per_s, 1),
            "report": dg.MetadataValue.md("```\n" + report.describe() + "\n```"),
            "ledger": ledger,
            "transport": transport.describe(),
        }
        if config.section("delivery").get("transport", "file") == "file":
            metadata["outbox"] = dg.MetadataValue.path(str(config.outbox_dir / campaign / period.key))
        context.log.info(report.describe())
        if report.stopped:
            raise dg.Failure(description=f"delivery stopped early: {report.stopped}", metadata=metadata)
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset_check(asset=sent_key, name="no_message_in_doubt",
                    description="Warns while any message is 'unknown' (a crash mid-call the transport could not confirm).")
    def no_message_in_doubt(context: dg.AssetCheckExecutionContext, valuemail: ValuemailResource) -> dg.AssetCheckResult:
        period = period_of(context, campaign)
        with valuemail.warehouse(read_only=True) as con:
            unknown, twice = con.execute(
                "SELECT count(*) FILTER (WHERE status = 'unknown'), count(*) - count(DISTINCT message_id) "
                "FROM outbox WHERE campaign = ? AND period = ?", [campaign, period.start]).fetchone()
        return dg.AssetCheckResult(passed=unknown == 0 and twice == 0, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={"unknown": unknown, "duplicate_message_ids": twice})

    return [eligibility, one_decision_per_customer, send_decisions_pass_the_rules, ready_to_send, sent_emails,
            no_message_in_doubt]
