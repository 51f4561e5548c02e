"""Languages for the value e-mails: locale choice, message catalogs, and locale formatting.

Pure code (Babel, no Dagster).

Catalogs
    gettext ``.po`` files, one per language, in ``report_templates/locales/<lang>/LC_MESSAGES/
    messages.po``.  English is the source language: the msgids *are* the English text, so English
    needs no catalog and a message missing from another catalog shows up in English rather than
    as a blank.  The ``.po`` files are compiled in memory with Babel when first used (no binary
    ``.mo`` files in git).  Why gettext rather than a home-made TOML/JSON format: translators and
    their tools (Poedit, Weblate, Crowdin) speak it, Babel can *extract* every message from the
    Jinja templates and the Python code (``pybabel extract -F report_templates/babel.cfg``), and
    plural forms come with it.  ``tests/test_email_i18n.py`` checks every catalog is complete
    and that each translation keeps the placeholders of its msgid.

Value-model texts
    The feature labels and the "how we counted" sentences live in the configuration (English,
    editable by analysts).  Their translations are catalog entries keyed by event type — msgctxt
    ``value_model.<event_type>.feature`` / ``value_model.<event_type>.explain`` — *and* by the
    English text they translate (the msgid).  So when an analyst edits the English (say "3 minutes"
    becomes "4 minutes"), the stale translation stops matching and the customer reads the new
    English sentence instead of an outdated number in their language; every such fallback is
    logged once per process and counted on the :class:`Localizer`.

Locale choice (:func:`choose_locale`)
    ``hu-HU`` → ``hu``; ``zh-Hans-CN``, ``zh_CN``, ``zh-SG``, ``zh`` → ``zh-CN``; Traditional Chinese
    (``zh-TW``, ``zh-Hant``, ``zh-HK``) → ``en`` (we have no Traditional catalog, and Simplified is
    not what those readers asked for); anything else → ``en``.  Every choice other than an exact
    match is a :class:`LocaleChoice` with a reason, logged once per requested tag, and stored in
    the ``emails`` table (``locale_requested``, ``locale_used``, ``locale_reason``).

Formatting
    Numbers, currencies, percentages, dates and durations follow CLDR via Babel.  Babel's
    formatters cost ~10 µs a call, too slow for 20,000 e-mails/s, so :class:`Localizer` derives
    fast equivalents from Babel's locale data once (group/decimal symbols, currency patterns) and
    memoises the rest; ``tests/test_email_i18n.py`` checks they equal Babel's output.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_interval, format_skeleton, get_day_names, get_month_names
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent, get_currency_precision
from babel.support import NullTranslations, Translations
from babel.units import format_unit

from valuemail.periods import Period

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent / "locales"

#: The languages we write e-mails in (BCP 47 tags as stored in the ``emails`` table).
SUPPORTED: tuple[str, ...] = ("en", "zh-CN", "hu")
DEFAULT_LOCALE = "en"
#: BCP 47 tag → Babel locale identifier / catalog folder name.
_BABEL_ID = {"en": "en", "zh-CN": "zh_Hans_CN", "hu": "hu"}
_CATALOG_DIR = {"zh-CN": "zh_CN", "hu": "hu"}


# --------------------------------------------------------------------------- locale choice
@dataclass(frozen=True, slots=True)
class LocaleChoice:
    requested: str  # what the customer record said ("" when missing)
    used: str  # one of SUPPORTED
    reason: str  # exact | region | script | language | traditional_chinese | unsupported | missing | invalid

    @property
    def is_fallback(self) -> bool:
        return self.reason != "exact"

    def describe(self) -> str:
        if not self.is_fallback:
            return self.used
        return f"{self.requested or '(none)'} → {self.used} ({self.reason})"


_TAG_RE = re.compile(r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$")
_logged_choices: set[str] = set()
_log_lock = threading.Lock()


def _log_once(key: str, message: str, *args: object) -> None:
    with _log_lock:
        if key in _logged_choices:
            return
        _logged_choices.add(key)
    log.warning(message, *args)


@functools.lru_cache(maxsize=4096)
def choose_locale(requested: str | None) -> LocaleChoice:
    """Map a customer's locale tag onto a supported language — deliberately, with a reason."""
    raw = (requested or "").strip()
    if not raw:
        choice = LocaleChoice("", DEFAULT_LOCALE, "missing")
    elif not _TAG_RE.match(raw) or len(raw) > 35:
        choice = LocaleChoice(raw, DEFAULT_LOCALE, "invalid")
    else:
        subtags = [s.lower() for s in raw.replace("_", "-").split("-")]
        lang, rest = subtags[0], subtags[1:]
        script = next((s for s in rest if len(s) == 4 and s.isalpha()), None)
        region = next((s for s in rest if (len(s) == 2 and s.isalpha()) or (len(s) == 3 and s.isdigit())), None)
        if lang == "zh":
            traditional = script == "hant" or (script is None and region in {"tw", "hk", "mo"})
            if traditional:
                choice = LocaleChoice(raw, DEFAULT_LOCALE, "traditional_chinese")
            elif region not in (None, "cn"):  # zh-SG, zh-Hans-MY …: Simplified, another region
                choice = LocaleChoice(raw, "zh-CN", "region")
            elif script == "hans":  # zh-Hans, zh-Hans-CN
                choice = LocaleChoice(raw, "zh-CN", "script")
            elif region is None:  # bare "zh"
                choice = LocaleChoice(raw, "zh-CN", "language")
            else:
                choice = LocaleChoice(raw, "zh-CN", "exact")
        elif lang in ("en", "hu"):
            choice = LocaleChoice(raw, lang, "region" if rest else "exact")
        else:
            choice = LocaleChoice(raw, DEFAULT_LOCALE, "unsupported")
    if choice.is_fallback:
        level = "mapped" if choice.used != DEFAULT_LOCALE or choice.requested.lower().startswith("en") else "fallback to English"
        _log_once("locale:" + raw, "locale %r: %s, writing in %s (%s)", raw, level, choice.used, choice.reason)
    return choice


