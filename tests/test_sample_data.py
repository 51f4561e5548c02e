"""The synthetic data generator: deterministic, contract-shaped, and varied enough to exercise
every downstream path (lifecycle stages, address rules, locales, unknown event types)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from valuemail.config import load_config
from valuemail.sample_data import (
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    FORMATS,
    UNKNOWN_EVENT_TYPE,
    generate,
)

END = date(2026, 11, 16)
ROLE_PREFIXES = set(load_config().section("delivery")["role_prefixes"])


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VALUEMAIL_CONFIG", raising=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    """2,000 customers / 100,000 events in Parquet, as DuckDB views ``c`` and ``e``."""
    out = tmp_path_factory.mktemp("sample")
    summary = generate(out, customers=2000, seed=11, end_date=END, fmt="parquet")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE VIEW c AS SELECT * FROM read_parquet('{out}/customers.parquet')")
    con.execute(f"CREATE VIEW e AS SELECT * FROM read_parquet('{out}/events-*.parquet')")
    yield summary, con
    con.close()


def _scalar(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchone()[0]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# -- determinism and files ----------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_same_arguments_give_byte_identical_files(tmp_path: Path, fmt: str) -> None:
    kwargs = dict(customers=150, seed=3, end_date=END, fmt=fmt, max_events_per_file=3000)
    first = generate(tmp_path / "a", **kwargs)
    generate(tmp_path / "b", **kwargs)
    assert len(first.event_files) > 1
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    other = generate(tmp_path / "c", **{**kwargs, "seed": 4})
    assert other.customers_file.read_bytes() != first.customers_file.read_bytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_in_duckdb_with_the_contract_columns(tmp_path: Path, fmt: str) -> None:
    summary = generate(tmp_path, customers=120, seed=5, end_date=END, fmt=fmt)
    reader = {"parquet": "read_parquet", "csv": "read_csv", "ndjson": "read_json"}[fmt]
    con = duckdb.connect()
    customers = con.execute(f"SELECT * FROM {reader}('{summary.customers_file}')")
    assert tuple(d[0] for d in customers.description) == CUSTOMER_COLUMNS
    assert len(customers.fetchall()) == 120
    events = con.execute(f"SELECT * FROM {reader}('{tmp_path}/events-*.{fmt}')")
    assert tuple(d[0] for d in events.description) == EVENT_COLUMNS
    assert len(events.fetchall()) == summary.events == 6000
    # Values convert to the warehouse types (timestamps are UTC, 'Z' suffix in text formats).
    con.execute("SET TimeZone = 'UTC'")
    row = con.execute(f"""
        SELECT min(CAST(occurred_at AS TIMESTAMPTZ)), max(CAST(occurred_at AS TIMESTAMPTZ)),
               min(CAST(quantity AS BIGINT)), count(CAST(amount_saved AS DECIMAL(18, 4))),
               count(json_valid(properties))
        FROM {reader}('{tmp_path}/events-*.{fmt}')""").fetchone()
    assert row[0].date() >= summary.first_day and row[1].date() <= END
    assert row[2] >= 1 and row[3] > 0 and row[4] > 0
    if fmt != "parquet":
        text = next(iter(summary.event_files)).read_text(encoding="utf-8")
        assert "T" in text and "Z" in text


def test_stale_files_of_an_earlier_run_are_removed(tmp_path: Path) -> None:
    generate(tmp_path, customers=100, seed=1, end_date=END, max_events_per_file=1000)
    (tmp_path / "keep-me.txt").write_text("not ours")
    summary = generate(tmp_path, customers=100, seed=1, end_date=END, fmt="csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["keep-me.txt", *(p.name for p in summary.files)])


def test_chunks_split_by_customer_and_ids_are_unique(tmp_path: Path) -> None:
    summary = generate(tmp_path, customers=300, seed=2, end_date=END, max_events_per_file=4000)
    con = duckdb.connect()
    rows = con.execute(f"""
        SELECT count(*), count(DISTINCT event_id), max(files)
        FROM (SELECT event_id, count(DISTINCT filename) OVER (PARTITION BY customer_id) AS files
              FROM read_parquet('{tmp_path}/events-*.parquet', filename = true))""").fetchone()
    assert rows == (summary.events, summary.events, 1)
    assert len(summary.event_files) >= 4


# -- event counts ---------------------------------------------------------------------------
@pytest.mark.parametrize("target", [1_000, 25_000])
def test_target_events_is_met(tmp_path: Path, target: int) -> None:
    summary = generate(tmp_path, customers=200, seed=9, end_date=END, target_events=target)
    counted = _scalar(duckdb.connect(), f"SELECT count(*) FROM read_parquet('{tmp_path}/events-*.parquet')")
    assert counted == summary.events
    assert abs(counted - target) <= 0.03 * target


def test_events_per_customer_sets_the_average(tmp_path: Path) -> None:
    assert generate(tmp_path, customers=200, seed=9, end_date=END, events_per_customer=7.5).events == 1500
    assert generate(tmp_path, customers=200, seed=9, end_date=END, events_per_customer=0).events == 0


# -- events ---------------------------------------------------------------------------------
def test_no_event_before_sign_up_or_after_the_end_date(data) -> None:
    _, con = data
    assert _scalar(con, "SELECT count(*) FROM e JOIN c USING (customer_id) WHERE e.occurred_at < c.signed_up_at") == 0
    assert _scalar(con, "SELECT count(*) FROM e ANTI JOIN c USING (customer_id)") == 0
    assert _scalar(con, f"SELECT max(occurred_at) < TIMESTAMPTZ '{END}' + INTERVAL 1 DAY FROM e")


def test_event_types_come_from_the_value_model_plus_one_unknown(data) -> None:
    summary, con = data
    known = set(load_config().value_model.events)
    counts = dict(con.execute("SELECT event_type, count(*) FROM e GROUP BY 1").fetchall())
    assert set(counts) - known == {UNKNOWN_EVENT_TYPE}
    assert known - set(counts) == set()  # every configured type occurs at this size
    assert 0.0003 < counts[UNKNOWN_EVENT_TYPE] / summary.events < 0.003
    assert counts[UNKNOWN_EVENT_TYPE] == summary.unknown_events


def test_event_values_follow_the_contract(data) -> None:
    _, con = data
    quantity = con.execute("SELECT min(quantity), avg((quantity = 1)::INT), max(quantity) FROM e").fetchone()
    assert quantity[0] >= 1 and 0.6 < quantity[1] < 0.95 and quantity[2] > 5
    measured = _scalar(con, "SELECT avg((duration_saved_s IS NOT NULL)::INT) FROM e")
    assert 0.005 < measured < 0.2
    # Money only where measured, in the customer's own currency, with a currency.
    assert _scalar(con, "SELECT count(*) FROM e WHERE (amount_saved IS NULL) <> (currency IS NULL)") == 0
    assert _scalar(con, """SELECT count(*) FROM e JOIN c USING (customer_id)
                           WHERE e.currency IS NOT NULL AND e.currency <> c.currency""") == 0
    assert _scalar(con, "SELECT count(DISTINCT event_type) FROM e WHERE amount_saved IS NOT NULL") >= 1
    assert _scalar(con, "SELECT bool_and(amount_saved >= 0) FROM e WHERE event_type = 'subscription_audit'")
    assert {r[0] for r in con.execute("SELECT DISTINCT currency FROM e WHERE currency IS NOT NULL").fetchall()} \
        == {"USD", "EUR", "HUF", "CNY"}
    props = [r[0] for r in con.execute("SELECT properties FROM e WHERE properties IS NOT NULL LIMIT 200").fetchall()]
    assert props and all(isinstance(json.loads(p), dict) for p in props)
    assert _scalar(con, "SELECT avg((properties IS NULL)::INT) FROM e") > 0.7


def test_weekly_rhythm_and_working_hours(data) -> None:
    _, con = data
    weekday, weekend = con.execute(
        "SELECT count(*) FILTER (isodow(occurred_at) <= 5) / 5, count(*) FILTER (isodow(occurred_at) > 5) / 2 FROM e"
    ).fetchone()
    assert weekday > 2.5 * weekend
    office = _scalar(con, """SELECT avg((hour(timezone(c.timezone, e.occurred_at)) BETWEEN 8 AND 17)::INT)
                             FROM e JOIN c USING (customer_id)""")
    assert office > 0.6


# -- customers ------------------------------------------------------------------------------
def test_lifecycle_mix_is_present(data) -> None:
    summary, con = data
    stages = dict(con.execute(f"""
        WITH last AS (SELECT customer_id, max(occurred_at) AS last_at FROM e GROUP BY 1)
        SELECT CASE WHEN last_at IS NULL THEN 'prospect'
                    WHEN last_at >= TIMESTAMPTZ '{END}' - INTERVAL 29 DAY THEN 'active'
                    WHEN last_at >= TIMESTAMPTZ '{END}' - INTERVAL 90 DAY THEN 'lapsed'
                    ELSE 'churned' END, count(*)
        FROM c LEFT JOIN last USING (customer_id) GROUP BY 1""").fetchall())
    assert all(stages.get(stage, 0) >= 40 for stage in ("prospect", "active", "lapsed", "churned")), stages
    new = _scalar(con, f"SELECT count(*) FROM c WHERE signed_up_at >= TIMESTAMPTZ '{END}' - INTERVAL 29 DAY")
    assert new >= 40
    assert summary.behaviours["seasonal"] > 0 and summary.behaviours["heavy"] > 0
    # Seasonal users: some customers are active in December and silent from May to September.
    seasonal = _scalar(con, """SELECT count(*) FROM (SELECT customer_id FROM e GROUP BY 1
                               HAVING count(*) FILTER (month(occurred_at) = 12) >= 3
                                  AND count(*) FILTER (month(occurred_at) BETWEEN 5 AND 9) = 0)""")
    assert seasonal >= 5
    # Heavy users: the busiest tenth of customers hold most of the events.
    top_share = _scalar(con, """SELECT sum(n) FILTER (r <= 200) / sum(n) FROM
                                (SELECT count(*) AS n, row_number() OVER (ORDER BY count(*) DESC) AS r FROM e GROUP BY customer_id)""")
    assert top_share > 0.4


def test_sign_ups_span_two_years(data) -> None:
    summary, con = data
    first, last = con.execute("SELECT min(signed_up_at), max(signed_up_at) FROM c").fetchone()
    assert first.date() >= summary.first_day and (last.date() - first.date()).days > 650 and last.date() <= END


def test_addresses_include_roles_free_mail_invalid_and_big_domains(data) -> None:
    _, con = data
    emails = [r[0] for r in con.execute("SELECT email FROM c").fetchall()]
    domains = [e.rsplit("@", 1)[-1].lower() for e in emails if "@" in e]
    role = [e for e in emails if e.split("@")[0] in ROLE_PREFIXES]
    invalid = [e for e in emails if e.count("@") != 1 or " " in e or "." not in e.split("@")[-1] or ".." in e]
    assert len(role) >= 20 and len(invalid) >= 5
    assert {"gmail.com", "qq.com", "freemail.hu"} <= set(domains)
    assert "example.invalid" in domains
    company = [d for d in domains if d.endswith((".example", ".test"))]
    assert len(company) > 0.4 * len(emails)
    biggest = max(company.count(d) for d in set(company))
    assert biggest > 20
    # People's addresses are unique (shared role inboxes may repeat).
    people = [e.lower() for e in emails if e.split("@")[0] not in ROLE_PREFIXES]
    assert len(people) == len(set(people))


def test_locales_names_time_zones_and_currencies_match(data) -> None:
    _, con = data
    locales = dict(con.execute("SELECT locale, count(*) FROM c GROUP BY 1").fetchall())
    assert {"en", "zh-CN", "hu"} <= set(locales) and len(locales) >= 5
    pairs = set(con.execute("SELECT DISTINCT locale, timezone, country, currency FROM c").fetchall())
    assert {p[1:] for p in pairs if p[0] == "zh-CN"} == {("Asia/Shanghai", "CN", "CNY")}
    assert {p[1:3] for p in pairs if p[0] == "hu"} == {("Europe/Budapest", "HU")}
    assert {p[3] for p in pairs if p[0] == "hu"} == {"HUF", "EUR"}
    assert {"America/New_York", "Europe/London"} <= {p[1] for p in pairs if p[0] == "en"}
    chinese = [r[0] for r in con.execute("SELECT name FROM c WHERE locale = 'zh-CN' AND name IS NOT NULL").fetchall()]
    assert all(all("\u4e00" <= ch <= "\u9fff" for ch in name) for name in chinese)
    hungarian = {r[0].split(" ")[0] for r in con.execute("SELECT name FROM c WHERE locale = 'hu' AND name IS NOT NULL").fetchall()}
    assert {"Nagy", "Kovács", "Tóth"} & hungarian  # family name first
    plans = {r[0] for r in con.execute("SELECT DISTINCT plan FROM c").fetchall()}
    assert plans == {"free", "starter", "pro", "business"}
    rates = con.execute("SELECT count(hourly_rate), count(company), count(*) FROM c").fetchone()
    assert 0 < rates[0] < rates[2] and 0 < rates[1] < rates[2]


# -- the command line -----------------------------------------------------------------------
def test_cli_writes_into_the_landing_folder(tmp_path: Path) -> None:
    from pipelines.cli import main

    result = CliRunner().invoke(main, ["--home", str(tmp_path), "sample-data", "--customers", "200", "--seed", "1"])
    assert result.exit_code == 0, result.output
    landing = tmp_path / "landing"
    assert (landing / "customers.parquet").exists() and (landing / "events-00000.parquet").exists()
    assert "200 customers" in result.output and "10,000 events" in result.output
