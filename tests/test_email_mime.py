"""The fast MIME skeleton: messages parse back into text + HTML + images, headers are safe."""

from __future__ import annotations

import email
import re
from email import policy

import pytest

from report_templates import samples
from report_templates.mime_skeleton import HeaderInjectionError, InlinePart, MimeSkeleton, b64, encode_words
from report_templates.render import EmailRenderer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@pytest.fixture(scope="module")
def rendered():
    r = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS)
    return {loc: r.render(samples.fixture("active", "weekly", loc)) for loc in ("en", "zh-CN", "hu")}


@pytest.fixture
def skeleton() -> MimeSkeleton:
    return MimeSkeleton(from_name="valuemail", from_address="hello@valuemail.example",
                        reply_to="dora@valuemail.example", list_id="value-emails.valuemail.example")


def _message(skeleton, e, **kw):
    args = dict(to_name="Kovács Anna", to_address="anna@example.com", subject=e.subject, text=e.text, html=e.html,
                images=[InlinePart(img.cid, PNG + img.cid.encode(), f"{img.kind}.png") for img in e.images],
                list_unsubscribe="https://valuemail.example/u/tok")
    args.update(kw)
    return skeleton.render(**args)


@pytest.mark.parametrize("locale", ["en", "zh-CN", "hu"])
def test_message_parses_back_into_text_html_and_images(skeleton, rendered, locale):
    e = rendered[locale]
    raw = _message(skeleton, e)
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    assert max(len(line) for line in raw.split(b"\r\n")) <= 76
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    text_part, related = msg.get_payload()
    assert text_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    # text bodies travel in canonical CRLF form (RFC 2045); a reader sees the same lines
    assert text_part.get_content().replace("\r\n", "\n") == e.text
    assert html_part.get_content().replace("\r\n", "\n") == e.html
    assert [i["Content-ID"] for i in images] == [f"<{img.cid}>" for img in e.images]
    for part, img in zip(images, e.images):
        assert part.get_content_type() == "image/png"
        assert part.get_content() == PNG + img.cid.encode()
        assert f'src="cid:{img.cid}"' in e.html
        assert part.get_content_disposition() == "inline"
    assert msg["Subject"] == e.subject
    assert msg["To"] == "Kovács Anna <anna@example.com>"
    assert msg["From"] == "valuemail <hello@valuemail.example>"
    assert msg["List-Unsubscribe"] == "<https://valuemail.example/u/tok>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "<value-emails.valuemail.example>"
    assert msg["Message-ID"].endswith("@valuemail.example>") and msg["Date"]
    assert not msg.defects and all(not p.defects for p in msg.walk())


def test_same_structure_as_the_email_package_builds(skeleton, rendered):
    from delivery.mime import InlineImage, OutgoingEmail, build_message

    e = rendered["en"]
    ours = email.message_from_bytes(_message(skeleton, e), policy=policy.default)
    theirs = build_message(OutgoingEmail(
        from_name="valuemail", from_address="hello@valuemail.example", to_name="Kovács Anna", to_address="anna@example.com",
        subject=e.subject, text=e.text, html=e.html,
        images=tuple(InlineImage(img.cid, PNG + img.cid.encode(), f"{img.kind}.png") for img in e.images)))
    assert [p.get_content_type() for p in ours.walk()] == [p.get_content_type() for p in theirs.walk()]


def test_without_images_html_is_a_direct_alternative(skeleton, rendered):
    e = rendered["hu"]
    msg = email.message_from_bytes(_message(skeleton, e, images=[]), policy=policy.default)
    assert [p.get_content_type() for p in msg.walk()] == ["multipart/alternative", "text/plain", "text/html"]
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == e.html


@pytest.mark.parametrize("field", ["to_name", "subject", "to_address", "list_unsubscribe"])
@pytest.mark.parametrize("evil", ["x\r\nBcc: victim@example.com", "x\nX-Evil: 1", "x\x00y", "x\ry"])
def test_control_characters_in_headers_are_refused(skeleton, rendered, field, evil):
    with pytest.raises(HeaderInjectionError, match="control character"):
        _message(skeleton, rendered["en"], **{field: evil})


@pytest.mark.parametrize("kw", [
    {"to_address": "not-an-address"}, {"to_address": "ünïcode@example.com"}, {"to_address": "a@b"},
    {"list_unsubscribe": "http://valuemail.example/u/x"}, {"list_unsubscribe": "https://a.example/x> <https://b"},
    {"images": [InlinePart("bad cid", PNG)]}, {"images": [InlinePart("a@b", PNG, "../../etc/passwd")]},
    {"headers": {"X-Bad Name": "v"}},
])
def test_unusable_values_are_refused(skeleton, rendered, kw):
    with pytest.raises(HeaderInjectionError):
        _message(skeleton, rendered["en"], **kw)


@pytest.mark.parametrize("name", ['Smith, "Jo"', "O'Brien", "王芳" * 30, "Zoë 😀", "=?utf-8?q?x?=", "A" * 90])
def test_display_names_round_trip(skeleton, rendered, name):
    raw = _message(skeleton, rendered["en"], to_name=name)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 76
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["To"].addresses[0].addr_spec == "anna@example.com"
    # RFC 2047 decoding (email.header; the address parser inserts a space between adjacent
    # encoded-words, which RFC 2047 says to drop, so it is not used as the reference here)
    folded = re.search(rb"\r\nTo: (.*?)\r\n(?! )", raw, re.S).group(1).decode("ascii").replace("\r\n", "")
    if "=?utf-8?" in folded:
        decoded = str(email.header.make_header(email.header.decode_header(folded)))
        assert decoded.rsplit(" <", 1)[0] == name
    else:  # a plain or quoted phrase
        assert msg["To"].addresses[0].display_name == name


@pytest.mark.parametrize("subject", ["Hi", "ő" * 49, "王" * 50, "😀" * 30, "a" * 50, "=?utf-8?b?x?= trick"])
def test_subjects_round_trip(skeleton, rendered, subject):
    raw = _message(skeleton, rendered["en"], subject=subject)
    assert email.message_from_bytes(raw, policy=policy.default)["Subject"] == subject


def test_encoded_words_never_split_a_character_and_fit_the_line():
    for text in ("ő" * 200, "王" * 200, "😀" * 100, "aő王😀" * 50):
        words = encode_words(text, len("Subject: "))
        lines = words.split("\r\n")
        assert len("Subject: ") + len(lines[0]) <= 76 and all(len(line) <= 76 for line in lines)
        decoded = str(email.header.make_header(email.header.decode_header(words.replace("\r\n", ""))))
        assert decoded == text


def test_base64_lines_are_76_characters():
    for size in (0, 1, 56, 57, 58, 1000, 123_457):
        data = bytes(range(256)) * (size // 256 + 1)
        data = data[:size]
        out = b64(data)
        lines = out.split(b"\r\n")
        assert all(len(line) == 76 for line in lines[:-1]) and len(lines[-1]) <= 76
        import base64

        assert base64.b64decode(out.replace(b"\r\n", b"")) == data


def test_boundaries_cannot_occur_in_bodies(skeleton, rendered):
    """Boundaries start with '=_', which quoted-printable and base64 never produce."""
    e = rendered["en"]
    raw = _message(skeleton, e, text=e.text + "\n--=_vm_alt_ fake boundary line\n")
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg.get_body(("plain",)).get_content().endswith("--=_vm_alt_ fake boundary line\r\n")
    assert re.match(r"=_vm_alt_[0-9a-f]{16}$", skeleton.alt_boundary)
