"""One typed, frozen settings object, read once from the environment and an optional TOML file.

Secrets come only from the environment; the file under config/ holds non-secret settings, and a
secret found there is refused so that it never lands in a repository by accident.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cmrelay.errors import ConfigurationError
from cmrelay.redis_conn import is_sentinel, parse_sentinel_url
from cmrelay.toml_file import load_toml

# Relative to the working directory: config/ holds the deployment's files, not the package's.
DEFAULT_CONFIG_FILE = Path("config") / "relay.toml"


class Secret:
    """A string that never shows itself in a repr, str, log line or traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean, got {raw!r}")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError(f"must be > 0, got {raw!r}")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError(f"must be >= 0, got {raw!r}")
    return value


def _share(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= 1:
        raise ValueError(f"must be > 0 and <= 1, got {raw!r}")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"must be > 0, got {raw!r}")
    return value


def _port(raw: str) -> int:
    value = int(raw) if raw.strip().isdigit() else -1
    if not 0 <= value <= 65535:
        raise ValueError(f"not a TCP port: {raw!r}")
    return value


def _redis_url(raw: str) -> str:
    if urlsplit(raw).scheme not in {"redis", "rediss", "unix", "sentinel"}:
        raise ValueError("expected a redis://, rediss://, unix:// or sentinel:// URL")
    _check_sentinel(raw)
    return raw


def _check_sentinel(raw: str) -> None:
    if is_sentinel(raw):
        try:
            parse_sentinel_url(raw)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None


def _broker_url(raw: str) -> str:
    scheme = urlsplit(raw).scheme
    if scheme not in {"redis", "rediss", "sentinel", "amqp", "amqps", "pyamqp", "memory"}:
        raise ValueError("expected a redis://, sentinel:// or amqp:// URL")
    _check_sentinel(raw)
    return raw


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("expected an http:// or https:// URL")
    return raw.rstrip("/")


def _secret(raw: str) -> Secret:
    return Secret(raw.strip())


@dataclass(frozen=True)
class Settings:
    """Everything the relay can be told; built once at start-up by `load_settings`."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_broker_url: str = ""  # empty means: the same as redis_url
    ingest_host: str = "127.0.0.1"
    ingest_port: int = 8080
    segment_write_keys: tuple[Secret, ...] = ()
    segment_shared_secret: Secret | None = None
    chartmogul_api_key: Secret | None = None
    chartmogul_api_base: str = "https://api.chartmogul.com/v1"
    chartmogul_data_source_uuid: str = ""
    # The webhook URL is itself the credential (ChartMogul issues no other), so it is a Secret.
    chartmogul_webhook_url: Secret | None = None
    delivery_mode: str = "api"
    company_creation: str = "identify"
    dedupe_window: float = 86_400.0  # Segment dedupes over ~24 h; we match it.
    coalesce_window: float = 1.0
    retry_window: float = 14_400.0  # Segment retries for 4 h; so do we.
    visibility_timeout: float = 300.0
    rate_limit: float = 39.0  # ChartMogul allows 40 req/s; one under leaves room for clock skew.
    max_in_flight: int = 18  # ChartMogul answers 503 above 20 parallel connections.
    request_timeout: float = 10.0  # Segment's destinations give ChartMogul 10 s.
    ingest_high_water: int = 1_000_000
    ingest_max_body: int = 512_000
    ingest_max_decompressed: int = 2_000_000
    admin_token: Secret | None = None
    admin_host: str = "127.0.0.1"  # the admin API can replay and purge: local unless opened up
    admin_port: int = 8081
    # Wrong admin tokens (login or bearer) from one client address before it must wait out the
    # window; counted in Redis, so every admin process shares the count.
    admin_max_failures: int = 10
    admin_failure_window: float = 300.0
    mapping_file: str = ""
    log_level: str = "INFO"
    embedded: bool = False
    dlq_retention: float = 30 * 86_400.0
    key_prefix: str = "cmrelay"
    # Engine tuning. Backoff base/cap follow Segment's destinations (about 1 s up to minutes);
    # tests shrink them instead of sleeping.
    retry_backoff_base: float = 1.0
    retry_backoff_max: float = 600.0
    scheduler_interval: float = 0.05  # idle poll of the scheduler loop: latency vs Redis load
    pause_probe_interval: float = 10.0  # how often a paused relay asks ChartMogul if it is back
    # A worker heartbeat older than this fails `cmrelay worker-health`: a few missed beats
    # (one every TTL/6), shorter than docker-compose's 3 x 15 s health-check window.
    heartbeat_ttl: float = 30.0
    # "module:factory" building the Deliverer; empty = the built-in one for DELIVERY_MODE.
    deliverer: str = ""
    # How long the record of what ChartMogul confirmed is trusted (0: off, every event is
    # sent). Bounded so that edits made in ChartMogul's UI cannot keep the relay wrong forever.
    confirmed_state_ttl: float = 3 * 86_400.0
    # The `source` ChartMogul shows next to custom attributes the relay creates (empty: its
    # default, "API").
    attribute_source: str = "Segment"
    # A user's own lead customer (made by the relay) when a Group call adds the user to a
    # company: merge it into the company (one customer, one contact) or keep it.
    lead_joins_company: str = "merge"
    # A null trait: "ignore" leaves the custom attribute as it is (Segment's destination does
    # the same); "clear" removes it from the customer.
    null_traits: str = "ignore"
    # How long each event's trail (`cmrelay trace MESSAGE_ID`) is kept; about 450 bytes of
    # Redis per event (docs/benchmarks.md). 0 keeps none.
    trace_retention: float = 6 * 3600.0
    # While live events wait, backfilled deliveries get at most this share of
    # CHARTMOGUL_RATE_LIMIT (the rest is live traffic's); with no live traffic, all of it.
    backfill_rate_share: float = 0.25
    # `cmrelay backfill` pauses while this many entities are scheduled for delivery: the ingest
    # high-water mark bounds only the ingest list, and workers move a backfill's events into
    # mailboxes far faster (~30k/s) than ChartMogul takes them (40 calls/s).
    backfill_max_scheduled: int = 50_000

    @property
    def broker_url(self) -> str:
        """The Celery broker, which defaults to the relay's own Redis."""
        return self.celery_broker_url or self.redis_url

    @property
    def auth_disabled(self) -> bool:
        """Ingest auth is off only under `make run`'s embedded defaults with no keys given."""
        return self.embedded and not self.segment_write_keys

    def require_ingest_keys(self) -> None:
        """Refuse to serve an unauthenticated ingest outside embedded mode."""
        if not self.segment_write_keys and not self.embedded:
            raise ConfigurationError(
                "SEGMENT_WRITE_KEYS is empty: set at least one write key "
                "(comma-separated) before starting the ingest"
            )

    def require_delivery(self) -> None:
        """Refuse to start a worker that has nowhere to deliver."""
        if self.delivery_mode == "api":
            if not self.chartmogul_api_key:
                raise ConfigurationError("DELIVERY_MODE=api needs CHARTMOGUL_API_KEY")
            if not self.chartmogul_data_source_uuid:
                raise ConfigurationError("DELIVERY_MODE=api needs CHARTMOGUL_DATA_SOURCE_UUID")
        elif not self.chartmogul_webhook_url:
            raise ConfigurationError("DELIVERY_MODE=webhook needs CHARTMOGUL_WEBHOOK_URL")


# Environment variable -> (field name, parser, secret?). Secrets may not come from the file.
_FIELDS: dict[str, tuple[str, Callable[[str], Any], bool]] = {
    "REDIS_URL": ("redis_url", _redis_url, False),
    "CELERY_BROKER_URL": ("celery_broker_url", _broker_url, False),
    "INGEST_HOST": ("ingest_host", str, False),
    "INGEST_PORT": ("ingest_port", _port, False),
    "SEGMENT_WRITE_KEYS": ("segment_write_keys", lambda r: tuple(map(Secret, _csv(r))), True),
    "SEGMENT_SHARED_SECRET": ("segment_shared_secret", _secret, True),
    "CHARTMOGUL_API_KEY": ("chartmogul_api_key", _secret, True),
    "CHARTMOGUL_API_BASE": ("chartmogul_api_base", _http_url, False),
    "CHARTMOGUL_DATA_SOURCE_UUID": ("chartmogul_data_source_uuid", str.strip, False),
    "CHARTMOGUL_WEBHOOK_URL": ("chartmogul_webhook_url", lambda r: _secret(_http_url(r)), True),
    "DELIVERY_MODE": ("delivery_mode", _choice("api", "webhook"), False),
    "COMPANY_CREATION": ("company_creation", _choice("identify", "group"), False),
    "DEDUPE_WINDOW": ("dedupe_window", _positive_float, False),
    "COALESCE_WINDOW": ("coalesce_window", _non_negative_float, False),
    "RETRY_WINDOW": ("retry_window", _positive_float, False),
    "VISIBILITY_TIMEOUT": ("visibility_timeout", _positive_float, False),
    "CHARTMOGUL_RATE_LIMIT": ("rate_limit", _positive_float, False),
    "CHARTMOGUL_MAX_IN_FLIGHT": ("max_in_flight", _positive_int, False),
    "CHARTMOGUL_TIMEOUT": ("request_timeout", _positive_float, False),
    "INGEST_HIGH_WATER": ("ingest_high_water", _positive_int, False),
    "INGEST_MAX_BODY": ("ingest_max_body", _positive_int, False),
    "INGEST_MAX_DECOMPRESSED": ("ingest_max_decompressed", _positive_int, False),
    "ADMIN_TOKEN": ("admin_token", _secret, True),
    "ADMIN_HOST": ("admin_host", str.strip, False),
    "ADMIN_PORT": ("admin_port", _port, False),
    "ADMIN_MAX_FAILURES": ("admin_max_failures", _positive_int, False),
    "ADMIN_FAILURE_WINDOW": ("admin_failure_window", _positive_float, False),
    "MAPPING_FILE": ("mapping_file", str, False),
    "LOG_LEVEL": ("log_level", _choice("debug", "info", "warning", "error"), False),
    "CMRELAY_EMBEDDED": ("embedded", _bool, False),
    "DLQ_RETENTION": ("dlq_retention", _positive_float, False),
    "CMRELAY_KEY_PREFIX": ("key_prefix", str, False),
    "RETRY_BACKOFF_BASE": ("retry_backoff_base", _positive_float, False),
    "RETRY_BACKOFF_MAX": ("retry_backoff_max", _positive_float, False),
    "SCHEDULER_INTERVAL": ("scheduler_interval", _positive_float, False),
    "PAUSE_PROBE_INTERVAL": ("pause_probe_interval", _positive_float, False),
    "WORKER_HEARTBEAT_TTL": ("heartbeat_ttl", _positive_float, False),
    "CMRELAY_DELIVERER": ("deliverer", str.strip, False),
    "CONFIRMED_STATE_TTL": ("confirmed_state_ttl", _non_negative_float, False),
    "CUSTOM_ATTRIBUTE_SOURCE": ("attribute_source", str.strip, False),
    "LEAD_JOINS_COMPANY": ("lead_joins_company", _choice("merge", "keep"), False),
    "NULL_TRAITS": ("null_traits", _choice("ignore", "clear"), False),
    "TRACE_RETENTION": ("trace_retention", _non_negative_float, False),
    "BACKFILL_RATE_SHARE": ("backfill_rate_share", _share, False),
    "BACKFILL_MAX_SCHEDULED": ("backfill_max_scheduled", _positive_int, False),
}

CONFIG_FILE_ENV = "CMRELAY_CONFIG"


def _read_file(path: Path) -> dict[str, str]:
    data = load_toml(path, "settings file")
    raw = data.get("relay", data)
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str | int | float | bool):
            continue  # sections such as [mapping] belong to other readers
        env_name = key.upper()
        if env_name not in _FIELDS:
            raise ConfigurationError(f"settings file {path}: unknown setting {key!r}")
        if _FIELDS[env_name][2]:
            raise ConfigurationError(
                f"settings file {path}: {env_name} is a secret; set it in the environment"
            )
        out[env_name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from an optional TOML file overlaid by the environment; fail with one line."""
    env = dict(os.environ if environ is None else environ)
    file_name = env.get(CONFIG_FILE_ENV)
    file_path = Path(file_name) if file_name else DEFAULT_CONFIG_FILE
    merged: dict[str, str] = {}
    if file_name or file_path.exists():
        merged.update(_read_file(file_path))
    merged.update({k: v for k, v in env.items() if k in _FIELDS})
    values: dict[str, Any] = {}
    for env_name, raw in merged.items():
        field_name, parse, _ = _FIELDS[env_name]
        if raw == "" and env_name not in {"SEGMENT_WRITE_KEYS", "CMRELAY_EMBEDDED"}:
            continue
        try:
            values[field_name] = parse(raw)
        except ValueError as exc:
            raise ConfigurationError(f"{env_name}: {exc}") from None
    if "log_level" in values:
        values["log_level"] = values["log_level"].upper()
    return dataclasses.replace(Settings(), **values)
