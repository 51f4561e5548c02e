"""Ingest from ``s3://bucket/prefix`` against a real (moto) S3 server, not mocks."""

from __future__ import annotations

import io
import uuid
from datetime import datetime

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from valuemail import s3
from valuemail.ingest import IngestError, ingest_paths

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 12, 0, 0)
EVENTS_CSV = (b"event_id,customer_id,occurred_at,event_type,quantity\n"
              b"e1,c1,2026-11-01T09:00:00Z,workflow_run,2\n"
              b"e2,c1,2026-11-01T10:00:00Z,workflow_run,-1\n")


def _customers_parquet() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"customer_id": ["c1"], "email": ["ann@acme.example"], "name": ["Ann"], "locale": ["en"],
                             "timezone": ["UTC"], "plan": ["pro"], "country": ["HU"],
                             "signed_up_at": [datetime(2025, 1, 1)]}), buf)
    return buf.getvalue()


@pytest.fixture
def bucket(moto_server, monkeypatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    name = f"landing-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=moto_server)
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="landing/2026/11/events-00000.csv", Body=EVENTS_CSV)
    client.put_object(Bucket=name, Key="landing/customers.parquet", Body=_customers_parquet())
    client.put_object(Bucket=name, Key="landing/README.txt", Body=b"not data")
    client.put_object(Bucket=name, Key="landing/empty-folder/", Body=b"")
    client.put_object(Bucket=name, Key="landing2/other.csv", Body=b"not,in,the,prefix\n")
    return name


def test_prefix_is_listed_downloaded_and_ingested_with_s3_names(bucket, config, warehouse):
    messages: list[str] = []
    report = ingest_paths(warehouse, [f"s3://{bucket}/landing"], config, progress=messages.append, now=NOW)
    assert report.files_loaded == 2 and report.events_loaded == 1 and report.customers_loaded == 1
    assert report.quarantined == 1 and report.ignored == (f"s3://{bucket}/landing/README.txt",)
    sources = {r[0] for r in warehouse.execute("SELECT source_file FROM ingested_files").fetchall()}
    assert sources == {f"s3://{bucket}/landing/2026/11/events-00000.csv", f"s3://{bucket}/landing/customers.parquet"}
    q = warehouse.execute("SELECT source_file, row_number, field FROM quarantine").fetchall()
    assert q == [(f"s3://{bucket}/landing/2026/11/events-00000.csv", 2, "quantity")]
    assert any(f"s3://{bucket}/landing/customers.parquet: customers" in m for m in messages)
    # Same objects again: skipped by their bytes, nothing downloaded twice into the warehouse.
    again = ingest_paths(warehouse, [f"s3://{bucket}/landing/"], config, now=NOW)
    assert again.files_skipped == 2 and again.events_loaded == 0


def test_local_copy_of_an_s3_file_is_recognised_by_its_bytes(bucket, config, warehouse, tmp_path):
    ingest_paths(warehouse, [f"s3://{bucket}/landing/2026/11/events-00000.csv"], config, now=NOW)
    local = tmp_path / "events.csv"
    local.write_bytes(EVENTS_CSV)
    report = ingest_paths(warehouse, [str(local)], config, now=NOW)
    assert report.files_skipped == 1
    assert f"s3://{bucket}/landing/2026/11/events-00000.csv" in report.files[0].note


def test_missing_bucket_is_an_ingest_error_naming_the_uri(moto_server, monkeypatch, config, warehouse):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    with pytest.raises(IngestError, match=r"s3://no-such-bucket-[0-9a-f]+/x: cannot list objects \(NoSuchBucket"):
        ingest_paths(warehouse, [f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/x"], config, now=NOW)


def test_corrupt_object_names_the_s3_uri_and_commits_nothing_from_it(bucket, config, warehouse, moto_server):
    boto3.client("s3", endpoint_url=moto_server).put_object(Bucket=bucket, Key="landing/zz-broken.parquet",
                                                             Body=b"PAR1 this is not parquet")
    with pytest.raises(IngestError, match=f"s3://{bucket}/landing/zz-broken.parquet"):
        ingest_paths(warehouse, [f"s3://{bucket}/landing"], config, now=NOW)
    # The two good objects before it (sorted by key) are committed.
    assert warehouse.execute("SELECT count(*) FROM ingested_files").fetchone()[0] == 2


def test_empty_prefix_is_not_an_error(bucket, config, warehouse):
    report = ingest_paths(warehouse, [f"s3://{bucket}/nothing-here/"], config, now=NOW)
    assert report.files == () and report.files_loaded == 0


def test_s3_helper_prefix_semantics(bucket, moto_server):
    client = s3.make_client()
    assert client.meta.endpoint_url == moto_server                        # AWS_ENDPOINT_URL honoured
    keys = [o.key for o in s3.list_objects(f"s3://{bucket}/landing", client)]
    assert keys == ["landing/2026/11/events-00000.csv", "landing/README.txt", "landing/customers.parquet"]
    assert [o.key for o in s3.list_objects(f"s3://{bucket}/landing/customers.parquet")] == ["landing/customers.parquet"]
    assert len(s3.list_objects(f"s3://{bucket}")) == 4                   # the whole bucket, folder marker left out


def test_s3_helper_downloads_lazily(bucket, tmp_path):
    seen = []
    for path, obj in s3.iter_downloads(f"s3://{bucket}/landing", tmp_path, suffixes=frozenset({".csv", ".parquet"})):
        seen.append((obj.name, path.read_bytes()[:4]))
        path.unlink()
    assert seen == [("events-00000.csv", b"even"), ("customers.parquet", b"PAR1")]


@pytest.mark.parametrize("uri,expected", [
    ("s3://b/p/q", ("b", "p/q")), ("s3://b", ("b", "")), ("S3://b/", ("b", "")),
])
def test_parse_s3_uri(uri, expected):
    assert s3.parse_s3_uri(uri) == expected


def test_parse_s3_uri_rejects_malformed():
    with pytest.raises(s3.S3Error, match="no bucket"):
        s3.parse_s3_uri("s3:///key")
