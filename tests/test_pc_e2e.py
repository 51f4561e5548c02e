"""End to end: the rule that matters most, and ``valuemail serve`` as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from string import Formatter

import httpx
import pytest

from preference_centre import links
from preference_centre.i18n import MESSAGES, SUPPORTED, Translator, negotiate, normalize, parse_accept_language
from preference_centre.server import bind_free_port
from preference_centre.store import PreferenceStore, default_url
from tests.pc_fixtures import REPO, LiveCentre, live_centre, open_form
from valuemail.config import load_config

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("preference_centre_e2e")]


@pytest.fixture(scope="module")
def centre(tmp_path_factory):
    customers = [(f"e{i}", "en") for i in range(1, 6)]
    with live_centre(tmp_path_factory.mktemp("pc_e2e"), customers) as live:
        yield live


def test_never_or_unsubscribe_stops_email_even_from_a_batch_already_built(centre: LiveCentre):
    """The pipeline decides at eligibility time and re-checks right before sending.

    Between the two, customers act on the web: one chooses ``never`` on the page, one
    clicks the one-click unsubscribe, one moves to yearly.  The send-time re-check
    (:meth:`PreferenceStore.blocked`) stops all three; the fourth still gets the email.
    """
    batch = ["e1", "e2", "e3", "e4"]
    states = centre.store.bulk_state(batch)  # eligibility time
    built = [cid for cid in batch if states[cid].allows("weekly")[0]]
    assert built == batch

    with httpx.Client() as browser:
        url = centre.preferences_url("e1")
        csrf = open_form(browser, url)
        assert browser.post(url, data={"csrf": csrf, "frequency": "never"}).status_code == 303
    assert httpx.post(centre.unsubscribe_url("e2"), data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with httpx.Client() as browser:
        url = centre.preferences_url("e3")
        csrf = open_form(browser, url)
        assert browser.post(url, data={"csrf": csrf, "frequency": "yearly"}).status_code == 303

    blocked = centre.store.blocked(built, "weekly")  # send time
    assert blocked == {"e1": "frequency_never", "e2": "unsubscribed", "e3": "frequency_not_due"}
    assert [cid for cid in built if cid not in blocked] == ["e4"]
    # Single-customer form of the same check, as a transport loop would call it.
    assert centre.store.is_sendable("e1", "yearly") == (False, "frequency_never")
    assert centre.store.is_sendable("e2", "yearly") == (False, "unsubscribed")
    assert centre.store.is_sendable("e3", "yearly") == (True, None)


# -- valuemail serve -------------------------------------------------------------------------------
def _serve(home, *extra_env: tuple[str, str]) -> tuple[subprocess.Popen, str]:
    sock = bind_free_port()
    port = sock.getsockname()[1]
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VALUEMAIL_")}
    env.update(dict(extra_env))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "--home", str(home), "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, f"http://127.0.0.1:{port}"


def test_valuemail_serve_runs_and_accepts_links_the_pipeline_built(tmp_path, monkeypatch):
    """Development mode: the pipeline and the server on one home share the generated secret."""
    for name in ("VALUEMAIL_SECRET", "VALUEMAIL_MODE", "VALUEMAIL_CONFIG"):  # as the server sees it
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    PreferenceStore(default_url(home)).upsert_customers([("s1", "hu")])
    config = load_config(home=home)  # default public_base_url: the link's host is not this server
    token = links.unsubscribe_url(config, "s1", "weekly").rsplit("/", 1)[1]
    proc, base = _serve(home)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.1)
        response = httpx.post(f"{base}/u/{token}", data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200 and "Sikeresen leiratkoztál" in response.text
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    assert PreferenceStore(default_url(home)).state("s1").suppression == "unsubscribed"
    assert "development mode" in output and "/u/[token]" in output
    assert token not in output  # the access log redacts link tokens


def test_valuemail_serve_refuses_production_without_a_secret(tmp_path):
    proc, _ = _serve(tmp_path, ("VALUEMAIL_MODE", "production"))
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "production mode needs a secret" in output and "Traceback" not in output


# -- languages ---------------------------------------------------------------------------------------------
def test_every_catalog_has_every_message_with_the_same_placeholders():
    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in Formatter().parse(text) if name}

    english = MESSAGES["en"]
    for language in SUPPORTED:
        assert MESSAGES[language].keys() == english.keys(), language
        for key, text in MESSAGES[language].items():
            assert fields(text) <= fields(english[key]) | {"a_brand", "brand"}, (language, key)
            assert ("{date}" in text) == ("{date}" in english[key]), (language, key)


@pytest.mark.parametrize(
    ("tag", "language"),
    [("hu_HU", "hu"), ("HU", "hu"), ("zh", "zh-CN"), ("zh-Hans-CN", "zh-CN"), ("zh_TW", "zh-CN"), ("en-GB", "en"),
     ("de", None), ("", None), (None, None)],
)
def test_locale_tags_are_normalised(tag, language):
    assert normalize(tag) == language


def test_language_negotiation_order():
    assert parse_accept_language("de-DE,de;q=0.9,hu;q=0.8,en;q=0.7,*;q=0.1") == ["de-DE", "de", "hu", "en"]
    assert parse_accept_language("en;q=0, fr;q=bad") == []
    assert negotiate("hu", "en", ["zh"]) == "hu"
    assert negotiate(None, "zh-CN", ["hu"]) == "zh-CN"
    assert negotiate(None, None, ["de", "hu"]) == "hu"
    assert negotiate(None, "xx", [], default="en") == "en"


def test_dates_and_articles_are_localised():
    day = date(2026, 11, 23)
    assert Translator("en", "valuemail").date(day) == "November 23, 2026"
    assert Translator("zh-CN", "valuemail").date(day) == "2026年11月23日"
    assert Translator("hu", "valuemail").date(day) == "2026. november 23."
    assert "mert az Acme szolgáltatást" in Translator("hu", "Acme")("footer")
