"""Helpers shared by the delivery tests (no conftest: modules import what they need from here).

A tiny but real home: a DuckDB warehouse with customers, their period metrics and rendered
e-mails on disk, a SQLite preference store, and — for SMTP — a real aiosmtpd server in its
own process that records every Message-ID it accepts (``delivery/smtp_sink.py``).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa

from valuemail.config import Config, load_config
from valuemail.periods import Period
from valuemail.warehouse import connect

REPO = Path(__file__).resolve().parents[1]
PERIOD = Period("weekly", date(2026, 11, 16))
SCHEDULED = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)  # the weekly schedule's run for PERIOD
TEST_SECRET = "test-only-secret-not-for-production-0123456789"

METRICS_DDL = """
CREATE TABLE IF NOT EXISTS customer_metrics (
    campaign VARCHAR, period DATE, customer_id VARCHAR, tasks BIGINT, minutes_saved DECIMAL(18, 2),
    money_saved DECIMAL(18, 2), PRIMARY KEY (campaign, period, customer_id))
"""
EMAILS_DDL = """
CREATE TABLE IF NOT EXISTS emails (
    campaign VARCHAR, period DATE, customer_id VARCHAR, locale VARCHAR, subject VARCHAR, preheader VARCHAR,
    html_path VARCHAR, text_path VARCHAR, PRIMARY KEY (campaign, period, customer_id))
"""


def make_config(home: Path, **delivery) -> Config:
    overrides = {"delivery": {"reconcile_grace_s": 0, "max_retry_wait_s": 0, **delivery},
                 "preference_centre": {"secret": TEST_SECRET}}
    return load_config(home=home, overrides=overrides)


@dataclass
class Home:
    config: Config
    path: Path
    customers: list[str]

    @property
    def db(self) -> Path:
        return self.config.warehouse_path

    def con(self) -> duckdb.DuckDBPyConnection:
        return connect(self.db)

    def store(self):
        from delivery.prefs import open_store

        return open_store(self.config)


def make_home(tmp_path: Path, n: int = 20, domain: str = "acme.example", period: Period = PERIOD,
              emails: dict[str, str] | None = None, active: set[str] | None = None, render: bool = True,
              html_kb: int = 4, **delivery) -> Home:
    """``n`` customers ``c0000…`` at ``u<i>@<domain>``, all active with tasks, e-mails rendered."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = make_config(tmp_path, **delivery)
    (tmp_path / "delivery.json").write_text(json.dumps(delivery))  # for sender subprocesses
    ids = [f"c{i:04d}" for i in range(n)]
    addresses = {cid: f"u{i}@{domain}" for i, cid in enumerate(ids)}
    addresses.update(emails or {})
    active = set(ids) if active is None else active
    folder = tmp_path / "emails" / period.campaign / period.key
    folder.mkdir(parents=True, exist_ok=True)
    customers = pa.table({
        "customer_id": list(addresses), "email": list(addresses.values()),
        "name": [f"Customer {cid}" for cid in addresses],
    })
    metrics = pa.table({"customer_id": [cid for cid in addresses if cid in active]})
    rows = []
    if render:
        filler = "<p>" + ("Your automations saved you time this week. " * 20) + "</p>\n"
        for cid in addresses:
            html, text = folder / f"{cid}.html", folder / f"{cid}.txt"
            html.write_text(f"<html><body><h1>Hi {cid}</h1>" + filler * html_kb + "</body></html>", encoding="utf-8")
            text.write_text(f"Hi {cid},\nyou saved 42 minutes.\n", encoding="utf-8")
            rows.append((cid, str(html), str(text)))
    rendered = pa.table({"customer_id": [r[0] for r in rows], "html_path": [r[1] for r in rows],
                         "text_path": [r[2] for r in rows]}, schema=pa.schema(
        [("customer_id", pa.string()), ("html_path", pa.string()), ("text_path", pa.string())]))
    with connect(config.warehouse_path) as con:
        con.execute(METRICS_DDL)
        con.execute(EMAILS_DDL)
        con.register("_c", customers)
        con.register("_m", metrics)
        con.register("_e", rendered)
        con.execute("INSERT INTO customers SELECT customer_id, email, name, 'en', 'UTC', 'pro', 'HU', "
                    "TIMESTAMP '2026-01-05', NULL, NULL, NULL, 'test', now() FROM _c")
        con.execute("INSERT INTO customer_metrics SELECT ?, ?, customer_id, 5, 42.5, 0 FROM _m",
                    [period.campaign, period.start])
        con.execute("INSERT INTO emails SELECT ?, ?, customer_id, 'en', 'Your week, ' || customer_id, '42 minutes', "
                    "html_path, text_path FROM _e", [period.campaign, period.start])
    return Home(config, tmp_path, list(addresses))


def decide(home: Home, period: Period = PERIOD, now=None):
    """Decide as the schedule does for PERIOD (a frozen clock: its send window is open), or at ``now``."""
    from delivery.eligibility import decide_eligibility

    now = now or SCHEDULED

    with home.con() as con, home.store() as store:
        return decide_eligibility(con, home.config, period, store=store, now=now)


# -- the SMTP sink in its own process ------------------------------------------------------------
@dataclass
class Sink:
    port: int
    db: Path
    proc: subprocess.Popen

    def received(self) -> list[str]:
        if not self.db.exists():
            return []
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return [r[0] for r in con.execute("SELECT message_id FROM received ORDER BY rowid")]
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()


@contextmanager
def smtp_sink(tmp_path: Path, *args: str, name: str = "sink") -> Iterator[Sink]:
    """``python -m delivery.smtp_sink`` on 127.0.0.1:<free port>, recording into ``<tmp>/<name>.sqlite``."""
    db = tmp_path / f"{name}.sqlite"
    port_file = tmp_path / f"{name}.port"
    log = open(tmp_path / f"{name}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "delivery.smtp_sink", "--port", "0", "--port-file", str(port_file), "--db", str(db), *args],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"smtp sink exited with {proc.returncode}: {(tmp_path / f'{name}.log').read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError("smtp sink did not start")
            time.sleep(0.05)
        yield Sink(int(port_file.read_text()), db, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def smtp_settings(sink: Sink, **kw) -> dict:
    return {"host": "127.0.0.1", "port": sink.port, "reconcile_log": str(sink.db), "connections": 2, "timeout_s": 10, **kw}


def test_support_builds_a_home(tmp_path):
    home = make_home(tmp_path, n=3)
    with home.con() as con:
        assert con.execute("SELECT count(*) FROM emails").fetchone()[0] == 3
