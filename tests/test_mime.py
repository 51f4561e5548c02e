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
