"""Runtime settings, read from environment variables (pydantic-settings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Common settings. A service may subclass it to add its own (see each service's `settings.py`)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    service_name: str = "osteocds"
    http_host: str = "127.0.0.1"
    http_port: int = 8100

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    #: On for real Kafka; the embedded Tansu broker rejects InitProducerId, so `up` turns it off.
    kafka_enable_idempotence: bool = True
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    kafka_fetch_max_wait_ms: int = 500
    kafka_max_poll_records: int = 500
    kafka_linger_ms: int = 5
    kafka_topic_partitions: int = 6
    kafka_replication_factor: int = 1
    kafka_client_id_prefix: str = "osteocds"

    redis_url: str = "redis://127.0.0.1:6379/0"
    #: How long an event ID is remembered for duplicate suppression.
    seen_ttl_seconds: int = 14 * 24 * 3600
    #: A clinical time later than its receipt plus this is refused as future-dated (shared/clock.py, issue 9.7).
    clock_skew_tolerance_seconds: float = 300.0

    retry_max_attempts: int = 8
    retry_initial_backoff_s: float = 0.1
    retry_max_backoff_s: float = 5.0

    #: shared/timers.py: how often a service looks for due patient deadlines, and how long a fired deadline is
    #: held before it fires again if its tick was not processed (at-least-once).
    timer_poll_interval_s: float = 5.0
    timer_lease_s: float = 60.0
    timer_batch: int = 500

    #: issue 14: OpenTelemetry tracing is off unless an OTLP/HTTP endpoint is given (shared/tracing.py)
    otel_exporter_otlp_endpoint: str | None = None
    #: issue 14: how often consumer lag and readiness are sampled for /metrics (shared/metrics.py)
    lag_interval_s: float = 15.0

    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
