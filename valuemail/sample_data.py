"""Deterministic synthetic customers and usage events for a workflow-automation SaaS.

``generate`` writes one ``customers.<ext>`` file and events in chunked files
``events-00000.<ext>``, ``events-00001.<ext>``, … in CSV, NDJSON or Parquet, following the
data contracts in DESIGN.md.  The same arguments always give byte-identical files (with the
same library versions): every random draw comes from a NumPy ``SeedSequence`` derived from
``seed``, a stream name and a chunk number.

What the data contains, so that every downstream path has something to chew on:

* Event types are those of the configured value model plus a small share (~0.1 %) of an
  unknown type (:data:`UNKNOWN_EVENT_TYPE`).  Quantities are mostly 1; some event types
  carry a measured ``duration_saved_s``; ``subscription_audit`` (and a few
  ``payment_reconciled``) carry a measured ``amount_saved`` in the customer's currency.
* Customers speak en, zh-CN, hu, de, fr or es, with matching countries, time zones,
  currencies (USD, EUR, HUF, CNY) and names.  Addresses are a mix of company domains
  (heavy-tailed company sizes: some domains hold far more than 20 customers), free-mail
  domains, role addresses (``noreply@``, ``support@`` …), a few on an excluded domain
  (``example.invalid``) and ~1 % malformed ones.  Company domains end in ``.example`` or
  ``.test`` (reserved names, RFC 2606).
* Behaviour mix: prospects (no events), new, heavy, regular, light, lapsed (stopped 30–90
  days ago), churned (stopped > 90 days ago) and seasonal users (active only around the
  holidays or in tax season); weekday-heavy weekly rhythm, local working hours, a mild
  yearly cycle; no event precedes its customer's sign-up.

Generation is vectorised (NumPy, PyArrow, Polars writers) and runs chunk by chunk, so memory
is bounded by the chunk size, not by the number of events.  Pure code: no Dagster.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import product
from pathlib import Path
from typing import Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from valuemail.config import ValueModel, load_config

__all__ = [
    "CUSTOMER_COLUMNS",
    "DEFAULT_EVENTS_PER_CUSTOMER",
    "EVENT_COLUMNS",
    "FORMATS",
    "HISTORY_DAYS",
    "SampleSummary",
    "UNKNOWN_EVENT_TYPE",
    "generate",
]

FORMATS: tuple[str, ...] = ("parquet", "csv", "ndjson")
UNKNOWN_EVENT_TYPE = "beta_feature_used"
UNKNOWN_EVENT_SHARE = 0.001
DEFAULT_EVENTS_PER_CUSTOMER = 50.0
HISTORY_DAYS = 730  # activity spans the two years ending on end_date
MAX_EVENTS_PER_FILE = 5_000_000      # about; files are cut into equal shares
MAX_CUSTOMERS_PER_FILE = 200_000

EVENT_COLUMNS: tuple[str, ...] = (
    "event_id", "customer_id", "occurred_at", "event_type", "quantity",
    "duration_saved_s", "amount_saved", "currency", "properties",
)
CUSTOMER_COLUMNS: tuple[str, ...] = (
    "customer_id", "email", "name", "locale", "timezone", "plan", "country",
    "signed_up_at", "company", "hourly_rate", "currency",
)

_DAY_S = 86_400
_ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"
_OUTPUT_NAME = re.compile(r"^(customers|events-\d{5})\.(parquet|csv|ndjson)$")


# ----------------------------------------------------------------------------------------
# Public result
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate` wrote (``behaviours`` is the generator's intended mix)."""

    out_dir: Path
    fmt: str
    seed: int
    customers: int
    events: int
    first_day: date
    end_date: date
    customers_file: Path
    event_files: tuple[Path, ...]
    behaviours: Mapping[str, int] = field(default_factory=dict)
    unknown_events: int = 0
    seconds: float = 0.0

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.customers_file, *self.event_files)

    def describe(self) -> str:
        """A short human summary: counts, files, date range and folder."""
        mix = ", ".join(f"{count:,} {name}" for name, count in self.behaviours.items())
        return "\n".join([
            f"Sample data (seed {self.seed}, {self.fmt}) in {self.out_dir}",
            f"  {self.customers:,} customers -> {self.customers_file.name}",
            f"  {self.events:,} events ({self.unknown_events:,} of unknown type {UNKNOWN_EVENT_TYPE!r}) "
            f"-> {len(self.event_files)} file(s) events-*.{self.fmt}",
            f"  activity {self.first_day.isoformat()} .. {self.end_date.isoformat()} (UTC)",
            f"  behaviour mix: {mix}",
            f"  written in {self.seconds:.1f}s",
        ])


# ----------------------------------------------------------------------------------------
# Reference data: behaviours, locales, names, companies, e-mail domains
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Behaviour:
    name: str
    share: float
    rate: float          # median relative daily activity (log-normal around it)
    plan_weights: tuple[float, float, float, float]  # free, starter, pro, business


_BEHAVIOURS: tuple[_Behaviour, ...] = (
    _Behaviour("prospect", 0.12, 0.0, (0.85, 0.10, 0.04, 0.01)),
    _Behaviour("new", 0.07, 1.5, (0.60, 0.25, 0.12, 0.03)),
    _Behaviour("heavy", 0.06, 8.0, (0.10, 0.25, 0.40, 0.25)),
    _Behaviour("regular", 0.28, 1.0, (0.35, 0.35, 0.22, 0.08)),
    _Behaviour("light", 0.16, 0.15, (0.60, 0.28, 0.10, 0.02)),
    _Behaviour("lapsed", 0.10, 0.8, (0.50, 0.30, 0.15, 0.05)),
    _Behaviour("churned", 0.14, 0.7, (0.70, 0.20, 0.08, 0.02)),
    _Behaviour("seasonal", 0.07, 3.0, (0.30, 0.40, 0.25, 0.05)),
)
_B = {b.name: i for i, b in enumerate(_BEHAVIOURS)}
_PLANS = ("free", "starter", "pro", "business")

# Seasonal profiles of daily activity: 0 all year, 1 around the holidays, 2 tax season.
_PROFILE_ALL_YEAR, _PROFILE_HOLIDAYS, _PROFILE_TAX = 0, 1, 2
_WEEKDAY_FACTOR = np.array([1.0, 1.05, 1.05, 1.0, 0.85, 0.25, 0.2])  # Monday first
_HOLIDAY_MONTHS = {11: 0.6, 12: 1.0}
_TAX_MONTHS = {2: 0.4, 3: 1.0, 4: 0.9}
# Relative activity by local hour of day: working hours, a lunch dip, quiet nights.
_HOUR_WEIGHTS = np.array([
    0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.6, 1.5, 3.5, 5.5, 6.0, 5.5,
    3.5, 4.5, 5.5, 5.5, 5.0, 3.5, 2.0, 1.5, 1.2, 1.0, 0.8, 0.5,
])

_CURRENCIES = ("USD", "EUR", "HUF", "CNY")
_FX_PER_USD = np.array([1.0, 0.92, 360.0, 7.2])
_WHOLE_UNITS = np.array([False, False, True, False])  # HUF amounts are whole forints
_HOURLY_RATE_MEDIAN = np.array([45.0, 40.0, 9000.0, 160.0])


@dataclass(frozen=True)
class _Country:
    locale: str
    code: str
    share: float                              # within the locale
    timezones: tuple[tuple[str, float], ...]
    currencies: tuple[tuple[str, float], ...]


