"""Issue 20 (operations): alert rules see the first event (every counter series they read exists at 0 from the
start, and the rules catch a series that appears with a count), every rule has promtool cases, the runbook link
is absolute from a setting, and generated secrets are private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from contracts.topics import SERVICES, TOPICS
from deploy import make_secrets, observability, render, spec
from services.notification.settings import NotificationSettings
from shared.observability.lag import LagGauges, LagMonitor
from shared.observability.metrics import (
    ESCALATION_LEVELS,
    KNOWN_ERROR_TYPES,
    SEVERITIES,
    OpsMetrics,
)
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"


def exposed(registry: CollectorRegistry, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of `name` in the exposition text, by label set."""
    text = generate_latest(registry).decode()
    return {
        frozenset(s.labels.items()): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def counters_read_by_rules() -> set[str]:
    """The counters the alert rules read through increase(): the ones whose first event could be missed."""
    rules = [r["expr"] for g in observability.alert_rules()["groups"] for r in g["rules"]]
    return {name for expr in rules for name in observability.metrics_used(expr) if name.endswith("_total")}


# ---- item 1: the series exist at 0 before the first event -----------------------------------------------------------
def test_a_fresh_registry_exposes_every_counter_the_rules_read_at_zero() -> None:
    assert counters_read_by_rules() == {
        "osteocds_dead_letters_total",
        "osteocds_alerts_escalated_total",
        "osteocds_lag_sample_errors_total",
        "osteocds_records_clock_ahead_total",
    }
    for service in SERVICES:
        registry = CollectorRegistry()
        OpsMetrics(registry, service)
        dead = exposed(registry, "osteocds_dead_letters_total")
        consumed = [t.name for t in TOPICS if service in t.consumers]
        expected = {
            frozenset({("service", service), ("topic", topic), ("error_type", e)})
            for topic in consumed
            for e in KNOWN_ERROR_TYPES
        }
        assert consumed and set(dead) == expected, service
        assert set(dead.values()) == {0.0}
        ahead = exposed(registry, "osteocds_records_clock_ahead_total")  # HAZ-27-FUTURE-HIDES detection
        assert ahead == {frozenset({("service", service), ("topic", t)}): 0.0 for t in consumed}, service
        escalated = exposed(registry, "osteocds_alerts_escalated_total")
        if service == "notification":  # the one service that raises (and escalates) alerts
            assert set(escalated) == {
                frozenset({("severity", s), ("level", lvl)}) for s in SEVERITIES for lvl in ESCALATION_LEVELS
            }
            assert set(escalated.values()) == {0.0}
            latency = exposed(registry, "osteocds_alert_latency_seconds_count")
            assert set(latency) == {frozenset({("severity", s)}) for s in SEVERITIES}
        else:
            assert escalated == {}


def test_the_lag_monitor_exposes_its_error_counter_at_zero_for_every_group() -> None:
    registry = CollectorRegistry()
    LagMonitor(Settings(), {"scoring": ["a", "b"], "notification": ["c"]}, LagGauges(registry))
    errors = exposed(registry, "osteocds_lag_sample_errors_total")
    assert errors == {frozenset({("service", "scoring")}): 0.0, frozenset({("service", "notification")}): 0.0}


def test_the_initialised_label_values_cover_what_the_code_produces() -> None:
    assert set(SEVERITIES) == {"critical", "warning", "info"}
    levels = range(1, NotificationSettings().alert_escalation_max_level + 1)
    assert {str(level) for level in levels} <= set(ESCALATION_LEVELS)
    assert {"Rejected", "PartiallyRejected", "ValidationError", "TooLarge", "MissingKey"} <= set(KNOWN_ERROR_TYPES)


def test_a_first_event_counts_one_on_top_of_the_zero() -> None:
    registry = CollectorRegistry()
    ops = OpsMetrics(registry, "lab-normalisation")
    ops.dead_letter("hospital.hl7v2.v1", "Rejected")
    dead = exposed(registry, "osteocds_dead_letters_total")
    key = frozenset({("service", "lab-normalisation"), ("topic", "hospital.hl7v2.v1"), ("error_type", "Rejected")})
    assert dead[key] == 1.0 and sum(dead.values()) == 1.0


# ---- item 2: promtool cases for every rule, first event included ----------------------------------------------------
def test_every_alert_rule_has_promtool_cases_and_the_counter_rules_a_first_event_case() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    assert tests["rule_files"] == ["alerts.yml"]  # relative to the test file: promtool test rules from anywhere
    fired = observability.alerts_tested(tests)
    names = {r["alert"] for g in observability.alert_rules()["groups"] for r in g["rules"]}
    assert set(fired) == names, names - set(fired)
    quiet = {c["alertname"] for case in tests["tests"] for c in case["alert_rule_test"] if not c["exp_alerts"]}
    assert quiet == names, names - quiet  # and each stays quiet when it should
    for rule in ("OsteoCDSDeadLetters", "OsteoCDSCriticalAlertEscalated"):
        assert {f"{rule}:first-event", f"{rule}:new-series"} <= fired[rule]
    for case in tests["tests"]:
        if case["name"].endswith(":first-event"):  # the series starts at 0, then counts
            assert all(s["values"].startswith("0 ") for s in case["input_series"])
        if case["name"].endswith(":new-series"):  # the series appears with its first count
            assert all(s["values"].startswith("_ ") for s in case["input_series"])


# ---- item 4: an absolute runbook link, from a setting ---------------------------------------------------------------
def test_runbook_url_is_absolute_and_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    urls = {r["annotations"]["runbook_url"] for g in doc["groups"] for r in g["rules"]}
    assert urls == {f"{spec.DEFAULT_DOCS_URL}/README.md#runbook"}
    assert spec.DEFAULT_DOCS_URL.startswith("https://")
    monkeypatch.setenv("OSTEOCDS_DOCS_URL", "https://git.hospital.example/osteocds/-/blob/main/")
    rules = observability.alert_rules()["groups"][0]["rules"]
    assert {r["annotations"]["runbook_url"] for r in rules} == {
        "https://git.hospital.example/osteocds/-/blob/main/README.md#runbook"
    }


def test_render_options_set_image_and_runbook_into_another_directory(tmp_path: Path) -> None:
    args = ["--out", str(tmp_path), "--image", "reg.example/o/osteocds:1.2.3", "--docs-url", "https://d.example"]
    assert render.main(args) == 0
    try:
        scoring = list(yaml.safe_load_all((tmp_path / "deploy" / "k8s" / "scoring.yaml").read_text()))
        [deployment] = [d for d in scoring if d["kind"] == "Deployment"]
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "reg.example/o/osteocds:1.2.3"
        alerts = yaml.safe_load((tmp_path / "deploy" / "prometheus" / "alerts.yml").read_text())
        assert alerts["groups"][0]["rules"][0]["annotations"]["runbook_url"] == "https://d.example/README.md#runbook"
    finally:
        os.environ.pop("OSTEOCDS_IMAGE", None)
        os.environ.pop("OSTEOCDS_DOCS_URL", None)


# ---- item 5: generated secrets are private, and the tool says what it wrote -----------------------------------------
def test_make_secrets_writes_a_private_directory_and_says_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "secrets"
    assert make_secrets.main([str(directory)]) == 0
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(p for p in directory.iterdir())
    assert {p.name for p in files} >= {"ca.crt", "kafka.pem", "redis.key", "redis-users.acl", "scoring-kafka-password"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    out = capsys.readouterr().out
    for path in files:
        assert str(path) in out  # every path written...
    for path in files:
        if path.name.endswith("-password"):
            assert path.read_text() not in out  # ...never a secret
    # again: nothing rewritten, and files made readable by others before are made private
    (directory / "ca.crt").chmod(0o644)
    directory.chmod(0o755)
    assert make_secrets.main([str(directory)]) == 0
    assert "0 file(s) written" in capsys.readouterr().out
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "ca.crt").stat().st_mode) == 0o600


def test_make_secrets_file_mode_option(tmp_path: Path) -> None:
    assert make_secrets.main([str(tmp_path / "s"), "--file-mode", "0644"]) == 0
    assert stat.S_IMODE((tmp_path / "s" / "ca.crt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o700
