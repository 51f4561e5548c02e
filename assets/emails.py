"""Emails: the rendered HTML and text message (and share page) for every customer who gets one."""


import base64
import io
import os

import dagster as dg

from assets._common import markdown_table, period_of, progress_to
from assets.charts import build_chart_assets
from pipelines.partitions import PARTITIONS
from pipelines.resources import WRITER_POOL, ValuemailResource
from valuemail.emails import EmailSettings, render_period_emails

# Set VALUEMAIL_EMAIL_SCREENSHOT=0 to skip the sample screenshot (it needs Chromium, ~1–2 s).
SCREENSHOT_ENV = "VALUEMAIL_EMAIL_SCREENSHOT"


def _sample_screenshot(html: str, images: dict[str, bytes]) -> str | None:
    """A 600 px screenshot of one e-mail as a markdown image (JPEG, to keep the metadata small)."""
    try:
        from PIL import Image

        from report_templates.screenshot import Screenshotter, ScreenshotUnavailable
    except ImportError:  # pragma: no cover
        return None
    try:
        with Screenshotter() as shots:
            shot = shots.shot(html, 600, images)
    except (ScreenshotUnavailable, Exception):  # a missing browser must not fail the run
        return None
    img = Image.open(io.BytesIO(shot.png)).convert("RGB")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=78, optimize=True)
    return f"![sample e-mail](data:image/jpeg;base64,{base64.b64encode(out.getvalue()).decode('ascii')})"


def build_email_assets(campaign: str) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=[campaign, "emails"],
        partitions_def=PARTITIONS[campaign],
        deps=[
            dg.AssetKey([campaign, "eligibility"]),
            dg.AssetKey([campaign, "customer_metrics"]),
            dg.AssetKey([campaign, "charts"]),
        ],
        group_name="emails",
        kinds={"jinja", "html"},
        owners=["team:growth"],
        pool=WRITER_POOL,
    )
    def emails(context: dg.AssetExecutionContext, valuemail: ValuemailResource) -> dg.MaterializeResult:
        """One rendered e-mail (subject, HTML, plain text, inline charts) and one share page per customer whose decision is ``send``.

        In the customer's language (en, zh-CN, hu; any other locale falls back deliberately and
        is recorded in ``emails.locale_reason``), with the variant for their lifecycle stage
        (new / active / low).  Tables: ``emails``, ``email_images``, ``share_pages``.
        """
        period = period_of(context, campaign)
        config = valuemail.load()
        summary = render_period_emails(valuemail.warehouse, config, period, progress=progress_to(context))
        with valuemail.warehouse() as con:
            preview = markdown_table(
                con,
                "SELECT customer_id, variant, locale_used, subject, html_bytes, image_count FROM emails "
                "WHERE campaign = ? AND period = ? ORDER BY customer_id",
                [campaign, period.start],
            )
        fallbacks = "\n".join(f"| {k} | {n:,} |" for k, n in summary.locale_fallbacks.most_common(15))
        metadata: dict = {
            "dagster/row_count": summary.rendered,
            "max_html_bytes": summary.max_html_bytes,
            "by_variant": dg.MetadataValue.json(dict(summary.by_variant)),
            "by_language": dg.MetadataValue.json(dict(summary.by_locale)),
            "locale_fallbacks": dg.MetadataValue.md("| requested → used (reason) | e-mails |\n|---|---|\n" + fallbacks
                                                    if fallbacks else "none: every customer got their own language"),
            "text_fallbacks": dg.MetadataValue.json(dict(summary.text_fallbacks)),
            "share_pages": summary.share_pages,
            "compiled_templates": summary.compiled_templates,
            "folder": dg.MetadataValue.path(str(summary.folder)),
            "sample": preview,
        }
        if summary.sample is not None:
            email, images = summary.sample
            metadata["sample_subject"] = email.subject
            want = os.environ.get(SCREENSHOT_ENV, "1") not in ("0", "false", "no") and EmailSettings.from_config(config).screenshot
            shot = _sample_screenshot(email.html, images) if want else None
            if shot:
                metadata["sample_email"] = dg.MetadataValue.md(shot)
        return dg.MaterializeResult(metadata=metadata)

    return build_chart_assets(campaign) + [emails]
