import email
from email import policy

import pytest

from delivery.mime import HeaderInjectionError, InlineImage, OutgoingEmail, build_message

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


def _mail(**kw):
    base = dict(from_name="valuemail", from_address="hello@valuemail.example", to_name="Anna Kovács",
                to_address="anna@example.com", subject="Your week: 12 tasks", text="Plain text",
                html='<p>Hi <img src="cid:chart1"></p>', images=(InlineImage("chart1", PNG),),
                headers={"List-Id": "<value.valuemail.example>"})
    base.update(kw)
    return OutgoingEmail(**base)


def test_structure_is_alternative_text_then_related_html_with_images():
    raw = build_message(_mail()).as_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    text, related = parsed.get_payload()
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html, image = related.get_payload()
    assert html.get_content_type() == "text/html"
    assert image["Content-ID"] == "<chart1>" and image.get_content() == PNG
    for header in ("Message-ID", "Date", "List-Id", "From", "To", "Subject"):
        assert parsed[header]
    assert parsed["To"] == "Anna Kovács <anna@example.com>"


@pytest.mark.parametrize("field", ["subject", "to_name", "from_name"])
@pytest.mark.parametrize("evil", ["Hi\r\nBcc: victim@example.com", "Hi\nX: y", "Hi\x00there"])
def test_control_characters_in_headers_are_rejected(field, evil):
    with pytest.raises(HeaderInjectionError, match="control character"):
        build_message(_mail(**{field: evil}))


def test_extra_header_values_are_checked_too():
    with pytest.raises(HeaderInjectionError, match="List-Unsubscribe"):
        build_message(_mail(headers={"List-Unsubscribe": "<https://x>\r\nBcc: a@b.c"}))


# -- the fast builder (build_raw) gives the same message as the reference (build_message) ------------
from datetime import datetime, timezone  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from delivery.mime import build_raw  # noqa: E402

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def _parse(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def _same(a, b):
    for header in ("From", "To", "Subject", "Message-ID", "Date", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post"):
        assert str(a[header]) == str(b[header]), header
    leaves_a = [p for p in a.walk() if not p.is_multipart()]
    leaves_b = [p for p in b.walk() if not p.is_multipart()]
    assert [p.get_content_type() for p in a.walk()] == [p.get_content_type() for p in b.walk()]
    for x, y in zip(leaves_a, leaves_b):
        assert x.get_content() == y.get_content()
        assert x["Content-ID"] == y["Content-ID"]


def _list_headers():
    return {"List-Id": "valuemail weekly <weekly.value-emails.valuemail.example>",
            "List-Unsubscribe": "<https://valuemail.example/u/abc.def>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


@pytest.mark.parametrize("images", [(), (InlineImage("chart1", PNG), InlineImage("chart2@vm", PNG * 50, "tasks.png"))])
@pytest.mark.parametrize("text,html", [
    ("Plain text\n", "<p>Hi</p>"),
    ("Zoltán ✨\n.starts with a dot\nFrom the start\n" + "x" * 300, "<p>" + "é" * 2000 + "</p>\n"),
    ("你好，这是你的一周。\n" * 30, "<p>你好世界</p>" * 500),   # mostly non-ASCII: base64
])
def test_fast_builder_matches_the_reference(images, text, html):
    mail = _mail(text=text, html=html, images=images, headers=_list_headers(), message_id="<vm.x@valuemail.example>",
                 subject="Your week: 12 tasks — 3 hours saved ✨ and a long tail of words to fold")
    raw = build_raw(mail, now=NOW)
    assert b"\n" not in raw.replace(b"\r\n", b"")                 # CRLF only
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert all(b < 128 for b in raw)                                # 7-bit clean: QP / base64 / RFC 2047
    _same(_parse(raw), _parse(build_message(mail, now=NOW).as_bytes()))


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=300), html=st.text(max_size=600),
       subject=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=120),
       name=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40))
def test_fast_builder_roundtrips_any_text(text, html, subject, name):
    mail = _mail(text=text, html=html, subject=subject, to_name=name, images=())
    parsed = _parse(build_raw(mail, now=NOW))
    assert str(parsed["Subject"]) == subject.strip() or " ".join(str(parsed["Subject"]).split()) == " ".join(subject.split())
    plain, htmlpart = parsed.get_body(("plain",)), parsed.get_body(("html",))
    norm = lambda s: s.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")  # noqa: E731
    assert norm(plain.get_content()) == norm(text) and norm(htmlpart.get_content()) == norm(html)


@pytest.mark.parametrize("field", ["subject", "to_name", "from_name", "to_address"])
def test_fast_builder_rejects_control_characters_too(field):
    with pytest.raises(HeaderInjectionError, match="control character"):
        build_raw(_mail(**{field: "Hi\r\nBcc: victim@example.com"}))


def test_fast_builder_rejects_bad_header_names_and_values():
    with pytest.raises(HeaderInjectionError, match="List-Unsubscribe"):
        build_raw(_mail(headers={"List-Unsubscribe": "<https://x>\nBcc: a@b.c"}))
    with pytest.raises(HeaderInjectionError, match="header name"):
        build_raw(_mail(headers={"X-Evil\r\nBcc": "a@b.c"}))
    with pytest.raises(HeaderInjectionError, match="addr-spec"):
        build_raw(_mail(to_address="a@b.c, victim@example.com"))


def test_the_message_the_send_loop_builds_has_every_required_header(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_delivery_support import PERIOD, make_home

    from delivery.messages import MessageSource

    monkeypatch.setenv("VALUEMAIL_SECRET", "test-only-secret-not-for-production-0123456789")
    home = make_home(tmp_path, n=1)
    png = tmp_path / "weekly_activity.png"
    png.write_bytes(PNG)
    with home.con() as con:  # the emails stage's email_images table: inline charts as multipart/related
        con.execute("CREATE TABLE email_images (campaign VARCHAR, period DATE, customer_id VARCHAR, cid VARCHAR, "
                    "path VARCHAR, alt VARCHAR, content_type VARCHAR, kind VARCHAR)")
        con.execute("INSERT INTO email_images VALUES ('weekly', ?, 'c0000', 'weekly_activity.c0000@valuemail', ?, 'x', "
                    "'image/png', 'weekly_activity')", [PERIOD.start, str(png)])
        source = MessageSource(con, home.config, PERIOD)
        raw = source.build(source.load(["c0000"])["c0000"], "c0000", "u0@acme.example", "<vm.test@valuemail.example>")
    msg = _parse(raw)
    assert msg["Message-ID"] == "<vm.test@valuemail.example>" and msg["Date"]
    assert msg["List-Unsubscribe"].startswith("<https://valuemail.example/u/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "<weekly.value-emails.valuemail.example>"
    assert msg["From"] == "valuemail <hello@valuemail.example>" and msg["To"] == "Customer c0000 <u0@acme.example>"
    assert b"\n" not in raw.replace(b"\r\n", b"")
    text, related = msg.get_payload()
    html, image = related.get_payload()
    assert (msg.get_content_type(), text.get_content_type(), related.get_content_type(), html.get_content_type()) == (
        "multipart/alternative", "text/plain", "multipart/related", "text/html")
    assert image["Content-ID"] == "<weekly_activity.c0000@valuemail>" and image.get_content() == PNG
    assert "Hi c0000" in html.get_content() and "42 minutes" in text.get_content()
