"""Fill the e-mail templates fast and safely: Jinja2 + MJML compiled once per *shape*, then a join.

Pure code: takes :class:`~report_templates.model.EmailData`, returns strings.

Two stages
    1. **Compile** (once per :class:`~report_templates.view.Shape`: campaign, language, variant
       and which optional blocks the e-mail has).  The ``.mjml.j2`` / ``.txt.j2`` template is
       rendered by Jinja with every static part filled in — catalog text in the right language,
       the period label, colours, the postal address — and every per-customer value replaced by
       a *slot token* (``VMSLOT<name>ENDSLOT``, plain ASCII letters that MJML copies verbatim
       into text and attributes).  MJML (mjml-python) turns the result into HTML, which is then
       split at the tokens into static chunks and slot names.
    2. **Fill** (per customer): each value is HTML-escaped with markupsafe (Jinja's own escape
       function) and the chunks are joined — no template engine, no MJML, ~10 µs.

    Per-customer *control flow* ("does this customer have a peer comparison?") never reaches
    stage 2: it is part of the shape, so each combination gets its own compiled template (a few
    hundred at most, compiled lazily, ~2 ms each).

Why it is still safe
    * Every slot value is escaped for HTML (``& < > " '``), which is correct both in text and in
      double-quoted attribute values — the only two places slots are allowed (the compiler
      refuses a slot inside ``<style>``, a comment or a tag name).
    * URLs are checked before they become slot values: ``https://`` only (:func:`check_url`).
    * The static parts go through Jinja with autoescape on (``.mjml.j2`` included) and
      ``StrictUndefined``: a typo in a template is an error, not an empty string.
    * ``tests/test_email_render.py`` renders every fixture both ways — this fast path and the
      slow reference path (Jinja with the real values, then MJML, per e-mail) — and requires
      byte-identical HTML and text.
"""

from __future__ import annotations

import functools
import operator
import re
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable, Sequence

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import escape
from mjml import mjml2html

from report_templates import i18n
from report_templates.model import EmailData
from report_templates.view import Brand, Shape, Thresholds, ValueModelTexts, build_view

TEMPLATES_DIR = Path(__file__).resolve().parent
HTML_LIMIT_BYTES = 100_000  # Gmail clips messages above ~102 KB of HTML

SLOT_PREFIX, SLOT_SUFFIX = "VMSLOT", "ENDSLOT"
_SLOT_RE = re.compile(SLOT_PREFIX + r"([a-z0-9_]+)" + SLOT_SUFFIX)


class TemplateError(RuntimeError):
    """A template broke one of the compiler's rules (slot in a forbidden place, unknown slot…)."""


def _autoescape(template_name: str | None) -> bool:
    """Autoescape everything except plain-text templates — ``.mjml.j2`` included."""
    return template_name is None or not template_name.endswith(".txt.j2")


def make_environment(locale: str = i18n.DEFAULT_LOCALE, templates_dir: Path = TEMPLATES_DIR) -> Environment:
    """A Jinja environment for one language: autoescape, StrictUndefined, the catalog installed."""
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env


# ------------------------------------------------------------------------------------ slots
class Slot:
    """Stands for a per-customer value while a template is compiled."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __html__(self) -> str:
        return SLOT_PREFIX + self.name + SLOT_SUFFIX

    __str__ = __html__

    def __bool__(self) -> bool:
        raise TemplateError(f"template branches on per-customer value v.{self.name}: branch on the shape (s.…) instead")

    def __iter__(self):
        raise TemplateError(f"template iterates over per-customer value v.{self.name}")


class _SlotNamespace:
    """``v`` while compiling: any attribute is a slot (and is recorded)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __getattr__(self, name: str) -> Slot:
        if name.startswith("__") or not re.fullmatch(r"[a-z0-9_]+", name):
            raise AttributeError(name)
        self.used.add(name)
        return Slot(name)

    def __getitem__(self, name: str) -> Slot:
        return self.__getattr__(name)


