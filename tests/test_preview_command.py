"""``valuemail preview``: the .eml, HTML, text and screenshots of any customer's e-mail."""

from __future__ import annotations

import email
from email import policy

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from report_templates.screenshot import chromium_path
from tests.test_email_stage import WEEK, make_warehouse
from valuemail.warehouse import connect


@pytest.fixture
def home(config):
    con = connect(config.warehouse_path)
    try:
        make_warehouse(con)
    finally:
        con.close()
    return config.home


def _run(home, *args):
    return CliRunner().invoke(main, ["--home", str(home), "preview", *args], catch_exceptions=False)


def test_preview_writes_a_complete_message(home, tmp_path):
    out = tmp_path / "out"
    result = _run(home, "c-agnes", "--campaign", "weekly", "--period", WEEK.key, "--out", str(out), "--no-screenshot")
    assert result.exit_code == 0, result.output
    assert "decision   send" in result.output and "language   hu (asked for hu-HU: region)" in result.output
    msg = email.message_from_bytes((out / "c-agnes.eml").read_bytes(), policy=policy.default)
    types = [p.get_content_type() for p in msg.walk()]
    assert types[:4] == ["multipart/alternative", "text/plain", "multipart/related", "text/html"]
    assert types.count("image/png") == 2  # the week by day and "you are here"
    html = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert html == (out / "c-agnes.html").read_text(encoding="utf-8")
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == (out / "c-agnes.txt").read_text(encoding="utf-8")
    assert msg["To"].addresses[0].addr_spec == "c-agnes@example.com"
    assert msg["List-Unsubscribe"].startswith("<https://") and msg["List-Unsubscribe-Post"]
    for part in msg.walk():
        if part.get_content_type() == "image/png":
            assert f'src="cid:{part["Content-ID"][1:-1]}"' in html


def test_preview_of_a_customer_who_gets_no_email(home, tmp_path):
    result = _run(home, "c-skip", "--period", WEEK.key, "--out", str(tmp_path), "--no-screenshot")
    assert result.exit_code == 0
    assert "decision   unsubscribed  (previewed anyway)" in result.output
    assert (tmp_path / "c-skip.eml").exists()


def test_preview_of_a_period_without_metrics(home, tmp_path):
    result = _run(home, "c-anna", "--campaign", "monthly", "--period", "2026-11", "--out", str(tmp_path), "--no-screenshot")
    assert result.exit_code == 0, result.output
    assert "no customer_metrics row" in result.output and "not decided yet" in result.output
    assert "run `valuemail run --campaign monthly --period 2026-11-01` first" in result.output


def test_preview_errors_are_clear(home, tmp_path):
    assert "no customer 'nobody'" in _run(home, "nobody", "--period", WEEK.key, "--out", str(tmp_path)).output
    bad = CliRunner().invoke(main, ["--home", str(home), "preview", "c-anna", "--period", "2026-11-17"])
    assert bad.exit_code != 0 and "not the first day" in bad.output
    empty = CliRunner().invoke(main, ["--home", str(tmp_path / "nothing"), "preview", "c-anna"])
    assert empty.exit_code != 0 and "run `valuemail run` first" in empty.output


@pytest.mark.integration
@pytest.mark.skipif(chromium_path() is None, reason="Chromium missing (scripts/bootstrap --browser installs it)")
def test_preview_screenshots(home, tmp_path):
    result = _run(home, "c-wang", "--period", WEEK.key, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    for name in ("c-wang.png", "c-wang.mobile.png"):
        png = (tmp_path / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 20_000
    from PIL import Image

    assert Image.open(tmp_path / "c-wang.png").size[0] == 600
    assert Image.open(tmp_path / "c-wang.mobile.png").size[0] == 375


def test_preview_never_writes_into_a_folder_the_pipeline_owns(home, tmp_path):
    from delivery.send import journal_folder
    from valuemail.config import load_config

    config = load_config(home=home)
    sent = config.outbox_dir / "weekly" / WEEK.key / "c-anna.eml"
    sent.parent.mkdir(parents=True)
    sent.write_bytes(b"the message that was delivered")
    for folder in (sent.parent, config.outbox_dir, journal_folder(config), home / "emails" / "weekly",
                   config.charts_dir, config.share_dir, config.landing_dir):
        result = CliRunner().invoke(main, ["--home", str(home), "preview", "c-anna", "--period", WEEK.key,
                                           "--out", str(folder), "--no-screenshot"])
        assert result.exit_code == 2 and "previews go to a folder of their own" in result.output, result.output
        assert not (folder / "c-anna.html").exists()
    assert sent.read_bytes() == b"the message that was delivered"


def test_an_unwritable_out_folder_is_a_one_line_error(home):
    result = CliRunner().invoke(main, ["--home", str(home), "preview", "c-anna", "--period", WEEK.key,
                                       "--out", "/proc/self", "--no-screenshot"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.startswith("Error: cannot write /proc/self/c-anna.eml (--out): ")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_dotted_ids_preview_into_files_of_their_own(config, tmp_path):
    from datetime import datetime

    con = connect(config.warehouse_path)
    try:
        make_warehouse(con, customers=[
            (cid, name, "en", "pro", datetime(2024, 1, 1), True, tasks, "active")
            for cid, name, tasks in (("acme.alice", "Alice Smith", 40), ("acme.bob", "Bob Jones", 50))])
    finally:
        con.close()
    out = tmp_path / "out"
    for cid in ("acme.alice", "acme.bob"):
        assert _run(config.home, cid, "--period", WEEK.key, "--out", str(out), "--no-screenshot").exit_code == 0
    emls = {p: email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in out.glob("*.eml")}
    assert sorted(m["To"].addresses[0].addr_spec for m in emls.values()) == ["acme.alice@example.com", "acme.bob@example.com"]
    assert len(list(out.iterdir())) == 6
