"""Fill the e-mail templates: Jinja2 (autoescaped, StrictUndefined) then MJML → HTML.

Pure code: takes plain values, returns strings.  Every template except ``*.txt.j2`` is
autoescaped, ``.mjml.j2`` included (Jinja's ``select_autoescape`` would miss it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from mjml import mjml2html

TEMPLATES_DIR = Path(__file__).resolve().parent


def _autoescape(template_name: str | None) -> bool:
    return template_name is None or not template_name.endswith(".txt.j2")


def make_environment(templates_dir: Path = TEMPLATES_DIR) -> Environment:
    return Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str
    locale: str


class EmailRenderer:
    def __init__(self, templates_dir: Path = TEMPLATES_DIR):
        self.env = make_environment(templates_dir)

    def render(self, campaign: str, context: Mapping[str, Any]) -> RenderedEmail:
        subject = context["subject"]
        if "\r" in subject or "\n" in subject:
            raise ValueError("subject must not contain CR or LF")
        mjml_source = self.env.get_template(f"{campaign}.mjml.j2").render(context)
        html = mjml2html(mjml_source, disable_comments=True)
        text = self.env.get_template(f"{campaign}.txt.j2").render(context)
        return RenderedEmail(subject=subject, preheader=context["preheader"], html=html, text=text, locale=context.get("locale", "en"))
