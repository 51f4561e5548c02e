"""``valuemail preview CUSTOMER_ID --campaign C --period P --out DIR``: see one customer's e-mail.

Writes ``<stem>.eml`` (the complete MIME message, inline charts included), ``<stem>.html``,
``<stem>.txt``, ``<stem>.png`` (a 600 px screenshot in headless Chromium) and
``<stem>.mobile.png`` (375 px) — ``<stem>`` is the customer's file name
(:func:`valuemail.ids.file_stem`: the id itself when it is plain, else a readable prefix and a
hash) — and prints the subject, language, variant and the customer's eligibility decision.
Reads the warehouse only (nothing is written there; charts are drawn in memory), so it is safe
to run next to a pipeline run.  It refuses ``--out`` inside a folder the pipeline owns (outbox,
journal, e-mails, charts, share pages, landing): a preview must never replace what was sent.
"""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.commands import period_argument, require_warehouse


@click.command("preview")
@click.argument("customer_id")
@click.option("--campaign", type=click.Choice(["weekly", "monthly", "yearly"]), default="weekly", show_default=True)
@click.option("--period", default=None, help="First day of the period, e.g. 2026-11-16, 2026-11 or 2026 "
              "(default: the last complete period, UTC).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="preview", show_default=True,
              help="Folder for the .eml, .html, .txt and screenshot .png files.")
@click.option("--no-screenshot", is_flag=True, help="Skip the Chromium screenshots.")
@click.pass_obj
def preview(obj, customer_id: str, campaign: str, period: str | None, out_dir: str, no_screenshot: bool) -> None:
    """Render CUSTOMER_ID's e-mail for a period exactly as it would be sent, into files you can open."""
    from valuemail.emails import mime_for, preview_email
    from valuemail.ids import file_stem
    from valuemail.warehouse import open_warehouse

    config = obj.config
    p = period_argument(config, campaign, period)
    out = Path(out_dir)
    _refuse_pipeline_folder(config, out)
    require_warehouse(config)
    with open_warehouse(config.warehouse_path, read_only=True) as con:
        try:
            result = preview_email(con, config, p, customer_id)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        to = con.execute("SELECT name, email FROM customers WHERE customer_id = ?", [customer_id]).fetchone()
        # No row for the customer: inactive in the period, or the period's metrics never ran.
        computed = result.has_metrics or _metrics_computed(con, campaign, p.start)
    email = result.email
    stem = file_stem(customer_id)
    name, address = (to or ("", "customer@example.com"))
    try:
        raw = mime_for(config, email, name or "", address, result.images, result.data.links.unsubscribe_url)
    except ValueError as exc:  # e.g. a header that would be refused at send time
        raise click.ClickException(f"the message could not be built: {exc}") from None
    files = {
        out / f"{stem}.eml": raw,
        out / f"{stem}.html": email.html.encode("utf-8"),
        out / f"{stem}.txt": email.text.encode("utf-8"),
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot create the folder {out} (--out): {exc.strerror or exc}") from None
    for path, data in files.items():
        _write(path, data)
    shots = []
    if not no_screenshot:
        from report_templates.screenshot import Screenshotter, ScreenshotUnavailable

        try:
            with Screenshotter() as s:
                for width, suffix in ((600, ""), (375, ".mobile")):
                    path = out / f"{stem}{suffix}.png"
                    _write(path, s.shot(email.html, width, result.images).png)
                    shots.append(path)
        except ScreenshotUnavailable as exc:
            click.echo(f"no screenshot: {exc}", err=True)
    decision = result.eligibility or "not decided yet (run the pipeline for this period)"
    click.echo(f"{campaign} {p.key}  customer {customer_id}")
    click.echo(f"  decision   {decision}" + ("" if result.eligibility in (None, "send") else "  (previewed anyway)"))
    if not computed:
        click.echo(f"  metrics    no customer_metrics row for this period: its metrics have not been computed, so "
                   f"this is shown with zero activity; run `valuemail run --campaign {campaign} --period {p.key}` first")
    elif not result.has_metrics:
        click.echo("  metrics    no customer_metrics row for this period: no activity, shown with zero activity")
    click.echo(f"  subject    {email.subject}")
    click.echo(f"  preheader  {email.preheader}")
    lang = email.locale_used if email.locale_reason == "exact" else \
        f"{email.locale_used} (asked for {email.locale_requested or 'nothing'}: {email.locale_reason})"
    click.echo(f"  language   {lang}")
    click.echo(f"  variant    {email.variant}")
    click.echo(f"  html       {email.html_bytes:,} bytes, {len(result.images)} inline image(s)")
    for path in [*files, *shots]:
        click.echo(f"  wrote      {path}")


def _refuse_pipeline_folder(config, out: Path) -> None:
    """A usage error when ``out`` is (inside) a folder the pipeline writes: it could replace a sent ``.eml``."""
    from delivery.send import journal_folder
    from valuemail.emails import emails_root

    owned = {"outbox": config.outbox_dir, "delivery journal": journal_folder(config), "e-mails": emails_root(config),
             "charts": config.charts_dir, "share pages": config.share_dir, "landing": config.landing_dir}
    target = out.resolve()
    for what, folder in owned.items():
        folder = folder.resolve()
        if target == folder or folder in target.parents:
            raise click.BadParameter(f"{out} is inside the pipeline's {what} folder ({folder}); "
                                     "previews go to a folder of their own", param_hint="--out")


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path} (--out): {exc.strerror or exc}") from None


def _metrics_computed(con, campaign: str, start) -> bool:
    import duckdb

    try:
        return bool(con.execute("SELECT count(*) > 0 FROM (SELECT 1 FROM customer_metrics "
                                "WHERE campaign = ? AND period = ? LIMIT 1)", [campaign, start]).fetchone()[0])
    except duckdb.CatalogException:  # an ingest-only warehouse: no metrics table yet
        return False
