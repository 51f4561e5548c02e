"""The charts and e-mails stages of a period: draw, render, write files and warehouse rows.

Pure code (no Dagster): the assets in ``assets/charts.py`` and ``assets/emails.py`` call
:func:`render_period_charts` and :func:`render_period_emails`; ``valuemail preview`` calls
:func:`preview_email` for one customer.

Tables written (each period rewritten idempotently, delete-then-insert in one transaction):

``email_charts``  one row per chart PNG drawn for a customer (``<charts>/<campaign>/<period>/<kind>/<customer>.png``)
``emails``        one row per rendered e-mail — what delivery sends (subject, files, locale, links)
``email_images``  the inline images of each e-mail: ``cid`` (the HTML says ``src="cid:<cid>"``),
                  ``path`` of the PNG, ``alt``, ``content_type`` — delivery attaches these as
                  ``multipart/related`` parts (see :mod:`report_templates.mime_skeleton`)
``share_pages``   the share page of each customer and period (see :mod:`valuemail.share`)

Images are inline (``cid:``) by default; with ``[emails] images = "hosted"`` they are published
next to the share page (``<share base URL>/<token>/<kind>.png``, local folder or S3) and the
HTML links to them instead, and ``email_images`` stays empty for that period.

Configuration ``[emails]`` (all optional; defaults in :class:`EmailSettings`)::

    images = "cid"                    # cid | hosted
    app_url = ""                      # the call to action; default <sender.public_base_url>/app
    founder_name = "Dora Kovács"      # signs the new-customer note
    founder_role = "co-founder"
    low_tasks = {weekly = 5, monthly = 15, yearly = 60}   # below: the short version
    headline = "auto"                 # auto | time | money | tasks: the figure the e-mail leads with
    screenshot = true                 # sample screenshot in the emails asset's metadata
    chart_workers = 0                 # processes drawing charts; 0 = one per CPU
    progress_interval_s = 10          # seconds between progress lines of the charts / emails stages
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter, deque
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Collection, Mapping, Sequence
from urllib.parse import urlencode

import duckdb

from charts.batch import render_many
from report_templates import visuals
from report_templates.model import ChartImage, EmailData, Links, email_data_from_row
from report_templates.render import EmailRenderer, RenderedEmail
from report_templates.share_page import page_for, render_page
from report_templates.view import Brand, Thresholds, ValueModelTexts
from valuemail import share
from valuemail.config import Config, ConfigError
from valuemail.ids import file_stem
from valuemail.periods import Period
from valuemail.progress import Progress
from valuemail.text import one_line
from valuemail.warehouse import transaction

log = logging.getLogger(__name__)

EMAILS_DDL = """
CREATE TABLE IF NOT EXISTS emails (
    campaign         VARCHAR   NOT NULL,
    period           DATE      NOT NULL,
    customer_id      VARCHAR   NOT NULL,
    locale           VARCHAR   NOT NULL,   -- = locale_used (kept for older readers)
    subject          VARCHAR   NOT NULL,
    preheader        VARCHAR   NOT NULL,
    html_path        VARCHAR   NOT NULL,
    text_path        VARCHAR   NOT NULL,
    html_bytes       INTEGER   NOT NULL,
    rendered_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (campaign, period, customer_id)
)
"""
# columns added since the first version (ALTER … ADD COLUMN IF NOT EXISTS keeps old files working)
EMAILS_EXTRA_COLUMNS: list[tuple[str, str]] = [
    ("locale_requested", "VARCHAR"),   # the customer's locale tag as stored ('' when missing)
    ("locale_used", "VARCHAR"),        # en | zh-CN | hu
    ("locale_reason", "VARCHAR"),      # exact | region | script | language | traditional_chinese | unsupported | missing | invalid
    ("variant", "VARCHAR"),            # new | active | low
    ("template", "VARCHAR"),           # weekly.mjml.j2 …
    ("share_url", "VARCHAR"),
    ("preferences_url", "VARCHAR"),
    ("unsubscribe_url", "VARCHAR"),    # also for the List-Unsubscribe header (RFC 8058)
    ("image_count", "INTEGER"),        # rows in email_images
    ("text_fallbacks", "VARCHAR"),     # value-model texts shown in English, comma-separated
    ("figures", "JSON"),               # the customer's metrics row the e-mail was rendered from (kept once sent)
]
EMAIL_IMAGES_DDL = """
CREATE TABLE IF NOT EXISTS email_images (
    campaign     VARCHAR NOT NULL,
    period       DATE    NOT NULL,
    customer_id  VARCHAR NOT NULL,
    cid          VARCHAR NOT NULL,     -- Content-ID without <>; the HTML has src="cid:<cid>"
    path         VARCHAR NOT NULL,     -- the PNG file
    alt          VARCHAR NOT NULL,
    content_type VARCHAR NOT NULL,     -- image/png
    kind         VARCHAR NOT NULL,     -- weekly_activity | monthly_activity | year_months | peer_position | share_card
    PRIMARY KEY (campaign, period, customer_id, cid)
)
"""
CHARTS_DDL = """
CREATE TABLE IF NOT EXISTS email_charts (
    campaign    VARCHAR NOT NULL,
    period      DATE    NOT NULL,
    customer_id VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    alt         VARCHAR NOT NULL,
    width       INTEGER NOT NULL,     -- CSS px
    height      INTEGER NOT NULL,
    png_bytes   INTEGER NOT NULL,
    drawn_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (campaign, period, customer_id, kind)
)
"""

# Fewer customers than this: draw in this process (starting the pool costs about a second).
POOL_MIN_CUSTOMERS = 200

# A stand-in for links where none are needed (drawing charts).
NO_LINKS = Links("https://invalid.example/p", "https://invalid.example/u", "https://invalid.example/app")


# --------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class EmailSettings:
    brand: Brand
    value_model: ValueModelTexts
    thresholds: Thresholds
    images: str = "cid"  # cid | hosted
    app_url: str = "https://valuemail.example/app"
    public_base_url: str = "https://valuemail.example"
    sender_domain: str = "valuemail.example"
    peer_min_cohort: int = 50
    screenshot: bool = True
    chart_workers: int = 1  # processes drawing charts (in the config, 0 = one per CPU)
    progress_interval_s: float = 10.0

    @classmethod
    def from_config(cls, config: Config) -> "EmailSettings":
        sender = config.section("sender")
        section = config.section("emails")
        public = str(sender.get("public_base_url", "")).rstrip("/")
        images = str(section.get("images", "cid"))
        if images not in ("cid", "hosted"):
            raise ConfigError(f"emails.images: expected 'cid' or 'hosted', got {images!r}")
        low = dict(Thresholds().low_tasks)
        low.update({k: int(v) for k, v in dict(section.get("low_tasks", {})).items()})
        defaults = Brand()
        brand = Brand(
            product=str(sender.get("from_name", defaults.product)),
            postal_address=str(sender.get("postal_address", "")),
            founder_name=str(section.get("founder_name", defaults.founder_name)),
            founder_role=str(section.get("founder_role", defaults.founder_role)),
        )
        workers, interval = section.get("chart_workers", 0), section.get("progress_interval_s", 10)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ConfigError(f"emails.chart_workers: expected a whole number >= 0 (0 = one per CPU), got {workers!r}")
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval < 0:
            raise ConfigError(f"emails.progress_interval_s: expected a number of seconds >= 0, got {interval!r}")
        segments = config.section("segments")
        return cls(
            brand=brand,
            value_model=ValueModelTexts.from_value_model(config.value_model),
            thresholds=Thresholds(low_tasks=low, new_days=int(segments.get("new_days", 30)),
                                  headline=str(section.get("headline", "auto"))),
            images=images,
            app_url=str(section.get("app_url") or f"{public}/app"),
            public_base_url=public,
            sender_domain=str(sender.get("from_address", "hello@valuemail.example")).rpartition("@")[2],
            peer_min_cohort=int(segments.get("peer_min_cohort", 50)),
            screenshot=bool(section.get("screenshot", True)),
            chart_workers=workers or (os.cpu_count() or 1),
            progress_interval_s=float(interval),
        )

    def cta_url(self, campaign: str) -> str:
        sep = "&" if "?" in self.app_url else "?"
        return self.app_url + sep + urlencode({"utm_source": "valuemail", "utm_medium": "email", "utm_campaign": campaign})

    def renderer(self) -> EmailRenderer:
        return EmailRenderer(self.brand, self.value_model, self.thresholds)


LinksFor = Callable[[str, str], tuple[str, str]]  # (customer_id, campaign) → (preferences_url, unsubscribe_url)

# An open connection, or an opener such as ``ValuemailResource.warehouse`` (a context manager
# per call): with an opener the stages open the file only while they read or write it.
Warehouse = duckdb.DuckDBPyConnection | Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


def _session(warehouse: Warehouse) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A connection for one read or write step: an open connection as it is, else a fresh one closed after."""
    return nullcontext(warehouse) if isinstance(warehouse, duckdb.DuckDBPyConnection) else warehouse()


