"""Screenshots of rendered e-mails in headless Chromium (Playwright driving /usr/bin/chromium).

Used by ``valuemail preview``, the emails asset (a sample image in its Dagster metadata) and the
browser tests.  ``cid:`` images are swapped for ``data:`` URIs first, since a browser can't
resolve content ids; nothing is fetched from the network (every request is blocked), so a
screenshot shows exactly what an offline mail client would.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


# Elements holding text directly whose content is wider than their box (overflow that a
# parent's overflow:hidden turns into cut-off text rather than a scrollbar).
_CLIPPED_JS = """() => Array.from(document.body.querySelectorAll('div, span, td, a, p'))
  .filter(e => e.offsetParent !== null && e.offsetWidth > 0
       && Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())
       && e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).display !== 'inline')
  .map(e => e.textContent.trim().slice(0, 60))"""


class ScreenshotUnavailable(RuntimeError):
    """No Chromium (or no Playwright) on this machine."""


def chromium_path() -> str | None:
    env = os.environ.get("VALUEMAIL_CHROMIUM")
    for candidate in ((env,) if env else ()) + CHROMIUM_CANDIDATES:
        if candidate and Path(candidate).exists():
            return candidate
    found = shutil.which("chromium")
    return found


def inline_cids(html: str, images: Mapping[str, bytes]) -> str:
    """Replace ``src="cid:X"`` by ``data:image/png;base64,…`` for each known X."""

    def swap(match: re.Match) -> str:
        cid = match.group(1)
        png = images.get(cid)
        if png is None:
            return match.group(0)
        return 'src="data:image/png;base64,' + base64.b64encode(png).decode("ascii") + '"'

    return re.sub(r'src="cid:([^"]+)"', swap, html)


@dataclass(frozen=True)
class Shot:
    png: bytes
    width: int
    scroll_width: int  # > width means horizontal scrolling
    height: int
    clipped: tuple[str, ...] = ()  # text of elements whose content is wider than they are (cut off)

    @property
    def overflows(self) -> bool:
        return self.scroll_width > self.width


class Screenshotter:
    """One browser for many screenshots: ``with Screenshotter() as s: s.shot(html, 375)``."""

    def __init__(self, executable: str | None = None):
        self.executable = executable or chromium_path()
        if not self.executable:
            raise ScreenshotUnavailable("Chromium not found (install it: scripts/bootstrap --browser)")
        self._tmp = tempfile.mkdtemp(prefix="valuemail-chromium-")
        self._pw = None
        self._browser = None

    def __enter__(self) -> "Screenshotter":
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:  # pragma: no cover - dev dependency
            raise ScreenshotUnavailable(f"playwright is not installed: {exc}") from exc
        os.environ.setdefault("XDG_CONFIG_HOME", self._tmp)
        os.environ.setdefault("XDG_CACHE_HOME", self._tmp)
        self._pw = sync_playwright().start()
        try:
            self._browser = self._pw.chromium.launch(executable_path=self.executable, args=CHROMIUM_ARGS)
        except Exception:
            self._pw.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._browser is not None:
                self._browser.close()
        finally:
            if self._pw is not None:
                self._pw.stop()
            shutil.rmtree(self._tmp, ignore_errors=True)

    def shot(self, html: str, width: int = 600, images: Mapping[str, bytes] | None = None,
             full_page: bool = True, scale: float = 1) -> Shot:
        page = self._browser.new_page(viewport={"width": width, "height": 900}, device_scale_factor=scale)
        try:
            page.route("**/*", lambda route: route.abort())  # offline: no remote images, fonts or trackers
            page.set_content(inline_cids(html, images or {}), wait_until="load")
            scroll_width, height = page.evaluate(
                "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            clipped = page.evaluate(_CLIPPED_JS)
            png = page.screenshot(full_page=full_page, type="png")
        finally:
            page.close()
        return Shot(png=png, width=width, scroll_width=int(scroll_width), height=int(height), clipped=tuple(clipped))


def screenshot(html: str, width: int = 600, images: Mapping[str, bytes] | None = None) -> Shot:
    """One screenshot (starts and stops a browser: use :class:`Screenshotter` for many)."""
    with Screenshotter() as s:
        return s.shot(html, width, images)
