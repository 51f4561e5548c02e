"""Signed link tokens, the secret rules, and the link builder."""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings as hsettings, strategies as st
from itsdangerous import URLSafeTimedSerializer

from preference_centre import links
from preference_centre.settings import DEV_SECRET_FILE, Settings, check_public_base_url, dev_secret
from preference_centre.tokens import TokenError, TokenService
from tests.pc_fixtures import TEST_SECRET, make_config
from valuemail.config import ConfigError, load_config

DAY = 86_400.0


def service(secrets=(TEST_SECRET,), clock=time.time, unsubscribe_days=400) -> TokenService:
    return TokenService(
        list(secrets),
        max_age={
            "preferences": timedelta(days=400),
            "unsubscribe": timedelta(days=unsubscribe_days),
            "form": timedelta(hours=12),
        },
        clock=clock,
    )


def ago(seconds: float):
    return lambda: time.time() - seconds


# -- tokens ----------------------------------------------------------------------------------------
def test_round_trip_for_each_purpose():
    tokens = service()
    assert tokens.read("preferences", tokens.preferences_token("c-42")).customer_id == "c-42"
    data = tokens.read("unsubscribe", tokens.unsubscribe_token("c-42", "yearly"))
    assert (data.customer_id, data.extra, data.purpose) == ("c-42", "yearly", "unsubscribe")
    assert tokens.read("form", tokens.form_token("c-42", "nonce")).extra == "nonce"


def test_tampered_tokens_are_invalid():
    tokens = service()
    token = tokens.preferences_token("c-42")
    payload, timestamp, signature = token.split(".")
    other_payload = tokens.preferences_token("c-43").split(".")[0]
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for bad in (
        f"{other_payload}.{timestamp}.{signature}",  # someone else's id under this signature
        f"{payload}.{timestamp}.{flipped}",
        f"{payload}.{timestamp}",
        token + "x",
        "garbage",
        "",
        "a" * 5000,  # oversized: refused before decoding
    ):
        with pytest.raises(TokenError) as exc:
            tokens.read("preferences", bad)
        assert exc.value.kind == "invalid"


def test_forged_with_another_secret_is_invalid():
    forged = service(["another-secret-that-is-long-enough-123456"]).preferences_token("c-42")
    with pytest.raises(TokenError, match="not a valid"):
        service().read("preferences", forged)


@pytest.mark.parametrize(
    ("made_for", "used_for"),
    [("preferences", "unsubscribe"), ("unsubscribe", "preferences"), ("form", "preferences"), ("preferences", "form")],
)
def test_a_token_never_works_for_another_purpose(made_for, used_for):
    tokens = service()
    token = {
        "preferences": lambda: tokens.preferences_token("c-42"),
        "unsubscribe": lambda: tokens.unsubscribe_token("c-42", "weekly"),
        "form": lambda: tokens.form_token("c-42", "nonce"),
    }[made_for]()
    with pytest.raises(TokenError) as exc:
        tokens.read(used_for, token)
    assert exc.value.kind == "invalid"


def test_unsubscribe_links_work_for_60_days_and_expire_after_the_configured_age():
    now = service()
    assert now.read("unsubscribe", service(clock=ago(61 * DAY)).unsubscribe_token("c", "weekly")).customer_id == "c"
    assert now.read("unsubscribe", service(clock=ago(399 * DAY)).unsubscribe_token("c", "weekly"))
    with pytest.raises(TokenError) as exc:
        now.read("unsubscribe", service(clock=ago(401 * DAY)).unsubscribe_token("c", "weekly"))
    assert exc.value.kind == "expired"
    with pytest.raises(TokenError) as exc:
        now.read("form", service(clock=ago(13 * 3600)).form_token("c", "n"))
    assert exc.value.kind == "expired"


def test_a_token_from_the_future_is_refused():
    with pytest.raises(TokenError):
        service().read("preferences", service(clock=ago(-3600)).preferences_token("c"))


def test_payload_is_an_opaque_id_never_an_email_address():
    tokens = service()
    with pytest.raises(ValueError, match="email address"):
        tokens.preferences_token("ann@example.com")
    # Even a correctly signed token carrying an address is refused.
    raw = URLSafeTimedSerializer(
        TEST_SECRET, salt="valuemail.preference_centre.preferences", signer_kwargs={"digest_method": hashlib.sha256}
    )
    with pytest.raises(TokenError):
        tokens.read("preferences", raw.dumps(["ann@example.com"]))
    with pytest.raises(TokenError, match="malformed"):
        tokens.read("preferences", raw.dumps({"customer_id": "c"}))


def test_key_rotation_old_links_keep_working_until_the_old_key_is_dropped():
    old_key, new_key = "old-key-" + "o" * 40, "new-key-" + "n" * 40
    old_token = service([old_key]).preferences_token("c")
    rotated = service([old_key, new_key])
    assert rotated.read("preferences", old_token).customer_id == "c"
    assert service([new_key]).read("preferences", rotated.preferences_token("c")).customer_id == "c"  # signs with the newest
    with pytest.raises(TokenError):
        service([new_key]).read("preferences", old_token)


# -- settings: where the secret comes from ----------------------------------------------------------
def test_production_refuses_to_start_without_a_secret(tmp_path):
    config = load_config(home=tmp_path, overrides={"preference_centre": {"mode": "production"}})
    with pytest.raises(ConfigError, match="production mode needs a secret"):
        Settings.from_config(config, {})
    with pytest.raises(ConfigError, match="production mode needs a secret"):
        Settings.from_config(load_config(home=tmp_path), {"VALUEMAIL_MODE": "production"})
    assert not (tmp_path / DEV_SECRET_FILE).exists()


