"""Golden files: the exact HTML and text of fixed fixtures.

A deliberate template or catalog change changes these files; regenerate and review the diff:

    make golden        # = VALUEMAIL_UPDATE_GOLDEN=1 uv run pytest tests/test_golden_emails.py

The fixtures are in ``report_templates/samples.py`` (fixed numbers, names, links and content ids).
"""

from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path

import pytest

from report_templates import samples
from report_templates.render import EmailRenderer

GOLDEN = Path(__file__).parent / "golden" / "emails"
UPDATE = os.environ.get("VALUEMAIL_UPDATE_GOLDEN") == "1"

CASES = [
    ("weekly", "active", "en"), ("weekly", "active", "zh-CN"), ("weekly", "active", "hu"),
    ("weekly", "new", "hu"), ("weekly", "low", "zh-CN"), ("weekly", "empty", "en"), ("weekly", "hostile", "en"),
    ("monthly", "active", "hu"), ("monthly", "new", "en"), ("monthly", "low", "en"),
    ("yearly", "active", "en"), ("yearly", "active", "zh-CN"), ("yearly", "new", "hu"), ("yearly", "minimal", "en"),
    # the headline follows the value model: time only, money only, tasks only — each in every language
    ("weekly", "time_only", "en"), ("monthly", "time_only", "zh-CN"), ("yearly", "time_only", "hu"),
    ("weekly", "money_only", "hu"), ("monthly", "money_only", "en"), ("yearly", "money_only", "zh-CN"),
    ("weekly", "tasks_only", "zh-CN"), ("monthly", "tasks_only", "hu"), ("yearly", "tasks_only", "en"),
    ("yearly", "to_date", "hu"),
]


@functools.cache
def renderer(name: str) -> EmailRenderer:
    return EmailRenderer(samples.BRAND, samples.value_model_for(name), samples.THRESHOLDS)


def _check(path: Path, actual: str) -> None:
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"golden file {path} is missing: run `make golden` and commit it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), str(path), "rendered", n=2))
        pytest.fail(f"{path.name} differs from its golden file (run `make golden` if the change is deliberate):\n{diff[:6000]}")


@pytest.mark.parametrize("campaign,name,locale", CASES, ids=["-".join(c) for c in CASES])
def test_golden(campaign, name, locale):
    e = renderer(name).render(samples.fixture(name, campaign, locale))
    stem = f"{campaign}-{name}-{locale}"
    _check(GOLDEN / f"{stem}.html", e.html)
    header = (f"Subject: {e.subject}\nPreheader: {e.preheader}\nLanguage: {e.locale_used} ({e.locale_reason})\n"
              f"Variant: {e.variant}\nImages: {', '.join(img.cid for img in e.images) or '-'}\n\n")
    _check(GOLDEN / f"{stem}.txt", header + e.text)


def test_no_stray_golden_files():
    expected = {f"{c}-{n}-{l}.{ext}" for c, n, l in CASES for ext in ("html", "txt")}
    present = {p.name for p in GOLDEN.glob("*")} if GOLDEN.exists() else set()
    assert present <= expected, f"golden files without a case: {sorted(present - expected)}"