_LOCALE_SHARES: dict[str, float] = {"en": 0.46, "zh-CN": 0.20, "hu": 0.16, "de": 0.08, "fr": 0.06, "es": 0.04}
_USD, _EUR = (("USD", 1.0),), (("EUR", 1.0),)
_COUNTRIES: tuple[_Country, ...] = (
    _Country("en", "US", 0.55, (("America/New_York", 0.45), ("America/Chicago", 0.25),
                                ("America/Denver", 0.08), ("America/Los_Angeles", 0.22)), _USD),
    _Country("en", "GB", 0.15, (("Europe/London", 1.0),), _USD),
    _Country("en", "CA", 0.08, (("America/Toronto", 0.7), ("America/Vancouver", 0.3)), _USD),
    _Country("en", "AU", 0.07, (("Australia/Sydney", 1.0),), _USD),
    _Country("en", "IE", 0.05, (("Europe/Dublin", 1.0),), _EUR),
    _Country("en", "IN", 0.06, (("Asia/Kolkata", 1.0),), _USD),
    _Country("en", "SG", 0.04, (("Asia/Singapore", 1.0),), _USD),
    _Country("zh-CN", "CN", 1.0, (("Asia/Shanghai", 1.0),), (("CNY", 1.0),)),
    _Country("hu", "HU", 1.0, (("Europe/Budapest", 1.0),), (("HUF", 0.8), ("EUR", 0.2))),
    _Country("de", "DE", 0.8, (("Europe/Berlin", 1.0),), _EUR),
    _Country("de", "AT", 0.2, (("Europe/Vienna", 1.0),), _EUR),
    _Country("fr", "FR", 0.85, (("Europe/Paris", 1.0),), _EUR),
    _Country("fr", "BE", 0.15, (("Europe/Brussels", 1.0),), _EUR),
    _Country("es", "ES", 0.6, (("Europe/Madrid", 1.0),), _EUR),
    _Country("es", "MX", 0.4, (("America/Mexico_City", 1.0),), _USD),
)
_LOCALES: tuple[str, ...] = tuple(_LOCALE_SHARES)
_TIMEZONES: tuple[str, ...] = tuple(dict.fromkeys(tz for c in _COUNTRIES for tz, _ in c.timezones))

