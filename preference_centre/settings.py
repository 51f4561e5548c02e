"""The preference centre's settings: the ``[preference_centre]`` config section, checked once.

Everything the web app, the link builder and the store need comes from here, so the rules
live in one place:

* the HMAC secret: ``VALUEMAIL_SECRET`` (environment) or ``preference_centre.secret``; in
  **production** mode (``preference_centre.mode = "production"`` or ``VALUEMAIL_MODE``) a
  missing or short secret is a configuration error — the server refuses to start and no
  link can be built.  In **development** mode without a secret, a random one is generated
  once per home folder and kept in ``<home>/.preference_centre_secret`` (mode 0600), so the
  pipeline and ``valuemail serve`` on the same home agree — never a constant in the code;
* ``preference_centre.previous_secrets``: old keys still accepted (key rotation);
* token lifetimes (unsubscribe links must work for at least 60 days after a send);
* ``sender.public_base_url``: https only (http is accepted for 127.0.0.1 / localhost, for
  tests and local runs, and never in production).
"""

from __future__ import annotations

import ipaddress
import os
import secrets as _secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

from valuemail.config import Config, ConfigError

from preference_centre.store import store_url

Mode = Literal["development", "production"]

SECRET_ENV: Final = "VALUEMAIL_SECRET"
DEV_SECRET_FILE: Final = ".preference_centre_secret"
MIN_SECRET_LENGTH: Final = 32
MIN_UNSUBSCRIBE_DAYS: Final = 60
_LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Settings:
    """The checked ``[preference_centre]`` section plus the public base URL."""

    mode: Mode
    secrets: tuple[str, ...] = field(repr=False)  # oldest first; the last one signs
    secret_origin: str
    database_url: str = field(repr=False)
    public_base_url: str
    preferences_max_age: timedelta
    unsubscribe_max_age: timedelta
    form_max_age: timedelta
    forwarded_allow_ips: str
    default_locale: str
    brand_name: str
    postal_address: str

    @property
    def public_origin(self) -> str:
        """``scheme://host[:port]`` of :attr:`public_base_url` (what a browser sends as ``Origin``)."""
        parts = urlsplit(self.public_base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read and check the settings; raises :class:`ConfigError` naming the bad key."""
        env = os.environ if environ is None else environ
        section = config.section("preference_centre")
        sender = config.section("sender")

        mode = config.mode(env)

        base = check_public_base_url(str(sender.get("public_base_url", "")), production=mode == "production")

        secret, origin = _current_secret(config, section, env, mode)
        previous = section.get("previous_secrets", [])
        if not isinstance(previous, list) or not all(isinstance(s, str) for s in previous):
            raise ConfigError("preference_centre.previous_secrets: expected a list of strings")
        for old in previous:
            if len(old) < MIN_SECRET_LENGTH:
                raise ConfigError(f"preference_centre.previous_secrets: every key needs >= {MIN_SECRET_LENGTH} characters")

        unsubscribe_days = _positive_number(section, "unsubscribe_max_age_days", 400)
        if unsubscribe_days < MIN_UNSUBSCRIBE_DAYS:
            raise ConfigError(
                f"preference_centre.unsubscribe_max_age_days: unsubscribe links must keep working for at least "
                f"{MIN_UNSUBSCRIBE_DAYS} days after a send, got {unsubscribe_days}"
            )
        return cls(
            mode=mode,
            secrets=(*previous, secret),
            secret_origin=origin,
            database_url=store_url(config, env),
            public_base_url=base,
            preferences_max_age=timedelta(days=_positive_number(section, "preferences_max_age_days", 400)),
            unsubscribe_max_age=timedelta(days=unsubscribe_days),
            form_max_age=timedelta(minutes=_positive_number(section, "form_max_age_minutes", 720)),
            forwarded_allow_ips=str(section.get("forwarded_allow_ips", "127.0.0.1")),
            default_locale=str(section.get("default_locale", "en")),
            brand_name=str(sender.get("from_name", "valuemail")),
            postal_address=str(sender.get("postal_address", "")),
        )


def _positive_number(section: Mapping[str, object], key: str, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"preference_centre.{key}: expected a positive number, got {value!r}")
    return float(value)


def _current_secret(config: Config, section: Mapping[str, object], env: Mapping[str, str], mode: str) -> tuple[str, str]:
    """The signing secret and where it came from (never logged itself)."""
    if env.get(SECRET_ENV):
        secret, origin = env[SECRET_ENV], f"${SECRET_ENV}"
    elif section.get("secret"):
        secret, origin = str(section["secret"]), "preference_centre.secret"
    elif mode == "production":
        raise ConfigError(
            f"preference_centre: production mode needs a secret: set ${SECRET_ENV} (preferred) or "
            f"preference_centre.secret to a random string of at least {MIN_SECRET_LENGTH} characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    else:
        path = Path(config.home) / DEV_SECRET_FILE
        return dev_secret(path), str(path)
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{origin}: the secret needs at least {MIN_SECRET_LENGTH} characters, got {len(secret)}")
    return secret, origin


def dev_secret(path: Path) -> str:
    """The per-home development secret: read it, or create it atomically (first writer wins)."""
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{_secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(_secrets.token_urlsafe(48) + "\n")
        try:
            os.link(tmp, path)  # atomic, and fails if another process got there first
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    value = path.read_text().strip()
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{path}: development secret is shorter than {MIN_SECRET_LENGTH} characters; delete the file")
    return value


def is_local_host(host: str) -> bool:
    """127.0.0.1, ::1 (any loopback address) or localhost."""
    host = host.strip("[]").lower()
    if host in _LOCAL_HOSTS or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_public_base_url(url: str, *, production: bool = False) -> str:
    """The base URL without a trailing slash; https only (http for loopback hosts outside production)."""
    parts = urlsplit(url.strip())
    where = "sender.public_base_url"
    if not parts.scheme or not parts.hostname:
        raise ConfigError(f"{where}: expected an absolute https:// URL, got {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(f"{where}: must not contain credentials, a query or a fragment: {url!r}")
    local = is_local_host(parts.hostname)
    if parts.scheme == "https":
        if production and local:
            raise ConfigError(f"{where}: production mode needs the public host customers reach, not {parts.hostname}")
    elif parts.scheme == "http" and local and not production:
        pass
    else:
        raise ConfigError(f"{where}: links in emails must be https:// (http only for 127.0.0.1/localhost), got {url!r}")
    return url.strip().rstrip("/")
