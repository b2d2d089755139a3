"""Operations metrics (issue 14): what an on-call engineer and an autoscaler read on `/metrics`.

Every label is bounded: service, topic, partition, outcome or error type, severity. Never a patient ID, an event
ID or a value. The names below are the contract of deploy/ (dashboard panels, alert rules): a test checks that
every metric used there is one of `METRIC_NAMES`.

- `osteocds_consumer_lag{service,topic,partition}`: records written but not yet committed by the service's
  consumer group, read from the broker (`lag.LagMonitor`: committed offsets against end offsets), so it is right
  while the service is down too (`python -m shared.runtime.lag` measures every group from outside).
- `osteocds_oldest_unprocessed_age_seconds{service,topic,partition}`: age of the first record not yet
  committed (its broker timestamp), 0 when nothing waits.
- `osteocds_batch_seconds{service}`: one consumer batch, from fetch to commit.
- `osteocds_dead_letters_total{service,topic,error_type}`: records parked on the dead-letter topic.
- `osteocds_outbox_pending{service}`: outputs written to patients' outboxes and not yet acknowledged by the
  broker; `osteocds_outbox_resent_total{service}`: outputs of an earlier attempt sent again from an outbox.
- `osteocds_redis_round_trips_total{service}`: requests written to Redis (a pipeline or a transaction is one).
- `osteocds_ready{service}`: 1 when the last readiness check passed (Redis, Kafka, partitions assigned).
- `osteocds_input_to_output_seconds{service,topic}`: from the hospital input (its first record's broker
  timestamp, carried across hops in the `osteocds-origin-ts` header) to this output.
- `osteocds_alert_latency_seconds{severity}`: the same for each alert notification raises (target for a
  critical alert: the `OsteoCDSCriticalAlertLatency` rule).
- `osteocds_alerts_escalated_total{severity,level}`: alerts notification escalated because they were not
  acknowledged in time (an alert output whose last transition is `escalated`).
- `osteocds_records_clock_ahead_total{service,topic}`: records consumed whose timestamp (the producer's clock,
  CreateTime) is later than this process's clock by more than the clock-skew tolerance (HAZ-27-FUTURE-HIDES: a
  producer clock running ahead makes the facts it dates "now" look dated in the future here).

Issue 20: a counter series that appears only at its first increment gives `increase()` nothing, so an alert rule
reading it would miss the first event. Every counter series an alert rule reads is therefore exposed at 0 from the
start, for all its known label values (`KNOWN_ERROR_TYPES`, `SEVERITIES`, `ESCALATION_LEVELS`, the topics the
service consumes in contracts/topics.py, the lag monitor's groups); the rules also catch a series that appears
with an unforeseen label value (deploy/observability.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable
from typing import Any, get_args

from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection

from contracts.base import Severity
from contracts.topics import TOPICS
from shared.observability.lag import LagGauges

log = logging.getLogger(__name__)

#: header carrying the broker timestamp (ms) of the hospital input an output derives from
ORIGIN_HEADER = "osteocds-origin-ts"
ALERTS_TOPIC = "osteocds.alerts.v1"

#: the error types a dead letter is counted under (shared/runtime/service.py, limits.py): decoding and limits,
#: rejections by a handler; a handler's unexpected exception is counted under its class name (not known ahead)
KNOWN_ERROR_TYPES: tuple[str, ...] = (
    "EmptyMessage",
    "TooLarge",
    "NonFiniteNumber",
    "MissingKey",
    "KeyMismatch",
    "ValidationError",
    "JSONDecodeError",
    "UnicodeDecodeError",
    "ValueError",
    "Rejected",
    "PartiallyRejected",
)
SEVERITIES: tuple[str, ...] = get_args(Severity)
#: escalation levels notification reaches (services/notification: ALERT_ESCALATION_MAX_LEVEL, default 2)
ESCALATION_LEVELS: tuple[str, ...] = ("1", "2")

#: a topic's records timestamped ahead of this clock are logged at most this often (counted always)
AHEAD_LOG_EVERY_S = 60.0
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)

#: every metric a service or the lag exporter exposes (histograms and counters by their family name)
METRIC_NAMES: frozenset[str] = frozenset(
    {
        "osteocds_messages_total",
        "osteocds_outputs_total",
        "osteocds_handler_seconds",
        "osteocds_consumer_lag",
        "osteocds_oldest_unprocessed_age_seconds",
        "osteocds_lag_sample_errors_total",
        "osteocds_batch_seconds",
        "osteocds_dead_letters_total",
        "osteocds_outbox_pending",
        "osteocds_outbox_resent_total",
        "osteocds_redis_round_trips_total",
        "osteocds_ready",
        "osteocds_input_to_output_seconds",
        "osteocds_alert_latency_seconds",
        "osteocds_alerts_escalated_total",
        "osteocds_records_clock_ahead_total",
        "osteocds_rebuild_seconds",
        "osteocds_state_losses_total",
        "osteocds_lab_unmapped_codes_total",
    }
)


def metric_of(series: str) -> str:
    """The metric a series name belongs to (a histogram's _bucket, _count and _sum are the histogram)."""
    for suffix in ("_bucket", "_count", "_sum"):
        if series.endswith(suffix) and series.removesuffix(suffix) in METRIC_NAMES:
            return series.removesuffix(suffix)
    return series


class Metrics:
    """The runtime's own series: consumed messages by outcome, outputs, handler time (shared/runtime/service.py)."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "osteocds_messages_total",
            "Consumed messages by outcome",
            ["service", "topic", "outcome"],
            registry=self.registry,
        )
        self.outputs = Counter(
            "osteocds_outputs_total", "Produced messages", ["service", "topic"], registry=self.registry
        )
        self.handler_seconds = Histogram(
            "osteocds_handler_seconds",
            "Handler time per message (the mean of a batch's messages, observed once per topic and batch)",
            ["service", "topic"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5),
        )
        self.state_losses = Counter(
            "osteocds_state_losses_total",
            "Times the service found its Redis state lost",
            ["service"],
            registry=self.registry,
        )
        self.rebuild_seconds = Histogram(
            "osteocds_rebuild_seconds",
            "Rebuilds of the Redis state from Kafka",
            ["service"],
            registry=self.registry,
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300),
        )
        self.service = service
        #: consumed messages, all outcomes (a plain counter, cheap to read, e.g. by benchmarks)
        self.consumed = 0
        self._children: dict[tuple[str, ...], Any] = {}  # labelled series, looked up once
        self._counts: dict[tuple[str, str], int] = {}
        self._outputs: dict[str, int] = {}
        self._handled: dict[str, tuple[float, int]] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(self.service, *labels)
        return child

    # Counted per message, published once per batch (`flush`): one locked increment per series and batch, not
    # per message.
    def count(self, topic: str, outcome: str) -> None:
        key = (topic, outcome)
        self._counts[key] = self._counts.get(key, 0) + 1
        self.consumed += 1

    def output(self, schema_id: str) -> None:
        self._outputs[schema_id] = self._outputs.get(schema_id, 0) + 1

    def handled(self, topic: str, seconds: float) -> None:
        total, n = self._handled.get(topic, (0.0, 0))
        self._handled[topic] = (total + seconds, n + 1)

    def flush(self) -> None:
        """Publish the batch's counts; the handler time is observed once per topic and batch: its mean per message."""
        for (topic, outcome), n in self._counts.items():
            self._child(self.messages, topic, outcome).inc(n)
        for schema_id, n in self._outputs.items():
            self._child(self.outputs, schema_id).inc(n)
        for topic, (total, n) in self._handled.items():
            self._child(self.handler_seconds, topic).observe(total / max(1, n))
        self._counts.clear()
        self._outputs.clear()
        self._handled.clear()


def consumed_topics(service: str) -> tuple[str, ...]:
    """The topics a service consumes, from the registry (contracts/topics.py)."""
    return tuple(t.name for t in TOPICS if service in t.consumers)


def produces_alerts(service: str) -> bool:
    return any(t.name == ALERTS_TOPIC and service in t.producers for t in TOPICS)


class OpsMetrics:
    """The runtime's operations metrics of one service (its own registry, served on /metrics).

    The counters alert rules read start at 0 (issue 20): dead letters for every consumed topic (`topics`, by default
    the registry's) and known error type; for the service that raises alerts (notification), escalations for every
    severity and level and the alert latency histogram for every severity."""

    def __init__(
        self,
        registry: CollectorRegistry,
        service: str,
        topics: Iterable[str] | None = None,
        escalation_levels: Iterable[str] = ESCALATION_LEVELS,
    ) -> None:
        self.service = service
        self.gauges = LagGauges(registry)
        self.batch_seconds = Histogram(
            "osteocds_batch_seconds",
            "One consumer batch, from fetch to commit",
            ["service"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.dead_letters = Counter(
            "osteocds_dead_letters_total",
            "Records sent to the dead-letter topic",
            ["service", "topic", "error_type"],
            registry=registry,
        )
        self.outbox_pending = Gauge(
            "osteocds_outbox_pending", "Outputs in outboxes awaiting the broker's ack", ["service"], registry=registry
        )
        self.outbox_resent = Counter(
            "osteocds_outbox_resent_total", "Outputs sent again from an outbox", ["service"], registry=registry
        )
        self.redis_round_trips = Counter(
            "osteocds_redis_round_trips_total", "Requests written to Redis", ["service"], registry=registry
        )
        self.commits_refused = Counter(
            "osteocds_commits_refused_total",
            "Offset commits the group refused after a rebalance (the batch is delivered again and skipped)",
            ["service"],
            registry=registry,
        )
        self.ready = Gauge("osteocds_ready", "1 when the last readiness check passed", ["service"], registry=registry)
        self.input_to_output = Histogram(
            "osteocds_input_to_output_seconds",
            "From the hospital input to this output",
            ["service", "topic"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.alert_latency = Histogram(
            "osteocds_alert_latency_seconds",
            "From the hospital input to the alert",
            ["severity"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.escalated = Counter(
            "osteocds_alerts_escalated_total",
            "Alerts escalated because they were not acknowledged in time",
            ["severity", "level"],
            registry=registry,
        )
        self.clock_ahead = Counter(
            "osteocds_records_clock_ahead_total",
            "Records whose timestamp is later than this process's clock by more than the clock-skew tolerance",
            ["service", "topic"],
            registry=registry,
        )
        self._pending = 0
        self._ahead_logged: dict[str, float] = {}  # topic -> when a clock-ahead record was last logged
        self._latency_of: dict[str, Any] = {}
        for topic in consumed_topics(service) if topics is None else topics:
            self.clock_ahead.labels(service, topic)
            for error_type in KNOWN_ERROR_TYPES:
                self.dead_letters.labels(service, topic, error_type)
        if produces_alerts(service):
            for severity in SEVERITIES:
                self.alert_latency.labels(severity)
                for level in escalation_levels:
                    self.escalated.labels(severity, level)

    # ---- hooks of the consumer loop ------------------------------------------------------------------
    def dead_letter(self, topic: str, error_type: str) -> None:
        self.dead_letters.labels(self.service, topic, error_type).inc()

    def records_ahead(self, records: Iterable[ConsumerRecord], tolerance_s: float, now: float | None = None) -> int:
        """Count the records whose timestamp is later than `now` (this process's clock) + `tolerance_s`, per topic
        (HAZ-27-FUTURE-HIDES: detection only; the records are processed as usual, as a rebuild would). A record
        without a timestamp (None: a v0 message; -1) is not counted. Logs the topic, partition, offset and skew of the
        first such record, at most once a minute per topic (a clock ahead stays ahead: one line per batch would flood
        the logs): never its key or value."""
        clock = now if now is not None else time.time()
        limit_ms = (clock + tolerance_s) * 1000
        ahead = [r for r in records if r.timestamp is not None and r.timestamp > limit_ms]
        per_topic: dict[str, int] = {}
        for r in ahead:
            per_topic[r.topic] = per_topic.get(r.topic, 0) + 1
        for topic, n in per_topic.items():
            self.clock_ahead.labels(self.service, topic).inc(n)
        tick = time.monotonic()  # the log's pace: a clock stepped back must not silence it
        for r in ahead:
            if tick - self._ahead_logged.get(r.topic, -AHEAD_LOG_EVERY_S) < AHEAD_LOG_EVERY_S:
                continue
            self._ahead_logged[r.topic] = tick
            log.warning(
                "records timestamped ahead of this clock beyond the tolerance; first: %s[%d]@%d by %.0f s",
                r.topic,
                r.partition,
                r.offset,
                (r.timestamp - limit_ms) / 1000 + tolerance_s,
            )
        return len(ahead)

    def outbox_written(self, outputs: int, resent: int) -> None:
        self._pending += outputs + resent
        self.outbox_pending.labels(self.service).set(self._pending)
        if resent:
            self.outbox_resent.labels(self.service).inc(resent)

    def outbox_cleared(self) -> None:
        self._pending = 0
        self.outbox_pending.labels(self.service).set(0)

    def output(self, topic: str, value: str, origin_ms: int | None, now: float | None = None) -> None:
        """An output sent: its latency from the hospital input, and for an alert its severity and escalation."""
        if origin_ms is None:
            return
        latency = max(0.0, (now if now is not None else time.time()) - origin_ms / 1000)
        child = self._latency_of.get(topic)  # one labelled series per topic, looked up once (once per output)
        if child is None:
            child = self._latency_of[topic] = self.input_to_output.labels(self.service, topic)
        child.observe(latency)
        if topic != ALERTS_TOPIC:
            return
        doc = json.loads(value)  # alerts only: a handful per patient
        severity = str(doc.get("severity", "unknown"))
        transitions = doc.get("transitions") or []
        if transitions and transitions[-1].get("event") == "escalated":
            self.escalated.labels(severity, str(doc.get("escalation_level", 0))).inc()
            return  # an escalation is not a new alert: its latency is the escalation delay
        if doc.get("status") == "active" and not transitions[1:]:
            self.alert_latency.labels(severity).observe(latency)

    def count_redis_round_trips(self, redis: Redis | RedisCluster) -> None:
        """Count every request this client writes to Redis (a pipeline or MULTI/EXEC is one round trip). On a Redis
        Cluster (issue 22), the requests of the cluster client to every node."""
        if isinstance(redis, RedisCluster):
            kwargs = redis.nodes_manager.connection_kwargs
            kwargs["connection_class"] = self._counting(kwargs.get("connection_class") or Connection)
            return
        pool = redis.connection_pool
        pool.connection_class = self._counting(pool.connection_class)

    def _counting(self, base: Any) -> Any:
        counter = self.redis_round_trips.labels(self.service)

        async def send_packed_command(conn: Any, command: Any, check_health: bool = True) -> None:
            counter.inc()
            await base.send_packed_command(conn, command, check_health)

        return type(f"Counting{base.__name__}", (base,), {"send_packed_command": send_packed_command})


def origin_of(record: ConsumerRecord) -> int:
    """The broker timestamp (ms) of the hospital input this record derives from (its own for an input)."""
    for key, value in record.headers or ():
        if key == ORIGIN_HEADER:
            with contextlib.suppress(ValueError):
                return int(value)
    return int(record.timestamp)
