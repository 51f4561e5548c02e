"""The e-mail renderer: fast path = reference path, content rules, variants, links, sizes."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from report_templates import samples
from report_templates.model import ChartImage, Links
from report_templates.render import EmailRenderer, TemplateError, escape_all
from report_templates.view import SUBJECT_MAX, UnsafeLinkError, check_url

CAMPAIGNS = ("weekly", "monthly", "yearly")
LOCALES = ("en", "zh-CN", "hu")


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS)


class _Visible(HTMLParser):
    """Visible text (no <head>, <style>, hidden preheader), hrefs and <img> sources."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self._skip = 0
        self._stack: list[bool] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "img" and a.get("src"):
            self.srcs.append(a["src"])
        if tag in ("br", "img", "meta", "link", "hr", "input"):
            return
        hidden = tag in ("head", "style", "title") or "display:none" in (a.get("style") or "").replace(" ", "")
        self._stack.append(hidden)
        self._skip += hidden

    def handle_endtag(self, tag):
        if tag in ("br", "img", "meta", "link", "hr", "input") or not self._stack:
            return
        self._skip -= self._stack.pop()

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.text.append(data.strip())


def visible(html: str) -> _Visible:
    p = _Visible()
    p.feed(html)
    return p


ALL = [(c, f, loc) for c in CAMPAIGNS for f in samples.FIXTURES for loc in LOCALES]


@pytest.mark.parametrize("campaign,name,locale", ALL)
def test_fast_path_is_byte_identical_to_jinja_plus_mjml_per_email(renderer, campaign, name, locale):
    data = samples.fixture(name, campaign, locale)
    fast, slow = renderer.render(data), renderer.render_reference(data)
    assert fast.html == slow.html
    assert fast.text == slow.text
    assert fast.subject == slow.subject and fast.variant == slow.variant


@pytest.mark.parametrize("campaign,name,locale", ALL)
def test_every_email_meets_the_basic_rules(renderer, campaign, name, locale):
    e = renderer.render(samples.fixture(name, campaign, locale))
    assert 0 < len(e.subject) <= SUBJECT_MAX
    assert not re.search(r"[\r\n\x00-\x1f]", e.subject + e.preheader)
    assert e.html_bytes < 100_000, "Gmail clips HTML above ~102 KB"
    assert f'lang="{e.locale_used}"' in e.html
    v = visible(e.html)
    text = " ".join(v.text)
    # a visible unsubscribe link, a preferences link and the postal address, in HTML and text
    links = samples.fixture(name, campaign, locale).links
    assert links.unsubscribe_url in v.hrefs and links.preferences_url in v.hrefs
    assert links.unsubscribe_url in e.text and links.preferences_url in e.text
    assert samples.BRAND.postal_address in text and samples.BRAND.postal_address in e.text
    # exactly one call to action (a button), and it comes after the data
    assert e.html.count("vm-cta") == 1
    for href in v.hrefs:
        assert href.startswith("https://"), href
    for leftover in ("None", "nan", "VMSLOT", "ENDSLOT", "{{", "{%", "%(", "Undefined"):
        assert leftover not in text and leftover not in e.text, leftover


@pytest.mark.parametrize("campaign", CAMPAIGNS)
@pytest.mark.parametrize("locale", LOCALES)
def test_data_first_then_one_call_to_action_then_share_link(renderer, campaign, locale):
    data = samples.fixture("active", campaign, locale)
    e = renderer.render(data)
    first_number = e.html.index(">" + _big_number(e) + "<")
    cta = e.html.index("vm-cta")
    assert first_number < cta
    assert data.links.share_url in e.html and data.links.share_url in e.text
    # the "how we counted" lines come from the value model, in the e-mail's language
    assert "2026-11-01" in e.html and "2026-11-01" in e.text


def _big_number(e) -> str:
    m = re.search(r'class="vm-big".*?<div[^>]*>\s*([^<]+?)\s*<', e.html, re.S)
    assert m, "hero number missing"
    return m.group(1)


def test_text_part_says_what_the_html_says(renderer):
    for campaign in CAMPAIGNS:
        for locale in LOCALES:
            for name in ("active", "new", "low"):
                e = renderer.render(samples.fixture(name, campaign, locale))
                v = visible(e.html)
                # every figure shown in the HTML is in the text part (numbers with their separators)
                html_numbers = set(re.findall(r"\d[\d,.\u00a0]*\d|\d", " ".join(v.text)))
                text_numbers = set(re.findall(r"\d[\d,.\u00a0]*\d|\d", e.text))
                missing = html_numbers - text_numbers
                assert not missing, (campaign, locale, name, sorted(missing)[:10])
                # and every link (the 0–10 feedback links included)
                for href in v.hrefs:
                    assert href in e.text, (campaign, locale, name, href)
                # every chart's alt text is in the text part
                for chart in e.images:
                    assert chart.alt in e.text


