"""A small boto3 helper: list and download the objects under ``s3://bucket/prefix``.

Pure code (no Dagster).  The endpoint comes from ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` when set (moto's server in tests, MinIO or LocalStack locally);
credentials and region come from the usual AWS chain.  Every failure is raised as
:class:`S3Error` naming the URI, never as a raw botocore exception.

Prefix semantics follow ``aws s3 cp --recursive``: ``s3://bucket/landing`` means the
object ``landing`` itself (if it exists) plus everything under ``landing/`` — not
``landing2/…``.  ``s3://bucket`` or ``s3://bucket/`` means the whole bucket.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

S3_SCHEME = "s3://"


class S3Error(RuntimeError):
    """Listing or downloading from S3 failed (bad URI, missing bucket, no credentials, network)."""


@dataclass(frozen=True)
class S3Object:
    """One object found under a prefix."""

    bucket: str
    key: str
    size: int
    etag: str = ""

    @property
    def uri(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        """The last path component of the key (``events-00000.parquet``)."""
        return self.key.rsplit("/", 1)[-1]


def is_s3_uri(path: str) -> bool:
    return str(path).lower().startswith(S3_SCHEME)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix")``; raises S3Error when malformed."""
    if not is_s3_uri(uri):
        raise S3Error(f"{uri}: not an s3:// URI")
    rest = uri[len(S3_SCHEME):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise S3Error(f"{uri}: no bucket name (expected s3://bucket/prefix)")
    return bucket, prefix


def endpoint_url() -> str | None:
    """The S3 endpoint override from the environment, if any."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def make_client(endpoint: str | None = None) -> Any:
    """A boto3 S3 client, honouring ``AWS_ENDPOINT_URL(_S3)`` unless ``endpoint`` is given."""
    import boto3  # imported lazily: plain local ingest never pays for boto3's import time

    return boto3.client("s3", endpoint_url=endpoint or endpoint_url())


def _describe(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code', 'error')}: {error.get('Message', '') or exc}"
    return f"{type(exc).__name__}: {exc}"


def list_objects(uri: str, client: Any | None = None) -> list[S3Object]:
    """Every object under the prefix, sorted by key (``…/`` folder markers left out)."""
    bucket, prefix = parse_s3_uri(uri)
    client = client or make_client()
    found: dict[str, S3Object] = {}
    prefixes = [prefix] if not prefix or prefix.endswith("/") else [prefix, prefix + "/"]
    try:
        paginator = client.get_paginator("list_objects_v2")
        for wanted in prefixes:
            exact = wanted == prefix and not prefix.endswith("/") and bool(prefix)
            for page in paginator.paginate(Bucket=bucket, Prefix=wanted):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if key.endswith("/") or (exact and key != prefix):
                        continue
                    found[key] = S3Object(bucket, key, int(item.get("Size", 0)), str(item.get("ETag", "")).strip('"'))
    except Exception as exc:  # botocore raises many unrelated classes; all mean "could not list"
        raise S3Error(f"{uri}: cannot list objects ({_describe(exc)})") from exc
    return [found[key] for key in sorted(found)]


def download(obj: S3Object, dest: Path, client: Any | None = None) -> Path:
    """Download one object to ``dest`` (a file path; parent folders are created)."""
    client = client or make_client()
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        client.download_file(obj.bucket, obj.key, str(dest))
    except Exception as exc:
        raise S3Error(f"{obj.uri}: cannot download ({_describe(exc)})") from exc
    return dest


def iter_downloads(uri: str, dest_dir: Path, client: Any | None = None,
                   suffixes: frozenset[str] | None = None) -> Iterator[tuple[Path, S3Object]]:
    """Download the objects under ``uri`` one at a time, yielding ``(local path, object)``.

    Lazy on purpose: the caller can ingest and delete each file before the next one is
    fetched, so a large prefix never needs its full size on local disk.  ``suffixes``
    (lower-case, with the dot) keeps only matching keys.
    """
    client = client or make_client()
    objects = list_objects(uri, client)
    for index, obj in enumerate(objects):
        if suffixes is not None and Path(obj.name).suffix.lower() not in suffixes:
            continue
        # A numbered flat name: keys may repeat a base name in different folders, and a
        # key can never escape dest_dir through "..".
        yield download(obj, dest_dir / f"{index:06d}-{obj.name}", client), obj
