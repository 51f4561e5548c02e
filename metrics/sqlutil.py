"""Small SQL helpers shared by the metrics modules (pure; no Dagster).

Exact rounding lives here: saved time is summed in integer units of 1/10,000 s ("s4") and
turned into minutes once, half up to 0.01 min; time priced at an hourly rate is computed
from the exact s4 total, half up to 0.01 of the currency.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime
from typing import Iterator, Sequence

import duckdb

# Monday-start weeks: 1970-01-01 was a Thursday, so shift by 3 days before dividing.
WEEK_US = 7 * 86_400_000_000
DAY_US = 86_400_000_000
MONDAY_SHIFT_US = 3 * 86_400_000_000
_MONDAY_EPOCH = date(1969, 12, 29)
UBIGINT_ALL_ONES = 18_446_744_073_709_551_615


def week_index(day: date) -> int:
    """Python twin of :func:`week_sql` for a calendar day."""
    return (day - _MONDAY_EPOCH).days // 7


def week_sql(ts: str) -> str:
    """Monday-start week number of a UTC ``TIMESTAMP`` expression."""
    return f"((epoch_us({ts}) + {MONDAY_SHIFT_US}) // {WEEK_US})"


def ts_lit(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    return f"TIMESTAMP '{value.isoformat()} 00:00:00'"


def date_lit(value: date) -> str:
    return f"DATE '{value.isoformat()}'"


def str_lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def minutes_sql(s4: str) -> str:
    """Exact s4 (1/10,000 s) total -> DECIMAL(18,2) minutes, half up (1 centiminute = 6,000 s4)."""
    return f"CAST(CAST((CAST({s4} AS HUGEINT) + 3000) // 6000 AS DECIMAL(18, 0)) * CAST(0.01 AS DECIMAL(3, 2)) AS DECIMAL(18, 2))"


def time_value_sql(s4: str, rate: str) -> str:
    """Money for s4 of saved time at ``rate`` per hour -> DECIMAL(18,2), half up.

    cents = s4 * rate * 100 / (3,600 * 10,000) = s4 * (rate * 10,000) / 3,600,000,000.
    """
    return (
        f"CAST(CAST((CAST({s4} AS HUGEINT) * CAST({rate} * 10000 AS HUGEINT) + 1800000000) // 3600000000 "
        f"AS DECIMAL(18, 0)) * CAST(0.01 AS DECIMAL(3, 2)) AS DECIMAL(18, 2))"
    )


def trailing_ones_sql(x: str) -> str:
    """Number of consecutive 1 bits of a UBIGINT starting at bit 0."""
    return f"(CASE WHEN {x} = {UBIGINT_ALL_ONES} THEN 64 ELSE bit_count(xor({x}, {x} + 1)) - 1 END)"


def with_longest_run(source: str, column: str, alias: str) -> str:
    """``source`` (a table or subquery) plus ``alias`` = the longest run of 1 bits in UBIGINT ``column``.

    z(L) = x & x>>1 & ... & x>>(L-1) is non-zero iff a run of >= L ones exists: build z(1..32) by
    doubling, then binary-search the largest L with z(L+k) = z(L) & (z(k) >> L).  (Right shifts:
    DuckDB raises on a UBIGINT left shift that drops bits.)  Written as
    layers of subqueries (integer arithmetic only; a bin()+split() version costs ~2.5 us a row,
    a single nested expression explodes in size).
    """
    q = f"(SELECT *, {column} AS _z1 FROM {source})"
    for k in (2, 4, 8, 16, 32):
        h = k // 2
        q = f"(SELECT *, _z{h} & (_z{h} >> {h}) AS _z{k} FROM {q})"
    q = f"(SELECT *, 0 AS _L, CAST({UBIGINT_ALL_ONES} AS UBIGINT) AS _zL FROM {q})"
    for k in (32, 16, 8, 4, 2, 1):
        cand = f"(_zL & (_z{k} >> CAST(_L AS UBIGINT)))"
        q = (f"(SELECT * REPLACE (CASE WHEN {cand} <> 0 THEN _L + {k} ELSE _L END AS _L, "
             f"CASE WHEN {cand} <> 0 THEN {cand} ELSE _zL END AS _zL) FROM {q})")
    return f"(SELECT * EXCLUDE (_z1, _z2, _z4, _z8, _z16, _z32, _zL) RENAME (_L AS {alias}) FROM {q})"


def mask_bit_sql(position: str, lo: int) -> str:
    """A UBIGINT with bit ``position - lo`` set when ``lo <= position < lo + 64``, else 0."""
    return (
        f"(CASE WHEN {position} >= {lo} AND {position} < {lo + 64} "
        f"THEN CAST(1 AS UBIGINT) << CAST({position} - {lo} AS UBIGINT) ELSE CAST(0 AS UBIGINT) END)"
    )


def ensure_table(con: duckdb.DuckDBPyConnection, name: str, columns: Sequence[tuple[str, str]], key: Sequence[str]) -> None:
    """CREATE TABLE IF NOT EXISTS, then bring an older version of the table up to date.

    ``key`` is the table's *logical* primary key.  It is deliberately not declared as a
    PRIMARY KEY: DuckDB keeps an ART index for it, which costs memory for every period ever
    written and makes delete-then-insert of a partition ~3x slower.  Uniqueness holds by
    construction (one GROUP BY customer per partition, delete-then-insert) and is verified by
    an asset check.  A table created by an earlier version *with* a PRIMARY KEY is rebuilt
    without it; a column added since is added (NULL in old rows until that partition is
    re-materialised); a NOT NULL the current definition no longer has is dropped.
    """
    body = ",\n    ".join(f"{ident(c)} {t}" for c, t in columns)
    con.execute(f"CREATE TABLE IF NOT EXISTS {ident(name)} (\n    {body}\n)")
    has_pk = con.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE table_name = ? AND schema_name = 'main' "
        "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
        [name],
    ).fetchone()[0]
    if has_pk:
        tmp = ident(name + "__rebuild")
        con.execute(f"CREATE OR REPLACE TABLE {tmp} AS SELECT * FROM {ident(name)}")
        con.execute(f"DROP TABLE {ident(name)}")
        con.execute(f"ALTER TABLE {tmp} RENAME TO {ident(name)}")
    existing = {
        row[0]: row[1]
        for row in con.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'",
            [name],
        ).fetchall()
    }
    for column, type_sql in columns:
        bare = type_sql.replace(" NOT NULL", "")
        if column not in existing:
            con.execute(f"ALTER TABLE {ident(name)} ADD COLUMN {ident(column)} {bare}")
        elif existing[column] == "NO" and "NOT NULL" not in type_sql:
            con.execute(f"ALTER TABLE {ident(name)} ALTER COLUMN {ident(column)} DROP NOT NULL")


@contextmanager
def duckdb_settings(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> Iterator[None]:
    """Bulk-friendly settings for the duration of a computation, restored afterwards.

    ``preserve_insertion_order = false`` lets DuckDB stream large aggregates without keeping
    row order (every query here orders explicitly where order matters).
    """
    saved = {}
    wanted = {"preserve_insertion_order": "false"}
    if memory_limit:
        wanted["memory_limit"] = memory_limit
    for key, value in wanted.items():
        saved[key] = con.execute(f"SELECT current_setting('{key}')").fetchone()[0]
        con.execute(f"SET {key} = {str_lit(value)}")
    try:
        yield
    finally:
        for key, value in saved.items():
            value = str(value).lower() if isinstance(value, bool) else str(value)
            con.execute(f"SET {key} = {str_lit(value)}")


def drop_temp(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    for name in names:
        con.execute(f"DROP TABLE IF EXISTS temp.{ident(name)}")
