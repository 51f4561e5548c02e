"""Helpers shared by the preference centre tests (``tests/test_pc_*.py``).

No conftest: test modules import what they need from here.  Everything is real — a SQLite
store in a temp folder, the Starlette app on uvicorn on 127.0.0.1, Debian's Chromium.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from preference_centre import links
from preference_centre.server import BackgroundServer
from preference_centre.settings import Settings
from preference_centre.store import PreferenceStore
from preference_centre.tokens import TokenService
from valuemail.config import Config, load_config

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "preference_centre"
#: A test-only key (production reads $VALUEMAIL_SECRET); long enough for the 32-character rule.
TEST_SECRET = "test-only-secret-not-for-production-0123456789"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync",
]
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def have_chromium() -> bool:
    return Path(CHROMIUM).exists()


def make_config(
    home: Path, base_url: str = "https://prefs.example.test", sender: dict[str, str] | None = None, **section: object
) -> Config:
    """The embedded defaults with a test secret, ``public_base_url`` and any ``[preference_centre]`` keys."""
    return load_config(
        home=home,
        overrides={
            "sender": {"public_base_url": base_url, **(sender or {})},
            "preference_centre": {"secret": TEST_SECRET, **section},
        },
    )


@dataclass
class LiveCentre:
    """A running preference centre: its config, store, base URL and link helpers."""

    home: Path
    config: Config
    store: PreferenceStore
    server: BackgroundServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def tokens(self) -> TokenService:
        return TokenService.from_settings(Settings.from_config(self.config, {}))

    def preferences_url(self, customer_id: str) -> str:
        return links.preferences_url(self.config, customer_id)

    def unsubscribe_url(self, customer_id: str, campaign: str = "weekly") -> str:
        return links.unsubscribe_url(self.config, customer_id, campaign)

    def change_count(self) -> int:
        """Rows in the change log (to show that a refused request changed nothing)."""
        with self.store.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT count(*) FROM pc_changes").scalar_one()


@contextmanager
def live_centre(
    home: Path, customers: list[tuple[str, str | None]], sender: dict[str, str] | None = None
) -> Iterator[LiveCentre]:
    """Start the app on 127.0.0.1:<free port> with ``customers`` registered; stop it afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    server = BackgroundServer.for_config(lambda base: make_config(home, base, sender), environ={})
    config = make_config(home, server.url, sender)
    store = PreferenceStore(Settings.from_config(config, {}).database_url)
    store.upsert_customers(customers)
    try:
        with server:
            yield LiveCentre(home, config, store, server)
    finally:
        store.close()


def preferences_link(centre: LiveCentre, customer_id: str) -> str:
    """The customer's preferences link as they find it: taken from a rendered value email.

    Emails carry https links only (the address of the reverse proxy), so the email is
    rendered for a public https base URL, and the link's path is opened on the local
    server — exactly what the proxy forwards.
    """
    import copy
    import re
    from dataclasses import replace

    from report_templates import samples
    from report_templates.render import EmailRenderer

    public = "https://prefs.valuemail.example"
    raw = copy.deepcopy(dict(centre.config.raw))
    raw["sender"] = {**raw["sender"], "public_base_url": public}
    config = replace(centre.config, raw=raw)
    data = samples.fixture("active")
    data = replace(data, links=replace(
        data.links,
        preferences_url=links.preferences_url(config, customer_id),
        unsubscribe_url=links.unsubscribe_url(config, customer_id, data.campaign),
    ))
    html = EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS).render(data).html
    found = re.findall(re.escape(public) + r"(/p/[^\"'<>\s]+)", html)
    assert found, "the rendered email has no preferences link"
    return centre.url + found[0].replace("&amp;", "&")


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF field in the preferences form"
    return match.group(1)


def open_form(client: httpx.Client, url: str) -> str:
    """GET the preferences page (the client keeps the nonce cookie); returns the form's CSRF token."""
    response = client.get(url)
    assert response.status_code == 200, response.text
    return csrf_from(response.text)
