"""The preference centre web app (Starlette): preferences page and RFC 8058 one-click unsubscribe.

Routes (all relative links, so the app works under any path prefix behind a proxy):

``GET /p/<token>``
    the preferences page: weekly / monthly / yearly / never, current choice pre-selected,
    "subscribe again" when unsubscribed.  Sets the CSRF nonce cookie.
``POST /p/<token>``
    saves the form, then ``303`` back to the page with a confirmation.  Accepted only with
    a valid form token whose nonce matches the ``SameSite=Strict`` cookie, and only if the
    browser's Fetch Metadata / ``Origin`` don't say it came from another site.
``GET|HEAD /u/<token>``
    a page with an "Unsubscribe" button; **changes nothing** (link scanners fetch URLs).
``POST /u/<token>``
    RFC 8058 one-click unsubscribe: ``200`` with a page, no redirect, no cookie, no login,
    idempotent.  Exempt from the CSRF checks — mail providers post from their servers — and
    protected by its signed, purpose-specific token instead.
``GET /static/pc.css``, ``GET /static/favicon.svg``, ``GET /healthz``.

Every response carries the security headers of :class:`SecurityHeaders` (a CSP that allows
no script at all).  Tokens are never logged: the access log redacts them.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Final
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from valuemail.config import Config
from valuemail.text import printable

from preference_centre.i18n import NATIVE_NAMES, SUPPORTED, Translator, negotiate, normalize, parse_accept_language
from preference_centre.settings import Settings
from preference_centre.store import FREQUENCIES, CustomerProfile, PreferenceStore
from preference_centre.tokens import Purpose, TokenData, TokenError, TokenService

_HERE: Final = Path(__file__).resolve().parent
_CSS: Final = (_HERE / "static" / "pc.css").read_bytes()
_ICON: Final = (_HERE / "static" / "favicon.svg").read_bytes()
MAX_BODY_BYTES: Final = 16 * 1024
CSRF_COOKIE: Final = "pc_csrf"
CSRF_COOKIE_HTTPS: Final = "__Host-pc_csrf"  # the __Host- prefix pins it to this host, path / and https
_NONCE_RE: Final = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
_TOKEN_PATH_RE: Final = re.compile(r"^(.*?/[pu]/)[^/?]+")

CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "content-security-policy": CSP,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "x-robots-tag": "noindex, nofollow",
}

access_log = logging.getLogger("preference_centre.access")
log = logging.getLogger("preference_centre")


def redact(path: str) -> str:
    """``/p/<token>`` → ``/p/<token>`` with the token replaced: links are credentials."""
    return _TOKEN_PATH_RE.sub(r"\1[token]", path)


class SecurityHeaders:
    """Adds the security headers to every response; ``Cache-Control: no-store`` unless set.

    ``Strict-Transport-Security`` is added when the request arrived over https (directly or,
    with ``--proxy-headers``, as the proxy says).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("cache-control", "no-store")
                if https:
                    headers.setdefault("strict-transport-security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AccessLog:
    """One log line per request, with link tokens redacted (uvicorn's own access log is off)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            client = scope.get("client") or ("-", 0)
            access_log.info(
                '%s "%s %s" %d %.1fms',
                client[0],
                printable(scope["method"]),
                printable(redact(scope.get("path", ""))),
                status[0],
                (time.perf_counter() - started) * 1000,
            )


class PreferenceCentre:
    """The request handlers, holding the settings, the store and the token service."""

    def __init__(self, settings: Settings, store: PreferenceStore, tokens: TokenService) -> None:
        self.settings = settings
        self.store = store
        self.tokens = tokens
        self.templates = Environment(
            loader=FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # -- helpers -------------------------------------------------------------------------
    def _language(self, request: Request, customer_locale: str | None = None) -> tuple[str, str | None]:
        """The page language and the explicit ``?lang=`` (kept in links and form actions)."""
        explicit = normalize(request.query_params.get("lang"))
        lang = negotiate(
            explicit,
            customer_locale,
            parse_accept_language(request.headers.get("accept-language")),
            default=self.settings.default_locale,
        )
        return lang, explicit

    @staticmethod
    def _root(request: Request) -> str:
        """The relative prefix from this page to the app root (``../`` for ``/p/<token>``)."""
        path = request.scope.get("path", "/")
        root_path = request.scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :] or "/"
        depth = path.count("/") - 1
        return "../" * depth if depth > 0 else "./"

    @staticmethod
    def _with_query(target: str, **params: str | None) -> str:
        query = {k: v for k, v in params.items() if v}
        return f"{target}?{urlencode(query)}" if query else target

    def render(
        self,
        request: Request,
        template: str,
        lang: str,
        context: Mapping[str, Any],
        *,
        title_key: str,
        status_code: int = 200,
    ) -> HTMLResponse:
        t = Translator(lang, self.settings.brand_name)
        html = self.templates.get_template(template).render(
            {
                "t": t,
                "lang": lang,
                "title": t(title_key),
                "brand": self.settings.brand_name,
                "postal_address": self.settings.postal_address,
                "root": self._root(request),
                "languages": [(code, NATIVE_NAMES[code]) for code in SUPPORTED],
                **context,
            }
        )
        return HTMLResponse(html, status_code=status_code, headers={"content-language": lang})

    def error(
        self,
        request: Request,
        status_code: int,
        kind: str,
        *,
        lang: str | None = None,
        back_href: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """A friendly error page in the visitor's language (nothing was changed)."""
        lang = lang or self._language(request)[0]
        response = self.render(
            request,
            "error.html",
            lang,
            {
                "title_key": f"error_{kind}_title",
                "body_key": f"error_{kind}_body",
                "back_href": back_href,
                "show_nothing_changed": status_code < 500 and kind not in ("not_found", "form"),
            },
            title_key=f"error_{kind}_title",
            status_code=status_code,
        )
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    def _read_token(self, request: Request, purpose: Purpose) -> TokenData | Response:
        try:
            return self.tokens.read(purpose, request.path_params["token"])
        except TokenError as exc:
            log.info("refused %s link: %s", purpose, exc)
            if exc.kind == "expired":
                return self.error(request, 410, "expired")
            return self.error(request, 400, "invalid")

    async def _profile(self, request: Request, data: TokenData) -> CustomerProfile | Response:
        profile = await run_in_threadpool(self.store.profile, data.customer_id)
        if profile is None:
            log.info("refused %s link: unknown customer", data.purpose)
            return self.error(request, 404, "unknown")
        return profile

    def _cookie_name(self, request: Request) -> str:
        return CSRF_COOKIE_HTTPS if request.url.scheme == "https" else CSRF_COOKIE

    def _allowed_origins(self, request: Request) -> set[str]:
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        return {self.settings.public_origin, own}

    def _cross_site(self, request: Request) -> str | None:
        """Why this POST looks cross-site (Fetch Metadata, then ``Origin``), or ``None``.

        Our own pages send ``Referrer-Policy: no-referrer``, so browsers send ``Origin: null``
        on their form posts; ``Sec-Fetch-Site`` (which pages cannot forge) is the main signal.
        """
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return f"sec-fetch-site={site}"
        origin = request.headers.get("origin")
        if origin is not None and origin != "null" and origin not in self._allowed_origins(request):
            return f"origin={origin}"
        return None

    # -- preferences page ---------------------------------------------------------------
    async def preferences(self, request: Request) -> Response:
        data = self._read_token(request, "preferences")
        if isinstance(data, Response):
            return data
        if request.method == "POST":
            return await self._save_preferences(request, data)
        profile = await self._profile(request, data)
        if isinstance(profile, Response):
            return profile
        lang, explicit = self._language(request, profile.locale)
        cookie_name = self._cookie_name(request)
        nonce = request.cookies.get(cookie_name, "")
        new_cookie = not _NONCE_RE.match(nonce)
        if new_cookie:
            nonce = secrets.token_urlsafe(24)

        notice = None
        can_resubscribe = False
        options: tuple[str, ...] = FREQUENCIES
        selected = profile.frequency
        t = Translator(lang, self.settings.brand_name)
        if profile.suppression is not None:
            since = t.date(profile.suppressed_since.date()) if profile.suppressed_since else ""
            notice = t(f"notice_{profile.suppression}", date=since)
            if profile.suppression != "manual":
                can_resubscribe = True
                options = tuple(f for f in FREQUENCIES if f != "never")
                selected = profile.frequency if profile.frequency != "never" else "weekly"
        done = request.query_params.get("done")
        response = self.render(
            request,
            "preferences.html",
            lang,
            {
                "profile": profile,
                "options": options,
                "selected": selected,
                "notice": notice,
                "can_resubscribe": can_resubscribe,
                "done": done if done in ("saved", "resubscribed") else None,
                "csrf": self.tokens.form_token(profile.customer_id, nonce),
                "action": self._with_query(request.path_params["token"], lang=explicit),
            },
            title_key="preferences_title",
        )
        if new_cookie:
            response.set_cookie(
                cookie_name,
                nonce,
                max_age=int(self.settings.form_max_age.total_seconds()),
                path="/",
                secure=request.url.scheme == "https",
                httponly=True,
                samesite="strict",
            )
        return response

    async def _save_preferences(self, request: Request, data: TokenData) -> Response:
        lang, explicit = self._language(request)
        back = self._with_query(request.path_params["token"], lang=explicit)
        why = self._cross_site(request)
        if why:
            log.warning("refused cross-site preferences post (%s)", why)
            return self.error(request, 403, "form", lang=lang, back_href=back)
        form = await request.form(max_files=0, max_fields=10)
        try:
            form_token = self.tokens.read("form", str(form.get("csrf") or ""))
        except TokenError as exc:
            log.info("refused preferences post: %s", exc)
            return self.error(request, 403, "form", lang=lang, back_href=back)
        cookie = request.cookies.get(self._cookie_name(request), "")
        if form_token.customer_id != data.customer_id or not hmac.compare_digest(
            cookie.encode(), (form_token.extra or "").encode()
        ):
            log.info("refused preferences post: form token does not match the customer or the cookie")
            return self.error(request, 403, "form", lang=lang, back_href=back)
        profile = await self._profile(request, data)
        if isinstance(profile, Response):
            return profile
        frequency = str(form.get("frequency") or "")
        action = str(form.get("action") or "save")
        if frequency not in FREQUENCIES or action not in ("save", "resubscribe"):
            return self.error(request, 400, "bad_request", lang=lang, back_href=back)
        if action == "resubscribe":
            if frequency == "never":
                return self.error(request, 400, "bad_request", lang=lang, back_href=back)
            await run_in_threadpool(self.store.resubscribe, data.customer_id, "page", frequency=frequency)
            done = "resubscribed"
        else:
            await run_in_threadpool(self.store.set_frequency, data.customer_id, frequency, "page")
            done = "saved"
        # Relative Location: right under any path prefix the proxy adds.
        target = self._with_query(request.path_params["token"], lang=explicit, done=done)
        return RedirectResponse(target, status_code=303)

    # -- unsubscribe -----------------------------------------------------------------------
    async def unsubscribe(self, request: Request) -> Response:
        data = self._read_token(request, "unsubscribe")
        if isinstance(data, Response):
            return data
        if request.method == "POST":
            # RFC 8058: the body is "List-Unsubscribe=One-Click"; the signed token is what
            # authorises it, so any POST to a valid link unsubscribes (bounded by MAX_BODY_BYTES).
            await request.body()
        profile = await self._profile(request, data)
        if isinstance(profile, Response):
            return profile
        lang, explicit = self._language(request, profile.locale)
        prefs_href = self._with_query(
            self._root(request) + "p/" + self.tokens.preferences_token(data.customer_id), lang=explicit
        )
        if request.method == "POST":
            await run_in_threadpool(
                self.store.unsubscribe, data.customer_id, "one_click", detail=f"campaign={data.extra}"
            )
            return self.render(
                request, "unsubscribed.html", lang, {"prefs_href": prefs_href}, title_key="unsubscribed_title"
            )
        return self.render(
            request,
            "unsubscribe.html",
            lang,
            {
                "already": "unsubscribed" in profile.active_suppressions,
                "prefs_href": prefs_href,
                "action": self._with_query(request.path_params["token"], lang=explicit),
            },
            title_key="unsubscribe_title",
        )

    # -- small routes and errors -------------------------------------------------------------
    async def css(self, request: Request) -> Response:
        return Response(_CSS, media_type="text/css", headers={"cache-control": "public, max-age=86400"})

    async def icon(self, request: Request) -> Response:
        return Response(_ICON, media_type="image/svg+xml", headers={"cache-control": "public, max-age=86400"})

    async def no_favicon(self, request: Request) -> Response:
        return Response(status_code=204, headers={"cache-control": "public, max-age=86400"})

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def not_found(self, request: Request) -> Response:
        return self.error(request, 404, "not_found")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = "not_found" if exc.status_code in (404, 405) else "bad_request"
        return self.error(request, exc.status_code, kind, headers=exc.headers)

    async def server_error(self, request: Request, exc: Exception) -> Response:
        log.exception("error while handling %s %s", printable(request.method), printable(redact(request.url.path)),
                      exc_info=exc)
        return self.error(request, 500, "server")


class _App(Starlette):
    """Starlette with the access log and security headers *outside* its error handling,
    so 500 pages get the headers too."""

    def build_middleware_stack(self) -> ASGIApp:
        return AccessLog(SecurityHeaders(super().build_middleware_stack()))


def create_app(
    config: Config,
    store: PreferenceStore | None = None,
    *,
    tokens: TokenService | None = None,
    environ: Mapping[str, str] | None = None,
) -> Starlette:
    """The ASGI app.  Raises :class:`valuemail.config.ConfigError` on bad settings (e.g. production
    mode without a secret).  ``store`` defaults to the configured database; one given by the
    caller is not closed on shutdown."""
    settings = Settings.from_config(config, environ)
    own_store = store is None
    the_store = store or PreferenceStore(settings.database_url)
    centre = PreferenceCentre(settings, the_store, tokens or TokenService.from_settings(settings))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if own_store:
            the_store.close()

    app = _App(
        routes=[
            Route("/p/{token}", centre.preferences, methods=["GET", "POST"]),
            Route("/u/{token}", centre.unsubscribe, methods=["GET", "POST"]),
            Route("/static/pc.css", centre.css, methods=["GET"]),
            Route("/static/favicon.svg", centre.icon, methods=["GET"]),
            Route("/favicon.ico", centre.no_favicon, methods=["GET"]),
            Route("/healthz", centre.health, methods=["GET"]),
            Route("/", centre.not_found, methods=["GET"]),
        ],
        exception_handlers={HTTPException: centre.http_error, Exception: centre.server_error},
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.centre = centre
    return app
