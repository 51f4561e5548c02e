"""Share pages: one static page per customer and period at an unguessable URL.

A page lives at ``<share base URL>/<token>/`` (``index.html`` + ``card.png``, the 1200×630 share
card).  The token is 128 random bits (``secrets.token_urlsafe(16)``), stored in ``share_pages``
so a re-run keeps the same URL (links in e-mails already sent keep working) and a page can be
withdrawn by deleting its row and files.  Random rather than an HMAC of the customer id: nothing
about the customer can be derived from it, and no secret has to stay stable forever.

Where pages go (configuration ``[share]``, all optional)::

    [share]
    base_url = "https://valuemail.example/s"   # default: <sender.public_base_url>/s
    bucket = ""                                # S3 bucket: upload there instead of <home>/share
    prefix = "share/"                          # key prefix in the bucket
    endpoint_url = ""                          # S3-compatible endpoint (tests: moto)

Pages carry ``noindex`` and a strict Content-Security-Policy, and show only the first name
and the customer's own numbers (see :mod:`report_templates.share_page`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Protocol

import duckdb

from valuemail.config import Config, ConfigError
from valuemail.periods import Period

DDL = """
CREATE TABLE IF NOT EXISTS share_pages (
    campaign    VARCHAR   NOT NULL,
    period      DATE      NOT NULL,
    customer_id VARCHAR   NOT NULL,
    token       VARCHAR   NOT NULL,      -- 128 random bits, URL-safe base64
    url         VARCHAR   NOT NULL,      -- public URL of the page
    location    VARCHAR,                 -- file path or s3://bucket/key of index.html (NULL until published)
    locale      VARCHAR,
    created_at  TIMESTAMP NOT NULL,
    published_at TIMESTAMP,
    PRIMARY KEY (campaign, period, customer_id)
)
"""


class Publisher(Protocol):
    """Where share pages (and hosted e-mail images) are put."""

    def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store ``data`` under ``key``; return where it went (path or ``s3://…``)."""


@dataclass(frozen=True)
class ShareSettings:
    base_url: str  # pages are <base_url>/<token>/
    bucket: str = ""
    prefix: str = "share/"
    endpoint_url: str = ""
    region: str = ""

    @classmethod
    def from_config(cls, config: Config) -> "ShareSettings":
        section = config.section("share")
        public = str(config.section("sender").get("public_base_url", "")).rstrip("/")
        base = str(section.get("base_url") or f"{public}/s").rstrip("/")
        if not base.startswith("https://"):
            raise ConfigError(f"share.base_url must be an https URL, got {base!r}")
        prefix = str(section.get("prefix", "share/"))
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(base_url=base, bucket=str(section.get("bucket", "")), prefix=prefix,
                   endpoint_url=str(section.get("endpoint_url", "")), region=str(section.get("region", "")))

    def url(self, token: str) -> str:
        return f"{self.base_url}/{token}/"


class LocalPublisher:
    """Writes under a folder (``<home>/share``): serve it at the share base URL."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def put(self, key: str, data: bytes, content_type: str) -> str:
        path = self.root / key
        if ".." in Path(key).parts:
            raise ValueError(f"bad key {key!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a reader never sees half a page
        return str(path)


class S3Publisher:
    """Uploads to an S3 bucket (public read is the bucket policy's business, not ours)."""

    def __init__(self, bucket: str, prefix: str = "", client=None, endpoint_url: str | None = None, region: str | None = None):
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def put(self, key: str, data: bytes, content_type: str) -> str:
        full = self.prefix + key
        cache = "public, max-age=300" if content_type.startswith("text/html") else "public, max-age=31536000, immutable"
        self.client.put_object(Bucket=self.bucket, Key=full, Body=data, ContentType=content_type, CacheControl=cache)
        return f"s3://{self.bucket}/{full}"


def publisher_for(config: Config, settings: ShareSettings | None = None) -> Publisher:
    settings = settings or ShareSettings.from_config(config)
    if settings.bucket:
        return S3Publisher(settings.bucket, settings.prefix, endpoint_url=settings.endpoint_url, region=settings.region)
    return LocalPublisher(config.share_dir)


def new_token() -> str:
    """128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


def ensure_tokens(con: duckdb.DuckDBPyConnection, period: Period, customer_ids: Iterable[str],
                  settings: ShareSettings) -> dict[str, str]:
    """The share token of every customer (existing ones kept, new ones created and stored)."""
    con.execute(DDL)
    ids = list(dict.fromkeys(customer_ids))
    existing = dict(con.execute(
        "SELECT customer_id, token FROM share_pages WHERE campaign = ? AND period = ?", [period.campaign, period.start]
    ).fetchall())
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    new_rows = []
    for cid in ids:
        if cid not in existing:
            token = existing[cid] = new_token()
            new_rows.append((period.campaign, period.start, cid, token, settings.url(token), None, None, now, None))
    if new_rows:
        con.executemany("INSERT INTO share_pages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", new_rows)
    return {cid: existing[cid] for cid in ids}


def record_published(con: duckdb.DuckDBPyConnection, period: Period, rows: list[tuple[str, str, str]]) -> None:
    """Mark pages published: ``rows`` = (customer_id, location, locale)."""
    if not rows:
        return
    con.execute("CREATE OR REPLACE TEMP TABLE _share_pub (customer_id VARCHAR, location VARCHAR, locale VARCHAR)")
    con.executemany("INSERT INTO _share_pub VALUES (?, ?, ?)", rows)
    con.execute(
        """
        UPDATE share_pages SET location = p.location, locale = p.locale, published_at = now()
        FROM _share_pub p
        WHERE share_pages.customer_id = p.customer_id AND share_pages.campaign = ? AND share_pages.period = ?
        """,
        [period.campaign, period.start],
    )
    con.execute("DROP TABLE _share_pub")


def publish_page(publisher: Publisher, token: str, html: str, card_png: bytes | None) -> str:
    """Put ``index.html`` (and ``card.png``) under the token; returns where the page went."""
    if card_png:
        publisher.put(f"{token}/card.png", card_png, "image/png")
    return publisher.put(f"{token}/index.html", html.encode("utf-8"), "text/html; charset=utf-8")