# --------------------------------------------------------------------------- catalogs
@functools.lru_cache(maxsize=None)
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of ``locale`` (``NullTranslations`` for English, the source language)."""
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    path = LOCALES_DIR / _CATALOG_DIR[locale] / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=_BABEL_ID[locale])
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf)


def po_path(locale: str) -> Path:
    return LOCALES_DIR / _CATALOG_DIR[locale] / "LC_MESSAGES" / "messages.po"


class _MessageCache(dict):
    def __init__(self, lookup):
        super().__init__()
        self._lookup = lookup

    def __missing__(self, message: str) -> str:
        text = self[message] = self._lookup(message)
        return text


# --------------------------------------------------------------------------- formatting
_GROUPED_INT = re.compile(r"^-?\d{1,3}(,\d{3})*$")


class Localizer:
    """Everything locale-specific the renderer needs for one language, fast.

    ``gettext``/``ngettext``/``pgettext`` come from the catalog; the ``format_*`` methods give
    exactly what Babel gives (see the tests) at dictionary-lookup speed.
    """

    def __init__(self, locale: str):
        if locale not in SUPPORTED:
            raise ValueError(f"unsupported locale {locale!r}; expected one of {', '.join(SUPPORTED)}")
        self.locale = locale
        self.babel_id = _BABEL_ID[locale]
        self.babel = Locale.parse(self.babel_id)
        self.lang = locale  # BCP 47, for <html lang>
        self.direction = self.babel.text_direction  # "ltr" for all three
        self.translations = translations(locale)
        symbols = self.babel.number_symbols["latn"]
        self._group = symbols["group"]
        self._decimal = symbols["decimal"]
        self._plus = symbols["plusSign"]
        self._minus = symbols["minusSign"]
        grouping = self.babel.decimal_formats[None].grouping
        self._simple_grouping = tuple(grouping) == (3, 3)
        self._currency: dict[str, tuple[str, str, Decimal, str]] = {}
        self._percent = self._affixes(format_percent(0.5, locale=self.babel_id), self.format_int(50))
        self._plural = self.babel.plural_form
        self.fallbacks: dict[str, int] = {}  # value-model keys shown in English, with counts
        # gettext is called ~15 times per e-mail: a dict whose __missing__ asks the catalog once
        self.gettext = _MessageCache(self.translations.ugettext).__getitem__  # type: ignore[method-assign]
        self._vm_cache: dict[tuple[str, str, str], str] = {}
        self._units: dict[tuple[str, int], str] = {}
        self._durations: dict[int, str] = {}  # whole minutes → "4 hr 35 min" (every e-mail has one)
        hour_min = format_list(["\x00", "\x01"], style="unit-narrow", locale=self.babel_id)
        self._duration_join = hour_min.replace("\x00", "{0}").replace("\x01", "{1}")

    # -- messages -----------------------------------------------------------------------------
    def gettext(self, message: str) -> str:  # replaced per instance by a C-speed dict lookup
        return self.translations.ugettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ungettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self.translations.upgettext(context, message)

    def value_model_text(self, event_type: str, kind: str, english: str) -> str:
        """A feature label (``kind="feature"``) or "how we counted" line (``"explain"``) in this language.

        Looked up by event type *and* English text; a missing or stale translation falls back to
        the English text, logged once per process and counted in :attr:`fallbacks`.
        """
        key = (event_type, kind, english)
        hit = self._vm_cache.get(key)
        if hit is not None:
            return hit
        if self.locale == DEFAULT_LOCALE or not english:
            text = english
        else:
            context = f"value_model.{event_type}.{kind}"
            text = self.translations.upgettext(context, english)
            if text == english:
                name = f"{context}"
                self.fallbacks[name] = self.fallbacks.get(name, 0) + 1
                _log_once(
                    f"vm:{self.locale}:{context}:{english}",
                    "no %s translation for %s (English text %r): showing English — add it to %s",
                    self.locale, context, english, po_path(self.locale),
                )
        self._vm_cache[key] = text
        return text

    # -- numbers -------------------------------------------------------------------------------
    def _symbols(self, formatted: str) -> str:
        """A number Python formatted with ``,`` and ``.`` (``1,234.50``) in the locale's symbols (``1 234,50``).

        (``str.replace`` rather than ``str.translate``: a translate table is looked up per character,
        several times slower, and every e-mail formats a few numbers.)
        """
        whole, point, fraction = formatted.partition(".")
        whole = whole.replace(",", self._group)
        return whole + self._decimal + fraction if point else whole

    def format_int(self, n: int) -> str:
        """An integer with the locale's grouping (``1,234`` · ``1 234`` · ``1,234``)."""
        if self._simple_grouping:
            return f"{n:,}".replace(",", self._group) if n >= 1000 or n <= -1000 else str(n)
        return format_decimal(n, locale=self.babel_id)  # pragma: no cover - other grouping rules

    def format_decimal(self, value: float | Decimal, digits: int = 1) -> str:
        """A number with exactly ``digits`` decimals (half-even rounding, like Babel)."""
        q = Decimal(str(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)
        return self._symbols(f"{q:,.{digits}f}")

    def _affixes(self, formatted: str, number: str) -> tuple[str, str, int]:
        i = formatted.find(number)
        if i < 0:  # pragma: no cover - CLDR data we don't understand: let Babel do it every time
            raise ValueError(f"cannot find {number!r} in {formatted!r}")
        return formatted[:i], formatted[i + len(number):], 0

    def format_money(self, amount: float | Decimal, currency: str) -> str:
        """``$12.50`` · ``12,50 USD`` · ``US$12.50`` (CLDR currency pattern, currency's own decimals)."""
        spec = self._currency.get(currency)
        if spec is None:
            digits = get_currency_precision(currency)
            probe_value = Decimal("1234.5")
            probe = format_currency(probe_value, currency, locale=self.babel_id)
            number = self._symbols(f"{probe_value:,.{digits}f}")
            prefix, suffix, _ = self._affixes(probe, number)
            spec = self._currency[currency] = (prefix, suffix, Decimal(1).scaleb(-digits), f",.{digits}f")
        prefix, suffix, quantum, pattern = spec
        # a DECIMAL(18, 2) from the warehouse is already exact to the cent (quantize keeps it as it is)
        q = (amount if isinstance(amount, Decimal) else Decimal(str(amount))).quantize(quantum, ROUND_HALF_EVEN)
        if q < 0:
            return self._minus + prefix + self._symbols(format(-q, pattern)) + suffix
        return prefix + self._symbols(format(q, pattern)) + suffix

    def format_percent(self, percent: float, signed: bool = False) -> str:
        """``23%`` for 23 (a percentage, not a fraction), rounded to a whole number."""
        value = int(round(abs(percent)))
        prefix, suffix, _ = self._percent
        text = prefix + self.format_int(value) + suffix
        if signed and percent:
            return (self._plus if percent > 0 else self._minus) + text
        return text

    # -- durations -----------------------------------------------------------------------------
    _UNIT_LENGTH = {"en": "short", "zh-CN": "short", "hu": "long"}

    def _unit(self, unit: str, n: int) -> str:
        key = (unit, n)
        text = self._units.get(key)
        if text is None:
            text = format_unit(n, f"duration-{unit}", length=self._UNIT_LENGTH[self.locale], locale=self.babel_id)
            if len(self._units) < 20000:
                self._units[key] = text
        return text

    def format_minutes(self, minutes: float | Decimal) -> str:
        """Time saved: ``4 hr 35 min`` · ``4小时35分钟`` · ``4 óra és 35 perc`` (never rounded up to an hour).

        Whole minutes (half-even); under a minute (but more than nothing) in seconds.
        """
        m = float(minutes)
        if m <= 0:
            return self._unit("minute", 0)
        if m < 1:
            return self._unit("second", max(1, int(round(m * 60))))
        total = round(m)  # half-even, like Babel
        text = self._durations.get(total)
        if text is None:
            hours, mins = divmod(total, 60)
            if not hours:
                text = self._unit("minute", mins)
            elif not mins:
                text = self._unit("hour", hours)
            else:
                text = self._duration_join.format(self._unit("hour", hours), self._unit("minute", mins))
            if len(self._durations) < 20000:
                self._durations[total] = text
        return text

    # -- dates ---------------------------------------------------------------------------------
    @functools.cached_property
    def weekday_names(self) -> tuple[str, ...]:
        """Monday first, the long form ("Tuesday", "kedd", "星期二")."""
        names = get_day_names("wide", context="format", locale=self.babel_id)
        return tuple(names[i] for i in range(7))

    @functools.cached_property
    def weekday_abbr(self) -> tuple[str, ...]:
        """Monday first, the short labels under chart bars ("Mon", "H", "周一")."""
        width = "abbreviated"
        names = get_day_names(width, context="format", locale=self.babel_id)
        return tuple(names[i] for i in range(7))

    @functools.cached_property
    def month_names(self) -> tuple[str, ...]:
        names = get_month_names("wide", context="format", locale=self.babel_id)
        return tuple(names[i] for i in range(1, 13))

    @functools.cached_property
    def month_abbr(self) -> tuple[str, ...]:
        names = get_month_names("abbreviated", context="format", locale=self.babel_id)
        return tuple(names[i] for i in range(1, 13))

    @functools.lru_cache(maxsize=1024)
    def format_day(self, day: date) -> str:
        """A day with its weekday: "Tuesday, November 17" · "november 17., kedd" · "11月17日星期二".

        CLDR has no month-day-weekday pattern with the *full* weekday in every language, so the
        order of the two parts comes from the catalog ("{weekday}, {date}").
        """
        pattern = self.gettext("{weekday}, {date}")
        return pattern.format(weekday=self.weekday_names[day.weekday()], date=format_skeleton("MMMMd", day, locale=self.babel_id))

    @functools.lru_cache(maxsize=1024)
    def format_date(self, day: date) -> str:
        """A full date: "November 17, 2026" · "2026. november 17." · "2026年11月17日"."""
        return format_date(day, "long", locale=self.babel_id)

    def period_label(self, campaign: str, start: date, end_exclusive: date) -> str:
        """"Nov 16 – 22, 2026" · "2026. nov. 16–22." · "2026年11月16日至22日"; months and years by name;
        a period measured only up to a cut-off by its dates: "Jan 1 – Nov 30, 2026 so far"."""
        if is_to_date(campaign, start, end_exclusive):
            dates = format_interval(start, end_exclusive - timedelta(days=1), "yMMMd", locale=self.babel_id)
            return self.gettext("%(dates)s so far") % {"dates": dates}
        if campaign == "weekly":
            return format_interval(start, end_exclusive - timedelta(days=1), "yMMMd", locale=self.babel_id)
        if campaign == "monthly":
            return format_skeleton("yMMMM", start, locale=self.babel_id)
        return format_skeleton("y", start, locale=self.babel_id)

    def __repr__(self) -> str:
        return f"Localizer({self.locale!r})"


def is_to_date(campaign: str, start: date, end_exclusive: date) -> bool:
    """True when the e-mail covers its period only up to a cut-off (the wrapped sent on 1 December)."""
    return end_exclusive < Period(campaign, start).end


@functools.lru_cache(maxsize=None)
def localizer(locale: str) -> Localizer:
    return Localizer(locale)


def iter_catalog_locales() -> tuple[str, ...]:
    """The languages that have a catalog (every supported one except the English source)."""
    return tuple(loc for loc in SUPPORTED if loc != DEFAULT_LOCALE)
