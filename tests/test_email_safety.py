"""Hostile input never changes an e-mail's markup: names, labels, alt texts, links."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from report_templates import samples
from report_templates.model import ChartImage, FeatureCount, clean_text, first_name
from report_templates.render import EmailRenderer
from report_templates.view import ValueModelTexts

HOSTILE_NAMES = [
    "<script>alert(1)</script> Smith",
    '"><mj-image src="https://evil.example/x.png"> Bob',
    "Eve\r\nBcc: victim@example.com",
    "Zoë 😀🎉 Łukasz",
    "\u202eevil\u202c Mallory",  # right-to-left override
    "محمد العربي",
    "דוד כהן",
    "A" * 300,
    "{{ 7*7 }} {% raw %}",
    "VMSLOTunsubscribe_urlENDSLOT",  # our own slot token as a name
    "&lt;b&gt; &amp;",
    "\x00\x01\x1b[31m",
    "",
    "   ",
]


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tag_structure(html: str) -> list[tuple[str, tuple]]:
    p = _Tags()
    p.feed(html)
    return [(tag, tuple(sorted(k for k in attrs))) for tag, attrs in p.tags]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("locale", ["en", "zh-CN", "hu"])
def test_hostile_names_are_escaped_everywhere(renderer, name, locale):
    base = samples.fixture("active", "weekly", locale)
    e = renderer.render(replace(base, name=name))
    ref = renderer.render(replace(base, name="Anna Kovács"))
    # same markup as with a harmless name: no tag or attribute was injected
    assert tag_structure(e.html) == tag_structure(ref.html)
    assert "<script" not in e.html.lower()
    assert "evil.example" not in re.sub(r"&[a-z#0-9]+;", "", e.html) or "&lt;" in e.html or "&#34;" in e.html
    assert 'src="https://evil' not in e.html
    assert "\r" not in e.subject and "\n" not in e.subject and "\x00" not in e.html
    # a value that looks like a slot token stays text: values are never re-scanned for slots
    assert e.html.count(base.links.unsubscribe_url) == ref.html.count(base.links.unsubscribe_url)
    assert "\u202e" not in e.html and "\u202e" not in e.text and "\u202e" not in e.subject
    assert len(e.subject) <= 50


@pytest.mark.parametrize("campaign", ["weekly", "monthly", "yearly"])
def test_hostile_configuration_and_chart_texts_are_escaped(renderer, campaign):
    """Value-model labels/explanations and chart alt texts are data too."""
    vm = ValueModelTexts(
        version='2026"><b>',
        features={"workflow_run": "<img src=x onerror=alert(1)>", "report_generated": 'Rep"orts'},
        explain={"workflow_run": "</mj-text><mj-raw><script>x</script></mj-raw>", "report_generated": "a & b < c"},
    )
    r = EmailRenderer(samples.BRAND, vm, samples.THRESHOLDS)
    base = samples.fixture("active", campaign)
    data = replace(base, top_features=(FeatureCount("workflow_run", "x", 10), FeatureCount("report_generated", "y", 5)),
                   charts=tuple(replace(c, alt='" onerror="alert(1)') for c in base.charts))
    e = r.render(data)
    assert "<script" not in e.html and "<img src=x" not in e.html and 'onerror="alert' not in e.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in e.html
    assert 'alt="&#34; onerror=&#34;alert(1)"' in e.html
    assert "Rep&#34;orts" in e.html
    # the plain-text part is plain text: the same characters, unescaped
    assert "<img src=x onerror=alert(1)>" in e.text and "a & b < c" in e.text


def test_names_are_cleaned_and_bounded():
    assert first_name("Eve\r\nBcc: x@y.z") == "Eve"
    assert first_name("A" * 300) == "A" * 39 + "…"
    assert first_name("\u202eevil\u202c Mallory") == "evil"
    assert first_name('"><mj-image src=x>') == ""  # not a name: greet generically
    assert first_name("😀") == ""
    assert first_name("Zoë Kovács") == "Zoë"
    assert first_name("Kovács Zoë", "hu") == "Zoë"
    assert first_name("刘梓萱", "zh-CN") == "刘梓萱"
    assert clean_text("a\tb\u2028c\x7fd") == "a b c d"


names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names, locale=st.sampled_from(["en", "zh-CN", "hu", "de", "", "x_y-z"]))
def test_any_name_any_locale_renders_safely(renderer, name, locale):
    e = renderer.render(replace(samples.fixture("active", "weekly"), name=name, locale=locale))
    assert len(e.subject) <= 50
    assert not re.search(r"[\x00-\x1f\x7f]", e.subject)
    assert "<script" not in e.html.lower() or "<script" in name.lower() and "&lt;script" in e.html.lower()
    # the name can only appear escaped: no raw "<" that isn't ours
    structure = tag_structure(e.html)
    assert structure == tag_structure(renderer.render(replace(samples.fixture("active", "weekly"), name="Anna",
                                                              locale=locale)).html)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tasks=st.integers(0, 10**9), minutes=st.decimals(0, 10**8, places=2), money=st.decimals(0, 10**9, places=2),
       pct=st.one_of(st.none(), st.floats(-1e6, 1e6)), percentile=st.one_of(st.none(), st.floats(0, 100)))
def test_any_numbers_render(renderer, tasks, minutes, money, pct, percentile):
    data = replace(samples.fixture("active", "weekly"), tasks=tasks, minutes_saved=minutes, money_saved=money,
                   tasks_change_pct=pct, tasks_percentile=percentile)
    e = renderer.render(data)
    assert e.html_bytes < 100_000 and len(e.subject) <= 50


def test_chart_alt_and_src_never_break_out_of_the_attribute(renderer):
    data = samples.fixture("active", "weekly")
    chart = ChartImage("weekly_activity", "cid:weekly.x@valuemail", 'a"b<c>d&e\'f')
    e = renderer.render(replace(data, charts=(chart,)))
    assert 'alt="a&#34;b&lt;c&gt;d&amp;e&#39;f"' in e.html