def test_variants_differ_as_designed(renderer):
    active = renderer.render(samples.fixture("active", "weekly"))
    new = renderer.render(samples.fixture("new", "weekly"))
    low = renderer.render(samples.fixture("low", "weekly"))
    assert (active.variant, new.variant, low.variant) == ("active", "new", "low")
    # new: a note signed by a founder and the 0–10 question, one link per score
    assert samples.BRAND.founder_name in new.html and "co-founder" in new.html
    assert len(re.findall(r'href="[^"]*nps=(\d+)"', new.html)) == 11
    assert "nps=" not in active.html and "nps=" not in low.html
    # active: the stats tiles and charts; low: short, no charts, no tiles
    assert '<div class="vm-stat"' in active.html and active.images
    assert '<div class="vm-stat"' not in low.html and not low.images
    assert low.html_bytes < active.html_bytes * 0.7
    assert len(visible(low.html).text) < len(visible(active.html).text) / 2


def test_stage_decides_the_variant_and_defaults_are_derived(renderer):
    base = samples.fixture("active", "weekly")
    for stage, variant in (("new", "new"), ("prospect", "new"), ("active", "active"), ("lapsed", "low"),
                           ("churned", "low"), ("seasonal", "low")):
        assert renderer.render(replace(base, stage=stage)).variant == variant
    # no stage: signed up recently → new; few tasks → low
    assert renderer.render(replace(base, stage=None, signed_up_at=None)).variant == "active"
    recent = replace(base, stage=None, signed_up_at=samples.datetime(2026, 11, 10))
    assert renderer.render(recent).variant == "new"
    assert renderer.render(replace(base, stage=None, tasks=2)).variant == "low"


def test_zero_and_missing_values_render_a_sensible_email(renderer):
    for campaign in CAMPAIGNS:
        empty = renderer.render(samples.fixture("empty", campaign))
        assert not empty.images
        assert not re.search(r"\b0 (min|hr)", empty.subject)  # no "0 min saved" headline
        minimal = renderer.render(samples.fixture("minimal", campaign))
        assert "21 min" in minimal.html and "7 tasks" in minimal.html
        assert "Hi there," in minimal.html  # no name
        assert "of 0 days" not in minimal.text and "active days" not in minimal.text  # unknown, not zero


def test_peer_comparison_is_only_shown_when_known_and_never_overstated(renderer):
    base = samples.fixture("active", "weekly")
    without_chart = replace(base, charts=tuple(c for c in base.charts if c.kind != "peer_position"))
    e = renderer.render(replace(without_chart, tasks_percentile=87.0))
    assert "More tasks than 87% of customers on your plan" in e.html
    assert "More tasks than" not in renderer.render(replace(without_chart, tasks_percentile=None)).html
    assert "More tasks than" not in renderer.render(replace(without_chart, tasks_percentile=30.0)).html
    with_chart = renderer.render(base)
    assert any(c.kind == "peer_position" for c in with_chart.images)
    assert "Compared with others" not in with_chart.html  # the chart's headline says it already


def test_locale_fallback_is_recorded(renderer):
    for requested, used, reason in (("hu-HU", "hu", "region"), ("zh-Hans-CN", "zh-CN", "script"),
                                    ("de", "en", "unsupported"), (None, "en", "missing"), ("zh-TW", "en", "traditional_chinese")):
        e = renderer.render(replace(samples.fixture("active", "weekly"), locale=requested))
        assert (e.locale_requested, e.locale_used, e.locale_reason) == (requested or "", used, reason)
        assert f'lang="{used}"' in e.html


@pytest.mark.parametrize("bad", [
    "http://valuemail.example/u/x", "javascript:alert(1)", "data:text/html,hi", "mailto:x@example.com",
    "https://user:pw@valuemail.example/", 'https://valuemail.example/"onmouseover="x', "https://valuemail.example/a b",
    "//valuemail.example/x", "https://", "", None, "https://valuemail.example/\r\nX: y",
])
def test_only_https_links_are_accepted(renderer, bad):
    with pytest.raises(UnsafeLinkError, match="link|https"):
        check_url(bad, "test link")
    data = samples.fixture("active", "weekly")
    with pytest.raises(UnsafeLinkError, match="unsubscribe link"):
        renderer.render(replace(data, links=replace(data.links, unsubscribe_url=bad)))


