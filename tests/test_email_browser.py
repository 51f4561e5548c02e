"""The e-mails in headless Chromium: 375 px without horizontal scrolling, 600 px, every image shown.

Screenshots go to ``test-artifacts/emails/`` (git-ignored) — look at them after a template change.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from report_templates import samples, visuals
from report_templates.model import ChartImage
from report_templates.render import EmailRenderer
from report_templates.screenshot import Screenshotter, chromium_path

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("email_browser"),
    pytest.mark.skipif(chromium_path() is None, reason="Chromium missing (scripts/bootstrap --browser installs it)"),
]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "emails"
PEERS = visuals.PeerHistogram(edges=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
                              counts=(40, 90, 160, 220, 210, 180, 140, 90, 60, 50))
CASES = [(c, n, loc) for c, n in (("weekly", "active"), ("weekly", "new"), ("weekly", "low"), ("monthly", "active"),
                                  ("yearly", "active"), ("yearly", "new"), ("weekly", "long"), ("weekly", "hostile"))
         for loc in ("en", "zh-CN", "hu")]


@pytest.fixture(scope="module")
def browser():
    with Screenshotter() as shots:
        yield shots


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer(samples.BRAND, samples.VALUE_MODEL, samples.THRESHOLDS)


def _with_real_charts(data):
    """The fixture with charts drawn by charts/ (so the screenshots show what customers see)."""
    charts, images = [], {}
    for kind in visuals.EMAIL_KINDS[data.campaign]:
        drawn = visuals.draw_chart(kind, data, peer=PEERS, min_cohort=50)
        if drawn is None:
            continue
        cid = f"{kind}.{data.customer_id}@valuemail"
        charts.append(ChartImage(kind, "cid:" + cid, drawn.alt, drawn.width, drawn.height))
        images[cid] = drawn.png
    return replace(data, charts=tuple(charts)), images


@pytest.mark.parametrize("campaign,name,locale", CASES, ids=["-".join(c) for c in CASES])
def test_renders_on_a_phone_and_on_a_desktop(browser, renderer, campaign, name, locale):
    data, images = _with_real_charts(samples.fixture(name, campaign, locale))
    email = renderer.render(data)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in (375, 600):
        shot = browser.shot(email.html, width, images)
        (ARTIFACTS / f"{campaign}-{name}-{locale}-{width}.png").write_bytes(shot.png)
        assert shot.scroll_width <= width, f"horizontal scrolling at {width} px: content is {shot.scroll_width} px wide"
        assert shot.height > 400
        assert not shot.clipped, f"text cut off at {width} px: {shot.clipped[:3]}"
    # every image is inline and loads (a cid that doesn't resolve would leave a broken image)
    for img in email.images:
        assert img.cid in images


def test_images_have_loaded_and_text_is_large_enough(browser, renderer):
    data, images = _with_real_charts(samples.fixture("active", "weekly", "en"))
    email = renderer.render(data)
    page = browser._browser.new_page(viewport={"width": 375, "height": 800})
    try:
        from report_templates.screenshot import inline_cids

        page.set_content(inline_cids(email.html, images), wait_until="load")
        natural = page.evaluate("() => Array.from(document.images).map(i => i.naturalWidth)")
        assert natural and all(w > 0 for w in natural)
        smallest = page.evaluate(
            "() => Math.min(...Array.from(document.querySelectorAll('div, span, a, td'))"
            ".filter(e => e.offsetHeight > 0 && Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim()))"
            ".map(e => parseFloat(getComputedStyle(e).fontSize)))")
        assert smallest >= 12, f"text as small as {smallest}px at 375 px"
    finally:
        page.close()
