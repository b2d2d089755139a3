"""Runtime settings, read from environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
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
    #: issue 13 (shared/runtime/pace.py): after this long without a record, fetch with the idle wait below (less CPU for
    #: an idle consumer and broker); the first record brings back KAFKA_FETCH_MAX_WAIT_MS.
    kafka_idle_after_s: float = 2.0
    kafka_idle_fetch_max_wait_ms: int = 500
    kafka_max_poll_records: int = 500
    kafka_linger_ms: int = 5
    #: issue 13: the producer's record batch per partition (aiokafka max_batch_size). A batch's outputs go in one
    #: record batch per partition instead of 16 KB ones, each of which waited for the previous one to be sent.
    #: At most the broker's message.max.bytes (1 MB by default on Apache Kafka).
    kafka_max_batch_bytes: int = 262_144
    kafka_topic_partitions: int = 6
    kafka_replication_factor: int = 1
    kafka_client_id_prefix: str = "osteocds"

    redis_url: str = "redis://127.0.0.1:6379/0"
    #: issue 22: REDIS_URL names one node of a Redis Cluster; keys spread by slot group (shared/runtime/state.py)
    redis_cluster: bool = False
    #: How long an event ID is remembered for duplicate suppression.
    seen_ttl_seconds: int = 14 * 24 * 3600
    #: A clinical time later than its receipt plus this is refused as future-dated (clinical/clock.py, issue 9.7).
    clock_skew_tolerance_seconds: float = 300.0
    #: A planned date (a procedure, a pathway step to do, a planned biopsy, a course's last fraction) more than this
    #: after its receipt is refused as an entry error (the 2-year review plus margin).
    planned_date_horizon_days: int = 1096
    #: The hospital's time zone (one setting for every service): a calendar date of a hospital event counts from its
    #: first minute there (issue 9.7); day counts are in hospital days; HL7 times without an offset are local.
    hospital_timezone: str = "Europe/Paris"

    retry_max_attempts: int = 8
    retry_initial_backoff_s: float = 0.1
    retry_max_backoff_s: float = 5.0

    #: shared/runtime/timers.py: how often a service looks for due patient deadlines, and how long a fired deadline is
    #: held before it fires again if its tick was not processed (at-least-once).
    timer_poll_interval_s: float = 5.0
    #: A claimed deadline fires again after this long if its tick never reached the broker (the process died).
    timer_claim_lease_s: float = 10.0
    #: ... and after this long once its tick is on the topic but not yet processed (consumer lag).
    timer_lease_s: float = 60.0
    timer_batch: int = 500

    #: issue 13 (shared/runtime/healing.py): one instance of a service rebuilds a lost state under a Redis lock that
    #: expires this long after its last renewal (renewed every third of it while rebuilding).
    rebuild_lock_ttl_s: float = 10.0
    #: issue 22 (shared/runtime/changelog.py): each patient's state, deadline and input offsets also go to the service's
    #: compacted changelog topic before the offsets are committed, and a rebuild restores from it (time grows with the
    #: live patients, not with the history). Needs a broker that compacts (Apache Kafka); off on the embedded broker.
    state_changelog: bool = False
    #: issue 22: with STATE_CHANGELOG, how a rebuild gets the state: "changelog" (restore, replaying only when the
    #: changelog was never completed) or "replay" (replay the inputs and write the changelog anew).
    state_restore: Literal["changelog", "replay"] = "changelog"

    #: issue 14: OpenTelemetry tracing is off unless an OTLP/HTTP endpoint is given (shared/observability/tracing.py)
    otel_exporter_otlp_endpoint: str | None = None
    #: issue 14: how often consumer lag and readiness are sampled for /metrics (shared/observability/metrics.py)
    lag_interval_s: float = 15.0

    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

    # ---- limits: no single message may stop a consumer or delay other patients (shared/runtime/limits.py) ----------
    #: The producer's request limit (aiokafka max_request_size); every output and dead letter must fit.
    kafka_max_request_bytes: int = 1_048_576
    #: An input record larger than this is dead-lettered (payload truncated) without being decoded.
    max_message_bytes: int = 1_000_000
    #: Original bytes kept in a dead letter; above this the payload is truncated and the letter says so.
    dead_letter_max_payload_bytes: int = 256_000
    #: A patient's aggregate may not grow past this (JSON bytes): the event that would pass it is dead-lettered.
    max_state_bytes: int = 2_000_000
    #: Read-ahead of the consumer loop (records held); batches are filled fairly across patients from it.
    read_ahead_records: int = 20_000
    #: At most this many records of one patient per batch: a flooding patient's batches stay short, so another
    #: patient's record waits for one short batch, not for a long one.
    max_records_per_patient_per_batch: int = 100
    #: Issue 25: and at most this many bytes of one patient's records per batch (one record at least; 0: no limit).
    #: A message of hundreds of results is a batch of its own for that patient: another patient's record never
    #: waits behind several of them.
    max_bytes_per_patient_per_batch: int = 32_000
    #: Issue 25: and about this many seconds of one patient's work per batch, from what that patient's events took
    #: in the batch before (one record at least; 0: no limit). A flooding patient whose every event is costly (a
    #: table of thousands of same-day values) gets a few records per batch: another patient's crisis waits for that
    #: short batch, not for hundreds of milliseconds of the flood.
    max_seconds_per_patient_per_batch: float = 0.05
    #: Threads decoding records (FHIR, HL7 parsing) off the event loop.
    decode_workers: int = 2
    #: A batch whose records all have a plain JSON decoder (pydantic, a few µs per record) and whose bytes are at
    #: most this is decoded on the event loop (a few ms at most): the hop to the threads costs more than it saves.
    #: FHIR and HL7 parsing always runs in the threads.
    decode_inline_bytes: int = 256_000
    #: Allocations between two collections of the youngest generation of Python's garbage collector (Python's
    #: default: 700), and what exists at start is frozen out of collection. A batch's records and messages live
    #: less than one batch: collecting them mid-batch cost ~10 % of the runtime's pass-through (bench/runtime.py).
    #: 0 keeps Python's defaults.
    gc_young_threshold: int = 50_000
    #: HTTP request bodies above this are refused with 413 while being read.
    http_max_body_bytes: int = 1_000_000
    #: JSON bodies nested deeper than this are refused with 400.
    http_max_json_depth: int = 64
    #: Per-patient Redis keys (state, outbox) expire after this long without a write (0: never).
    state_ttl_seconds: int = 400 * 24 * 3600
    #: Issue 25: patients' states kept parsed in the process between batches (least recently used out; 0: off). Used
    #: only while Redis holds exactly the bytes they came with (shared/runtime/parsed.py). A bounded state (README,
    #: "Retention") parses to well under 1 MB, so the default bounds this cache to a few hundred MB at most.
    parsed_states_per_process: int = 2_000
    #: Retention of the dead-letter topic (it holds original messages, hence patient data), set at creation.
    dead_letter_retention_ms: int = 14 * 24 * 3600 * 1000

    # ---- transport security (shared/transport.py) ----------------------------------------------------------
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_check_hostname: bool = True
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    #: A file holding the SASL password (a Docker/Kubernetes secret); read at start, wins over the variable.
    kafka_sasl_password_file: Path | None = None
    #: OAUTHBEARER: a file holding the current access token, kept fresh by the platform; read on each login.
    kafka_sasl_oauth_token_file: Path | None = None
    redis_username: str | None = None
    redis_password: SecretStr | None = None
    redis_password_file: Path | None = None
    #: CA bundle to verify the Redis server (with a rediss:// URL); client certificate and key if Redis asks one.
    redis_ssl_ca_certs: Path | None = None
    redis_ssl_certfile: Path | None = None
    redis_ssl_keyfile: Path | None = None
