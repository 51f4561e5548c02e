"""Links the email renderer puts into every value email.

Pure functions of the configuration and a customer id (no database, no network):

* :func:`preferences_url` — the visible "choose how often you hear from us" link;
* :func:`unsubscribe_url` — the one-click URL, used both as the visible unsubscribe link and
  in the ``List-Unsubscribe`` header; :func:`list_unsubscribe_headers` gives both RFC 8058
  headers ready to add to the message.

All URLs start with ``sender.public_base_url`` (https only, see
:func:`preference_centre.settings.check_public_base_url`).  Any path in the base URL is kept,
so the preference centre can live under a prefix (``https://example.com/email``).

For hot loops (a million emails), build one :class:`LinkBuilder` and reuse it; the module
functions cache one per configuration, so calling them repeatedly is cheap too.
"""

from __future__ import annotations

import json
import os
import threading

from valuemail.config import MODE_ENV, Config

from preference_centre.settings import SECRET_ENV, Settings
from preference_centre.store import DATABASE_URL_ENV
from preference_centre.tokens import TokenService

PREFERENCES_PATH = "/p/"
UNSUBSCRIBE_PATH = "/u/"


class LinkBuilder:
    """Builds signed links for one set of settings."""

    def __init__(self, settings: Settings, tokens: TokenService | None = None) -> None:
        self.settings = settings
        self.tokens = tokens or TokenService.from_settings(settings)
        self._base = settings.public_base_url

    def preferences_url(self, customer_id: str) -> str:
        """``<public_base_url>/p/<token>``: the customer's preferences page."""
        return f"{self._base}{PREFERENCES_PATH}{self.tokens.preferences_token(customer_id)}"

    def unsubscribe_url(self, customer_id: str, campaign: str) -> str:
        """``<public_base_url>/u/<token>``: GET shows a confirmation page, POST unsubscribes (RFC 8058)."""
        return f"{self._base}{UNSUBSCRIBE_PATH}{self.tokens.unsubscribe_token(customer_id, campaign)}"

    def list_unsubscribe_headers(self, customer_id: str, campaign: str) -> dict[str, str]:
        """The two RFC 8058 headers (Gmail and Yahoo show them as an "Unsubscribe" button)."""
        return {
            "List-Unsubscribe": f"<{self.unsubscribe_url(customer_id, campaign)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }


_CACHE: dict[tuple[str, ...], LinkBuilder] = {}
_CACHE_LOCK = threading.Lock()
_ENV_KEYS = (SECRET_ENV, MODE_ENV, DATABASE_URL_ENV)


def link_builder(config: Config) -> LinkBuilder:
    """The cached :class:`LinkBuilder` for ``config`` (rebuilt when the relevant settings change)."""
    key = (
        str(config.home),
        json.dumps(config.section("preference_centre"), sort_keys=True, default=str),
        json.dumps(config.section("sender"), sort_keys=True, default=str),
        *(os.environ.get(name, "") for name in _ENV_KEYS),
    )
    with _CACHE_LOCK:
        builder = _CACHE.get(key)
        if builder is None:
            if len(_CACHE) >= 8:
                _CACHE.clear()
            builder = _CACHE[key] = LinkBuilder(Settings.from_config(config))
    return builder


def preferences_url(config: Config, customer_id: str) -> str:
    """The signed preferences-page URL for ``customer_id`` (an opaque id, never an email address)."""
    return link_builder(config).preferences_url(customer_id)


def unsubscribe_url(config: Config, customer_id: str, campaign: str) -> str:
    """The signed one-click unsubscribe URL (visible link and ``List-Unsubscribe`` header)."""
    return link_builder(config).unsubscribe_url(customer_id, campaign)


def list_unsubscribe_headers(config: Config, customer_id: str, campaign: str) -> dict[str, str]:
    """``{"List-Unsubscribe": "<https://…/u/…>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}``."""
    return link_builder(config).list_unsubscribe_headers(customer_id, campaign)