def _delete_undelivered(con: duckdb.DuckDBPyConnection, table: str, period: Period) -> None:
    """Clear ``table``'s rows for the period before re-rendering — except those of messages that
    have already left (the ledger says sending / sent / unknown): what a customer received stays
    on record, and those customers are not rendered again (their decision is ``already_sent``)."""
    has_outbox = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'outbox' AND schema_name = current_schema()"
    ).fetchone()[0]
    keep = (
        " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.campaign = t.campaign AND o.period = t.period"
        " AND o.customer_id = t.customer_id AND o.status IN ('sending', 'sent', 'unknown'))"
        if has_outbox else ""
    )
    con.execute(f"DELETE FROM {table} t WHERE t.campaign = ? AND t.period = ?{keep}", [period.campaign, period.start])


def register_recipients(config: Config, rows: Sequence[Mapping[str, Any]]) -> int:
    """Tell the preference centre about everyone whose e-mail carries its links.

    The preference centre answers only customers it knows (an unknown id gets "unknown
    link"), and shows its pages in the customer's language, so each recipient's id and
    locale are upserted before the links are signed.
    """
    from preference_centre.store import open_store

    return open_store(config).upsert_customers((str(r["customer_id"]), r.get("locale")) for r in rows)


def default_links(config: Config) -> LinksFor:
    """Signed preference / unsubscribe links from the preference centre (one builder, reused)."""
    from preference_centre.links import link_builder

    builder = link_builder(config)
    return lambda customer_id, campaign: (builder.preferences_url(customer_id), builder.unsubscribe_url(customer_id, campaign))


