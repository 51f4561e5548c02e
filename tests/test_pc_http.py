"""The preference centre over real HTTP: uvicorn on 127.0.0.1, httpx as the client."""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from preference_centre.store import CustomerState
from preference_centre.tokens import TokenService
from tests.pc_fixtures import TEST_SECRET, LiveCentre, csrf_from, live_centre, open_form

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("preference_centre_http")]

CUSTOMERS = [(f"c{i}", ("en", "hu", "zh-CN", None)[i % 4]) for i in range(40)] + [
    (f"bulk{i}", "en") for i in range(200)
]
EXPECTED_HEADERS = {
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


@pytest.fixture(scope="module")
def centre(tmp_path_factory):
    with live_centre(tmp_path_factory.mktemp("pc_http"), CUSTOMERS) as live:
        yield live


@pytest.fixture
def client():
    with httpx.Client(timeout=10) as c:
        yield c


def assert_security_headers(response: httpx.Response, personal: bool = True) -> None:
    for name, value in EXPECTED_HEADERS.items():
        assert response.headers.get(name) == value, name
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    if personal:
        assert response.headers["cache-control"] == "no-store"


def save(client: httpx.Client, url: str, frequency: str, action: str = "save", **headers: str) -> httpx.Response:
    csrf = open_form(client, url)
    return client.post(url, data={"csrf": csrf, "frequency": frequency, "action": action}, headers=headers)


# -- the preferences page -----------------------------------------------------------------------
def test_preferences_page_shows_the_current_choice_with_security_headers(centre: LiveCentre, client):
    centre.store.set_frequency("c0", "yearly", "import")
    response = client.get(centre.preferences_url("c0"))
    assert response.status_code == 200
    assert_security_headers(response)
    html = response.text
    assert re.search(r'value="yearly" checked', html) and not re.search(r'value="weekly" checked', html)
    assert all(f'value="{f}"' in html for f in ("weekly", "monthly", "yearly", "never"))
    assert "<script" not in html.lower() and not re.search(r"<[^>]+\son\w+=", html)  # no script at all
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie


def test_page_language_lang_param_then_registered_locale_then_accept_language(centre: LiveCentre, client):
    hu = client.get(centre.preferences_url("c1"))  # registered as hu
    assert hu.headers["content-language"] == "hu" and "E-mail-beállítások" in hu.text and 'lang="hu"' in hu.text
    zh = client.get(centre.preferences_url("c2"))  # registered as zh-CN
    assert zh.headers["content-language"] == "zh-CN" and "邮件偏好设置" in zh.text
    forced = client.get(centre.preferences_url("c1") + "?lang=zh-CN")
    assert forced.headers["content-language"] == "zh-CN"
    browser = client.get(centre.preferences_url("c3"), headers={"accept-language": "de-DE, hu;q=0.8, en;q=0.5"})
    assert browser.headers["content-language"] == "hu"  # no registered locale: the browser decides
    fallback = client.get(centre.preferences_url("c3"), headers={"accept-language": "de, fr;q=0.9"})
    assert fallback.headers["content-language"] == "en" and "Email preferences" in fallback.text


def test_saving_changes_the_store_logs_the_page_and_confirms(centre: LiveCentre, client):
    url = centre.preferences_url("c4")
    response = save(client, url, "monthly")
    assert response.status_code == 303
    location = response.headers["location"]
    assert not location.startswith(("/", "http")) and location.endswith("done=saved")  # relative: proxy-prefix safe
    assert centre.store.state("c4") == CustomerState("monthly")
    assert [(c.change, c.new, c.source) for c in centre.store.changes("c4")] == [("frequency", "monthly", "page")]
    confirmed = client.get(url + "?done=saved")
    assert "Saved." in confirmed.text and "monthly and yearly" in confirmed.text
    assert re.search(r'value="monthly" checked', confirmed.text)


def test_a_browser_like_same_origin_post_with_origin_null_is_accepted(centre: LiveCentre, client):
    """Our pages send Referrer-Policy: no-referrer, so Chrome posts our own forms with ``Origin: null``."""
    response = save(client, centre.preferences_url("c5"), "yearly", origin="null", **{"sec-fetch-site": "same-origin"})
    assert response.status_code == 303
    assert centre.store.frequency("c5") == "yearly"


@pytest.mark.parametrize(
    "forgery",
    [
        "no_cookie",
        "wrong_cookie",
        "no_csrf_field",
        "other_customers_csrf",
        "expired_csrf",
        "sec_fetch_cross_site",
        "sec_fetch_same_site",
        "foreign_origin",
    ],
)
def test_forged_or_cross_site_form_posts_are_refused_and_change_nothing(centre: LiveCentre, client, forgery):
    url = centre.preferences_url("c6")
    csrf = open_form(client, url)
    data = {"csrf": csrf, "frequency": "never", "action": "save"}
    headers: dict[str, str] = {}
    if forgery == "no_cookie":
        client.cookies.clear()
    elif forgery == "wrong_cookie":
        client.cookies.set("pc_csrf", "A" * 32)
    elif forgery == "no_csrf_field":
        del data["csrf"]
    elif forgery == "other_customers_csrf":
        with httpx.Client() as other:
            data["csrf"] = open_form(other, centre.preferences_url("c7"))
    elif forgery == "expired_csrf":
        nonce = client.cookies["pc_csrf"]
        old = TokenService(
            [TEST_SECRET],
            max_age={"preferences": timedelta(days=1), "unsubscribe": timedelta(days=60), "form": timedelta(hours=1)},
            clock=lambda: time.time() - 13 * 3600,
        )
        data["csrf"] = old.form_token("c6", nonce)
    elif forgery == "sec_fetch_cross_site":
        headers["sec-fetch-site"] = "cross-site"
    elif forgery == "sec_fetch_same_site":
        headers["sec-fetch-site"] = "same-site"
    elif forgery == "foreign_origin":
        headers["origin"] = "https://evil.example"
    before = centre.change_count()
    response = client.post(url, data=data, headers=headers)
    assert response.status_code == 403
    assert "Please try again" in response.text and "nothing was saved" in response.text
    assert_security_headers(response)
    assert centre.change_count() == before and centre.store.frequency("c6") == "weekly"


def test_bad_frequency_is_a_friendly_400(centre: LiveCentre, client):
    response = save(client, centre.preferences_url("c8"), "daily")
    assert response.status_code == 400 and "Something was missing" in response.text
    assert centre.store.changes("c8") == []


def test_unsubscribed_customer_can_opt_back_in_from_the_page(centre: LiveCentre, client):
    centre.store.set_frequency("c9", "monthly", "page")
    centre.store.unsubscribe("c9", "one_click")
    url = centre.preferences_url("c9")
    page = client.get(url + "?lang=en")
    assert "unsubscribed from value emails" in page.text and 'value="resubscribe"' in page.text
    assert 'value="never"' not in page.text and re.search(r'value="monthly" checked', page.text)
    response = client.post(url, data={"csrf": csrf_from(page.text), "frequency": "yearly", "action": "resubscribe"})
    assert response.status_code == 303 and "done=resubscribed" in response.headers["location"]
    assert centre.store.state("c9") == CustomerState("yearly", None)
    assert [c.source for c in centre.store.changes("c9")][-2:] == ["page", "page"]


def test_manual_suppression_shows_no_opt_in_button(centre: LiveCentre, client):
    centre.store.suppress("c10", "manual", "operator")
    page = client.get(centre.preferences_url("c10") + "?lang=en")
    assert "paused" in page.text and 'value="resubscribe"' not in page.text


# -- one-click unsubscribe (RFC 8058) ----------------------------------------------------------------
def test_get_and_head_of_the_unsubscribe_link_change_nothing(centre: LiveCentre, client):
    url = centre.unsubscribe_url("c11")
    for _ in range(3):
        page = client.get(url)
        assert page.status_code == 200 and "set-cookie" not in page.headers
        assert client.head(url).status_code == 200
    assert 'method="post"' in page.text and 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert_security_headers(page)
    assert centre.store.changes("c11") == [] and centre.store.is_sendable("c11", "weekly") == (True, None)


def test_one_click_post_is_200_without_redirect_or_cookie_and_idempotent(centre: LiveCentre):
    url = centre.unsubscribe_url("c12", "monthly")
    for _ in range(3):  # a fresh client each time: no cookie, no session, like a mail provider
        response = httpx.post(url, data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
        assert response.status_code == 200
        assert "location" not in response.headers and "set-cookie" not in response.headers
        assert "unsubscribed" in response.text.lower() or "退订" in response.text or "leiratkoz" in response.text
        assert_security_headers(response)
    assert centre.store.is_sendable("c12", "yearly") == (False, "unsubscribed")
    assert [(c.change, c.new, c.source, c.detail) for c in centre.store.changes("c12")] == [
        ("suppress", "unsubscribed", "one_click", "campaign=monthly")
    ]


def test_one_click_accepts_multipart_bodies_and_cross_site_headers(centre: LiveCentre):
    """Mail providers may post multipart/form-data; the endpoint is exempt from the CSRF checks."""
    response = httpx.post(
        centre.unsubscribe_url("c13"),
        files={"List-Unsubscribe": (None, "One-Click")},
        headers={"origin": "https://mail.example", "sec-fetch-site": "cross-site"},
    )
    assert response.status_code == 200
    assert centre.store.state("c13").suppression == "unsubscribed"


def test_unsubscribed_page_links_back_to_preferences(centre: LiveCentre, client):
    response = client.post(centre.unsubscribe_url("c14") + "?lang=en", data={"List-Unsubscribe": "One-Click"})
    link = re.search(r'href="(\.\./p/[^"]+)"', response.text).group(1).replace("&amp;", "&")
    page = client.get(httpx.URL(str(response.url)).join(link))
    assert page.status_code == 200 and "unsubscribed from value emails" in page.text
    already = client.get(centre.unsubscribe_url("c14") + "?lang=en")
    assert "already unsubscribed" in already.text


def test_200_concurrent_one_click_posts_lose_no_update(centre: LiveCentre):
    ids = [f"bulk{i}" for i in range(200)]
    urls = [centre.unsubscribe_url(cid) for cid in ids]
    barrier = threading.Barrier(200)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    with httpx.Client(timeout=60, limits=limits) as shared:

        def post(url: str) -> int:
            barrier.wait()
            return shared.post(url, data={"List-Unsubscribe": "One-Click"}).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=200) as pool:
            statuses = list(pool.map(post, urls))
        elapsed = time.perf_counter() - started
    print(f"\n200 concurrent one-click POSTs: {elapsed:.2f}s")
    assert statuses == [200] * 200
    states = centre.store.bulk_state(ids)
    assert all(states[cid].suppression == "unsubscribed" for cid in ids)
    assert all(len(centre.store.changes(cid)) == 1 for cid in ids)


# -- links that must not work --------------------------------------------------------------------------
def _bad_links(centre: LiveCentre) -> dict[str, tuple[str, ...]]:
    good_p = centre.preferences_url("c15")
    good_u = centre.unsubscribe_url("c15")
    base = centre.url
    p_token = good_p.rsplit("/", 1)[1]
    u_token = good_u.rsplit("/", 1)[1]
    other = centre.preferences_url("c16").rsplit("/", 1)[1]
    old = TokenService(
        [TEST_SECRET],
        max_age={"preferences": timedelta(days=1), "unsubscribe": timedelta(days=60), "form": timedelta(hours=1)},
        clock=lambda: time.time() - 401 * 86_400,
    )
    forged = TokenService(
        ["someone-elses-secret-0123456789-abcdef"],
        max_age={"preferences": timedelta(days=1), "unsubscribe": timedelta(days=60), "form": timedelta(hours=1)},
    )
    return {
        "tampered_p": (f"{base}/p/{other.split('.')[0]}.{'.'.join(p_token.split('.')[1:])}", 400),
        "tampered_u": (f"{base}/u/{u_token[:-3]}abc", 400),
        "forged_u": (f"{base}/u/{forged.unsubscribe_token('c15', 'weekly')}", 400),
        "cross_purpose_p_as_u": (f"{base}/u/{p_token}", 400),
        "cross_purpose_u_as_p": (f"{base}/p/{u_token}", 400),
        "expired_u": (f"{base}/u/{old.unsubscribe_token('c15', 'weekly')}", 410),
        "expired_p": (f"{base}/p/{old.preferences_token('c15')}", 410),
        "unknown_customer_u": (centre.unsubscribe_url("never-registered"), 404),
        # A POST without a form token is refused by the CSRF check before the customer is looked up.
        "unknown_customer_p": (centre.preferences_url("never-registered"), 404, 403),
        "garbage": (f"{base}/u/%3Cscript%3Ealert(1)%3C%3Escript%3E", 400),
    }


@pytest.mark.parametrize(
    "case",
    [
        "tampered_p", "tampered_u", "forged_u", "cross_purpose_p_as_u", "cross_purpose_u_as_p",
        "expired_u", "expired_p", "unknown_customer_u", "unknown_customer_p", "garbage",
    ],
)
def test_bad_links_get_a_friendly_4xx_page_and_change_nothing(centre: LiveCentre, client, case):
    url, *statuses = _bad_links(centre)[case]
    before = centre.change_count()
    for method, status in zip(("GET", "POST"), statuses * 2):
        response = client.request(method, url, data={"List-Unsubscribe": "One-Click"} if method == "POST" else None)
        assert response.status_code == status, (method, response.text[:300])
        assert response.headers["content-type"].startswith("text/html")
        assert_security_headers(response)
        assert "<script" not in response.text
        assert "Nothing was changed." in response.text or "nothing was saved" in response.text
    assert centre.change_count() == before
    assert centre.store.profile("never-registered") is None
    assert centre.store.changes("c15") == []


# -- everything else ------------------------------------------------------------------------------------
def test_unknown_paths_methods_and_big_bodies_get_friendly_pages_with_headers(centre: LiveCentre, client):
    not_found = client.get(centre.url + "/admin")
    assert not_found.status_code == 404 and "Page not found" in not_found.text
    assert_security_headers(not_found)
    assert client.get(centre.url + "/").status_code == 404
    wrong_method = client.put(centre.unsubscribe_url("c17"))
    assert wrong_method.status_code == 405 and "allow" in wrong_method.headers
    assert_security_headers(wrong_method)
    too_big = client.post(centre.unsubscribe_url("c17"), content=b"x" * 100_000)
    assert too_big.status_code == 413
    assert centre.store.changes("c17") == []


def test_static_css_is_cacheable_and_health_answers(centre: LiveCentre, client):
    css = client.get(centre.url + "/static/pc.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"].startswith("public")
    assert_security_headers(css, personal=False)
    assert client.get(centre.url + "/healthz").text == "ok"


def test_access_log_never_contains_link_tokens(centre: LiveCentre, client, caplog):
    url = centre.unsubscribe_url("c18")
    token = url.rsplit("/", 1)[1]
    with caplog.at_level(logging.INFO, logger="preference_centre"):
        client.get(url)
        client.get(centre.preferences_url("c18"))
        time.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.name == "preference_centre.access"]
    assert any('"GET /u/[token]" 200' in line for line in lines), lines
    assert not any(token in r.getMessage() for r in caplog.records)


