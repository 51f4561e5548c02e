"""The preference centre's words in every supported language, and choosing the language.

Catalogs are plain dictionaries (a few dozen short strings, reviewed as a whole); dates are
formatted with Babel.  The language of a page is, in order: an explicit ``?lang=``, the
locale the pipeline registered for the customer, the browser's ``Accept-Language``, and
finally the configured default (English).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Final

from babel.dates import format_date

SUPPORTED: Final[tuple[str, ...]] = ("en", "zh-CN", "hu")
#: How each language names itself (for the language switcher).
NATIVE_NAMES: Final[dict[str, str]] = {"en": "English", "zh-CN": "简体中文", "hu": "Magyar"}

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "en": {
        "preferences_title": "Email preferences",
        "preferences_intro": "Choose how often {brand} sends you a short summary of the time and money it saved you.",
        "legend": "How often would you like to hear from us?",
        "freq_weekly": "Weekly",
        "freq_weekly_help": "A short digest every Monday, plus the monthly and yearly recaps.",
        "freq_monthly": "Monthly",
        "freq_monthly_help": "One summary a month, plus your yearly recap.",
        "freq_yearly": "Yearly",
        "freq_yearly_help": "Just your yearly recap, once a year.",
        "freq_never": "Never",
        "freq_never_help": "No value emails at all.",
        "current": "current",
        "save": "Save preferences",
        "saved": "Saved.",
        "summary_weekly": "You’ll get weekly, monthly and yearly emails.",
        "summary_monthly": "You’ll get monthly and yearly emails.",
        "summary_yearly": "You’ll get the yearly recap only.",
        "summary_never": "You won’t get any value emails.",
        "notice_unsubscribed": "You’re unsubscribed from value emails (since {date}).",
        "notice_complaint": "One of our emails was reported as spam, so we stopped sending value emails (since {date}).",
        "notice_hard_bounce": "Emails to your address bounced, so we stopped sending them (since {date}).",
        "notice_manual": "Value emails are paused for your account. You can still choose how often you’d like them.",
        "resubscribe_prompt": "Want them back? Pick how often and subscribe again.",
        "resubscribe": "Subscribe again",
        "resubscribed": "Welcome back!",
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_question": "Stop all value emails from {brand}?",
        "unsubscribe_explain": "You won’t get the weekly, monthly or yearly emails about what {brand} did for you.",
        "unsubscribe_button": "Unsubscribe",
        "fewer_prompt": "Rather get fewer?",
        "fewer_link": "Choose monthly or yearly instead",
        "already_unsubscribed": "You’re already unsubscribed.",
        "unsubscribed_title": "You’re unsubscribed",
        "unsubscribed_body": "You won’t get any more value emails from {brand}.",
        "changed_mind": "Changed your mind?",
        "manage_link": "Subscribe again or choose how often",
        "error_invalid_title": "This link doesn’t work",
        "error_invalid_body": "It may have been cut off or changed. Please use the link in your most recent email, copied in full.",
        "error_expired_title": "This link has expired",
        "error_expired_body": "For your security, links in our emails stop working after a while. Please use the link in a more recent email.",
        "error_unknown_title": "We couldn’t find your preferences",
        "error_unknown_body": "This link belongs to an account we don’t know (any more).",
        "error_form_title": "Please try again",
        "error_form_body": "The form expired or was sent from another site, so nothing was saved. Open the page again and resubmit.",
        "error_bad_request_title": "Something was missing",
        "error_bad_request_body": "Please choose one of the options and try again.",
        "error_not_found_title": "Page not found",
        "error_not_found_body": "There’s nothing here. The links in our emails take you to your preferences.",
        "error_server_title": "Something went wrong",
        "error_server_body": "Sorry — please try again in a minute.",
        "nothing_changed": "Nothing was changed.",
        "back_to_preferences": "Back to your preferences",
        "footer": "You get these emails because you use {brand}.",
        "language": "Language",
    },
    "zh-CN": {
        "preferences_title": "邮件偏好设置",
        "preferences_intro": "选择 {brand} 多久给你发送一次简短总结，告诉你它为你节省了多少时间和金钱。",
        "legend": "你希望多久收到一次我们的邮件？",
        "freq_weekly": "每周",
        "freq_weekly_help": "每周一发送简短摘要，另含月度和年度回顾。",
        "freq_monthly": "每月",
        "freq_monthly_help": "每月一封总结，另含年度回顾。",
        "freq_yearly": "每年",
        "freq_yearly_help": "只接收年度回顾，一年一次。",
        "freq_never": "从不",
        "freq_never_help": "不接收任何价值邮件。",
        "current": "当前",
        "save": "保存设置",
        "saved": "已保存。",
        "summary_weekly": "你将收到每周、每月和每年的邮件。",
        "summary_monthly": "你将收到每月和每年的邮件。",
        "summary_yearly": "你只会收到年度回顾。",
        "summary_never": "你将不会收到任何价值邮件。",
        "notice_unsubscribed": "你已退订价值邮件（自 {date} 起）。",
        "notice_complaint": "我们的一封邮件被举报为垃圾邮件，因此我们已停止发送价值邮件（自 {date} 起）。",
        "notice_hard_bounce": "发往你邮箱的邮件被退回，因此我们已停止发送（自 {date} 起）。",
        "notice_manual": "你账户的价值邮件目前已暂停。你仍可以选择希望收到邮件的频率。",
        "resubscribe_prompt": "想重新接收？选择频率后重新订阅即可。",
        "resubscribe": "重新订阅",
        "resubscribed": "欢迎回来！",
        "unsubscribe_title": "退订",
        "unsubscribe_question": "停止接收 {brand} 的所有价值邮件？",
        "unsubscribe_explain": "你将不再收到关于 {brand} 为你做了什么的每周、每月或每年邮件。",
        "unsubscribe_button": "退订",
        "fewer_prompt": "只是想少收一些？",
        "fewer_link": "改为每月或每年接收",
        "already_unsubscribed": "你已经退订了。",
        "unsubscribed_title": "你已成功退订",
        "unsubscribed_body": "你将不再收到 {brand} 的价值邮件。",
        "changed_mind": "改变主意了？",
        "manage_link": "重新订阅或选择接收频率",
        "error_invalid_title": "此链接无效",
        "error_invalid_body": "链接可能被截断或修改过。请完整复制最近一封邮件中的链接后再试。",
        "error_expired_title": "此链接已过期",
        "error_expired_body": "为保障你的安全，邮件中的链接会在一段时间后失效。请使用较新邮件中的链接。",
        "error_unknown_title": "找不到你的偏好设置",
        "error_unknown_body": "此链接对应的账户不存在或已被删除。",
        "error_form_title": "请重试",
        "error_form_body": "表单已过期或来自其他网站，因此没有保存任何更改。请重新打开页面后再提交。",
        "error_bad_request_title": "缺少内容",
        "error_bad_request_body": "请选择一个选项后重试。",
        "error_not_found_title": "页面不存在",
        "error_not_found_body": "这里什么也没有。请通过我们邮件中的链接进入你的偏好设置。",
        "error_server_title": "出了点问题",
        "error_server_body": "抱歉，请稍后再试。",
        "nothing_changed": "未做任何更改。",
        "back_to_preferences": "返回偏好设置",
        "footer": "你收到这些邮件，是因为你在使用 {brand}。",
        "language": "语言",
    },
    "hu": {
        "preferences_title": "E-mail-beállítások",
        "preferences_intro": "Válaszd ki, milyen gyakran küldjünk rövid összefoglalót arról, mennyi időt és pénzt takarítottál meg velünk.",
        "legend": "Milyen gyakran szeretnél hírt kapni tőlünk?",
        "freq_weekly": "Hetente",
        "freq_weekly_help": "Rövid összefoglaló minden hétfőn, plusz a havi és az éves összesítő.",
        "freq_monthly": "Havonta",
        "freq_monthly_help": "Havonta egy összefoglaló, plusz az éves összesítő.",
        "freq_yearly": "Évente",
        "freq_yearly_help": "Csak az éves összesítő, évente egyszer.",
        "freq_never": "Soha",
        "freq_never_help": "Egyáltalán nem kérek ilyen e-mailt.",
        "current": "jelenlegi",
        "save": "Beállítások mentése",
        "saved": "Mentve.",
        "summary_weekly": "Heti, havi és éves e-maileket fogsz kapni.",
        "summary_monthly": "Havi és éves e-maileket fogsz kapni.",
        "summary_yearly": "Csak az éves összesítőt fogod megkapni.",
        "summary_never": "Nem kapsz tőlünk összefoglaló e-mailt.",
        "notice_unsubscribed": "Leiratkoztál az összefoglaló e-mailekről ({date} óta).",
        "notice_complaint": "Az egyik e-mailünket spamként jelentették, ezért nem küldünk több összefoglalót ({date} óta).",
        "notice_hard_bounce": "A címedre küldött e-mailjeink visszapattantak, ezért leállítottuk a küldést ({date} óta).",
        "notice_manual": "A fiókodhoz tartozó összefoglaló e-mailek szünetelnek. A gyakoriságot ettől még beállíthatod.",
        "resubscribe_prompt": "Szeretnéd újra megkapni őket? Válaszd ki a gyakoriságot, és iratkozz fel újra.",
        "resubscribe": "Újra feliratkozom",
        "resubscribed": "Örülünk, hogy visszatértél!",
        "unsubscribe_title": "Leiratkozás",
        "unsubscribe_question": "Leiratkozol az összes összefoglaló e-mailünkről?",
        "unsubscribe_explain": "Nem kapsz többé heti, havi vagy éves e-mailt arról, mit végeztünk el helyetted.",
        "unsubscribe_button": "Leiratkozom",
        "fewer_prompt": "Inkább ritkábban kérnéd?",
        "fewer_link": "Válts havi vagy éves gyakoriságra",
        "already_unsubscribed": "Már leiratkoztál.",
        "unsubscribed_title": "Sikeresen leiratkoztál",
        "unsubscribed_body": "Nem küldünk több összefoglaló e-mailt.",
        "changed_mind": "Meggondoltad magad?",
        "manage_link": "Iratkozz fel újra, vagy válaszd ki a gyakoriságot",
        "error_invalid_title": "Ez a link nem működik",
        "error_invalid_body": "Lehet, hogy a link csonka vagy megváltozott. Használd a legutóbbi e-mailünkben lévő linket, teljes egészében.",
        "error_expired_title": "Ez a link lejárt",
        "error_expired_body": "Biztonsági okokból az e-mailjeinkben lévő linkek egy idő után lejárnak. Használd egy újabb e-mail linkjét.",
        "error_unknown_title": "Nem találjuk a beállításaidat",
        "error_unknown_body": "Ez a link egy általunk nem ismert vagy már törölt fiókhoz tartozik.",
        "error_form_title": "Próbáld újra",
        "error_form_body": "Az űrlap lejárt vagy egy másik webhelyről érkezett, ezért semmit sem mentettünk. Nyisd meg újra az oldalt, és küldd el ismét.",
        "error_bad_request_title": "Valami hiányzik",
        "error_bad_request_body": "Válassz egy lehetőséget, és próbáld újra.",
        "error_not_found_title": "Az oldal nem található",
        "error_not_found_body": "Itt nincs semmi. Az e-mailjeinkben lévő linkek a beállításaidhoz vezetnek.",
        "error_server_title": "Hiba történt",
        "error_server_body": "Elnézést, próbáld újra egy perc múlva.",
        "nothing_changed": "Semmi sem változott.",
        "back_to_preferences": "Vissza a beállításokhoz",
        "footer": "Azért kapod ezeket az e-maileket, mert {a_brand} szolgáltatást használod.",
        "language": "Nyelv",
    },
}

_BABEL_LOCALE: Final[dict[str, str]] = {"en": "en", "zh-CN": "zh_Hans_CN", "hu": "hu"}


def normalize(tag: str | None) -> str | None:
    """A supported language for a locale tag (``hu_HU``, ``zh-Hans-CN``, ``EN-gb`` …), or ``None``."""
    if not tag:
        return None
    parts = tag.strip().replace("_", "-").split("-")
    language = parts[0].lower()
    if language == "zh":
        return "zh-CN"  # the only Chinese catalog; Traditional readers still read it
    for supported in SUPPORTED:
        if supported.lower() == language:
            return supported
    return None


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags from an ``Accept-Language`` header, best first (``q=0`` dropped)."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate(*candidates: str | None | Iterable[str], default: str = "en") -> str:
    """The first supported language among the candidates (strings or lists of strings), else ``default``."""
    for candidate in candidates:
        tags = [candidate] if candidate is None or isinstance(candidate, str) else list(candidate)
        for tag in tags:
            language = normalize(tag)
            if language:
                return language
    return normalize(default) or "en"


class Translator:
    """``t("key", brand=…)`` in one language (falls back to English for a missing key)."""

    def __init__(self, language: str, brand: str) -> None:
        self.language = language if language in MESSAGES else "en"
        self._messages = MESSAGES[self.language]
        self._brand = brand

    def __call__(self, key: str, **values: object) -> str:
        text = self._messages.get(key) or MESSAGES["en"][key]
        return text.format(brand=self._brand, a_brand=self._a_brand, **values)

    @property
    def _a_brand(self) -> str:
        """The brand with its article where the language needs one (Hungarian: "a"/"az" by the first sound)."""
        if self.language == "hu":
            return ("az " if self._brand[:1].lower() in "aáeéiíoóöőuúüű" else "a ") + self._brand
        return self._brand

    def date(self, value: date) -> str:
        """A date in the language's long form (``November 23, 2026``, ``2026年11月23日``, ``2026. november 23.``)."""
        return format_date(value, format="long", locale=_BABEL_LOCALE[self.language])
