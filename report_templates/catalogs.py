"""Maintain the message catalogs: extract, merge, check.  (Translators edit the ``.po`` files.)

    uv run python -m report_templates.catalogs update   # new/changed messages into every .po
    uv run python -m report_templates.catalogs check    # exit 1 when a catalog is incomplete

(With pybabel directly, add ``-k plural:1,2 -k noun:1,2``.)

``update`` extracts every message from the templates (``*.j2``) and the Python code, plus the
value model's feature labels and "how we counted" sentences from the configuration (msgctxt
``value_model.<event_type>.feature|explain``), and merges them into each language's ``.po``
with Babel — existing translations are kept, changed English turns them *fuzzy* (and a fuzzy
translation is never used, so the English shows until a translator confirms it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from report_templates import i18n

TEMPLATES_DIR = Path(__file__).resolve().parent
_METHODS = [("**.py", "python"), ("**.j2", "jinja2")]
_OPTIONS = {"**.j2": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}}
# view.py's cached plural tables are gettext keywords too: plural("%(n)s task", "%(n)s tasks"), noun("task", "tasks")
KEYWORDS = {**DEFAULT_KEYWORDS, "plural": (1, 2), "noun": (1, 2)}


def extract(value_model=None) -> Catalog:
    """Every message the e-mails can show, as a template catalog (English msgids)."""
    catalog = Catalog(project="valuemail", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(TEMPLATES_DIR), method_map=_METHODS, options_map=_OPTIONS, keywords=KEYWORDS, strip_comment_tags=True
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    if value_model is not None:
        for event_type, ev in value_model.events.items():
            catalog.add(ev.feature, None, [("config/valuemail.toml", 0)], context=f"value_model.{event_type}.feature")
            if ev.explain:
                catalog.add(ev.explain, None, [("config/valuemail.toml", 0)], context=f"value_model.{event_type}.explain")
    return catalog


def read(locale: str) -> Catalog:
    with i18n.po_path(locale).open("rb") as fh:
        return read_po(fh, locale=i18n._BABEL_ID[locale])


def write(locale: str, catalog: Catalog) -> None:
    with i18n.po_path(locale).open("wb") as fh:
        write_po(fh, catalog, width=100, sort_output=True, omit_header=False, include_previous=True)


def update(value_model) -> None:
    template = extract(value_model)
    for locale in i18n.iter_catalog_locales():
        catalog = read(locale)
        catalog.update(template, no_fuzzy_matching=False)
        write(locale, catalog)


@dataclass(frozen=True)
class Problem:
    locale: str
    msgid: str
    context: str | None
    issue: str

    def __str__(self) -> str:
        ctx = f" [{self.context}]" if self.context else ""
        return f"{self.locale}: {self.issue}: {self.msgid!r}{ctx}"


def _placeholders(text: str) -> set[str]:
    import re

    return set(re.findall(r"%\([a-z_]+\)s|\{[a-z_]+\}", text))


def check(value_model=None) -> list[Problem]:
    """Untranslated, fuzzy or placeholder-breaking entries in every catalog."""
    template = extract(value_model)
    problems: list[Problem] = []
    for locale in i18n.iter_catalog_locales():
        catalog = read(locale)
        for message in template:
            if not message.id:
                continue
            found = catalog.get(message.id, context=message.context)
            key = message.id if isinstance(message.id, str) else message.id[0]
            if found is None or not found.string or (isinstance(found.string, tuple) and not all(found.string)):
                problems.append(Problem(locale, key, message.context, "untranslated"))
                continue
            if found.fuzzy:
                problems.append(Problem(locale, key, message.context, "fuzzy"))
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            allowed = set().union(*(_placeholders(i) for i in ids))
            strings = found.string if isinstance(found.string, tuple) else (found.string,)
            for s in strings:
                extra = _placeholders(s) - allowed
                if extra:
                    problems.append(Problem(locale, key, message.context, f"unknown placeholder {sorted(extra)}"))
    return problems


def main(argv: list[str]) -> int:
    from valuemail.config import load_config

    model = load_config().value_model
    if argv[:1] == ["update"]:
        update(model)
        return 0
    if argv[:1] == ["check"]:
        problems = check(model)
        for p in problems:
            print(p)
        return 1 if problems else 0
    print(__doc__)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
