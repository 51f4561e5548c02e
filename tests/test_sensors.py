"""The landing sensor asks for ingest once per new or changed file, never twice."""

import dagster as dg

from pipelines.resources import ValuemailResource
from pipelines.sensors import build_landing_sensor


def _evaluate(sensor, home, cursor):
    context = dg.build_sensor_context(cursor=cursor, resources={"valuemail": ValuemailResource(home=str(home))})
    return sensor.evaluate_tick(context)


def test_new_files_trigger_one_run_and_the_cursor_remembers_them(tmp_path):
    sensor = build_landing_sensor(30)
    landing = tmp_path / "landing"
    result = _evaluate(sensor, tmp_path, None)
    assert not result.run_requests  # no folder yet: skip, no error

    landing.mkdir()
    (landing / "events-1.csv").write_text("customer_id,occurred_at,event_type\nc1,2026-11-16T09:00:00Z,login\n")
    (landing / "notes.txt").write_text("not data")
    first = _evaluate(sensor, tmp_path, None)
    assert len(first.run_requests) == 1 and first.run_requests[0].tags["new_files"] == "1"

    again = _evaluate(sensor, tmp_path, first.cursor)
    assert not again.run_requests  # nothing new: same files are not requested twice

    (landing / "sub").mkdir()
    (landing / "sub" / "events-2.parquet").write_bytes(b"PAR1")
    second = _evaluate(sensor, tmp_path, again.cursor or first.cursor)
    assert len(second.run_requests) == 1 and second.run_requests[0].tags["new_files"] == "1"
    assert second.run_requests[0].run_key != first.run_requests[0].run_key


def test_new_objects_under_the_s3_prefix_trigger_ingest_once(tmp_path, moto_server, monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    s3 = boto3.client("s3", endpoint_url=moto_server)
    s3.create_bucket(Bucket="usage-export")
    config = tmp_path / "valuemail.toml"
    config.write_text('[paths]\nlanding_s3 = "s3://usage-export/events/"\n')
    monkeypatch.setenv("VALUEMAIL_CONFIG", str(config))
    sensor = build_landing_sensor(30)

    s3.put_object(Bucket="usage-export", Key="events/2026-11-16.csv", Body=b"customer_id,occurred_at,event_type\n")
    s3.put_object(Bucket="usage-export", Key="events/readme.txt", Body=b"not data")
    first = _evaluate(sensor, tmp_path, None)
    assert len(first.run_requests) == 1 and first.run_requests[0].tags["new_files"] == "1"
    assert "s3://usage-export/events/2026-11-16.csv" in first.cursor

    assert not _evaluate(sensor, tmp_path, first.cursor).run_requests
    s3.put_object(Bucket="usage-export", Key="events/2026-11-23.csv", Body=b"customer_id,occurred_at,event_type\n")
    assert len(_evaluate(sensor, tmp_path, first.cursor).run_requests) == 1