# Given names, family names.  zh-CN: (characters, pinyin) pairs; others are romanised for
# e-mail local parts by stripping accents.
_NAMES: dict[str, tuple[Sequence[str | tuple[str, str]], Sequence[str | tuple[str, str]]]] = {
    "en": (
        ["Olivia", "Emma", "Amelia", "Sophia", "Isabella", "Mia", "Charlotte", "Harper", "Evelyn", "Abigail",
         "Emily", "Ella", "Grace", "Chloe", "Lily", "Hannah", "Zoe", "Nora", "Ruby", "Priya",
         "Liam", "Noah", "Oliver", "James", "Elijah", "William", "Henry", "Lucas", "Benjamin", "Theodore",
         "Jack", "Samuel", "Daniel", "Matthew", "David", "Joseph", "Ethan", "Ryan", "Arjun", "Wei"],
        ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Anderson",
         "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark",
         "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker",
         "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Patel", "Murphy", "O'Brien", "Kelly"],
    ),
    "zh-CN": (
        [("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("秀英", "xiuying"), ("敏", "min"), ("静", "jing"),
         ("丽", "li"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"),
         ("艳", "yan"), ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"),
         ("秀兰", "xiulan"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"), ("桂英", "guiying"), ("浩然", "haoran"),
         ("子涵", "zihan"), ("欣怡", "xinyi"), ("宇轩", "yuxuan"), ("梓萱", "zixuan"), ("俊杰", "junjie"), ("雨桐", "yutong")],
        [("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
         ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
         ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"),
         ("林", "lin"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song")],
    ),
    "hu": (
        ["László", "István", "József", "János", "Zoltán", "Sándor", "Gábor", "Ferenc", "Attila", "Péter",
         "Tamás", "Bence", "Máté", "Levente", "Dániel", "Mária", "Erzsébet", "Katalin", "Éva", "Ilona",
         "Anna", "Zsuzsanna", "Judit", "Ágnes", "Eszter", "Réka", "Dóra", "Noémi", "Orsolya", "Hanna"],
        ["Nagy", "Kovács", "Tóth", "Szabó", "Horváth", "Varga", "Kiss", "Molnár", "Németh", "Farkas",
         "Balogh", "Papp", "Takács", "Juhász", "Lakatos", "Mészáros", "Oláh", "Simon", "Rácz", "Fekete",
         "Szilágyi", "Török", "Fehér", "Balázs", "Gál", "Kis", "Szűcs", "Kocsis", "Orsós", "Pintér"],
    ),
    "de": (
        ["Lukas", "Leon", "Finn", "Jonas", "Paul", "Felix", "Maximilian", "Jürgen", "Stefan", "Tobias",
         "Anna", "Lena", "Lea", "Mia", "Hannah", "Sophie", "Laura", "Katrin", "Julia", "Sabine"],
        ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
         "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Zimmermann", "Krüger"],
    ),
    "fr": (
        ["Camille", "Léa", "Manon", "Chloé", "Inès", "Juliette", "Élodie", "Sarah", "Louise", "Margaux",
         "Louis", "Hugo", "Lucas", "Gabriel", "Jules", "Arthur", "Raphaël", "Théo", "Mathis", "Étienne"],
        ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
         "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier"],
    ),
    "es": (
        ["Sofía", "Lucía", "Martina", "María", "Valentina", "Paula", "Daniela", "Carmen", "Elena", "Ximena",
         "Mateo", "Hugo", "Daniel", "Alejandro", "Pablo", "Javier", "Diego", "Santiago", "Álvaro", "José"],
        ["García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Martín",
         "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero", "Navarro", "Torres"],
    ),
}
_FAMILY_NAME_FIRST = {"zh-CN": "", "hu": " "}  # separator when the family name comes first

# Fictional company names: prefix, suffix, legal form; e-mail domains built from their slugs.
_COMPANY_PARTS: dict[str, tuple[Sequence[str | tuple[str, str]], Sequence[str | tuple[str, str]], Sequence[str]]] = {
    "en": (
        ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Wonka", "Cyberdyne", "Soylent", "Tyrell",
         "Northwind", "Contoso", "Fabrikam", "Dunder", "Bluth", "Sterling", "Monarch", "Prestige", "Blue Harbor",
         "Redwood", "Silver Creek", "Ironclad", "Brightside", "Maple", "Summit", "Harbor Point", "Oakridge",
         "Lighthouse", "Granite", "Copperleaf"],
        ["Logistics", "Analytics", "Labs", "Consulting", "Foods", "Media", "Health", "Robotics", "Capital",
         "Studios", "Retail", "Software", "Systems", "Design", "Energy", "Legal", "Travel", "Partners", "Supply", "Dental"],
        ["Inc.", "Ltd", "LLC", "Co."],
    ),
    "zh-CN": (
        [("星辰", "xingchen"), ("华光", "huaguang"), ("天成", "tiancheng"), ("远景", "yuanjing"), ("鼎盛", "dingsheng"),
         ("创新", "chuangxin"), ("金桥", "jinqiao"), ("东方", "dongfang"), ("云海", "yunhai"), ("长城", "changcheng"),
         ("瑞丰", "ruifeng"), ("恒信", "hengxin"), ("博远", "boyuan"), ("智联", "zhilian"), ("新源", "xinyuan")],
        [("科技", "keji"), ("物流", "wuliu"), ("贸易", "maoyi"), ("软件", "ruanjian"), ("咨询", "zixun"),
         ("传媒", "chuanmei"), ("电子", "dianzi"), ("食品", "shipin"), ("医疗", "yiliao"), ("网络", "wangluo")],
        ["有限公司", "股份有限公司"],
    ),
    "hu": (
        ["Duna", "Tisza", "Balaton", "Mátra", "Bakony", "Hunor", "Pannon", "Kárpát", "Alföld", "Zala",
         "Tokaj", "Mecsek", "Rába", "Hargita", "Bükk"],
        ["Logisztika", "Informatika", "Építő", "Könyvelő", "Szoftver", "Kereskedelmi", "Pékség",
         "Tanácsadó", "Média", "Egészség"],
        ["Kft.", "Zrt.", "Bt."],
    ),
    "de": (
        ["Alpen", "Rhein", "Nordlicht", "Bergmann", "Hansa", "Elbe", "Schwarzwald", "Isar", "Spree", "Brocken"],
        ["Logistik", "Software", "Beratung", "Handel", "Bau", "Medien", "Technik", "Versand"],
        ["GmbH", "AG", "GmbH & Co. KG"],
    ),
    "fr": (
        ["Lumière", "Bastille", "Provence", "Atlantique", "Mistral", "Loire", "Riviera", "Montmartre", "Bretagne", "Azur"],
        ["Conseil", "Logistique", "Informatique", "Médias", "Distribution", "Santé", "Services"],
        ["SAS", "SARL", "SA"],
    ),
    "es": (
        ["Sol", "Mediterráneo", "Iberia", "Andalucía", "Cantábrico", "Sierra", "Alborada", "Castilla"],
        ["Logística", "Consultores", "Tecnología", "Distribución", "Medios", "Servicios"],
        ["S.L.", "S.A."],
    ),
}
_ZH_CITIES = ["上海", "北京", "深圳", "杭州", "成都", "广州", "南京", "苏州"]
_COMPANY_TLDS = ("example", "test")

_FREEMAIL: dict[str, tuple[tuple[str, float], ...]] = {
    "en": (("gmail.com", 0.45), ("outlook.com", 0.2), ("yahoo.com", 0.15), ("icloud.com", 0.1), ("hotmail.com", 0.1)),
    "zh-CN": (("qq.com", 0.5), ("163.com", 0.25), ("126.com", 0.1), ("gmail.com", 0.1), ("outlook.com", 0.05)),
    "hu": (("gmail.com", 0.5), ("freemail.hu", 0.25), ("citromail.hu", 0.1), ("outlook.com", 0.1), ("t-online.hu", 0.05)),
    "de": (("gmail.com", 0.3), ("gmx.de", 0.3), ("web.de", 0.3), ("t-online.de", 0.1)),
    "fr": (("gmail.com", 0.4), ("orange.fr", 0.25), ("free.fr", 0.2), ("laposte.net", 0.15)),
    "es": (("gmail.com", 0.55), ("hotmail.es", 0.25), ("yahoo.es", 0.2)),
}
_ROLE_LOCAL_PARTS = ("noreply", "no-reply", "support", "hr", "jobs", "info", "billing",
                     "customerservice", "admin", "sales", "careers", "marketing")
_EXCLUDED_DOMAIN = "example.invalid"

# Shares of the address kinds.
_SHARE_COMPANY_ADDRESS = 0.58
_SHARE_ROLE_OF_COMPANY = 0.04
_SHARE_INVALID = 0.01
_SHARE_EXCLUDED_DOMAIN = 0.003
_SHARE_TITLECASE = 0.02
_SHARE_NO_NAME = 0.02
_COMPANY_SIZE_ALPHA = 1.2      # Pareto tail of seats per company
_COMPANY_SIZE_CAP = 500
_ANCHOR_COMPANY_SEATS = 25     # the first company is an account with > 20 seats (domain cap)


# ----------------------------------------------------------------------------------------
# Reference data: what events look like
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _TypeSpec:
    """How events of one type look (beyond their share in a persona's mix)."""

    batch_share: float = 0.0        # share of events with quantity > 1
    batch_p: float = 0.3            # geometric parameter of the extra units
    measured_share: float = 0.0     # share carrying a measured duration_saved_s
    money_share: float = 0.0        # share carrying a measured amount_saved
    money_median_usd: float = 0.0
    money_zero_share: float = 0.0   # of those, measured as exactly zero
    props_share: float = 0.0        # share carrying properties
    props: tuple[str, ...] = ()     # the JSON texts to pick from


def _json_variants(**choices: Sequence[str | int]) -> tuple[str, ...]:
    """Every combination of the given key choices as compact JSON (stable key order)."""
    keys = sorted(choices)
    return tuple(
        json.dumps(dict(zip(keys, combo)), separators=(",", ":"), ensure_ascii=False)
        for combo in product(*(choices[k] for k in keys))
    )


_APPS = ["slack", "gmail", "google_sheets", "hubspot", "salesforce", "xero", "quickbooks", "shopify", "notion",
         "stripe", "zendesk", "jira", "trello", "dropbox", "docusign", "microsoft_teams", "wechat_work", "billingo"]
_WORKFLOWS = ["New Shopify order to Xero invoice", "Form answer to CRM contact", "Weekly sales report",
              "Invoice reminder after 7 days", "Sync HubSpot deals to Sheets", "Route expense approvals",
              "Welcome e-mail sequence", "Tag and assign support tickets", "Back up Dropbox to S3",
              "Enrich new leads", "Reconcile Stripe payouts", "Onboard new employee"]
_TYPE_SPECS: dict[str, _TypeSpec] = {
    "workflow_run": _TypeSpec(0.25, 0.15, measured_share=0.10, props_share=0.30,
                              props=_json_variants(workflow=_WORKFLOWS, trigger=["schedule", "webhook", "manual"])),
    "email_automated": _TypeSpec(0.30, 0.10, props_share=0.20,
                                 props=_json_variants(template=["welcome", "follow_up", "invoice_reminder", "newsletter", "renewal"])),
    "report_generated": _TypeSpec(measured_share=0.25, props_share=0.30,
                                  props=_json_variants(report=["weekly_sales", "monthly_pnl", "pipeline", "support_sla"],
                                                       format=["pdf", "xlsx", "csv"])),
    "invoice_created": _TypeSpec(0.15, 0.20),
    "data_sync": _TypeSpec(0.20, 0.30, measured_share=0.15, props_share=0.20,
                           props=_json_variants(source=["hubspot", "salesforce", "shopify"], target=["google_sheets", "xero", "notion"])),
    "form_processed": _TypeSpec(0.10, 0.30, measured_share=0.05),
    "approval_routed": _TypeSpec(0.05, 0.50),
    "lead_enriched": _TypeSpec(0.30, 0.10),
    "file_converted": _TypeSpec(0.20, 0.20),
    "reminder_sent": _TypeSpec(0.20, 0.30),
    "ticket_triaged": _TypeSpec(0.15, 0.30, measured_share=0.10),
    "payment_reconciled": _TypeSpec(0.30, 0.10, measured_share=0.05, money_share=0.01, money_median_usd=250.0),
    "duplicate_removed": _TypeSpec(0.50, 0.08),
    "subscription_audit": _TypeSpec(money_share=1.0, money_median_usd=35.0, money_zero_share=0.15),
    "integration_connected": _TypeSpec(props_share=1.0, props=_json_variants(app=_APPS)),
    "login": _TypeSpec(props_share=0.10, props=_json_variants(method=["password", "google", "sso"])),
    UNKNOWN_EVENT_TYPE: _TypeSpec(props_share=1.0,
                                  props=_json_variants(feature=["ai_assistant", "natural_language_builder", "workflow_templates_v2"])),
}

# Personas: what a customer mostly automates.  Types not named get a small base weight.
_PERSONAS: tuple[tuple[float, dict[str, float]], ...] = (
    (0.25, {"workflow_run": 40, "data_sync": 14, "email_automated": 8, "file_converted": 6,
            "duplicate_removed": 5, "reminder_sent": 5, "approval_routed": 4, "report_generated": 4}),   # operations
    (0.15, {"invoice_created": 24, "payment_reconciled": 18, "report_generated": 10, "approval_routed": 8,
            "workflow_run": 10, "document_signed": 5, "reminder_sent": 7, "subscription_audit": 2.5}),  # finance
    (0.20, {"lead_enriched": 25, "email_automated": 20, "meeting_scheduled": 12, "data_sync": 10,
            "workflow_run": 10, "document_signed": 5, "reminder_sent": 8, "duplicate_removed": 4}),    # sales
    (0.10, {"form_processed": 20, "document_signed": 15, "approval_routed": 15, "meeting_scheduled": 10,
            "reminder_sent": 10, "email_automated": 8, "workflow_run": 10}),                            # people / HR
    (0.12, {"ticket_triaged": 35, "email_automated": 15, "workflow_run": 15, "form_processed": 8,
            "duplicate_removed": 5, "report_generated": 5}),                                            # support
    (0.18, {}),                                                                                         # generalist
)
_COMMON_WEIGHTS = {"login": 12.0, "workflow_created": 1.5, "integration_connected": 0.8, "subscription_audit": 0.4}
_BASE_TASK_WEIGHT = 0.5
_GENERALIST_TASK_WEIGHT = 5.0
_SETUP_TYPES = (("workflow_created", 0.6), ("integration_connected", 0.4))  # a customer's first event


# ----------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------
_STREAM_PEOPLE, _STREAM_COMPANIES, _STREAM_STRINGS, _STREAM_ALLOCATION, _STREAM_EVENTS = range(5)


def _rng(seed: int, stream: int, chunk: int = 0) -> np.random.Generator:
    """An independent, reproducible random stream per (seed, purpose, chunk)."""
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFF_FFFF_FFFF_FFFF, stream, chunk]))


def _pick(rng: np.random.Generator, weights: Sequence[float] | np.ndarray, size: int) -> np.ndarray:
    """``size`` indices drawn with the given (unnormalised) weights."""
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    return np.minimum(np.searchsorted(cum, rng.random(size) * cum[-1], side="right"), len(cum) - 1)