class _Values(dict):
    """``v`` in the reference path: the real values; a missing one is an error."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise TemplateError(f"no value for slot v.{name}") from None


_FORBIDDEN_CONTEXTS = (
    (re.compile(r"<style\b[^>]*>.*?</style>", re.S | re.I), "a <style> block"),
    (re.compile(r"<!--.*?-->", re.S), "an HTML comment"),
    (re.compile(r"<script\b", re.I), "a script"),
)


def _check_slot_contexts(html: str) -> None:
    for pattern, where in _FORBIDDEN_CONTEXTS:
        for match in pattern.finditer(html):
            if SLOT_PREFIX in match.group(0):
                raise TemplateError(f"per-customer value inside {where}: {match.group(0)[:120]!r}")
    # slots may sit in text or in a double-quoted attribute value, nowhere else in a tag
    for tag in re.finditer(r"<[^>]*" + SLOT_PREFIX + r"[^>]*>", html):
        text = tag.group(0)
        stripped = re.sub(r'"[^"]*"', '""', text)
        if SLOT_PREFIX in stripped:
            raise TemplateError(f"per-customer value in a tag outside a quoted attribute: {text[:120]!r}")
        if re.search(r'\s(?:on\w+|style|srcset)="[^"]*' + SLOT_PREFIX, text, re.I):
            raise TemplateError(f"per-customer value inside an event handler or style attribute: {text[:120]!r}")


class Compiled:
    """A template split at its slots: ``statics[0] + v[names[0]] + statics[1] + …``.

    ``fill`` takes the values as a sequence in :attr:`slots` order (each distinct slot once).
    ``chunks`` maps each static chunk already in use to itself, so layouts share one copy: they
    differ in a few blocks but repeat the head and styles, the cards and the footer — 1,000
    layouts hold ~30 MB of static HTML but only ~0.3 MB of distinct chunks, which stay in the
    CPU cache while e-mails are filled.
    """

    __slots__ = ("names", "statics", "slots", "values_of", "_fill")

    def __init__(self, rendered: str, chunks: dict[str, str] | None = None):
        parts = _SLOT_RE.split(rendered)
        statics = parts[0::2]
        if chunks is not None:
            statics = [chunks.setdefault(chunk, chunk) for chunk in statics]
        self.statics: tuple[str, ...] = tuple(statics)
        self.names: tuple[str, ...] = tuple(parts[1::2])
        self.slots: tuple[str, ...] = tuple(dict.fromkeys(self.names))
        # values_of(mapping) -> the values in slot order, looked up in C (one itemgetter call)
        getter = operator.itemgetter(*self.slots) if self.slots else (lambda mapping: ())
        self.values_of = getter if len(self.slots) != 1 else (lambda mapping, g=getter: (g(mapping),))
        if SLOT_PREFIX in "".join(self.statics):
            raise TemplateError("a slot token was mangled during compilation (MJML or a filter changed it)")
        self._fill = _make_filler(self.statics, self.names, self.slots)

    def fill(self, values) -> str:
        return self._fill(values)


def _make_filler(statics: tuple[str, ...], names: tuple[str, ...], slots: tuple[str, ...]) -> Callable[[Any], str]:
    """Generate ``lambda e: "".join((S[0], e[3], S[1], e[0], …))`` — the fastest join CPython has."""
    index = {name: i for i, name in enumerate(slots)}
    items = []
    for i, name in enumerate(names):
        items.append(f"S[{i}]")
        items.append(f"e[{index[name]}]")
    items.append(f"S[{len(names)}]")
    source = "def fill(e):\n    return ''.join((" + ", ".join(items) + ",))\n"
    namespace: dict[str, Any] = {"S": statics}
    exec(compile(source, "<compiled e-mail template>", "exec"), namespace)  # only integer indices
    return namespace["fill"]


def escape_all(values: Sequence[str]) -> list[str]:
    """HTML-escape many values with one call of markupsafe's C escape.

    The values are joined with NUL, escaped once and split again; a value that itself held a
    NUL (none should: names are cleaned) shows up as an extra part, and then each value is
    escaped on its own.
    """
    escaped = str.split(escape("\x00".join(values)), "\x00")
    if len(escaped) != len(values):  # pragma: no cover - defensive
        return [str(escape(v)) for v in values]
    return escaped


@dataclass(frozen=True)
class CompiledEmail:
    shape: Shape
    html: Compiled
    text: Compiled


@dataclass(slots=True)
class RenderedEmail:
    """What the emails stage stores and delivery sends."""

    subject: str
    preheader: str
    html: str
    text: str
    locale_requested: str
    locale_used: str
    locale_reason: str
    variant: str
    template: str  # e.g. "weekly.mjml.j2"
    images: tuple = ()  # the ChartImage objects referenced by cid:/https src
    fallbacks: tuple[str, ...] = ()  # value-model texts shown in English although locale_used isn't en

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


def _fonts_for(locale: str) -> str:
    base = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
    if locale == "zh-CN":
        return "-apple-system, BlinkMacSystemFont, 'PingFang SC', 'Hiragino Sans GB', 'Microsoft YaHei', 'Noto Sans CJK SC', 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
    return base


_HEAD_EXTRA = (
    '<meta name="color-scheme" content="light dark">'
    '<meta name="supported-color-schemes" content="light dark">'
    '<meta name="format-detection" content="telephone=no, date=no, address=no, email=no">'
)


class EmailRenderer:
    """Renders value e-mails; thread-safe; keep one per process and reuse it.

    ``brand`` holds the sender's static facts, ``value_model`` the English feature labels and
    "how we counted" lines, ``thresholds`` what counts as low activity.
    """

    def __init__(
        self,
        brand: Brand,
        value_model: ValueModelTexts,
        thresholds: Thresholds | None = None,
        templates_dir: Path = TEMPLATES_DIR,
    ):
        self.brand = brand
        self.value_model = value_model
        self.thresholds = thresholds or Thresholds()
        self.templates_dir = templates_dir
        self._compiled: dict[Shape, CompiledEmail] = {}
        self._chunks: dict[str, str] = {}  # every static chunk of the compiled layouts, once
        self._lock = threading.Lock()

    # -- environments ------------------------------------------------------------------------
    @functools.lru_cache(maxsize=None)
    def environment(self, locale: str) -> Environment:
        return make_environment(locale, self.templates_dir)

    def _static_context(self, shape: Shape) -> dict[str, Any]:
        return {"s": shape, "t": self._static_texts(shape.campaign, shape.locale, shape.period_start, shape.period_end),
                "brand": self.brand, "c": self.brand.colours}

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one renderer per process; the cache is the point
    def _static_texts(self, campaign: str, locale: str, start: date, end: date) -> dict[str, Any]:
        """What every e-mail of a campaign, language and period shares (computed once)."""
        loc = i18n.localizer(locale)
        return {
            "lang": loc.lang,
            "dir": loc.direction,
            "fonts": _fonts_for(locale),
            "period_label": loc.period_label(campaign, start, end),
            "to_date": i18n.is_to_date(campaign, start, end),
            "year": start.year,
            "month_name": loc.month_names[start.month - 1],
            "weekday_abbr": loc.weekday_abbr,
            "month_abbr": loc.month_abbr,
            "value_model_version": self.value_model.version,
        }

    # -- stage 1 -----------------------------------------------------------------------------
    def compile(self, shape: Shape) -> CompiledEmail:
        hit = self._compiled.get(shape)
        if hit is not None:
            return hit
        with self._lock:
            hit = self._compiled.get(shape)
            if hit is None:
                hit = self._compiled[shape] = self._compile(shape)
        return hit

    def _render_sources(self, shape: Shape, v: Any) -> tuple[str, str]:
        env = self.environment(shape.locale)
        ctx = self._static_context(shape)
        ctx["v"] = v
        mjml_source = env.get_template(f"{shape.campaign}.mjml.j2").render(ctx)
        text = env.get_template(f"{shape.campaign}.txt.j2").render(ctx)
        html = mjml2html(mjml_source, disable_comments=True, fonts={})
        html = _fix_aria_label(_unescape_rust(html.replace("<head>", "<head>" + _HEAD_EXTRA, 1)))
        return html, _tidy_text(text)

    def _compile(self, shape: Shape) -> CompiledEmail:
        html, text = self._render_sources(shape, _SlotNamespace())
        _check_slot_contexts(html)
        compiled_html, compiled_text = Compiled(html, self._chunks), Compiled(text, self._chunks)
        return CompiledEmail(shape, compiled_html, compiled_text)

    # -- stage 2 -----------------------------------------------------------------------------
    def render(self, data: EmailData) -> RenderedEmail:
        """The fast path: shape → compiled template (cached) → escaped values joined in."""
        view = build_view(data, self.brand, self.value_model, self.thresholds)
        compiled = self.compile(view.shape)
        values = view.values
        try:
            html = compiled.html.fill(escape_all(compiled.html.values_of(values)))
            text = compiled.text.fill(compiled.text.values_of(values))
        except KeyError as exc:
            raise TemplateError(f"template {view.shape.campaign} uses slot {exc.args[0]!r} the view does not provide") from None
        return self._result(view, html, text)

    def render_reference(self, data: EmailData) -> RenderedEmail:
        """The slow path, for tests: Jinja with the real values, then MJML, for this one e-mail."""
        view = build_view(data, self.brand, self.value_model, self.thresholds)
        html, text = self._render_sources(view.shape, _Values(view.values))
        return self._result(view, html, text)

    def _result(self, view, html: str, text: str) -> RenderedEmail:
        shape = view.shape
        return RenderedEmail(
            subject=view.values["subject"],
            preheader=view.values["preheader"],
            html=html,
            text=text,
            locale_requested=view.locale.requested,
            locale_used=view.locale.used,
            locale_reason=view.locale.reason,
            variant=shape.variant,
            template=f"{shape.campaign}.mjml.j2",
            images=view.images,
            fallbacks=view.fallbacks,
        )

    @property
    def compiled_shapes(self) -> int:
        return len(self._compiled)


_RUST_ESCAPE = re.compile(r"\\u\{([0-9a-f]{1,6})\}")


def _unescape_rust(html: str) -> str:
    """Undo mjml-python's Rust debug escaping in attribute values (``6\\u{a0}850`` → ``6\u00a0850``).

    mrml 5 writes some attributes (``alt``, ``aria-label``) with ``escape_debug``, turning a
    no-break space — Hungarian and French digit groups — into six visible characters.  The fast
    path inserts customer values after MJML, so only static text could be affected; the
    reference path needs it for every value.
    """
    if "\\u{" not in html:
        return html
    return _RUST_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), html)


_TITLE_RE = re.compile(r"<title>(.*?)</title>", re.S)
_ARIA_RE = re.compile(r'(<div aria-label=")([^"]*)(")')


def _fix_aria_label(html: str) -> str:
    """Copy the <title> into the body's ``aria-label``.

    mjml-python (mrml 5) writes the title into that attribute with Rust's debug escaping, so a
    no-break space in a Hungarian number comes out as the six characters ``\\u{a0}``.
    """
    title = _TITLE_RE.search(html)
    if title is None:
        return html
    return _ARIA_RE.sub(lambda m: m.group(1) + title.group(1) + m.group(3), html, count=1)


def _tidy_text(text: str) -> str:
    """Plain text: no trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"
