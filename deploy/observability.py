"""The Grafana dashboard and the Prometheus alert rules, as code (rendered by `python -m deploy.render`).

Lag series come from two places (each service's own /metrics while it runs, and the lag exporter always):
queries take `max by (service, topic, partition)` so that they count each partition once.
"""

from __future__ import annotations

import re
from typing import Any

from deploy.spec import CRITICAL_ALERT_LATENCY_TARGET_S, LAG_THRESHOLD, NAMESPACE

LAG = "max by (service, topic, partition) (osteocds_consumer_lag)"
AGE = "max by (service, topic, partition) (osteocds_oldest_unprocessed_age_seconds)"
RUNBOOK = "README.md#runbook"


def _rule(name: str, expr: str, for_: str, severity: str, summary: str, action: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, "team": "osteocds"},
        "annotations": {"summary": summary, "description": action, "runbook_url": RUNBOOK},
    }


def alert_rules() -> dict[str, Any]:
    """What the on-call is paged for; README (Runbook) says what each means and what to do."""
    rules = [
        _rule(
            "OsteoCDSConsumerLagGrowing",
            f"sum by (service, topic) ({LAG}) > {LAG_THRESHOLD}"
            " and sum by (service, topic) (max by (service, topic, partition)"
            " (delta(osteocds_consumer_lag[10m]))) > 0",
            "10m",
            "warning",
            "{{ $labels.service }} falls behind on {{ $labels.topic }}",
            "Lag above the scaling threshold and still growing for 10 minutes: the service is down, stuck or "
            "at its replica cap (partition count).",
        ),
        _rule(
            "OsteoCDSOldestRecordWaiting",
            f"max by (service, topic) ({AGE}) > 300",
            "5m",
            "critical",
            "A record has waited more than 5 minutes for {{ $labels.service }} on {{ $labels.topic }}",
            "Clinical input is not being processed: alerts may be late. Check the service's readiness and logs.",
        ),
        _rule(
            "OsteoCDSCriticalAlertLatency",
            "histogram_quantile(0.95, sum by (le)"
            ' (rate(osteocds_alert_latency_seconds_bucket{severity="critical"}[15m])))'
            f" > {CRITICAL_ALERT_LATENCY_TARGET_S}",
            "5m",
            "critical",
            f"Critical alerts take longer than {CRITICAL_ALERT_LATENCY_TARGET_S} s from the hospital input (p95)",
            "Find the slow hop in the dashboard (lag, batch duration per service) or in a trace of a late alert.",
        ),
        _rule(
            "OsteoCDSDeadLetters",
            "sum by (service, topic, error_type) (increase(osteocds_dead_letters_total[10m])) > 0",
            "0m",
            "warning",
            "{{ $labels.service }} dead-lettered {{ $labels.topic }} records ({{ $labels.error_type }})",
            "Inputs were rejected or failed: read osteocds.deadletter.v1 (reason, original bytes), fix the "
            "sender or the mapping, then replay.",
        ),
        _rule(
            "OsteoCDSServiceNotReady",
            'min by (service) (osteocds_ready) == 0 or up{job="osteocds"} == 0',
            "5m",
            "critical",
            "{{ $labels.service }} is not ready (Redis, Kafka or no partition assigned) or not scraped",
            "Check /readyz checks, the pod's events and logs; Kafka and Redis reachability and credentials.",
        ),
        _rule(
            "OsteoCDSCriticalAlertEscalated",
            'sum by (level) (increase(osteocds_alerts_escalated_total{severity="critical"}[15m])) > 0',
            "0m",
            "critical",
            "A critical clinical alert was not acknowledged in time and was escalated (level {{ $labels.level }})",
            "Make sure the escalation reached the on-duty clinician; check that the clinicians' page and "
            "notification's API are up.",
        ),
        _rule(
            "OsteoCDSLagNotMeasured",
            "sum by (service) (increase(osteocds_lag_sample_errors_total[15m])) > 3",
            "15m",
            "warning",
            "Consumer lag of {{ $labels.service }} cannot be read from the broker",
            "Check the lag exporter's access to Kafka (credentials, network policy).",
        ),
    ]
    return {"groups": [{"name": "osteocds", "rules": rules}]}


def prometheus_config() -> dict[str, Any]:
    """A Prometheus configuration that scrapes the pods of deploy/k8s (annotations prometheus.io/*) as job
    `osteocds` (the job OsteoCDSServiceNotReady watches) and loads the alert rules."""
    annotation = "__meta_kubernetes_pod_annotation_prometheus_io_"
    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "30s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {
                "job_name": "osteocds",
                # /metrics needs a token with the `ops` role (shared/web/auth.py), refreshed in this file
                "authorization": {"type": "Bearer", "credentials_file": "/etc/prometheus/osteocds/token"},
                "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [NAMESPACE]}}],
                "relabel_configs": [
                    {"source_labels": [f"{annotation}scrape"], "regex": "true", "action": "keep"},
                    {"source_labels": [f"{annotation}path"], "target_label": "__metrics_path__", "regex": "(.+)"},
                    {
                        "source_labels": ["__meta_kubernetes_pod_ip", f"{annotation}port"],
                        "separator": ":",
                        "target_label": "__address__",
                        "regex": "(.+):(.+)",
                        "replacement": "$1:$2",
                    },
                    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                ],
            }
        ],
    }


