"""``valuemail explain CUSTOMER_ID --campaign C --period P``: why a customer did or didn't get an e-mail."""

from __future__ import annotations

import json

import click

from pipelines.commands import period_argument, require_warehouse


@click.command("explain")
@click.argument("customer_id")
@click.option("--campaign", type=click.Choice(["weekly", "monthly", "yearly"]), default="weekly", show_default=True)
@click.option("--period", default=None, help="First day of the period (default: the last complete period, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@click.pass_obj
def explain(obj, customer_id: str, campaign: str, period: str | None, as_json: bool) -> None:
    """Show a customer's metrics, stage, tier, preferences, decision and reason, and delivery state.

    Reasons are checked in a fixed order (the first match decides): already_sent,
    invalid_customer, invalid_email, role_address, excluded_domain, complained, bounced, suppressed,
    unsubscribed, frequency_not_due, prospect, churned, lapsed, inactive_in_period,
    nothing_to_report, domain_cap_deferred, send.
    """
    from delivery.explain import explain as gather, format_explanation
    from delivery.prefs import open_store
    from valuemail.warehouse import open_warehouse

    config = obj.config
    p = period_argument(config, campaign, period)
    require_warehouse(config)
    with open_warehouse(config.warehouse_path, read_only=True) as con, open_store(config) as store:
        info = gather(con, config, customer_id, p, store=store)
    if info["customer"] is None and info["decision"] is None:
        raise click.ClickException(f"unknown customer {customer_id!r} (not in customers, no decision for {p})")
    click.echo(json.dumps(info, default=str, indent=2) if as_json else format_explanation(info))