def test_image_sources_must_be_cid_or_https(renderer):
    data = samples.fixture("active", "weekly")
    for src in ("javascript:x", "http://cdn.example/a.png", 'cid:a"b@x', "cid:no-domain"):
        chart = ChartImage("weekly_activity", src, "alt")
        with pytest.raises(UnsafeLinkError, match="chart"):
            renderer.render(replace(data, charts=(chart,)))
    ok = renderer.render(replace(data, charts=(ChartImage("weekly_activity", "https://cdn.example/a.png", "alt"),)))
    assert 'src="https://cdn.example/a.png"' in ok.html


def test_preheader_is_hidden_without_a_colour(renderer):
    e = renderer.render(samples.fixture("active", "weekly"))
    div = re.search(r'<div style="(display:none[^"]*)">([^<]*)', e.html)
    assert div and div.group(2).startswith(e.preheader[:20])
    assert "color" not in div.group(1)  # see _blocks.mjml.j2: a colour is what HTML_FONT_LOW_CONTRAST flags
    assert "mso-hide:all" in div.group(1)


def test_shapes_stay_few_for_a_varied_population(renderer):
    """Layouts are compiled once; values never add shapes, only optional blocks do (bounded)."""
    r = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS)
    population = samples.synthetic(3000, seed=7)
    for data in population[:1500]:
        r.render(data)
    first = r.compiled_shapes
    for data in population[1500:]:
        r.render(data)
    assert first < 400
    assert r.compiled_shapes < first * 1.35  # twice the customers, barely more layouts


def test_escape_all_matches_markupsafe():
    values = ['<b>"x"</b>', "a & b", "it's", "", "plain", "é 中文 😀"]
    from markupsafe import escape

    assert escape_all(values) == [str(escape(v)) for v in values]


def test_compiler_refuses_slots_in_unsafe_places(tmp_path):
    (tmp_path / "weekly.mjml.j2").write_text(
        '<mjml><mj-body><mj-section><mj-column><mj-text><span style="color:{{ v.greeting }}">x</span>'
        "</mj-text></mj-column></mj-section></mj-body></mjml>")
    (tmp_path / "weekly.txt.j2").write_text("{{ v.greeting }}\n")
    r = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS, templates_dir=tmp_path)
    with pytest.raises(TemplateError, match="style attribute"):
        r.render(samples.fixture("active", "weekly"))


def test_templates_may_not_branch_on_per_customer_values(tmp_path):
    (tmp_path / "weekly.mjml.j2").write_text(
        "<mjml><mj-body><mj-section><mj-column><mj-text>{% if v.greeting %}x{% endif %}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>")
    (tmp_path / "weekly.txt.j2").write_text("x\n")
    r = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS, templates_dir=tmp_path)
    with pytest.raises(TemplateError, match="branches on per-customer value"):
        r.render(samples.fixture("active", "weekly"))


def test_strict_undefined_in_templates(tmp_path):
    (tmp_path / "weekly.mjml.j2").write_text("<mjml><mj-body>{{ t.no_such_thing }}</mj-body></mjml>")
    (tmp_path / "weekly.txt.j2").write_text("x\n")
    r = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS, templates_dir=tmp_path)
    with pytest.raises(Exception, match="no_such_thing"):
        r.render(samples.fixture("active", "weekly"))


def test_links_dataclass_fields_are_all_checked(renderer):
    data = samples.fixture("active", "weekly")
    for field in ("preferences_url", "cta_url", "share_url"):
        with pytest.raises(UnsafeLinkError):
            renderer.render(replace(data, links=replace(data.links, **{field: "http://insecure.example/"})))
    assert renderer.render(replace(data, links=Links(data.links.preferences_url, data.links.unsubscribe_url,
                                                     data.links.cta_url, None)))


def test_mjml_debug_escapes_in_attributes_are_undone():
    """mjml-python writes a no-break space in alt/aria-label as the text "\\u{a0}"; we undo that."""
    from mjml import mjml2html

    from report_templates.render import _unescape_rust

    raw = mjml2html('<mjml><mj-body><mj-section><mj-column><mj-image src="cid:a@b" alt="6\u00a0850" />'
                    "</mj-column></mj-section></mj-body></mjml>", disable_comments=True, fonts={})
    fixed = _unescape_rust(raw)
    assert 'alt="6\u00a0850"' in fixed and "\\u{" not in fixed
