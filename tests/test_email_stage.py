"""The charts and e-mails stages on a small warehouse: files, rows, inline images, share pages, assets.

The warehouse is built by hand on the public table contracts (``customer_metrics`` and
``peer_distribution`` from metrics/, ``eligibility`` from delivery/), so these tests show what the
stages do with exactly the rows the other stages write — and that missing columns are tolerated.
"""

from __future__ import annotations

import email
import json
import re
from datetime import date, datetime
from email import policy
from pathlib import Path

import duckdb
import pytest

from valuemail.config import load_config
from valuemail.emails import (
    EMAILS_EXTRA_COLUMNS,
    render_period_charts,
    render_period_emails,
)
from valuemail.periods import Period

WEEK = Period("weekly", date(2026, 11, 16))
BASE = "https://valuemail.example"

CUSTOMERS = [
    # id, name, locale, plan, signed up, eligible?, tasks, stage
    ("c-anna", "Anna Kovács", "en", "pro", datetime(2024, 3, 2), True, 137, "active"),
    ("c-agnes", "Szabó Ágnes", "hu-HU", "pro", datetime(2025, 1, 5), True, 60, "active"),
    ("c-wang", "王芳", "zh-Hans-CN", "pro", datetime(2026, 11, 9), True, 12, "new"),
    ("c-low", "Otto Low", "de", "basic", datetime(2023, 1, 1), True, 2, "active"),
    ("c-evil", '"><mj-image src=https://evil.example/x.png>\r\nBcc: x', "en", "pro", datetime(2024, 1, 1), True, 40, "active"),
    ("c-skip", "Not Eligible", "en", "pro", datetime(2024, 1, 1), False, 99, "active"),
]


def links_for(customer_id: str, campaign: str) -> tuple[str, str]:
    return f"{BASE}/p/{customer_id}", f"{BASE}/u/{customer_id}-{campaign}"