def test_production_takes_the_secret_from_the_environment_first(tmp_path):
    config = load_config(home=tmp_path, overrides={"preference_centre": {"mode": "production", "secret": "c" * 40}})
    env_secret = "e" * 40
    settings = Settings.from_config(config, {"VALUEMAIL_SECRET": env_secret})
    assert settings.secrets == (env_secret,) and settings.secret_origin == "$VALUEMAIL_SECRET"
    assert Settings.from_config(config, {}).secret_origin == "preference_centre.secret"
    assert env_secret not in repr(settings)


def test_short_secrets_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least 32"):
        Settings.from_config(load_config(home=tmp_path), {"VALUEMAIL_SECRET": "short", "VALUEMAIL_MODE": "production"})
    with pytest.raises(ConfigError, match="previous_secrets"):
        Settings.from_config(make_config(tmp_path, previous_secrets=["short"]), {})


def test_development_secret_is_random_per_home_private_and_stable(tmp_path):
    first = Settings.from_config(load_config(home=tmp_path / "a"), {})
    again = Settings.from_config(load_config(home=tmp_path / "a"), {})
    other = Settings.from_config(load_config(home=tmp_path / "b"), {})
    assert first.secrets == again.secrets != other.secrets
    assert len(first.secrets[-1]) >= 32
    path = tmp_path / "a" / DEV_SECRET_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first.secret_origin == str(path)


def test_development_secret_creation_races_have_one_winner(tmp_path):
    with ThreadPoolExecutor(max_workers=8) as pool:
        values = set(pool.map(lambda _: dev_secret(tmp_path / DEV_SECRET_FILE), range(32)))
    assert len(values) == 1
    assert [p.name for p in tmp_path.iterdir()] == [DEV_SECRET_FILE]  # no temp files left


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("unsubscribe_max_age_days", 30, "at least 60 days"),
        ("mode", "staging", "development"),
        ("preferences_max_age_days", 0, "positive"),
        ("form_max_age_minutes", "soon", "positive"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_config(make_config(tmp_path, **{key: value}), {})


def test_database_url_default_config_and_environment(tmp_path):
    assert Settings.from_config(make_config(tmp_path), {}).database_url == f"sqlite:///{tmp_path / 'preferences.sqlite'}"
    configured = make_config(tmp_path, database_url="postgresql+psycopg://u@db/prefs")
    assert Settings.from_config(configured, {}).database_url == "postgresql+psycopg://u@db/prefs"
    env = {"VALUEMAIL_PREFERENCES_URL": "postgresql+psycopg://u:pw@db/prefs"}
    assert Settings.from_config(configured, env).database_url == env["VALUEMAIL_PREFERENCES_URL"]


# -- public base URL and links ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "http://valuemail.example",
        "ftp://valuemail.example",
        "valuemail.example",
        "https://user:pw@valuemail.example",
        "https://valuemail.example/?x=1",
        "javascript:alert(1)",
    ],
)
def test_public_base_url_must_be_https(url):
    with pytest.raises(ConfigError, match="public_base_url"):
        check_public_base_url(url)


def test_http_only_for_loopback_and_never_in_production():
    assert check_public_base_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert check_public_base_url("http://localhost:9000") == "http://localhost:9000"
    assert check_public_base_url("https://mail.example.com/prefs/") == "https://mail.example.com/prefs"
    with pytest.raises(ConfigError):
        check_public_base_url("http://127.0.0.1:8080", production=True)
    with pytest.raises(ConfigError):
        check_public_base_url("https://localhost", production=True)


def test_links_use_public_base_url_and_keep_a_path_prefix(tmp_path):
    config = make_config(tmp_path, base_url="https://mail.example.com/email/")
    url = links.preferences_url(config, "c-7")
    assert url.startswith("https://mail.example.com/email/p/")
    token = urlsplit(url).path.rsplit("/", 1)[1]
    tokens = TokenService.from_settings(Settings.from_config(config, {}))
    assert tokens.read("preferences", token).customer_id == "c-7"
    headers = links.list_unsubscribe_headers(config, "c-7", "monthly")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<https://mail.example.com/email/u/") and headers["List-Unsubscribe"].endswith(">")
    unsub = tokens.read("unsubscribe", headers["List-Unsubscribe"][1:-1].rsplit("/", 1)[1])
    assert (unsub.customer_id, unsub.extra) == ("c-7", "monthly")


def test_links_refuse_plain_http_email_addresses_and_odd_campaigns(tmp_path):
    with pytest.raises(ConfigError):
        links.preferences_url(make_config(tmp_path, base_url="http://valuemail.example"), "c-1")
    with pytest.raises(ValueError, match="email address"):
        links.unsubscribe_url(make_config(tmp_path), "bob@example.com", "weekly")
    with pytest.raises(ValueError, match="campaign"):
        links.unsubscribe_url(make_config(tmp_path), "c-1", "Weekly\r\nBcc: x")


@hsettings(max_examples=60, deadline=None)
@given(customer_id=st.text(min_size=1, max_size=200).filter(lambda s: "@" not in s))
def test_any_opaque_id_survives_the_link(tmp_path_factory, customer_id):
    config, tokens = _config_and_tokens(str(tmp_path_factory.getbasetemp() / "links"))
    url = links.unsubscribe_url(config, customer_id, "weekly")
    assert url.isascii() and " " not in url
    assert tokens.read("unsubscribe", url.rsplit("/", 1)[1]).customer_id == customer_id


@functools.cache
def _config_and_tokens(home: str):
    config = make_config(Path(home))
    return config, TokenService.from_settings(Settings.from_config(config, {}))
