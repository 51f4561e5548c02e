"""Running the preference centre: ``valuemail serve`` and a background server for tests.

``serve`` runs uvicorn in the foreground with ``--proxy-headers`` semantics: the
``X-Forwarded-Proto`` / ``X-Forwarded-For`` headers of the proxies listed in
``preference_centre.forwarded_allow_ips`` (default ``127.0.0.1``) are trusted, so behind a
TLS-terminating nginx the app knows requests arrived over https.  uvicorn's access log is
off (it would write link tokens to the log); the app logs requests with tokens redacted.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from valuemail.config import Config, ConfigError

from preference_centre.app import create_app
from preference_centre.settings import Settings
from preference_centre.store import PreferenceStore

log = logging.getLogger("preference_centre")


def _uvicorn_config(app: Starlette, host: str, port: int, settings: Settings, **extra: object) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        access_log=False,
        server_header=False,
        lifespan="on",
        **extra,  # type: ignore[arg-type]
    )


def serve(config: Config, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the preference centre until interrupted (``valuemail serve --host --port``).

    Exits with status 2 and a one-line message on a configuration error — e.g. production
    mode without a secret — before listening on anything.
    """
    try:
        settings = Settings.from_config(config)
        app = create_app(config)
    except ConfigError as exc:
        print(f"valuemail serve: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info(
        "preference centre (%s mode, secret from %s) on http://%s:%d; links in emails point to %s",
        settings.mode,
        settings.secret_origin,
        host,
        port,
        settings.public_base_url,
    )
    uvicorn.Server(_uvicorn_config(app, host, port, settings, log_level="info")).run()


class BackgroundServer:
    """The real app on a real socket (127.0.0.1, a free port) in a background thread.

    >>> with BackgroundServer(config, store=store) as server:
    ...     httpx.get(server.url + "/healthz")

    ``url`` is ``http://127.0.0.1:<port>``; tests usually set ``sender.public_base_url`` to
    it so that links built with :mod:`preference_centre.links` point at this server — see
    :meth:`for_config`, which picks the port first for exactly that.
    """

    def __init__(
        self,
        config: Config,
        *,
        store: PreferenceStore | None = None,
        host: str = "127.0.0.1",
        sock: socket.socket | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self._sock = sock or bind_free_port(host)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.app = create_app(config, store, environ=environ)
        settings = Settings.from_config(config, environ)
        self._server = uvicorn.Server(_uvicorn_config(self.app, host, self.port, settings, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    @classmethod
    def for_config(
        cls,
        make_config: Callable[[str], Config],
        *,
        store: PreferenceStore | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> "BackgroundServer":
        """Bind a port, build the config with ``make_config(base_url)``, then the server."""
        sock = bind_free_port("127.0.0.1")
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return cls(make_config(base), store=store, sock=sock, environ=environ)

    def start(self, timeout_s: float = 10.0) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("preference centre test server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout_s)
        self._sock.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def bind_free_port(host: str = "127.0.0.1") -> socket.socket:
    """A listening-ready TCP socket on a free port (handed to uvicorn, so no port race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock
