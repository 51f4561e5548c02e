"""The typed model of ``config/valuemail.toml``: one class per section, types and ranges.

Pure code (no Dagster).  :func:`valuemail.config.load_config` validates the merged
configuration against :class:`Settings` and reports every problem at once, naming the file
each bad key came from.

The defaults live in one place, the TOML file: a key the TOML sets is a field *without* a
default here.  Only keys the code reads but the TOML leaves out carry a default (the code's).
To add a key: document it with its default in ``config/valuemail.toml``, then add a field to
its section's class below — ``name: int = Field(ge=0, le=10)``, ``Literal[...]`` for a
choice, ``Field(description=...)`` when the range needs words (the description becomes the
"allowed" part of the error message).  ``tests/test_config.py`` checks the shipped file
validates and that no default here contradicts it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    """A TOML table: unknown keys are errors and values are not coerced ("24" is not 24)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Size = Annotated[str, Field(pattern=r"(?i)^(\d+(\.\d+)?\s*[KMGT]i?B)?$",
                            description="a size such as '3GB' or '512MB', or empty")]
S3Uri = Annotated[str, Field(pattern=r"^(s3://\S+)?$", description="an s3://bucket/prefix URI, or empty")]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="an e-mail address")]
Cron = Annotated[str, Field(pattern=r"^\S+(\s+\S+){4}$", description="a 5-field cron expression such as '0 6 * * 1'")]
Seconds = Annotated[float, Field(ge=0)]
Name = Annotated[str, Field(min_length=1)]
Days = Annotated[int, Field(ge=0, le=3660)]


def _iso_timestamp(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date or timestamp such as '1990-01-01'") from None
    return value


IsoTimestamp = Annotated[str, AfterValidator(_iso_timestamp),
                         Field(description="an ISO 8601 date or timestamp such as '1990-01-01'")]


class Paths(Section):
    warehouse: Name
    landing: Name
    outbox: Name
    charts: Name
    share: Name
    landing_s3: S3Uri


class Ingest(Section):
    future_tolerance_hours: float = Field(ge=0, le=8760)  # at most a year: now + tolerance stays a date
    earliest_timestamp: IsoTimestamp
    batch_rows: int = Field(ge=1)
    readers: int = Field(ge=0, le=64)
    memory_limit: Size


class Schedules(Section):
    weekly: Cron
    monthly: Cron
    yearly_on: str = Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$",
                           description="a month-day 'MM-DD' such as '12-01'")
    yearly_covers: Literal["year_to_date", "previous_year"]
    hour: int = Field(ge=0, le=23)
    first_period: str = Field(pattern=r"^(19|[2-9]\d)\d\d-\d\d-\d\d$",
                              description="a date 'YYYY-MM-DD' from 1900-01-01 on, such as '2024-01-01'")
    landing_sensor_interval_s: int = Field(ge=1, le=86400)


class Segments(Section):
    new_days: Days
    active_days: Days
    lapsed_days: Days
    peer_min_cohort: int = Field(ge=2)
    peer_cohort_columns: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="a column name")]] = Field(
        min_length=1)
    engagement_lookback_days: int = Field(ge=1, le=3660)
    at_risk_events: list[str]

    @model_validator(mode="after")
    def _ordered(self) -> "Segments":
        if self.active_days > self.lapsed_days:
            raise ValueError(f"active_days ({self.active_days}) must not exceed lapsed_days ({self.lapsed_days})")
        return self


class Metrics(Section):
    milestones: list[Annotated[int, Field(gt=0)]] = Field(min_length=1)
    duckdb_memory_limit: Size


class Sender(Section):
    from_name: Name
    from_address: Email
    reply_to: str
    postal_address: str
    list_id: Name
    public_base_url: Name


class LowTasks(Section):
    weekly: int = Field(ge=0)
    monthly: int = Field(ge=0)
    yearly: int = Field(ge=0)


class Emails(Section):
    images: Literal["cid", "hosted"]
    app_url: str
    founder_name: str
    founder_role: str
    low_tasks: LowTasks
    headline: Literal["auto", "time", "money", "tasks"]
    screenshot: bool
    chart_workers: int = Field(ge=0)
    progress_interval_s: Seconds


