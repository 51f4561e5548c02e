"""SpamAssassin's view of our messages (runs when ``spamassassin`` is installed; Debian: apt-get install spamassassin).

Local tests only (-L: no network rules).  The point is the HTML rules a template can trip:
hidden or low-contrast text (HTML_FONT_LOW_CONTRAST), image-only mail, bad MIME.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from report_templates import samples
from report_templates.mime_skeleton import InlinePart, MimeSkeleton
from report_templates.render import EmailRenderer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("spamassassin") is None, reason="spamassassin not installed"),
]

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 2000


def _report(raw: bytes) -> tuple[float, set[str]]:
    out = subprocess.run(["spamassassin", "-L", "-t"], input=raw, capture_output=True, timeout=120).stdout.decode()
    status = re.search(r"X-Spam-Status: \w+, score=(-?[\d.]+).*?tests=(.*?)autolearn", out, re.S)
    assert status, out[:2000]
    tests = set(re.sub(r"\s+", "", status.group(2)).split(","))
    return float(status.group(1)), tests


@pytest.mark.parametrize("name,campaign,locale", [("active", "weekly", "hu"), ("new", "yearly", "zh-CN")])
def test_no_spam_rules_fire(name, campaign, locale):
    r = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS)
    e = r.render(samples.fixture(name, campaign, locale))
    raw = MimeSkeleton(from_name="valuemail", from_address="hello@valuemail.example",
                       list_id="value-emails.valuemail.example").render(
        to_name="Kovács Anna", to_address="anna@example.com", subject=e.subject, text=e.text, html=e.html,
        images=[InlinePart(img.cid, PNG, f"{img.kind}.png") for img in e.images],
        list_unsubscribe="https://valuemail.example/u/tok")
    score, tests = _report(raw)
    assert "HTML_FONT_LOW_CONTRAST" not in tests, "the hidden preheader must not carry a colour"
    assert not any(t.startswith(("MIME_", "MPART", "HTML_IMAGE_ONLY", "HTML_SHORT")) for t in tests), tests
    assert score < 1.0, (score, tests)


def test_a_coloured_preheader_would_trip_the_rule():
    """Why _blocks.mjml.j2 gives the preheader no colour: white, or the page colour, both score."""
    r = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS)
    e = r.render(samples.fixture("low", "weekly"))
    html = e.html.replace('mso-hide:all;">', f'mso-hide:all;color:{samples.BRAND.colours.page};">', 1)
    raw = MimeSkeleton(from_name="valuemail", from_address="hello@valuemail.example").render(
        to_name="", to_address="anna@example.com", subject=e.subject, text=e.text, html=html)
    _, tests = _report(raw)
    assert "HTML_FONT_LOW_CONTRAST" in tests
