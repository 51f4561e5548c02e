"""Share pages: unguessable URL, Open Graph tags, first name and own numbers only; local or S3."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import boto3
import pytest

from report_templates import samples
from report_templates.share_page import page_for, render_page
from valuemail import share
from valuemail.config import ConfigError, load_config

URL = "https://valuemail.example/s/AbCdEfGhIjKlMnOpQrStUv/"


class _Meta(HTMLParser):
    def __init__(self):
        super().__init__()
        self.meta: dict[str, str] = {}
        self.imgs: list[dict] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "meta":
            key = a.get("property") or a.get("name") or a.get("http-equiv")
            if key:
                self.meta[key] = a.get("content", "")
        if tag == "img":
            self.imgs.append(a)

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def _page(data, locale_hint=None):
    page, locale = page_for(data, samples.BRAND, samples.VALUE_MODEL, url=URL, image_url=URL + "card.png",
                            image_alt="Anna, my week: 4 hr 35 min saved", home_url="https://valuemail.example")
    html = render_page(page, locale, samples.BRAND)
    p = _Meta()
    p.feed(html)
    return html, p, locale


@pytest.mark.parametrize("locale", ["en", "zh-CN", "hu"])
@pytest.mark.parametrize("campaign", ["weekly", "monthly", "yearly"])
def test_open_graph_tags_and_only_own_numbers(campaign, locale):
    data = replace(samples.fixture("active", campaign, locale), name={"hu": "Kovács Anna", "zh-CN": "王芳"}.get(locale, "Anna Kovács"))
    html, p, used = _page(data)
    assert used == locale
    for key in ("og:title", "og:description", "og:image", "og:url", "og:type", "twitter:card", "og:image:alt"):
        assert p.meta.get(key), key
    assert p.meta["og:image"] == URL + "card.png" and p.meta["og:url"] == URL
    assert (p.meta["og:image:width"], p.meta["og:image:height"]) == ("1200", "630")
    assert p.meta["twitter:card"] == "summary_large_image"
    assert p.meta["robots"] == "noindex, nofollow"
    assert "default-src 'none'" in p.meta["Content-Security-Policy"]
    assert "<script" not in html
    assert "&#39;" not in html.split("</style>")[0]  # CSS can't read entities: the font stack must be literal
    # first name only, the customer's own figures only
    if locale != "zh-CN":  # Chinese greets with the full name; elsewhere the surname stays private
        assert "Kovács" not in html
    assert "@" not in html and data.customer_id not in html
    assert "87" not in html  # no peer percentile (it describes other people)
    assert "12.50" not in html and "12,50" not in html  # no money
    first = {"hu": "Anna", "zh-CN": "王芳", "en": "Anna"}[locale]
    assert first in p.meta["og:title"]


def test_hostile_name_on_a_share_page_is_escaped():
    data = replace(samples.fixture("active", "weekly"), name='<script>alert(1)</script> X')
    html, p, _ = _page(data)
    assert "<script>" not in html
    data = replace(samples.fixture("active", "weekly"), name='Eve"><img src=x onerror=alert(1)>')
    html, p, _ = _page(data)
    assert "<img src=x" not in html and "onerror=alert" not in html
    assert len(p.imgs) == 1


def test_tokens_are_random_and_url_safe():
    tokens = {share.new_token() for _ in range(2000)}
    assert len(tokens) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", t) for t in tokens)


def test_share_settings(tmp_path):
    s = share.ShareSettings.from_config(load_config(home=tmp_path))
    assert s.base_url == "https://valuemail.example/s" and s.url("tok") == "https://valuemail.example/s/tok/"
    with pytest.raises(ConfigError, match="https"):
        share.ShareSettings.from_config(load_config(home=tmp_path, overrides={"share": {"base_url": "http://x.example"}}))


def test_local_publisher_refuses_paths_outside_its_folder(tmp_path):
    pub = share.LocalPublisher(tmp_path / "share")
    assert pub.put("tok/index.html", b"<p>", "text/html") == str(tmp_path / "share" / "tok" / "index.html")
    with pytest.raises(ValueError):
        pub.put("../escape.html", b"x", "text/html")


@pytest.mark.integration
def test_pages_uploaded_to_s3(moto_server, tmp_path, config, warehouse):
    """With [share] bucket set, pages and cards go to S3 (moto server), not to <home>/share."""
    from tests.test_email_stage import WEEK, links_for, make_warehouse
    from valuemail.emails import render_period_charts, render_period_emails

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket="vm-share-test")
    cfg = load_config(home=config.home, overrides={"share": {"bucket": "vm-share-test", "prefix": "p/",
                                                             "endpoint_url": moto_server}})
    make_warehouse(warehouse)
    render_period_charts(warehouse, cfg, WEEK)
    render_period_emails(warehouse, cfg, WEEK, links_for=links_for)
    rows = warehouse.execute("SELECT token, location FROM share_pages").fetchall()
    assert len(rows) == 5
    for token, location in rows:
        assert location == f"s3://vm-share-test/p/{token}/index.html"
        page = s3.get_object(Bucket="vm-share-test", Key=f"p/{token}/index.html")
        assert page["ContentType"].startswith("text/html")
        assert b'property="og:image"' in page["Body"].read()
        card = s3.get_object(Bucket="vm-share-test", Key=f"p/{token}/card.png")
        assert card["ContentType"] == "image/png" and card["Body"].read().startswith(b"\x89PNG")
    assert not (cfg.share_dir).exists() or not any(cfg.share_dir.iterdir())
