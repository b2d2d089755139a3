"""The Grafana dashboard and the Prometheus alert rules, as code (rendered by `python -m deploy.render`).

Lag series come from two places (each service's own /metrics while it runs, and the lag exporter always):
queries take `max by (service, topic, partition)` so that they count each partition once.
"""

from __future__ import annotations

import re
from typing import Any

from deploy.spec import CRITICAL_ALERT_LATENCY_TARGET_S, LAG_THRESHOLD, NAMESPACE, runbook_url

LAG = "max by (service, topic, partition) (osteocds_consumer_lag)"
AGE = "max by (service, topic, partition) (osteocds_oldest_unprocessed_age_seconds)"


def counted(selector: str, by: str, window: str) -> str:
    """Events of a counter in the last `window`, first event included (issue 20).

    `increase` needs two samples of a series: one that appears at 1 gives it nothing. The services expose every
    known series at 0 from the start (shared/observability/metrics.py); a series that appears anyway with a count
    (an unforeseen label value, such as a handler's exception class, or an event before the first scrape) is caught
    by the second part: a series present now and absent the hour before the window. (After a gap of more than an
    hour in Prometheus' own data, a series with an earlier count may fire once.)"""
    first = f"{selector} unless last_over_time({selector}[1h] offset {window})"
    return f"sum by ({by}) (increase({selector}[{window}])) > 0 or sum by ({by}) ({first}) > 0"