def _panel(pid: int, title: str, exprs: list[tuple[str, str]], unit: str, x: int, y: int) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend} for i, (expr, legend) in enumerate(exprs)
        ],
    }


SVC = 'service=~"$service"'


def dashboard() -> dict[str, Any]:
    panels_spec: list[tuple[str, list[tuple[str, str]], str]] = [
        (
            "Consumer lag (records)",
            [
                (
                    f"sum by (service, topic) (max by (service, topic, partition) (osteocds_consumer_lag{{{SVC}}}))",
                    "{{service}} {{topic}}",
                )
            ],
            "short",
        ),
        (
            "Oldest unprocessed record age",
            [
                (
                    "max by (service, topic) (osteocds_oldest_unprocessed_age_seconds{" + SVC + "})",
                    "{{service}} {{topic}}",
                )
            ],
            "s",
        ),
        (
            "Batch duration p95",
            [
                (
                    "histogram_quantile(0.95, sum by (service, le) (rate(osteocds_batch_seconds_bucket{"
                    + SVC
                    + "}[5m])))",
                    "{{service}}",
                )
            ],
            "s",
        ),
        (
            "Messages by outcome",
            [
                (
                    "sum by (service, outcome) (rate(osteocds_messages_total{" + SVC + "}[5m]))",
                    "{{service}} {{outcome}}",
                )
            ],
            "ops",
        ),
        (
            "Dead letters",
            [
                (
                    "sum by (service, topic, error_type) (increase(osteocds_dead_letters_total{" + SVC + "}[10m]))",
                    "{{service}} {{topic}} {{error_type}}",
                )
            ],
            "short",
        ),
        (
            "Outbox (outputs awaiting the broker's ack) and resends",
            [
                ("sum by (service) (osteocds_outbox_pending{" + SVC + "})", "{{service}} pending"),
                ("sum by (service) (rate(osteocds_outbox_resent_total{" + SVC + "}[5m]))", "{{service}} resent/s"),
            ],
            "short",
        ),
        (
            "Redis round trips per batch",
            [
                (
                    "sum by (service) (rate(osteocds_redis_round_trips_total{"
                    + SVC
                    + "}[5m])) / sum by (service) (rate(osteocds_batch_seconds_count{"
                    + SVC
                    + "}[5m]))",
                    "{{service}}",
                )
            ],
            "short",
        ),
        (
            "Input to output p95, per output topic",
            [
                (
                    "histogram_quantile(0.95, sum by (service, topic, le) "
                    "(rate(osteocds_input_to_output_seconds_bucket{" + SVC + "}[5m])))",
                    "{{service}} → {{topic}}",
                )
            ],
            "s",
        ),
        (
            f"Alert latency p95 by severity (target for critical: {CRITICAL_ALERT_LATENCY_TARGET_S} s)",
            [
                (
                    "histogram_quantile(0.95, sum by (severity, le)"
                    " (rate(osteocds_alert_latency_seconds_bucket[15m])))",
                    "{{severity}}",
                )
            ],
            "s",
        ),
        (
            "Escalated alerts",
            [
                (
                    "sum by (severity, level) (increase(osteocds_alerts_escalated_total[1h]))",
                    "{{severity}} level {{level}}",
                )
            ],
            "short",
        ),
        (
            "Ready",
            [("min by (service) (osteocds_ready{" + SVC + "})", "{{service}}")],
            "short",
        ),
        (
            "Handler time p95 per message",
            [
                (
                    "histogram_quantile(0.95, sum by (service, topic, le) (rate(osteocds_handler_seconds_bucket{"
                    + SVC
                    + "}[5m])))",
                    "{{service}} {{topic}}",
                )
            ],
            "s",
        ),
    ]
    panels = [
        _panel(i + 1, title, exprs, unit, x=12 * (i % 2), y=8 * (i // 2))
        for i, (title, exprs, unit) in enumerate(panels_spec)
    ]
    return {
        "uid": "osteocds-ops",
        "title": "OsteoCDS operations",
        "tags": ["osteocds"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
                {
                    "name": "service",
                    "type": "query",
                    "label": "Service",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(osteocds_consumer_lag, service)",
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "current": {"text": "All", "value": "$__all"},
                },
            ]
        },
        "panels": panels,
    }


#: names a query may use that are not ours: Prometheus' own scrape health
BUILTIN_METRICS = frozenset({"up"})
_FUNCTIONS_AND_WORDS = frozenset(
    {"sum", "max", "min", "by", "rate", "increase", "delta", "histogram_quantile", "and", "or", "le"}
    | {"label_values", "service", "topic", "partition", "severity", "level", "error_type", "outcome", "job"}
)


def metrics_used(expr: str) -> set[str]:
    """The series names a PromQL expression reads (identifiers followed by a selector, range or end)."""
    names = set(re.findall(r"\b(osteocds_[a-z_]+)\b", expr))
    names |= {w for w in re.findall(r"\b([a-z_]+)\{", expr) if w not in _FUNCTIONS_AND_WORDS}
    return names


def all_queries() -> list[str]:
    rules = [r["expr"] for g in alert_rules()["groups"] for r in g["rules"]]
    panels = [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]
    variables = [v["query"] for v in dashboard()["templating"]["list"] if v["type"] == "query"]
    return rules + panels + variables