# --------------------------------------------------------------------------------------- helpers
def emails_root(config: Config) -> Path:
    return config.home / "emails"


def emails_dir(config: Config, period: Period) -> Path:
    return emails_root(config) / period.campaign / period.key


def charts_dir(config: Config, period: Period) -> Path:
    return config.charts_dir / period.campaign / period.key


def content_id(kind: str, period: Period, customer_id: str, domain: str) -> str:
    """A Content-ID unique per image and customer that reveals nothing about the customer."""
    digest = hashlib.sha256(f"{period.campaign}|{period.key}|{customer_id}".encode()).hexdigest()[:16]
    return f"{kind}.{digest}@{domain}"


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()
    return {r[0] for r in rows}


def _ensure_columns(con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]]) -> None:
    for name, kind in columns:
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {kind}")


def _select_customers(con: duckdb.DuckDBPyConnection, period: Period, customer_ids: list[str] | None = None,
                      eligible_only: bool = True) -> list[dict[str, Any]]:
    """customers + customer_metrics + the lifecycle stage, read defensively (missing tables/columns are fine)."""
    have_metrics = bool(_columns(con, "customer_metrics"))
    seg_cols = _columns(con, "segments")
    elig_cols = _columns(con, "eligibility")
    cust_cols = _columns(con, "customers")
    picks = [f"c.{col}" for col in ("customer_id", "name", "locale", "plan", "signed_up_at") if col in cust_cols]
    joins = []
    if have_metrics:
        picks.append("m.* EXCLUDE (campaign, period, customer_id)")
        joins.append("LEFT JOIN customer_metrics m ON m.customer_id = c.customer_id AND m.campaign = $campaign AND m.period = $period")
    stage_sql = "NULL"
    if {"campaign", "period", "customer_id", "stage"} <= seg_cols:
        joins.append("LEFT JOIN segments s ON s.customer_id = c.customer_id AND s.campaign = $campaign AND s.period = $period")
        stage_sql = "s.stage"
    if "stage" in elig_cols:
        stage_sql = f"coalesce({stage_sql}, e.stage)"
    where = []
    if eligible_only:
        joins.insert(0, "JOIN eligibility e ON e.customer_id = c.customer_id AND e.campaign = $campaign AND e.period = $period")
        where.append("e.reason = 'send'")
    elif elig_cols:
        joins.insert(0, "LEFT JOIN eligibility e ON e.customer_id = c.customer_id AND e.campaign = $campaign AND e.period = $period")
    else:
        stage_sql = stage_sql.replace(", e.stage", "")
    params: dict[str, Any] = {"campaign": period.campaign, "period": period.start}
    if customer_ids is not None:
        where.append("c.customer_id IN (SELECT unnest($ids))")
        params["ids"] = customer_ids
    sql = (f"SELECT {', '.join(picks)}, {stage_sql} AS stage FROM customers c {' '.join(joins)} "
           f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY c.customer_id")
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def measured_period(con: duckdb.DuckDBPyConnection, period: Period) -> Period:
    """``period`` measured as its segments were: up to the cut-off stored with them (``as_of``), so an
    e-mail about a year to date names the dates its figures cover, whenever it is rendered."""
    if "as_of" not in _columns(con, "segments"):
        return period
    as_of = con.execute("SELECT max(as_of) FROM segments WHERE campaign = ? AND period = ?",
                        [period.campaign, period.start]).fetchone()[0]
    return period.until(as_of.date()) if as_of else period


def _peer_histograms(con: duckdb.DuckDBPyConnection, period: Period) -> dict[str, visuals.PeerHistogram]:
    cols = _columns(con, "peer_distribution")
    if not {"cohort", "bucket_edges", "counts", "metric"} <= cols:
        return {}
    rows = con.execute(
        "SELECT cohort, bucket_edges, counts FROM peer_distribution WHERE campaign = ? AND period = ? AND metric = 'tasks'",
        [period.campaign, period.start],
    ).fetchall()
    return {cohort: visuals.PeerHistogram(tuple(float(e) for e in edges), tuple(int(c) for c in counts))
            for cohort, edges, counts in rows}


def _data(row: Mapping[str, Any], period: Period, settings: EmailSettings, links: Links,
          charts: tuple[ChartImage, ...] = ()) -> EmailData:
    return email_data_from_row(row, campaign=period.campaign, period_start=period.start, period_end=period.as_of,
                               links=links, charts=charts, feature_labels=settings.value_model.features)


def chart_kinds(campaign: str) -> tuple[str, ...]:
    """Every chart drawn per customer: the e-mail's charts plus the share card (share page)."""
    kinds = tuple(visuals.EMAIL_KINDS[campaign])
    return kinds if "share_card" in kinds else kinds + ("share_card",)


def draw_customer_charts(data: EmailData, peers: Mapping[str, visuals.PeerHistogram], settings: EmailSettings,
                         skip: Collection[str] = ()) -> list[visuals.DrawnChart]:
    out = []
    for kind in chart_kinds(data.campaign):
        if kind in skip:
            continue
        drawn = visuals.draw_chart(kind, data, peer=peers.get(data.peer_cohort or ""), min_cohort=settings.peer_min_cohort,
                                   product=settings.brand.product)
        if drawn is not None:
            out.append(drawn)
    return out


def _draw_task(data: EmailData, peer: visuals.PeerHistogram | None, settings: EmailSettings,
               skip: tuple[str, ...]) -> tuple[str, list[visuals.DrawnChart]]:
    """One customer's charts, in a chart worker process (module level, so it can be sent there)."""
    peers = {data.peer_cohort or "": peer} if peer is not None else {}
    return data.customer_id, draw_customer_charts(data, peers, settings, skip)


# --------------------------------------------------------------------------------------- charts
@dataclass
class ChartsSummary:
    customers: int = 0
    charts: int = 0
    by_kind: Counter = field(default_factory=Counter)
    peer_drawn: int = 0  # peer charts actually drawn; the others were the same picture, copied
    workers: int = 1
    folder: Path | None = None
    sample: Path | None = None


def render_period_charts(warehouse: Warehouse, config: Config, period: Period,
                         progress: Callable[[str], None] | None = None) -> ChartsSummary:
    """Draw every chart of every customer who gets an e-mail; PNGs + ``email_charts`` rows.

    Charts are drawn on ``[emails] chart_workers`` processes (:mod:`charts.batch`; in this
    process for a handful of customers).  A peer chart is drawn once per
    :func:`report_templates.visuals.peer_chart_key` and its bytes reused for every customer
    with the same key.  With an opener as ``warehouse`` the file is open only to read the
    customers and to store the rows, not while drawing.
    """
    settings = EmailSettings.from_config(config)
    folder = charts_dir(config, period)
    with _session(warehouse) as con:
        period = measured_period(con, period)
        rows = _select_customers(con, period)
        peers = _peer_histograms(con, period)
    workers = settings.chart_workers if len(rows) >= POOL_MIN_CUSTOMERS else 1
    summary = ChartsSummary(customers=len(rows), folder=folder, workers=workers)
    kinds = chart_kinds(period.campaign)
    plan: deque[tuple[tuple | None, bool]] = deque()  # per task sent: (peer key, copy the peer chart?)
    seen: set[tuple] = set()

    def tasks():
        for row in rows:
            data = _data(row, period, settings, NO_LINKS)
            key = visuals.peer_chart_key(data)
            copy = key in seen
            if key is not None:
                seen.add(key)
            plan.append((key, copy))
            yield data, peers.get(data.peer_cohort or ""), settings, ("peer_position",) if copy else ()

    drawn_peers: dict[tuple, visuals.DrawnChart | None] = {}
    records = []
    counter = Progress("charts", len(rows), progress, settings.progress_interval_s)
    # results come back in the order sent, so a peer chart is drawn before any customer copies it
    for customer_id, charts in render_many(_draw_task, tasks(), workers=workers, chunksize=32):
        key, copy = plan.popleft()
        if copy:
            shared = drawn_peers[key]
            charts = sorted(charts + [shared] * (shared is not None), key=lambda c: kinds.index(c.kind))
        elif key is not None:
            drawn_peers[key] = next((c for c in charts if c.kind == "peer_position"), None)
            summary.peer_drawn += drawn_peers[key] is not None
        for chart in charts:
            path = folder / chart.kind / f"{file_stem(customer_id)}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(chart.png)
            records.append((period.campaign, period.start, customer_id, chart.kind, str(path), chart.alt,
                            chart.width, chart.height, len(chart.png)))
            summary.by_kind[chart.kind] += 1
            if summary.sample is None and chart.kind != "share_card":
                summary.sample = path
        counter.advance()
    counter.done()
    summary.charts = len(records)
    with _session(warehouse) as con, transaction(con):
        con.execute(CHARTS_DDL)
        _delete_undelivered(con, "email_charts", period)
        if records:
            con.executemany("INSERT INTO email_charts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())", records)
    return summary


def _stored_charts(con: duckdb.DuckDBPyConnection, period: Period) -> dict[str, list[tuple]]:
    if not _columns(con, "email_charts"):
        return {}
    out: dict[str, list[tuple]] = {}
    for cid, kind, path, alt, width, height in con.execute(
        "SELECT customer_id, kind, path, alt, width, height FROM email_charts WHERE campaign = ? AND period = ? ORDER BY kind",
        [period.campaign, period.start],
    ).fetchall():
        out.setdefault(cid, []).append((kind, path, alt, width, height))
    return out


# --------------------------------------------------------------------------------------- e-mails
@dataclass
class EmailsSummary:
    rendered: int = 0
    max_html_bytes: int = 0
    folder: Path | None = None
    sample_html: Path | None = None
    sample: tuple[RenderedEmail, dict[str, bytes]] | None = None  # an active-variant e-mail and its images
    by_variant: Counter = field(default_factory=Counter)
    by_locale: Counter = field(default_factory=Counter)
    locale_fallbacks: Counter = field(default_factory=Counter)  # "hu-HU → hu (region)": n
    text_fallbacks: Counter = field(default_factory=Counter)  # value-model texts shown in English
    share_pages: int = 0
    compiled_templates: int = 0


def render_period_emails(
    warehouse: Warehouse,
    config: Config,
    period: Period,
    links_for: LinksFor | None = None,
    progress: Callable[[str], None] | None = None,
    publisher: share.Publisher | None = None,
) -> EmailsSummary:
    """Render the period's e-mail of every customer whose decision is ``send``.

    Writes the HTML and text files, the share pages, and the ``emails``, ``email_images`` and
    ``share_pages`` rows.  ``links_for`` defaults to the preference centre's signed links.
    With an opener as ``warehouse`` the file is open only to read and to store, not while rendering.
    """
    settings = EmailSettings.from_config(config)
    share_settings = share.ShareSettings.from_config(config)
    publisher = publisher or share.publisher_for(config, share_settings)
    renderer = settings.renderer()
    folder = emails_dir(config, period)
    folder.mkdir(parents=True, exist_ok=True)
    with _session(warehouse) as con:
        period = measured_period(con, period)
        rows = _select_customers(con, period)
        stored = _stored_charts(con, period)
        with transaction(con):
            tokens = share.ensure_tokens(con, period, [r["customer_id"] for r in rows], share_settings)
    if links_for is None:
        register_recipients(config, rows)
        links_for = default_links(config)
    counter = Progress("e-mails", len(rows), progress, settings.progress_interval_s)
    summary = EmailsSummary(folder=folder)
    email_rows, image_rows, published = [], [], []
    cta = settings.cta_url(period.campaign)
    for row in rows:
        customer_id = str(row["customer_id"])
        token = tokens[customer_id]
        share_url = share_settings.url(token)
        preferences_url, unsubscribe_url = links_for(customer_id, period.campaign)
        charts, png_for_page = [], None
        for kind, path, alt, width, height in stored.get(customer_id, ()):
            if kind == "share_card":
                png_for_page = Path(path).read_bytes() if Path(path).exists() else None
            if settings.images == "hosted":
                key = f"{token}/{kind}.png"
                if kind != "share_card" and Path(path).exists():
                    publisher.put(key, Path(path).read_bytes(), "image/png")
                src = f"{share_url}{'card' if kind == 'share_card' else kind}.png"
            else:
                src = "cid:" + content_id(kind, period, customer_id, settings.sender_domain)
            charts.append(ChartImage(kind, src, alt, width, height, path))
        links = Links(preferences_url, unsubscribe_url, cta, share_url)
        data = _data(row, period, settings, links, tuple(charts))
        email = renderer.render(data)
        # the share page: first name + own numbers, the share card as its image
        card = next((c for c in charts if c.kind == "share_card"), None)
        page, page_locale = page_for(
            data, settings.brand, settings.value_model, url=share_url, home_url=settings.public_base_url,
            image_url=f"{share_url}card.png" if png_for_page else "", image_alt=card.alt if card else "")
        location = share.publish_page(publisher, token, render_page(page, page_locale, settings.brand), png_for_page)
        published.append((customer_id, location, page_locale))
        # files and rows
        stem = file_stem(customer_id)
        html_path, text_path = folder / f"{stem}.html", folder / f"{stem}.txt"
        html_path.write_text(email.html, encoding="utf-8")
        text_path.write_text(email.text, encoding="utf-8")
        size = email.html_bytes
        inline = [img for img in email.images if img.cid] if settings.images == "cid" else []
        for img in inline:
            image_rows.append((period.campaign, period.start, customer_id, img.cid, img.path, img.alt, "image/png", img.kind))
        email_rows.append((
            period.campaign, period.start, customer_id, email.locale_used, email.subject, email.preheader,
            str(html_path), str(text_path), size,
            email.locale_requested, email.locale_used, email.locale_reason, email.variant, email.template,
            share_url, preferences_url, unsubscribe_url, len(inline), ",".join(email.fallbacks) or None,
            json.dumps(row, default=str, sort_keys=True),
        ))
        summary.max_html_bytes = max(summary.max_html_bytes, size)
        summary.by_variant[email.variant] += 1
        summary.by_locale[email.locale_used] += 1
        if email.locale_reason != "exact":
            summary.locale_fallbacks[f"{email.locale_requested or '(none)'} → {email.locale_used} ({email.locale_reason})"] += 1
        for key in email.fallbacks:
            summary.text_fallbacks[f"{email.locale_used}: {key}"] += 1
        if summary.sample_html is None:
            summary.sample_html = html_path
        if summary.sample is None and email.variant == "active" and email.images:
            summary.sample = (email, {img.cid: Path(img.path).read_bytes() for img in inline if Path(img.path).exists()})
        counter.advance()
    counter.done()
    if summary.sample is None and email_rows:
        summary.sample = (email, {})  # noqa: F821 - the last one rendered
    with _session(warehouse) as con, transaction(con):
        con.execute(EMAILS_DDL)
        _ensure_columns(con, "emails", EMAILS_EXTRA_COLUMNS)
        con.execute(EMAIL_IMAGES_DDL)
        for table in ("emails", "email_images"):
            _delete_undelivered(con, table, period)
        if email_rows:
            con.executemany(
                "INSERT INTO emails (campaign, period, customer_id, locale, subject, preheader, html_path, text_path, "
                "html_bytes, rendered_at, locale_requested, locale_used, locale_reason, variant, template, share_url, "
                "preferences_url, unsubscribe_url, image_count, text_fallbacks, figures) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                email_rows,
            )
        if image_rows:
            con.executemany("INSERT INTO email_images VALUES (?, ?, ?, ?, ?, ?, ?, ?)", image_rows)
        share.record_published(con, period, published)
    summary.rendered = len(email_rows)
    summary.share_pages = len(published)
    summary.compiled_templates = renderer.compiled_shapes
    return summary


# --------------------------------------------------------------------------------------- preview
@dataclass
class Preview:
    email: RenderedEmail
    data: EmailData
    images: dict[str, bytes]  # cid → PNG
    eligibility: str | None  # the customer's decision for the period (None: not decided yet)
    has_metrics: bool


def preview_email(con: duckdb.DuckDBPyConnection, config: Config, period: Period, customer_id: str,
                  links_for: LinksFor | None = None) -> Preview:
    """Render one customer's e-mail for the period without writing anything (charts drawn in memory).

    Works for any customer, eligible or not (an analyst wants to see what they *would* get).
    """
    settings = EmailSettings.from_config(config)
    period = measured_period(con, period)
    rows = _select_customers(con, period, [customer_id], eligible_only=False)
    if not rows:
        raise LookupError(f"no customer {customer_id!r} in the warehouse")
    row = rows[0]
    reason = None
    if _columns(con, "eligibility"):
        hit = con.execute("SELECT reason FROM eligibility WHERE campaign = ? AND period = ? AND customer_id = ?",
                          [period.campaign, period.start, customer_id]).fetchone()
        reason = hit[0] if hit else None
    has_metrics = row.get("tasks") is not None
    share_settings = share.ShareSettings.from_config(config)
    token = None
    if _columns(con, "share_pages"):
        hit = con.execute("SELECT token FROM share_pages WHERE campaign = ? AND period = ? AND customer_id = ?",
                          [period.campaign, period.start, customer_id]).fetchone()
        token = hit[0] if hit else None
    share_url = share_settings.url(token or "preview")
    try:
        preferences_url, unsubscribe_url = (links_for or default_links(config))(customer_id, period.campaign)
    except (ImportError, ConfigError, ValueError) as exc:  # preview must work without the preference centre
        log.warning("preference links unavailable (%s): previewing with placeholders", exc)
        preferences_url = f"{settings.public_base_url}/p/preview"
        unsubscribe_url = f"{settings.public_base_url}/u/preview"
    data = _data(row, period, settings, NO_LINKS)
    drawn = draw_customer_charts(data, _peer_histograms(con, period), settings)
    charts, images = [], {}
    for chart in drawn:
        cid = content_id(chart.kind, period, customer_id, settings.sender_domain)
        charts.append(ChartImage(chart.kind, "cid:" + cid, chart.alt, chart.width, chart.height, None))
        images[cid] = chart.png
    data = replace(data, links=Links(preferences_url, unsubscribe_url, settings.cta_url(period.campaign), share_url),
                   charts=tuple(charts))
    email = settings.renderer().render(data)
    used = {img.cid for img in email.images if img.cid}
    return Preview(email, data, {cid: png for cid, png in images.items() if cid in used}, reason, has_metrics)


def mime_for(config: Config, email: RenderedEmail, to_name: str, to_address: str, images: Mapping[str, bytes],
             unsubscribe_url: str | None = None) -> bytes:
    """A complete message (bytes) for a rendered e-mail — what delivery sends (used by preview)."""
    from report_templates.mime_skeleton import InlinePart, MimeSkeleton

    sender = config.section("sender")
    skeleton = MimeSkeleton(from_name=str(sender.get("from_name", "valuemail")),
                            from_address=str(sender.get("from_address", "hello@valuemail.example")),
                            reply_to=str(sender.get("reply_to") or "") or None,
                            list_id=str(sender.get("list_id") or "") or None)
    parts = [InlinePart(img.cid, images[img.cid], f"{img.kind}.png") for img in email.images if img.cid in images]
    return skeleton.render(to_name=one_line(to_name), to_address=to_address, subject=email.subject, text=email.text,
                           html=email.html, images=parts, list_unsubscribe=unsubscribe_url)