def test_behind_a_tls_proxy_the_cookie_is_host_prefixed_and_secure_and_hsts_is_sent(centre: LiveCentre):
    """uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (``forwarded_allow_ips``), like nginx in front."""
    url = centre.preferences_url("c19")
    proxy = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"}
    with httpx.Client() as direct:
        page = direct.get(url, headers=proxy)
        cookie = page.headers["set-cookie"]
        assert cookie.startswith("__Host-pc_csrf=") and "Secure" in cookie and "Path=/" in cookie
        assert page.headers["strict-transport-security"].startswith("max-age=")
        nonce = cookie.split(";")[0].split("=", 1)[1]
        response = direct.post(
            url,
            data={"csrf": csrf_from(page.text), "frequency": "monthly"},
            headers={**proxy, "cookie": f"__Host-pc_csrf={nonce}"},
        )
    assert response.status_code == 303
    assert centre.store.frequency("c19") == "monthly"
    assert "strict-transport-security" not in httpx.get(url).headers  # plain http: no HSTS


def test_everything_rendered_is_escaped(tmp_path):
    """Autoescape covers configured text too: a brand name with markup can't inject anything."""
    evil = {"from_name": '<img src=x onerror="alert(1)">Evil & Co', "postal_address": "<script>x()</script>"}
    with live_centre(tmp_path / "evil", [("x1", "en")], sender=evil) as live:
        page = httpx.get(live.preferences_url("x1") + '?lang="><script>')
        unsub = httpx.post(live.unsubscribe_url("x1"))
    for response in (page, unsub):
        assert response.status_code == 200
        assert "<img src=x" not in response.text and "<script>" not in response.text
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;Evil &amp; Co" in response.text