class Share(Section):
    base_url: str
    bucket: str
    prefix: str
    endpoint_url: str
    region: str


class SMTP(Section):
    host: Name
    port: int = Field(ge=1, le=65535)
    security: Literal["none", "starttls", "tls"]
    username: str
    password_env: Name
    verify_tls: bool
    ca_file: str
    timeout_s: float = Field(gt=0)
    connections: int = Field(ge=1, le=256)
    max_messages_per_connection: int = Field(ge=0)
    local_hostname: str
    reconcile_log: str
    reconcile_log_authoritative: bool
    pipelining: bool = True  # not in the TOML: use PIPELINING when the server offers it


class SES(Section):
    region: str
    endpoint_url: str
    configuration_set: str
    max_send_rate: float = Field(ge=0)
    workers: int = Field(ge=1, le=256)
    max_throttle_retries: int = Field(ge=0, le=100)
    backoff_base_s: Seconds
    backoff_max_s: Seconds
    connect_timeout_s: float = Field(gt=0)
    read_timeout_s: float = Field(gt=0)


class Delivery(Section):
    transport: Literal["file", "smtp", "ses"]
    domain_daily_cap: int = Field(ge=0)
    domain_cap_exempt: list[str]
    role_prefixes: list[str]
    excluded_domains: list[str]
    excluded_tlds: list[str]
    sunset_to_monthly_after: int = Field(ge=1)
    sunset_to_none_after: int = Field(ge=1)
    send_window_weekly_days: int = Field(ge=1, le=3660)
    send_window_monthly_days: int = Field(ge=1, le=3660)
    send_window_yearly_days: int = Field(ge=1, le=3660)
    batch_size: int = Field(ge=1)
    max_attempts: int = Field(ge=1)
    retry_backoff_s: Seconds
    max_retry_wait_s: Seconds
    recheck_chunk: int = Field(ge=1)
    recheck_max_age_s: Seconds
    journal_fsync: bool
    reconcile_grace_s: Seconds
    envelope_from: str
    build_processes: int = Field(ge=0, le=64)
    build_processes_min: int = Field(ge=0)
    engagement_dir: str
    engagement_s3: S3Uri
    complaint_rate_warn: float = Field(ge=0, le=1)
    hard_bounce_rate_warn: float = Field(ge=0, le=1)
    smtp: SMTP
    ses: SES

    @model_validator(mode="after")
    def _sunset_order(self) -> "Delivery":
        if self.sunset_to_none_after < self.sunset_to_monthly_after:
            raise ValueError(f"sunset_to_none_after ({self.sunset_to_none_after}) must not be below "
                             f"sunset_to_monthly_after ({self.sunset_to_monthly_after})")
        return self


class EventSpec(Section):
    feature: Name
    task: bool = False
    minutes_per_unit: Decimal = Field(default=Decimal(0), ge=0, strict=False)
    money_per_unit: Decimal = Field(default=Decimal(0), ge=0, strict=False)
    explain: str = ""


class ValueModel(Section):
    version: Name
    currency: str = Field(pattern=r"^[A-Za-z]{3}$", description="a 3-letter ISO 4217 code such as 'USD'")
    price_time_at_hourly_rate: bool
    events: dict[str, EventSpec]


class PreferenceCentre(Section):
    mode: Literal["development", "production"]
    secret: str
    previous_secrets: list[str]
    database_url: str
    unsubscribe_max_age_days: float = Field(
        ge=60, description="at least 60 days: unsubscribe links must keep working for 60 days after a send")
    preferences_max_age_days: float = Field(gt=0)
    form_max_age_minutes: float = Field(gt=0)
    forwarded_allow_ips: str
    default_locale: Name


class Settings(Section):
    """The whole file."""

    paths: Paths
    ingest: Ingest
    schedules: Schedules
    segments: Segments
    metrics: Metrics
    sender: Sender
    emails: Emails
    share: Share
    delivery: Delivery
    value_model: ValueModel
    preference_centre: PreferenceCentre