def _rule(name: str, expr: str, for_: str, severity: str, summary: str, action: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, "team": "osteocds"},
        "annotations": {"summary": summary, "description": action, "runbook_url": runbook_url()},
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
            counted("osteocds_dead_letters_total", "service, topic, error_type", "10m"),
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
            counted('osteocds_alerts_escalated_total{severity="critical"}', "level", "15m"),
            "0m",
            "critical",
            "A critical clinical alert was not acknowledged in time and was escalated (level {{ $labels.level }})",
            "Make sure the escalation reached the on-duty clinician; check that the clinicians' page and "
            "notification's API are up.",
        ),
        _rule(
            "OsteoCDSProducerClockAhead",
            counted("osteocds_records_clock_ahead_total", "service, topic", "15m"),
            "0m",
            "warning",
            "{{ $labels.service }} consumed {{ $labels.topic }} records timestamped ahead of its clock",
            "A producer's clock (the hospital bus, or a service) runs ahead of this one beyond the clock-skew "
            "tolerance, or this node's runs behind: the facts it dates now read as dated in the future until their "
            "time comes, and they hide the current fact of their name (HAZ-27-FUTURE-HIDES: an emergency may show as "
            "not current). Check NTP on the producer's hosts and on this pod's node.",
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
    | {"unless", "offset", "last_over_time"}
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


# ---- promtool rule unit tests (deploy/prometheus/alerts_test.yml) -------------------------------------------------
def _expand(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)


def _alerts(rule: dict[str, Any], *label_sets: dict[str, str]) -> list[dict[str, Any]]:
    """The alerts promtool must see: the rule's labels and the series' labels, annotations expanded."""
    out = []
    for labels in label_sets:
        exp = rule["labels"] | labels
        out.append({"exp_labels": exp, "exp_annotations": {k: _expand(v, exp) for k, v in rule["annotations"].items()}})
    return out


def _case(
    name: str, series: dict[str, str], checks: list[tuple[str, list[dict[str, str]]]], rules: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [
            {"eval_time": at, "alertname": name.split(":")[0], "exp_alerts": _alerts(rules[name.split(":")[0]], *ex)}
            for at, ex in checks
        ],
    }


def alert_rule_tests(rule_file: str) -> dict[str, Any]:
    """`promtool test rules` cases: each rule fires on the series it watches and stays quiet otherwise; the two
    counter rules fire on the first event, from a series initialised at 0 and from one that appears at 1."""
    rules = {r["alert"]: r for g in alert_rules()["groups"] for r in g["rules"]}
    lag = 'osteocds_consumer_lag{service="scoring",topic="osteocds.labs.normalised.v1",partition="0"}'
    age = 'osteocds_oldest_unprocessed_age_seconds{service="scoring",topic="osteocds.labs.normalised.v1",partition="0"}'
    scoring = {"service": "scoring", "topic": "osteocds.labs.normalised.v1"}

    def buckets(fast: bool) -> dict[str, str]:  # one alert a minute, taking 2 s (fast) or 90 s (slow)
        les = ("1", "5", "60", "300", "+Inf")
        return {
            f'osteocds_alert_latency_seconds_bucket{{severity="critical",le="{le}"}}': (
                "0+1x30" if le in (("5", "60", "300", "+Inf") if fast else ("300", "+Inf")) else "0x30"
            )
            for le in les
        }

    dl = 'osteocds_dead_letters_total{{service="lab-normalisation",topic="hospital.hl7v2.v1",error_type="{}"}}'
    dl_labels = {"service": "lab-normalisation", "topic": "hospital.hl7v2.v1"}
    esc = 'osteocds_alerts_escalated_total{{severity="{}",level="{}"}}'
    errors = 'osteocds_lag_sample_errors_total{service="scoring"}'
    ahead = 'osteocds_records_clock_ahead_total{service="scoring",topic="osteocds.labs.normalised.v1"}'
    tests = [
        _case("OsteoCDSConsumerLagGrowing", {lag: "0+20x30"}, [("20m", [scoring])], rules),
        _case("OsteoCDSConsumerLagGrowing:steady", {lag: "100x30"}, [("20m", [])], rules),
        _case("OsteoCDSOldestRecordWaiting", {age: "0+60x20"}, [("4m", []), ("12m", [scoring])], rules),
        _case("OsteoCDSOldestRecordWaiting:none-waits", {age: "0x20"}, [("12m", [])], rules),
        _case("OsteoCDSCriticalAlertLatency", buckets(fast=False), [("20m", [{}])], rules),
        _case("OsteoCDSCriticalAlertLatency:fast", buckets(fast=True), [("20m", [])], rules),
        _case(
            # first event: the series is exposed at 0 from the start (metrics.py), then counts one
            "OsteoCDSDeadLetters:first-event",
            {dl.format("Rejected"): "0 0 0 1 1"},
            [("2m", []), ("4m", [dl_labels | {"error_type": "Rejected"}])],
            rules,
        ),
        _case(
            # a label value not initialised (a handler's exception class) appears with its first count
            "OsteoCDSDeadLetters:new-series",
            {dl.format("KeyError"): "_ _ 1 1 1"},
            [("1m", []), ("3m", [dl_labels | {"error_type": "KeyError"}])],
            rules,
        ),
        _case(
            "OsteoCDSDeadLetters:old-count",
            {dl.format("Rejected"): "2x90", dl.format("TooLarge"): "0x90"},
            [("80m", [])],
            rules,
        ),
        _case(
            "OsteoCDSServiceNotReady",
            {'osteocds_ready{service="notification"}': "1x5 0x15"},
            [("4m", []), ("15m", [{"service": "notification"}])],
            rules,
        ),
        _case(
            "OsteoCDSCriticalAlertEscalated:first-event",
            {esc.format("critical", "1"): "0 0 1 1 1", esc.format("warning", "1"): "0 0 1 1 1"},
            [("1m", []), ("3m", [{"level": "1"}])],
            rules,
        ),
        _case(
            # an escalation before the first scrape: the series appears at 1
            "OsteoCDSCriticalAlertEscalated:new-series",
            {esc.format("critical", "2"): "_ _ 1 1 1"},
            [("1m", []), ("3m", [{"level": "2"}])],
            rules,
        ),
        _case("OsteoCDSCriticalAlertEscalated:old-count", {esc.format("critical", "1"): "1x90"}, [("80m", [])], rules),
        _case(
            "OsteoCDSProducerClockAhead:first-event",
            {ahead: "0 0 0 2 2"},
            [("2m", []), ("4m", [scoring])],
            rules,
        ),
        _case("OsteoCDSProducerClockAhead:old-count", {ahead: "3x90"}, [("80m", [])], rules),
        _case("OsteoCDSLagNotMeasured", {errors: "0+1x60"}, [("10m", []), ("40m", [{"service": "scoring"}])], rules),
        _case("OsteoCDSLagNotMeasured:measured", {errors: "0x60"}, [("40m", [])], rules),
    ]
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}


def alerts_tested(tests: dict[str, Any]) -> dict[str, set[str]]:
    """For each alert name, the names of the cases that expect it to fire."""
    fired: dict[str, set[str]] = {}
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            if check["exp_alerts"]:
                fired.setdefault(check["alertname"], set()).add(case["name"])
    return fired