def _pick_rows(rng: np.random.Generator, table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each entry of ``rows`` an index drawn from that row of a (rows x k) weight table."""
    cum = np.cumsum(table, axis=1)
    cum = cum / cum[:, -1:]
    u = rng.random(len(rows))
    return np.minimum((u[:, None] >= cum[rows]).sum(axis=1), table.shape[1] - 1)


def _ascii(text: str) -> str:
    """Lower-case ASCII form of a name for an e-mail local part or a domain slug."""
    text = text.replace("ß", "ss").replace("'", "")
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z0-9]+", "-", "".join(c for c in decomposed if not unicodedata.combining(c)).lower()).strip("-")


def _split(items: Sequence[str | tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Display forms and ASCII forms of a vocabulary list."""
    shown = [i if isinstance(i, str) else i[0] for i in items]
    plain = [_ascii(i) if isinstance(i, str) else i[1] for i in items]
    return shown, plain


@dataclass(frozen=True)
class _Vocab:
    """Per-locale word lists flattened into one array with offsets, for vectorised lookup."""

    shown: list[str]
    plain: list[str]
    offset: np.ndarray
    size: np.ndarray

    @classmethod
    def build(cls, per_locale: Sequence[Sequence[str | tuple[str, str]]]) -> "_Vocab":
        shown: list[str] = []
        plain: list[str] = []
        offsets, sizes = [], []
        for items in per_locale:
            s, p = _split(items)
            offsets.append(len(shown))
            sizes.append(len(s))
            shown += s
            plain += p
        return cls(shown, plain, np.array(offsets), np.array(sizes))

    def draw(self, rng: np.random.Generator, locale: np.ndarray) -> np.ndarray:
        return self.offset[locale] + (rng.random(len(locale)) * self.size[locale]).astype(np.int64)


def _decimal_array(cents: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """A decimal128(18, 2) Arrow array from whole hundredths (exact, no float rounding)."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension into the high word
    validity = None
    if valid is not None and not valid.all():
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [validity, pa.py_buffer(words)])


def _utc_timestamps(seconds: np.ndarray) -> pa.Array:
    """Seconds since the epoch as an Arrow ``timestamp[us, tz=UTC]`` array."""
    return pa.array(seconds.astype(np.int64) * 1_000_000, type=pa.timestamp("us", tz="UTC"))


def _hex_ids(prefix: bytes, numbers: np.ndarray) -> pa.Array:
    """Fixed-width ids ``prefix`` + 16 hex digits of each uint64, built without Python loops."""
    assert len(prefix) % 2 == 0
    digits = b"0123456789abcdef"
    pairs = np.array([digits[i >> 4] | digits[i & 15] << 8 for i in range(256)], dtype=np.uint16)
    n, width = len(numbers), len(prefix) + 16
    out = np.empty((n, width // 2), dtype=np.uint16)
    out[:, : len(prefix) // 2] = np.frombuffer(prefix, dtype=np.uint16)
    out[:, len(prefix) // 2:] = pairs[numbers.astype(">u8").view(np.uint8).reshape(n, 8)]
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32 if width * n < 2**31 else np.int64)
    typ = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(out)])


def _scramble(index: np.ndarray, key: int) -> np.ndarray:
    """A keyed bijection on uint64: distinct indexes give distinct, random-looking ids."""
    mask = 0xFFFF_FFFF_FFFF_FFFF
    x = index.astype(np.uint64) * np.uint64(0x9E37_79B9_7F4A_7C15) + np.uint64(key & mask)
    x ^= x >> np.uint64(31)
    x *= np.uint64(0xBF58_476D_1CE4_E5B9)
    x ^= x >> np.uint64(29)
    x *= np.uint64(0x94D0_49BB_1331_11EB | 1)
    x ^= x >> np.uint64(32)
    return x


# ----------------------------------------------------------------------------------------
# The calendar: day weights per seasonal profile, UTC offsets per time zone
# ----------------------------------------------------------------------------------------
def _day_weights(first_day: date, days: int) -> np.ndarray:
    """Relative activity per day (rows: seasonal profiles): weekly rhythm and yearly season."""
    dates = np.datetime64(first_day, "D") + np.arange(days)
    month = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day_of_month = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    weekly = _WEEKDAY_FACTOR[(np.arange(days) + first_day.weekday()) % 7]

    all_year = weekly * (1.0 + 0.12 * np.cos(2 * np.pi * (day_of_year - 45) / 365.25))
    all_year[month == 8] *= 0.8                                                    # summer holidays
    all_year[((month == 12) & (day_of_month >= 24)) | ((month == 1) & (day_of_month == 1))] *= 0.35
    holidays = weekly * np.vectorize(lambda m: _HOLIDAY_MONTHS.get(m, 0.0))(month)
    tax = weekly * np.vectorize(lambda m: _TAX_MONTHS.get(m, 0.0))(month)
    tax[(month == 4) & (day_of_month > 15)] = 0.0                                  # filing deadline
    return np.vstack([all_year, holidays, tax])


def _utc_offsets(first_day: date, days: int) -> np.ndarray:
    """UTC offset in seconds at local noon, per (time zone, day): daylight saving included."""
    out = np.empty((len(_TIMEZONES), days), dtype=np.int64)
    for t, name in enumerate(_TIMEZONES):
        zone = ZoneInfo(name)
        for d in range(days):
            local_noon = datetime.combine(first_day + timedelta(days=d), datetime.min.time()).replace(hour=12, tzinfo=zone)
            out[t, d] = int(local_noon.utcoffset().total_seconds())
    return out


def _local_seconds_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Local second of the day, shaped by working hours."""
    hour = _pick(rng, _HOUR_WEIGHTS, n)
    return hour * 3600 + rng.integers(0, 3600, n)


# ----------------------------------------------------------------------------------------
# The population: who the customers are and how active (numbers only)
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Population:
    first_day: date
    days: int
    behaviour: np.ndarray     # index into _BEHAVIOURS
    country: np.ndarray       # index into _COUNTRIES
    locale: np.ndarray        # index into _LOCALES
    timezone: np.ndarray      # index into _TIMEZONES
    currency: np.ndarray      # index into _CURRENCIES
    plan: np.ndarray          # index into _PLANS
    company: np.ndarray       # index into the company table, -1 for none
    signup_s: np.ndarray      # seconds since first_day 00:00 UTC
    start_day: np.ndarray     # first day of possible activity (>= sign-up day)
    stop_day: np.ndarray      # last day of possible activity
    profile: np.ndarray       # seasonal profile
    persona: np.ndarray       # index into _PERSONAS
    weight: np.ndarray        # expected share of activity (0 for prospects)
    companies: "_Companies"
    day_cum: np.ndarray       # (profile, day + 1): cumulative day weights, 0 first
    utc_offsets: np.ndarray   # (time zone, day): seconds east of UTC

    @property
    def size(self) -> int:
        return len(self.behaviour)


@dataclass(frozen=True)
class _Companies:
    locale: np.ndarray
    country: np.ndarray
    prefix: np.ndarray
    suffix: np.ndarray
    legal: np.ndarray
    serial: np.ndarray        # > 0: another company with the same name parts
    tld: np.ndarray
    city: np.ndarray


def _country_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weights of countries overall, and of time zones / currencies within each country."""
    overall = np.array([_LOCALE_SHARES[c.locale] * c.share for c in _COUNTRIES])
    tz = np.zeros((len(_COUNTRIES), len(_TIMEZONES)))
    cur = np.zeros((len(_COUNTRIES), len(_CURRENCIES)))
    for i, c in enumerate(_COUNTRIES):
        for name, w in c.timezones:
            tz[i, _TIMEZONES.index(name)] = w
        for name, w in c.currencies:
            cur[i, _CURRENCIES.index(name)] = w
    locale_of = np.array([_LOCALES.index(c.locale) for c in _COUNTRIES])
    return overall, tz, cur, locale_of


def _ramp_days(rng: np.random.Generator, lo: np.ndarray | int, hi: np.ndarray | int, n: int) -> np.ndarray:
    """Days in [lo, hi], denser towards hi (a growing product signs up more people lately)."""
    u = rng.random(n)
    u = np.where(rng.random(n) < 0.5, u, np.maximum(u, rng.random(n)))
    lo = np.asarray(lo)
    span = np.asarray(hi) - lo + 1
    return (lo + np.floor(u * span)).astype(np.int64)


def _companies(rng: np.random.Generator, seats_needed: int) -> tuple[_Companies, np.ndarray]:
    """Companies with heavy-tailed seat counts; returns them and one company id per seat."""
    country_w, _, _, locale_of = _country_tables()
    if seats_needed == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Companies(*(empty,) * 8), empty
    draw = max(64, int(seats_needed / 2) + 16)
    sizes = np.minimum(np.floor(rng.random(draw) ** (-1.0 / _COMPANY_SIZE_ALPHA)), _COMPANY_SIZE_CAP).astype(np.int64)
    if seats_needed >= 2 * _ANCHOR_COMPANY_SEATS:
        sizes[0] = max(sizes[0], _ANCHOR_COMPANY_SEATS)
    ends = np.cumsum(sizes)
    count = int(np.searchsorted(ends, seats_needed)) + 1
    sizes = sizes[:count]
    sizes[-1] -= ends[count - 1] - seats_needed
    seat_company = np.repeat(np.arange(count), sizes)
    rng.shuffle(seat_company)

    country = _pick(rng, country_w, count)
    locale = locale_of[country]
    # Enumerate name parts per locale so equal names only repeat once the combinations run out.
    rank = pl.DataFrame({"locale": locale}).select(pl.int_range(pl.len()).over("locale")).to_series().to_numpy()
    n_prefix = np.array([len(_COMPANY_PARTS[loc][0]) for loc in _LOCALES])[locale]
    n_suffix = np.array([len(_COMPANY_PARTS[loc][1]) for loc in _LOCALES])[locale]
    n_legal = np.array([len(_COMPANY_PARTS[loc][2]) for loc in _LOCALES])[locale]
    prefix = rank % n_prefix
    suffix = (rank // n_prefix + rank) % n_suffix
    serial = rank // (n_prefix * n_suffix)
    companies = _Companies(
        locale=locale,
        country=country,
        prefix=prefix,
        suffix=suffix,
        legal=(rng.random(count) * n_legal).astype(np.int64),
        serial=serial,
        tld=(rng.random(count) < 0.3).astype(np.int64),
        city=(rng.random(count) * len(_ZH_CITIES)).astype(np.int64),
    )
    return companies, seat_company


def _population(customers: int, seed: int, end_date: date, event_types: Sequence[str]) -> _Population:
    """Every customer's attributes and activity window, as NumPy arrays."""
    rng = _rng(seed, _STREAM_PEOPLE)
    n = customers
    days = HISTORY_DAYS
    first_day = end_date - timedelta(days=days - 1)
    last = days - 1

    behaviour = _pick(rng, [b.share for b in _BEHAVIOURS], n)

    # Who works where: company seats first (they decide the locale), the rest free-mail.
    country_w, tz_table, cur_table, locale_of = _country_tables()
    at_company = rng.random(n) < _SHARE_COMPANY_ADDRESS
    companies, seat_company = _companies(_rng(seed, _STREAM_COMPANIES), int(at_company.sum()))
    company = np.full(n, -1, dtype=np.int64)
    company[at_company] = seat_company
    country = _pick(rng, country_w, n)
    same_country = at_company & (rng.random(n) < 0.9)  # a few colleagues live abroad
    country[same_country] = companies.country[company[same_country]]
    locale = locale_of[country]
    timezone = _pick_rows(rng, tz_table, country)
    currency = _pick_rows(rng, cur_table, country)
    plan_table = np.array([b.plan_weights for b in _BEHAVIOURS])
    plan = _pick_rows(rng, plan_table, behaviour)

    # Sign-up day and the window in which the customer is active.
    signup_day = np.zeros(n, dtype=np.int64)
    stop_day = np.full(n, last, dtype=np.int64)
    is_ = {name: behaviour == i for name, i in _B.items()}

    def ramp(mask: np.ndarray, lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:
        return _ramp_days(rng, lo, hi, int(mask.sum()))

    signup_day[is_["prospect"]] = ramp(is_["prospect"], 0, last)
    signup_day[is_["new"]] = last - 29 + rng.integers(0, 30, int(is_["new"].sum()))
    for name in ("heavy", "regular", "light"):
        signup_day[is_[name]] = ramp(is_[name], 0, last - 31)
    lapsed = is_["lapsed"]
    stop_day[lapsed] = last - 90 + rng.integers(0, 61, int(lapsed.sum()))          # 30..90 days ago
    signup_day[lapsed] = ramp(lapsed, 0, stop_day[lapsed] - 14)
    churned = is_["churned"]
    signup_day[churned] = ramp(churned, 0, last - 120)
    stop_span = (last - 92) - (signup_day[churned] + 14) + 1
    stop_day[churned] = signup_day[churned] + 14 + np.floor(rng.random(int(churned.sum())) * stop_span).astype(np.int64)
    seasonal = is_["seasonal"]
    signup_day[seasonal] = ramp(seasonal, 0, last - 400)                            # saw last year's season

    delay = np.minimum(rng.geometric(0.5, n) - 1, 14)                               # days until first use
    delay[is_["light"]] *= 2
    delay[is_["heavy"] | is_["new"] | seasonal] = 0
    start_day = np.minimum(signup_day + delay, stop_day)

    offsets = _utc_offsets(first_day, days)
    signup_sod = (_local_seconds_of_day(rng, n) - offsets[timezone, signup_day]) % _DAY_S
    signup_s = signup_day * _DAY_S + signup_sod

    profile = np.full(n, _PROFILE_ALL_YEAR, dtype=np.int64)
    profile[seasonal] = np.where(rng.random(int(seasonal.sum())) < 0.55, _PROFILE_HOLIDAYS, _PROFILE_TAX)
    persona = _pick(rng, [p[0] for p in _PERSONAS], n)

    # Expected activity: a log-normal rate times the summed day weights of the active window.
    day_weights = _day_weights(first_day, days)
    cum = np.concatenate([np.zeros((len(day_weights), 1)), np.cumsum(day_weights, axis=1)], axis=1)
    rate = np.array([b.rate for b in _BEHAVIOURS])[behaviour] * rng.lognormal(0.0, 0.6, n)
    weight = rate * (cum[profile, stop_day + 1] - cum[profile, start_day])
    weight[is_["prospect"]] = 0.0
    if not event_types:
        weight[:] = 0.0

    return _Population(
        first_day=first_day, days=days, behaviour=behaviour, country=country, locale=locale,
        timezone=timezone, currency=currency, plan=plan, company=company, signup_s=signup_s,
        start_day=start_day, stop_day=stop_day, profile=profile, persona=persona, weight=weight,
        companies=companies, day_cum=cum, utc_offsets=offsets,
    )


def _allocate(pop: _Population, total: int, seed: int) -> np.ndarray:
    """Events per customer: exactly ``total``, spread in proportion to expected activity."""
    weight_sum = float(pop.weight.sum())
    if total <= 0 or weight_sum <= 0.0:
        return np.zeros(pop.size, dtype=np.int64)
    p = pop.weight / weight_sum
    p = p / p.sum()
    return _rng(seed, _STREAM_ALLOCATION).multinomial(total, p).astype(np.int64)


# ----------------------------------------------------------------------------------------
# Customers as a table (strings happen here, vectorised in Polars)
# ----------------------------------------------------------------------------------------
def _customer_ids(n: int) -> pa.Array:
    """``cus_0000001`` … in customer order."""
    width = max(7, len(str(n)))
    ids = "cus_" + pl.int_range(1, n + 1, eager=True).cast(pl.String).str.zfill(width)
    return ids.to_arrow().cast(pa.string())


def _company_names(companies: _Companies) -> tuple[pl.Series, pl.Series]:
    """Display name and e-mail domain of every company."""
    prefix = _Vocab.build([_COMPANY_PARTS[loc][0] for loc in _LOCALES])
    suffix = _Vocab.build([_COMPANY_PARTS[loc][1] for loc in _LOCALES])
    legal = _Vocab.build([_COMPANY_PARTS[loc][2] for loc in _LOCALES])
    loc = companies.locale
    frame = pl.DataFrame({
        "zh": loc == _LOCALES.index("zh-CN"),
        "p": pl.Series(prefix.shown).gather(prefix.offset[loc] + companies.prefix),
        "p_slug": pl.Series(prefix.plain).gather(prefix.offset[loc] + companies.prefix),
        "s": pl.Series(suffix.shown).gather(suffix.offset[loc] + companies.suffix),
        "s_slug": pl.Series(suffix.plain).gather(suffix.offset[loc] + companies.suffix),
        "legal": pl.Series(legal.shown).gather(legal.offset[loc] + companies.legal),
        "city": pl.Series(_ZH_CITIES).gather(companies.city),
        "serial": pl.Series(companies.serial),
        "tld": pl.Series(list(_COMPANY_TLDS)).gather(companies.tld),
    }, schema_overrides={"serial": pl.Int64})
    col = pl.col
    out = frame.select(
        name=pl.when(col("zh"))
        .then(pl.concat_str(["city", "p", "s", "legal"]))
        .otherwise(pl.concat_str(["p", "s", "legal"], separator=" ")),
        domain=pl.concat_str([
            pl.when(col("zh")).then(pl.concat_str(["p_slug", "s_slug"]))
            .otherwise(pl.concat_str(["p_slug", "s_slug"], separator="-")),
            pl.when(col("serial") > 0).then((col("serial") + 1).cast(pl.String)).otherwise(pl.lit("")),
            pl.lit("."),
            col("tld"),
        ]),
    )
    return out["name"], out["domain"]


def _customers_table(pop: _Population, seed: int, customer_ids: pa.Array) -> pa.Table:
    """The customers file's rows: names, addresses, plans, sign-up times, optional fields."""
    rng = _rng(seed, _STREAM_STRINGS)
    n = pop.size
    loc = pop.locale
    zh = loc == _LOCALES.index("zh-CN")

    given = _Vocab.build([_NAMES[x][0] for x in _LOCALES])
    family = _Vocab.build([_NAMES[x][1] for x in _LOCALES])
    gi, fi = given.draw(rng, loc), family.draw(rng, loc)

    # Address kinds: company seat (some of them role addresses) or free-mail.
    at_company = pop.company >= 0
    role = at_company & (rng.random(n) < _SHARE_ROLE_OF_COMPANY)
    role_part = np.array(_ROLE_LOCAL_PARTS)[(rng.random(n) * len(_ROLE_LOCAL_PARTS)).astype(np.int64)]
    freemail_domains = list(dict.fromkeys(d for x in _LOCALES for d, _ in _FREEMAIL[x]))
    freemail_w = np.zeros((len(_LOCALES), len(freemail_domains)))
    for i, x in enumerate(_LOCALES):
        for d, w in _FREEMAIL[x]:
            freemail_w[i, freemail_domains.index(d)] = w
    freemail = np.array(freemail_domains, dtype=object)[_pick_rows(rng, freemail_w, loc)]
    excluded = ~at_company & (rng.random(n) < _SHARE_EXCLUDED_DOMAIN / (1 - _SHARE_COMPANY_ADDRESS))
    freemail[excluded] = _EXCLUDED_DOMAIN
    company_name, company_domain = _company_names(pop.companies)
    company_index = np.maximum(pop.company, 0)
    has_companies = len(company_domain) > 0

    # Local-part patterns: 0 first.last, 1 first, 2 flast, 3 first.last<nn>, 4 first_last,
    # 5 first<nn>, 6 QQ number, 7 lastfirst.
    pattern = np.where(at_company, _pick(rng, [0.55, 0.15, 0.20, 0, 0.10], n), _pick(rng, [0.2, 0, 0, 0.35, 0.10, 0.35], n))
    pattern[zh & (pattern == 1)] = 7
    pattern[zh & (freemail == "qq.com") & ~at_company] = 6
    number = np.where(rng.random(n) < 0.5, rng.integers(10, 100, n), rng.integers(1970, 2005, n))
    qq = rng.integers(10_000_000, 3_999_999_999, n)

    col = pl.col
    frame = pl.DataFrame({
        "n": np.arange(1, n + 1),
        "given": pl.Series(given.shown).gather(gi),
        "family": pl.Series(family.shown).gather(fi),
        "g": pl.Series(given.plain).gather(gi),
        "f": pl.Series(family.plain).gather(fi),
        "locale": pl.Series(list(_LOCALES)).gather(loc),
        "pattern": pattern,
        "number": pl.Series(number).cast(pl.String),
        "qq": pl.Series(qq).cast(pl.String),
        "role": role,
        "role_part": role_part,
        "domain": (company_domain.gather(company_index) if has_companies else pl.Series([""] * n))
        .zip_with(pl.Series(at_company), pl.Series(freemail.astype(str))),
    })
    local = (
        pl.when(col("role")).then(col("role_part"))
        .when(col("pattern") == 0).then(pl.concat_str(["g", "f"], separator="."))
        .when(col("pattern") == 1).then(col("g"))
        .when(col("pattern") == 2).then(pl.concat_str([col("g").str.slice(0, 1), "f"]))
        .when(col("pattern") == 3).then(pl.concat_str(["g", pl.lit("."), "f", "number"]))
        .when(col("pattern") == 4).then(pl.concat_str(["g", "f"], separator="_"))
        .when(col("pattern") == 5).then(pl.concat_str(["g", "number"]))
        .when(col("pattern") == 6).then(col("qq"))
        .otherwise(pl.concat_str(["f", "g"]))
    )
    frame = frame.with_columns(local=local)
    # People's addresses are unique (case-insensitively); shared role inboxes may repeat.
    repeat = ~pl.concat_str(["local", "domain"], separator="@").str.to_lowercase().is_first_distinct() & ~col("role")
    frame = frame.with_columns(
        local=pl.when(repeat).then(pl.concat_str([col("local"), col("n").cast(pl.String)], separator=".")).otherwise("local")
    )
    email = pl.concat_str(["local", "domain"], separator="@")
    invalid = ~role & (rng.random(n) < _SHARE_INVALID)
    flaw = (rng.random(n) * 6).astype(np.int64)
    titled = ~role & ~invalid & (rng.random(n) < _SHARE_TITLECASE)
    frame = frame.with_columns(invalid=invalid, flaw=flaw, titled=titled)
    email = (
        pl.when(~col("invalid") & col("titled")).then(email.str.to_titlecase())
        .when(~col("invalid")).then(email)
        .when(col("flaw") == 0).then(pl.concat_str(["local", "domain"]))                      # missing @
        .when(col("flaw") == 1).then(pl.concat_str(["local", "domain"], separator=" at "))
        .when(col("flaw") == 2).then(pl.concat_str(["local", "domain"], separator=" @"))       # space
        .when(col("flaw") == 3).then(pl.concat_str(["local", "domain"], separator="@@"))
        .when(col("flaw") == 4).then(pl.concat_str([col("local"), col("domain").str.replace(r"\.[^.]+$", "")], separator="@"))
        .otherwise(pl.concat_str([col("local"), col("domain").str.replace(r"\.([^.]+)$", "..$1")], separator="@"))
    )
    family_first = pl.col("locale").replace_strict(_FAMILY_NAME_FIRST, default=None, return_dtype=pl.String)
    name = (
        pl.when(family_first.is_not_null())
        .then(pl.concat_str([col("family"), family_first, col("given")]))
        .otherwise(pl.concat_str(["given", "family"], separator=" "))
    )
    no_name = rng.random(n) < _SHARE_NO_NAME
    strings = frame.with_columns(no_name=no_name).select(
        email=email,
        name=pl.when(col("no_name")).then(None).otherwise(name),
    )

    # Optional company name: most company seats fill it in, a few free-mail users too (a
    # company of their own locale that has no account with us).
    shows_company = np.where(at_company, rng.random(n) < 0.85, rng.random(n) < 0.08)
    elsewhere = np.flatnonzero(shows_company & ~at_company)
    k = len(elsewhere)

    def part(i: int) -> np.ndarray:
        sizes = np.array([len(_COMPANY_PARTS[x][i]) for x in _LOCALES])[loc[elsewhere]]
        return (rng.random(k) * sizes).astype(np.int64)

    zeros = np.zeros(k, dtype=np.int64)
    outside = _Companies(locale=loc[elsewhere], country=pop.country[elsewhere], prefix=part(0), suffix=part(1),
                         legal=part(2), serial=zeros, tld=zeros, city=(rng.random(k) * len(_ZH_CITIES)).astype(np.int64))
    company = pl.repeat(None, n, dtype=pl.String, eager=True).alias("company")
    seats = np.flatnonzero(shows_company & at_company)
    if len(seats):
        company = company.scatter(seats, company_name.gather(company_index[seats]))
    if len(elsewhere):
        company = company.scatter(elsewhere, _company_names(outside)[0])

    # Hourly rate (set in the product's settings by some customers), in the customer's currency.
    paid = pop.plan > 0
    has_rate = rng.random(n) < np.where(paid, 0.35, 0.10)
    rate = _HOURLY_RATE_MEDIAN[pop.currency] * rng.lognormal(0.0, 0.35, n)
    huf = np.array(_CURRENCIES)[pop.currency] == "HUF"
    rate_cents = np.where(huf, np.round(rate / 500) * 500, np.round(rate)).astype(np.int64) * 100

    epoch0 = int(datetime.combine(pop.first_day, datetime.min.time(), tzinfo=UTC).timestamp())
    table = pa.table({
        "customer_id": customer_ids,
        "email": strings["email"].to_arrow(),
        "name": strings["name"].to_arrow(),
        "locale": pc.take(pa.array(_LOCALES), pa.array(loc)),
        "timezone": pc.take(pa.array(_TIMEZONES), pa.array(pop.timezone)),
        "plan": pc.take(pa.array(_PLANS), pa.array(pop.plan)),
        "country": pc.take(pa.array([c.code for c in _COUNTRIES]), pa.array(pop.country)),
        "signed_up_at": _utc_timestamps(epoch0 + pop.signup_s),
        "company": company.to_arrow(),
        "hourly_rate": _decimal_array(rate_cents, has_rate),
        "currency": pc.take(pa.array(_CURRENCIES), pa.array(pop.currency)),
    })
    return _plain_strings(table)


def _plain_strings(table: pa.Table) -> pa.Table:
    """Polars hands out large/view strings; store every text column as plain ``string``."""
    fields = [pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type)
              else f for f in table.schema]
    return table.cast(pa.schema(fields))


# ----------------------------------------------------------------------------------------
# Events
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _EventModel:
    """Per event type parameters as arrays, indexed by type number (unknown type last)."""

    names: pa.Array
    unknown: int
    persona_edges: np.ndarray   # flattened (persona, known type) cumulative probabilities + persona
    setup_types: np.ndarray
    setup_weights: np.ndarray
    batch_share: np.ndarray
    batch_p: np.ndarray
    measured_share: np.ndarray
    seconds_per_unit: np.ndarray
    money_share: np.ndarray
    money_median_usd: np.ndarray
    money_zero_share: np.ndarray
    props_share: np.ndarray
    props_offset: np.ndarray
    props_size: np.ndarray
    props: pa.Array

    @classmethod
    def build(cls, model: ValueModel) -> "_EventModel":
        known = [t for t in model.events if t != UNKNOWN_EVENT_TYPE]
        names = [*known, UNKNOWN_EVENT_TYPE]
        specs = [_TYPE_SPECS.get(t, _TypeSpec()) for t in names]
        weights = np.zeros((len(_PERSONAS), len(known)))
        for p, (_, mix) in enumerate(_PERSONAS):
            for k, t in enumerate(known):
                is_task = model.events[t].task
                base = (_GENERALIST_TASK_WEIGHT if not mix else _BASE_TASK_WEIGHT) if is_task else 0.0
                if t not in _COMMON_WEIGHTS and t not in mix and t not in _TYPE_SPECS:
                    base = max(base, 1.0)  # a type this generator does not know: still appears
                weights[p, k] = mix.get(t, base) + _COMMON_WEIGHTS.get(t, 0.0)
        cum = np.cumsum(weights, axis=1)
        cum = cum / np.where(cum[:, -1:] > 0, cum[:, -1:], 1.0)
        edges = (cum + np.arange(len(_PERSONAS))[:, None]).ravel()
        setup = [(names.index(t), w) for t, w in _SETUP_TYPES if t in known]
        props_offset, props_size, vocab = [], [], []
        for spec in specs:
            props_offset.append(len(vocab))
            props_size.append(len(spec.props))
            vocab += spec.props
        minutes = [float(model.events[t].minutes_per_unit) if t in model.events else 0.0 for t in names]
        arr = lambda attr: np.array([getattr(s, attr) for s in specs], dtype=np.float64)  # noqa: E731
        return cls(
            names=pa.array(names, pa.string()),
            unknown=len(known),
            persona_edges=edges,
            setup_types=np.array([i for i, _ in setup], dtype=np.int64),
            setup_weights=np.array([w for _, w in setup]),
            batch_share=arr("batch_share"),
            batch_p=np.where(arr("batch_p") > 0, arr("batch_p"), 1.0),
            measured_share=np.where(np.array(minutes) > 0, arr("measured_share"), 0.0),
            seconds_per_unit=np.array(minutes) * 60.0,
            money_share=arr("money_share"),
            money_median_usd=arr("money_median_usd"),
            money_zero_share=arr("money_zero_share"),
            props_share=np.where(np.array(props_size) > 0, arr("props_share"), 0.0),
            props_offset=np.array(props_offset, dtype=np.int64),
            props_size=np.array(props_size, dtype=np.int64),
            props=pa.array(vocab, pa.string()),
        )


def _chunk_bounds(counts: np.ndarray, max_events: int, max_customers: int) -> list[tuple[int, int]]:
    """Consecutive customer ranges of about equal size, each holding about ``max_events``
    events / ``max_customers`` customers at most (whichever needs more files decides)."""
    n, total = len(counts), int(counts.sum())
    files = max(1, -(-total // max_events), -(-n // max_customers))
    if files == 1:
        return [(0, n)]
    if total / max_events >= n / max_customers:   # events decide: equal shares of events
        cuts = np.searchsorted(np.cumsum(counts), total * np.arange(1, files) / files, side="left") + 1
    else:                                            # customers decide: equal shares of customers
        cuts = n * np.arange(1, files) // files
    edges = [0, *np.unique(np.clip(cuts, 1, n - 1)).tolist(), n]
    return list(zip(edges[:-1], edges[1:]))


def _id_key(seed: int, customers: int, end_date: date, total: int) -> int:
    """Key of the event-id bijection: other settings give other ids (re-ingest stays safe)."""
    digest = hashlib.blake2b(f"{seed}|{customers}|{end_date.isoformat()}|{total}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _events_table(
    pop: _Population,
    counts: np.ndarray,
    customer_ids: pa.Array,
    model: _EventModel,
    bounds: tuple[int, int],
    first_index: int,
    chunk: int,
    seed: int,
    id_key: int,
) -> pa.Table:
    """The events of customers ``bounds[0]`` … ``bounds[1] - 1``, sorted by customer and time."""
    rng = _rng(seed, _STREAM_EVENTS, chunk)
    lo, hi = bounds
    per_customer = counts[lo:hi]
    n = int(per_customer.sum())
    who = np.arange(lo, hi)
    days = pop.days

    # Day: drawn in proportion to the customer's seasonal day weights inside their window.
    stride = days + 1
    spread = float(pop.day_cum[:, -1].max()) + 1.0
    flat = (pop.day_cum + spread * np.arange(len(pop.day_cum))[:, None]).ravel()
    row = pop.profile[who] * stride
    start, stop = pop.start_day[who], pop.stop_day[who]
    low, high = flat[row + start], flat[row + stop + 1]
    x = np.repeat(low, per_customer) + rng.random(n) * np.repeat(high - low, per_customer)
    day = np.searchsorted(flat, x, side="right") - 1 - np.repeat(row, per_customer)
    # x >= low, so the day is never before the window; x can round up to ``high``.
    np.minimum(day, np.repeat(stop, per_customer), out=day)
    del x

    # Time of day: local working hours, converted to UTC; never before the sign-up moment.
    tz = np.repeat(pop.timezone[who], per_customer)
    seconds = day * _DAY_S + (_local_seconds_of_day(rng, n) - pop.utc_offsets[tz, day]) % _DAY_S
    del tz
    signup = np.repeat(pop.signup_s[who], per_customer)
    early = np.flatnonzero(seconds < signup)
    room = (day[early] + 1) * _DAY_S - signup[early]
    seconds[early] = signup[early] + np.floor(rng.random(len(early)) * room).astype(np.int64)
    del signup, day, early

    # Sort by (customer, time): customers are already grouped, so one int64 sort does it.
    key = (np.repeat(np.arange(hi - lo, dtype=np.int64), per_customer) << 32) | seconds
    key.sort()
    customer = lo + (key >> 32)
    seconds = key & 0xFFFF_FFFF
    del key

    # Event type from the customer's persona; their first event is setting something up.
    persona = pop.persona[customer]
    n_known = model.unknown
    kind = np.searchsorted(model.persona_edges, persona + rng.random(n), side="right") - persona * n_known
    kind = np.clip(kind, 0, n_known - 1) if n_known else np.zeros(n, dtype=np.int64)
    del persona
    if n and len(model.setup_types):
        first = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
        kind[first] = model.setup_types[_pick(rng, model.setup_weights, len(first))]
    kind[rng.random(n) < UNKNOWN_EVENT_SHARE] = model.unknown

    # Quantity: mostly 1, sometimes a batch.
    quantity = np.ones(n, dtype=np.int64)
    batch = np.flatnonzero(rng.random(n) < model.batch_share[kind])
    quantity[batch] += rng.geometric(model.batch_p[kind[batch]])

    # Measured seconds saved: the product timed some runs.
    duration = np.full(n, np.nan)
    timed = np.flatnonzero(rng.random(n) < model.measured_share[kind])
    duration[timed] = np.round(quantity[timed] * model.seconds_per_unit[kind[timed]] * rng.lognormal(0.0, 0.35, len(timed)))

    # Measured money saved, in the customer's currency (e.g. licences a spend audit cancelled).
    money = np.flatnonzero(rng.random(n) < model.money_share[kind])
    currency = pop.currency[customer[money]]
    usd = model.money_median_usd[kind[money]] * rng.lognormal(0.0, 1.0, len(money))
    usd[rng.random(len(money)) < model.money_zero_share[kind[money]]] = 0.0
    local = usd * _FX_PER_USD[currency]
    cents = np.zeros(n, dtype=np.int64)
    cents[money] = np.where(_WHOLE_UNITS[currency], np.round(local) * 100, np.round(local * 100)).astype(np.int64)
    has_money = np.zeros(n, dtype=bool)
    has_money[money] = True
    currency_index = np.zeros(n, dtype=np.int64)
    currency_index[money] = currency

    # Properties: JSON text on some events.
    with_props = np.flatnonzero(rng.random(n) < model.props_share[kind])
    prop = np.full(n, -1, dtype=np.int64)
    prop[with_props] = model.props_offset[kind[with_props]] + (
        rng.random(len(with_props)) * model.props_size[kind[with_props]]).astype(np.int64)

    epoch0 = int(datetime.combine(pop.first_day, datetime.min.time(), tzinfo=UTC).timestamp())
    return pa.table({
        "event_id": _hex_ids(b"evt_", _scramble(np.arange(first_index, first_index + n, dtype=np.uint64), id_key)),
        # Repetitive text as dictionary arrays (no per-row string copies); files store plain text.
        "customer_id": pa.DictionaryArray.from_arrays(pa.array(customer - lo, pa.int32()), customer_ids[lo:hi]),
        "occurred_at": _utc_timestamps(epoch0 + seconds),
        "event_type": pa.DictionaryArray.from_arrays(pa.array(kind, pa.int32()), model.names),
        "quantity": pa.array(quantity, pa.int64()),
        "duration_saved_s": pa.array(duration, pa.float64(), mask=np.isnan(duration)),
        "amount_saved": _decimal_array(cents, has_money),
        "currency": pa.DictionaryArray.from_arrays(pa.array(currency_index, pa.int32(), mask=~has_money),
                                                   pa.array(_CURRENCIES)),
        "properties": pa.DictionaryArray.from_arrays(pa.array(prop, pa.int32(), mask=prop < 0), model.props),
    })


# ----------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------
_DICTIONARY_COLUMNS = ("customer_id", "event_type", "currency", "properties", "locale", "timezone", "plan", "country")


def _decoded(table: pa.Table) -> pa.Table:
    """Dictionary columns as plain ``string`` columns."""
    fields = [pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields))


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    """Write one file atomically (a hidden partial file, then rename)."""
    partial = path.with_name(f".{path.name}.partial")
    if fmt == "parquet":
        # store_schema=False: no Arrow schema in the metadata, so readers see plain text
        # columns (not dictionaries); UTC timestamps stay UTC (isAdjustedToUTC).
        pq.write_table(
            table, partial, compression="zstd", row_group_size=1 << 20, store_schema=False,
            use_dictionary=[c for c in _DICTIONARY_COLUMNS if c in table.column_names],
        )
    else:
        frame = pl.from_arrow(_decoded(table))
        assert isinstance(frame, pl.DataFrame)
        if fmt == "csv":
            frame.write_csv(partial, datetime_format=_ISO_UTC)
        else:
            frame.with_columns(
                pl.col(pl.Datetime).dt.strftime(_ISO_UTC),
                pl.col(pl.Decimal).cast(pl.Float64),
            ).write_ndjson(partial)
    os.replace(partial, path)


def _remove_previous(out: Path) -> None:
    """Delete files an earlier run wrote (only our exact names), so the folder holds one data set."""
    for entry in out.iterdir():
        if entry.is_file() and _OUTPUT_NAME.match(entry.name):
            entry.unlink()


# ----------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------
def generate(
    out: Path | str,
    customers: int = 2000,
    seed: int = 42,
    end_date: date | None = None,
    fmt: str = "parquet",
    events_per_customer: float | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    target_events: int | None = None,
    value_model: ValueModel | None = None,
    max_events_per_file: int = MAX_EVENTS_PER_FILE,
    max_customers_per_file: int = MAX_CUSTOMERS_PER_FILE,
) -> SampleSummary:
    """Write ``customers.<fmt>`` and ``events-NNNNN.<fmt>`` into ``out``; return what was written.

    The number of events is exactly ``target_events`` when given, else
    ``round(customers * events_per_customer)`` (default :data:`DEFAULT_EVENTS_PER_CUSTOMER`),
    shared out in proportion to each customer's expected activity (prospects get none).
    ``end_date`` (default: today, UTC) is the last day of activity; sign-ups and events span
    the :data:`HISTORY_DAYS` days ending on it.  Event types come from ``value_model``
    (default: the configured one) plus :data:`UNKNOWN_EVENT_TYPE`.  Files of an earlier run
    in ``out`` (``customers.*``, ``events-NNNNN.*``) are removed first.
    """
    started = time.perf_counter()
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if events_per_customer is not None and events_per_customer < 0:
        raise ValueError("events_per_customer must be >= 0")
    if target_events is not None and target_events < 0:
        raise ValueError("target_events must be >= 0")
    say = progress or (lambda _message: None)
    end_date = end_date or datetime.now(UTC).date()
    model = value_model or load_config().value_model
    per_customer = DEFAULT_EVENTS_PER_CUSTOMER if events_per_customer is None else events_per_customer
    total = int(target_events) if target_events is not None else int(round(customers * per_customer))

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _remove_previous(out)

    pop = _population(customers, seed, end_date, list(model.events))
    customer_ids = _customer_ids(customers)
    customers_file = out / f"customers.{fmt}"
    _write(_customers_table(pop, seed, customer_ids), customers_file, fmt)
    say(f"{customers_file.name}: {customers:,} customers")

    counts = _allocate(pop, total, seed)
    bounds = _chunk_bounds(counts, max_events_per_file, max_customers_per_file)
    event_model = _EventModel.build(model)
    id_key = _id_key(seed, customers, end_date, total)
    event_files: list[Path] = []
    written = unknown = 0
    for chunk, span in enumerate(bounds):
        table = _events_table(pop, counts, customer_ids, event_model, span, written, chunk, seed, id_key)
        path = out / f"events-{chunk:05d}.{fmt}"
        _write(table, path, fmt)
        event_files.append(path)
        written += table.num_rows
        unknown += int(pc.sum(pc.equal(table["event_type"].combine_chunks().indices, event_model.unknown)).as_py() or 0)
        say(f"{path.name}: {table.num_rows:,} events, customers {span[0] + 1:,}-{span[1]:,} "
            f"[{chunk + 1}/{len(bounds)}, {written:,}/{total:,}]")
        del table

    mix = np.bincount(pop.behaviour, minlength=len(_BEHAVIOURS))
    return SampleSummary(
        out_dir=out,
        fmt=fmt,
        seed=seed,
        customers=customers,
        events=written,
        first_day=pop.first_day,
        end_date=end_date,
        customers_file=customers_file,
        event_files=tuple(event_files),
        behaviours={b.name: int(c) for b, c in zip(_BEHAVIOURS, mix)},
        unknown_events=unknown,
        seconds=time.perf_counter() - started,
    )
