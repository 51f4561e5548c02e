"""What an analyst wants to see about a period's metrics: distributions and a small chart.

Pure code (no Dagster): the assets turn these into metadata.  The chart is a tiny matplotlib
(Agg) histogram over the same fixed 1-2-5 buckets the peer histograms use, returned as PNG
bytes; ``markdown_image`` embeds it as a base64 data URL for the Dagster UI.
"""

from __future__ import annotations

import base64
import io

import duckdb

from metrics.peers import EDGES
from valuemail.periods import Period


def distribution(con: duckdb.DuckDBPyConnection, period: Period) -> list[dict]:
    """Quantiles of the main figures over the period's customers (one dict per metric)."""
    out = []
    for metric in ("tasks", "minutes_saved", "active_days", "events", "streak_weeks"):
        row = con.execute(
            f"""
            SELECT count({metric}), min({metric}),
                   quantile_disc({metric}, 0.25), quantile_disc({metric}, 0.5), quantile_disc({metric}, 0.75),
                   quantile_disc({metric}, 0.9), quantile_disc({metric}, 0.99), max({metric}), avg({metric})
            FROM customer_metrics WHERE campaign = ? AND period = ?
            """,
            [period.campaign, period.start],
        ).fetchone()
        keys = ("n", "min", "p25", "p50", "p75", "p90", "p99", "max", "mean")
        out.append({"metric": metric, **{k: (None if v is None else (round(float(v), 2) if k == "mean" else v))
                                         for k, v in zip(keys, row)}})
    return out


def distribution_markdown(rows: list[dict]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join("" if row[k] is None else str(row[k]) for k in keys) + " |")
    return "\n".join(lines)


def histogram_counts(con: duckdb.DuckDBPyConnection, period: Period, metric: str = "tasks") -> tuple[list[str], list[int]]:
    """Customers per 1-2-5 bucket of ``metric`` (labels like ``10–19``), all cohorts together."""
    rows = dict(con.execute(
        f"""
        SELECT b, count(*) FROM (
            SELECT len(list_filter(?::DOUBLE[], lambda x: x <= CAST({metric} AS DOUBLE))) - 1 AS b
            FROM customer_metrics WHERE campaign = ? AND period = ?
        ) GROUP BY b
        """,
        [EDGES, period.campaign, period.start],
    ).fetchall())
    if not rows:
        return [], []
    top = max(rows)
    labels = []
    for i in range(top + 1):
        lo, hi = EDGES[i], EDGES[i + 1]
        labels.append(f"{lo:g}–{hi:g}")
    return labels, [int(rows.get(i, 0)) for i in range(top + 1)]


def histogram_png(labels: list[str], counts: list[int], title: str) -> bytes:
    """A small bar chart as PNG bytes (matplotlib Agg; ~10-20 KB)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 2.4), dpi=80)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(range(len(counts)), counts, color="#3b6ea5")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("customers", fontsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