def make_warehouse(con: duckdb.DuckDBPyConnection, period: Period = WEEK, *, peers: bool = True,
                   metrics_columns: set[str] | None = None, customers: list[tuple] = CUSTOMERS) -> None:
    """customers, eligibility, customer_metrics (+ peer_distribution) for ``period``."""
    from metrics import peers as metric_peers
    from metrics.period import COLUMNS, PRIMARY_KEY, TABLE
    from metrics.sqlutil import ensure_table

    columns = [c for c in COLUMNS if metrics_columns is None or c[0] in metrics_columns or c[0] in PRIMARY_KEY]
    ensure_table(con, TABLE, columns, PRIMARY_KEY)
    ensure_table(con, metric_peers.TABLE, metric_peers.COLUMNS, metric_peers.PRIMARY_KEY)
    con.execute("""CREATE TABLE IF NOT EXISTS eligibility (campaign VARCHAR, period DATE, customer_id VARCHAR,
                   reason VARCHAR, detail VARCHAR, decided_at TIMESTAMP, stage VARCHAR)""")
    days = (period.end - period.start).days
    for cid, name, locale, plan, signed, eligible, tasks, stage in customers:
        con.execute("INSERT INTO customers VALUES (?, ?, ?, ?, 'UTC', ?, 'HU', ?, NULL, NULL, NULL, 'test', now())",
                    [cid, f"{cid}@example.com", name, locale, plan, signed])
        con.execute("INSERT INTO eligibility VALUES (?, ?, ?, ?, '', now(), ?)",
                    [period.campaign, period.start, cid, "send" if eligible else "unsubscribed", stage])
        daily = [tasks // days + (1 if i < tasks % days else 0) for i in range(days)]
        row = {
            "campaign": period.campaign, "period": period.start, "customer_id": cid, "value_model_version": "2026-11-01",
            "tasks": tasks, "minutes_saved": tasks * 2, "money_saved": 0, "currency": "USD", "events": tasks,
            "active_days": sum(1 for d in daily if d), "daily_tasks": daily,
            "weekday_tasks": [sum(daily[i::7]) for i in range(7)],
            "monthly_tasks": [tasks // 12] * 12 if period.campaign == "yearly" else None,
            "busiest_day": period.start, "busiest_day_tasks": daily[0],
            "top_features": json.dumps([{"event_type": "workflow_run", "feature": "Automated workflows", "tasks": tasks * 2 // 3},
                                        {"event_type": "report_generated", "feature": "Reports", "tasks": tasks // 3}]),
            "first_uses": json.dumps([{"event_type": "report_generated", "feature": "Reports", "first_used_at": "2026-11-17T10:00:00Z"}]),
            "money_other": "[]", "prev_tasks": tasks - 10 if tasks > 20 else None,
            "tasks_change_pct": 100.0 * 10 / (tasks - 10) if tasks > 20 else None,
            "lifetime_tasks": tasks * 10, "milestones": [1000] if tasks * 10 >= 1000 else [], "streak_weeks": 3,
            "peer_cohort": plan, "peer_cohort_size": 120 if plan == "pro" else 10,
            "tasks_percentile": 80.5 if plan == "pro" else None, "tasks_beat_pct": 80 if plan == "pro" else None,
        }
        row = {k: v for k, v in row.items() if any(k == c for c, _ in columns)}
        con.execute(f"INSERT INTO {TABLE} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    if peers:
        con.execute("INSERT INTO peer_distribution VALUES (?, ?, 'pro', 'tasks', 120, ?, ?)",
                    [period.campaign, period.start, [0, 1, 2, 5, 10, 20, 50, 100, 200], [5, 10, 15, 20, 25, 20, 15, 10]])


@pytest.fixture
def stage(config, warehouse):
    make_warehouse(warehouse)
    return config, warehouse


def _rows(con, sql, params=()):
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def test_charts_are_drawn_for_eligible_customers_only(stage):
    config, con = stage
    summary = render_period_charts(con, config, WEEK)
    rows = _rows(con, "SELECT * FROM email_charts ORDER BY customer_id, kind")
    eligible = {c[0] for c in CUSTOMERS if c[5]}
    assert {r["customer_id"] for r in rows} == eligible
    kinds = {(r["customer_id"], r["kind"]) for r in rows}
    assert ("c-anna", "weekly_activity") in kinds and ("c-anna", "share_card") in kinds
    assert ("c-anna", "peer_position") in kinds  # pro: a cohort histogram of 120 ≥ k
    assert ("c-low", "peer_position") not in kinds  # basic: no histogram, no percentile
    for r in rows:
        png = Path(r["path"]).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) == r["png_bytes"] and r["alt"]
    assert summary.charts == len(rows) and summary.sample is not None
    # a re-run rewrites the period, it doesn't add to it
    render_period_charts(con, config, WEEK)
    assert con.execute("SELECT count(*) FROM email_charts").fetchone()[0] == len(rows)


def test_emails_rows_files_and_inline_images(stage):
    config, con = stage
    render_period_charts(con, config, WEEK)
    summary = render_period_emails(con, config, WEEK, links_for=links_for)
    rows = {r["customer_id"]: r for r in _rows(con, "SELECT * FROM emails")}
    assert set(rows) == {c[0] for c in CUSTOMERS if c[5]}
    assert {name for name, _ in EMAILS_EXTRA_COLUMNS} <= set(next(iter(rows.values())))
    anna, agnes, wang, low, evil = (rows[k] for k in ("c-anna", "c-agnes", "c-wang", "c-low", "c-evil"))
    assert (anna["locale_used"], anna["locale_reason"], anna["variant"]) == ("en", "exact", "active")
    assert (agnes["locale_requested"], agnes["locale_used"], agnes["locale_reason"]) == ("hu-HU", "hu", "region")
    assert agnes["subject"].startswith("Ágnes,")  # Hungarian name order: the given name is last
    assert (wang["locale_used"], wang["locale_reason"], wang["variant"]) == ("zh-CN", "script", "new")
    assert (low["locale_used"], low["locale_reason"], low["variant"]) == ("en", "unsupported", "low")
    assert "\r" not in evil["subject"] and "\n" not in evil["subject"]
    for r in rows.values():
        html = Path(r["html_path"]).read_text(encoding="utf-8")
        text = Path(r["text_path"]).read_text(encoding="utf-8")
        assert len(html.encode()) == r["html_bytes"] < 100_000
        assert r["unsubscribe_url"] in html and r["unsubscribe_url"] in text
        assert r["unsubscribe_url"] == links_for(r["customer_id"], "weekly")[1]
        assert r["share_url"] in html and r["share_url"] in text
        images = _rows(con, "SELECT * FROM email_images WHERE customer_id = ?", [r["customer_id"]])
        assert r["image_count"] == len(images)
        # every cid in the HTML has exactly one email_images row, and the other way round
        assert sorted(re.findall(r'src="cid:([^"]+)"', html)) == sorted(i["cid"] for i in images)
        for i in images:
            assert Path(i["path"]).exists() and i["content_type"] == "image/png" and i["alt"]
            assert r["customer_id"] not in i["cid"]  # content ids reveal nothing about the customer
    assert rows["c-anna"]["image_count"] == 2 and rows["c-low"]["image_count"] == 0  # low: no charts
    assert summary.rendered == 5 and summary.by_variant == {"active": 3, "new": 1, "low": 1}
    assert summary.locale_fallbacks["de → en (unsupported)"] == 1


def test_a_message_builds_from_the_rows_delivery_reads(stage):
    """The contract with delivery: emails + email_images are enough for a complete message."""
    from report_templates.mime_skeleton import InlinePart, MimeSkeleton

    config, con = stage
    render_period_charts(con, config, WEEK)
    render_period_emails(con, config, WEEK, links_for=links_for)
    r = _rows(con, "SELECT e.*, c.email, c.name FROM emails e JOIN customers c USING (customer_id) "
                   "WHERE customer_id = 'c-agnes'")[0]
    images = [InlinePart(i["cid"], Path(i["path"]).read_bytes(), f"{i['kind']}.png")
              for i in _rows(con, "SELECT * FROM email_images WHERE customer_id = 'c-agnes' ORDER BY cid")]
    raw = MimeSkeleton(from_name="valuemail", from_address="hello@valuemail.example").render(
        to_name=r["name"], to_address=r["email"], subject=r["subject"], text=Path(r["text_path"]).read_text(),
        html=Path(r["html_path"]).read_text(), images=images, list_unsubscribe=r["unsubscribe_url"])
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == r["subject"] and msg["List-Unsubscribe"] == f"<{r['unsubscribe_url']}>"
    parts = [p.get_content_type() for p in msg.walk()]
    assert parts == ["multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png", "image/png"]


def test_share_pages_keep_their_url_across_reruns(stage):
    config, con = stage
    render_period_charts(con, config, WEEK)
    render_period_emails(con, config, WEEK, links_for=links_for)
    first = {r["customer_id"]: r for r in _rows(con, "SELECT * FROM share_pages")}
    render_period_emails(con, config, WEEK, links_for=links_for)
    second = {r["customer_id"]: r for r in _rows(con, "SELECT * FROM share_pages")}
    assert {k: v["url"] for k, v in first.items()} == {k: v["url"] for k, v in second.items()}
    assert len({v["token"] for v in second.values()}) == len(second) == 5
    for r in second.values():
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", r["token"])
        assert r["url"] == f"{BASE}/s/{r['token']}/"
        page = Path(r["location"])
        assert page == config.share_dir / r["token"] / "index.html" and page.exists()
        assert (page.parent / "card.png").exists() and r["published_at"] is not None
    assert con.execute("SELECT count(*) FROM emails").fetchone()[0] == 5


def test_hosted_images_link_to_the_share_folder(tmp_path):
    config = load_config(home=tmp_path, overrides={"emails": {"images": "hosted"}})
    from valuemail.warehouse import connect

    con = connect(config.warehouse_path)
    try:
        make_warehouse(con)
        render_period_charts(con, config, WEEK)
        render_period_emails(con, config, WEEK, links_for=links_for)
        assert con.execute("SELECT count(*) FROM email_images").fetchone()[0] == 0
        row = _rows(con, "SELECT e.html_path, s.token FROM emails e JOIN share_pages s USING (campaign, period, customer_id) "
                         "WHERE customer_id = 'c-anna'")[0]
        html = Path(row["html_path"]).read_text()
        assert "cid:" not in html
        assert f'src="{BASE}/s/{row["token"]}/weekly_activity.png"' in html
        assert (config.share_dir / row["token"] / "weekly_activity.png").exists()
    finally:
        con.close()


def test_missing_metric_columns_are_tolerated(config, warehouse):
    """An older customer_metrics (tasks, minutes, days only) still gives sensible e-mails."""
    make_warehouse(warehouse, peers=False, metrics_columns={"value_model_version", "tasks", "minutes_saved", "money_saved",
                                                             "currency", "events", "active_days"})
    render_period_charts(warehouse, config, WEEK)
    summary = render_period_emails(warehouse, config, WEEK, links_for=links_for)
    assert summary.rendered == 5
    html = Path(warehouse.execute("SELECT html_path FROM emails WHERE customer_id = 'c-anna'").fetchone()[0]).read_text()
    assert "4 hr 34 min" in html and "137 tasks" in html


def test_default_links_come_from_the_preference_centre(config):
    from preference_centre.links import preferences_url, unsubscribe_url
    from valuemail.emails import default_links

    pref, unsub = default_links(config)("c-anna", "weekly")
    assert pref == preferences_url(config, "c-anna") and unsub == unsubscribe_url(config, "c-anna", "weekly")
    assert pref.startswith("https://") and unsub.startswith("https://")


@pytest.fixture
def fresh_dagster_load_context(monkeypatch):
    """Work around test pollution: schedule/sensor tests in the same worker (test_definitions'
    ``instance_for_test`` + ``build_schedule_context``) leave Dagster's process-wide defs-state
    storage pointing at an instance that no longer exists, and every later ``dg.materialize`` in
    that process fails with "Attempted to resolve undefined DagsterInstance weakref".  Clear it
    for this test (test code only; the pipeline never touches it) — a conftest-wide autouse
    fixture would fix it for every test."""
    try:
        from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext
        from dagster._core.storage.defs_state.base import set_defs_state_storage
    except ImportError:  # pragma: no cover - another Dagster version
        yield
        return
    monkeypatch.setattr(DefinitionsLoadContext, "_instance", None)
    with set_defs_state_storage(None):
        yield


def test_assets_materialize_with_a_sample_screenshot(config, monkeypatch, fresh_dagster_load_context):
    import dagster as dg

    from assets.emails import build_email_assets
    from pipelines.resources import ValuemailResource
    from report_templates.screenshot import chromium_path
    from valuemail.warehouse import connect

    con = connect(config.warehouse_path)
    make_warehouse(con)
    con.close()
    monkeypatch.setenv("VALUEMAIL_EMAIL_SCREENSHOT", "1" if chromium_path() else "0")
    charts_asset, emails_asset = build_email_assets("weekly")
    result = dg.materialize([charts_asset, emails_asset], partition_key=WEEK.key,
                            resources={"valuemail": ValuemailResource(home=str(config.home))})
    assert result.success
    meta = {m.asset_key.to_user_string(): m.metadata for m in result.get_asset_materialization_events() and
            [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]}
    emails_meta = meta["weekly/emails"]
    assert emails_meta["dagster/row_count"].value == 5
    assert emails_meta["max_html_bytes"].value < 100_000
    assert "sample_chart" in meta["weekly/charts"]
    if chromium_path():
        assert emails_meta["sample_email"].value.startswith("![sample e-mail](data:image/jpeg;base64,")


def test_what_a_customer_was_sent_stays_on_record_when_metrics_are_recomputed(stage):
    """Once sent, the figures behind an e-mail (and its files) never change; unsent ones follow the new metrics."""
    from delivery.outbox import ensure_outbox

    config, con = stage
    render_period_charts(con, config, WEEK)
    render_period_emails(con, config, WEEK, links_for=links_for)
    ensure_outbox(con)
    con.execute("INSERT INTO outbox (campaign, period, customer_id, email, status, attempts, message_id, created_at, "
                "updated_at) VALUES (?, ?, 'c-anna', 'c-anna@example.com', 'sent', 1, '<m1@x>', now(), now())",
                [WEEK.campaign, WEEK.start])
    con.execute("UPDATE eligibility SET reason = 'already_sent' WHERE customer_id = 'c-anna'")
    sent = _rows(con, "SELECT figures, html_path FROM emails WHERE customer_id = 'c-anna'")[0]
    assert json.loads(sent["figures"])["tasks"] == 137
    html = Path(sent["html_path"]).read_text()
    # late events: the metrics stage recomputes the period, then the e-mails stage runs again
    con.execute("UPDATE customer_metrics SET tasks = tasks + 500")
    render_period_charts(con, config, WEEK)
    render_period_emails(con, config, WEEK, links_for=links_for)
    figures = {r["customer_id"]: json.loads(r["figures"])["tasks"] for r in _rows(con, "SELECT * FROM emails")}
    assert figures["c-anna"] == 137 and figures["c-agnes"] == 560
    assert Path(sent["html_path"]).read_text() == html
