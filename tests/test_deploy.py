"""Issue 14: deploy/ renders compose, Kubernetes, the dashboard and the alert rules from one source (deploy/spec.py).
The committed files are the rendering; manifests validate offline against the Kubernetes schemas; the alert
rules parse (promtool when installed, else their schema) and fire on the series they are meant for; every metric
a rule or panel reads is one the code exposes."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from contracts.topics import SERVICES, TOPICS
from deploy import observability, render, spec
from devstack.stack import MLLP_PORT, SERVICE_MODULES
from shared.observability.metrics import METRIC_NAMES, metric_of
from shared.settings import Settings
from shared.web.auth import AuthSettings

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
#: the Secrets' shape with placeholders: never applied with deploy/k8s/ (issue 20)
K8S_SECRETS = ROOT / "deploy" / "k8s-secrets.example" / "secrets.yaml"
K8S_VERSION = "1.30.0"
CRD_KINDS = {"ScaledObject", "TriggerAuthentication"}


def manifests() -> list[dict[str, Any]]:
    """What `kubectl apply -f deploy/k8s/` applies (and `-R`: every file below it)."""
    return [d for path in sorted(K8S.rglob("*")) if path.is_file() for d in yaml.safe_load_all(path.read_text()) if d]


def secret_templates() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(K8S_SECRETS.read_text()) if d]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    docs = secret_templates() if kind == "Secret" else manifests()
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def settings_class(app: spec.App) -> type[Settings]:
    """The service's own settings (services/<name>/settings.py), or the common ones."""
    if not app.module.startswith("services."):
        return Settings
    module = importlib.import_module(f"{app.module}.settings")
    return next(
        v for v in vars(module).values() if isinstance(v, type) and issubclass(v, Settings) and v is not Settings
    )


def test_committed_files_are_the_rendering() -> None:
    for path, text in render.rendered().items():
        assert path.exists(), f"{path} missing: run python -m deploy.render"
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is stale: run python -m deploy.render"
    rendered = {p for p in render.rendered() if K8S in p.parents}
    assert {p for p in K8S.rglob("*") if p.is_file()} == rendered  # no hand-written leftover


def test_manifests_validate_against_the_kubernetes_schemas_offline() -> None:
    docs = manifests()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "NetworkPolicy", "ScaledObject"}
    for doc in docs + secret_templates():
        if doc["kind"] in CRD_KINDS:
            jsonschema.validate(doc, KEDA_SCHEMAS[doc["kind"]])
        else:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_wrong_manifest_is_refused() -> None:
    deployment = of_kind("Deployment")["scoring"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = {"no": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_compose_and_kubernetes_agree_on_commands_ports_and_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    deployments = of_kind("Deployment")
    endpoints = {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"}
    for app in (*spec.APPS, spec.LAG_EXPORTER):
        c = deployments[app.name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c["env"]}
        known = {f.upper() for f in (*settings_class(app).model_fields, *AuthSettings.model_fields)}
        assert set(env) <= known, set(env) - known
        svc = compose[app.name]
        assert c["command"] == svc["command"] == app.command
        ports = [app.port, *app.listeners.values()]
        assert [p["containerPort"] for p in c["ports"]] == ports and svc["ports"] == [f"{p}:{p}" for p in ports]
        assert env["HTTP_PORT"] == svc["environment"]["HTTP_PORT"] == str(app.port)
        same = {k: v for k, v in svc["environment"].items() if k not in endpoints | set(spec.COMPOSE.env)}
        assert {k: env[k] for k in same} == same  # every compose setting, same value, in Kubernetes
        assert set(spec.COMPOSE.env) <= set(env)  # the identity provider: its own value per target
        assert ("REDIS_URL" in env) == ("REDIS_URL" in svc["environment"]) == app.redis
        service = of_kind("Service")[app.name]
        assert [p["port"] for p in service["spec"]["ports"]] == ports
    for name, (module, port) in SERVICE_MODULES.items():  # ... and what `osteocds up` starts
        assert compose[name]["command"] == ["python", "-m", module] and compose[name]["ports"][0] == f"{port}:{port}"
    assert compose["lab-normalisation"]["environment"]["MLLP_PORT"] == str(MLLP_PORT)


def test_pods_are_probed_limited_and_unprivileged() -> None:
    for name, d in of_kind("Deployment").items():
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert set(c["resources"]["requests"]) == {"cpu", "memory"} and "memory" in c["resources"]["limits"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == spec.RUN_AS_USER
        sc = c["securityContext"]
        assert (
            sc["readOnlyRootFilesystem"]
            and not sc["allowPrivilegeEscalation"]
            and sc["capabilities"]["drop"] == ["ALL"]
        )
        assert pod["automountServiceAccountToken"] is False
        assert pod["terminationGracePeriodSeconds"] > 30  # the drain of shared/runtime/service.py stop()


def test_applying_the_manifests_overwrites_no_secret() -> None:
    """Issue 20: a placeholder Secret applied with the Deployments replaced the real credentials on every apply.
    deploy/k8s/ holds none; the template of each Secret the pods and KEDA use is in deploy/k8s-secrets.example/."""
    assert not [d["metadata"]["name"] for d in manifests() if d["kind"] == "Secret"]
    assert "REPLACE-ME" not in "".join(p.read_text() for p in K8S.rglob("*") if p.is_file())
    assert K8S not in K8S_SECRETS.parents
    templates = of_kind("Secret")
    assert all(v.startswith("REPLACE-ME") for d in templates.values() for v in d["stringData"].values())
    referenced = {
        s["secret"]["name"]
        for d in of_kind("Deployment").values()
        for v in d["spec"]["template"]["spec"]["volumes"]
        if "projected" in v
        for s in v["projected"]["sources"]
    }
    referenced |= {r["name"] for t in of_kind("TriggerAuthentication").values() for r in t["spec"]["secretTargetRef"]}
    assert referenced == set(templates)
    assert all(d["metadata"]["namespace"] == spec.NAMESPACE for d in templates.values())


def test_keda_owns_the_replica_count_of_consumers() -> None:
    """A Deployment a ScaledObject scales sets no `replicas`: `kubectl apply` would reset KEDA's count."""
    scaled = {so["spec"]["scaleTargetRef"]["name"] for so in of_kind("ScaledObject").values()}
    deployments = of_kind("Deployment")
    assert scaled == set(SERVICES)
    for name, d in deployments.items():
        assert ("replicas" in d["spec"]) == (name not in scaled), name
    assert deployments["lag-exporter"]["spec"]["replicas"] == 1  # no ScaledObject: one exporter


def test_the_image_reference_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in of_kind("Deployment").values()}
    assert images == {spec.DEFAULT_K8S_IMAGE}
    registry, _, rest = spec.DEFAULT_K8S_IMAGE.partition("/")
    assert "." in registry and rest.endswith(":" + spec.IMAGE.split(":")[1])  # registry/name:tag
    monkeypatch.setenv("OSTEOCDS_IMAGE", "registry.hospital.example/cds/osteocds:2.0.0")
    app = spec.APPS[0]
    assert render.deployment(app)["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.hospital.example/cds/osteocds:2.0.0"
    )
    compose = yaml.safe_load(render.compose())["services"]
    assert compose[app.name]["image"] == spec.IMAGE  # compose builds and runs the local image


def test_credentials_come_from_secrets() -> None:
    """Each service has its own Kafka user and Redis user; passwords are files from Secrets, at the paths compose
    uses (/run/secrets), never values in the manifests."""
    secrets = of_kind("Secret")
    for name, d in of_kind("Deployment").items():
        app = next(a for a in (*spec.APPS, spec.LAG_EXPORTER) if a.name == name)
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        env = {e["name"]: e["value"] for e in c["env"]}
        assert env["KAFKA_SASL_USERNAME"] == name and env.get("REDIS_USERNAME") == (name if app.redis else None)
        assert not any("PASSWORD" in k and not k.endswith("_FILE") for k in env)
        [volume] = [v for v in pod["volumes"] if "projected" in v]
        files = {i["path"]: s["secret"]["name"] for s in volume["projected"]["sources"] for i in s["secret"]["items"]}
        expected = {"ca.crt": spec.CA_SECRET, "kafka_sasl_password": spec.kafka_secret(name)}
        assert files == expected | ({"redis_password": spec.redis_secret(name)} if app.redis else {})
        assert set(files.values()) <= set(secrets)
        mount = next(m for m in c["volumeMounts"] if m["name"] == volume["name"])
        assert mount["mountPath"] == spec.SECRETS_DIR and mount["readOnly"]
        for path in (env["KAFKA_SASL_PASSWORD_FILE"], env["KAFKA_SSL_CAFILE"], env.get("REDIS_PASSWORD_FILE", "")):
            assert not path or path.removeprefix(spec.SECRETS_DIR + "/") in files
    for so in of_kind("ScaledObject").values():  # KEDA uses the service's own user
        [auth] = {t["authenticationRef"]["name"] for t in so["spec"]["triggers"]}
        refs = of_kind("TriggerAuthentication")[auth]["spec"]["secretTargetRef"]
        assert {r["name"] for r in refs} == {spec.kafka_secret(so["metadata"]["name"]), spec.CA_SECRET}


def test_network_policies_allow_only_what_each_service_needs() -> None:
    policies = of_kind("NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for app in (*spec.APPS, spec.LAG_EXPORTER):
        p = policies[app.name]["spec"]
        assert p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == app.name
        ports = {(rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], port["port"])
                 for rule in p["egress"] for port in rule["ports"]}  # fmt: skip
        expected = {("kube-system", 53), spec.KAFKA_ENDPOINT, spec.OTLP_ENDPOINT, spec.IDP_ENDPOINT}
        assert ports == expected | ({spec.REDIS_ENDPOINT} if app.redis else set()), app.name
        allowed = {
            (s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], port["port"])
            for rule in p["ingress"]
            for s in rule["from"]
            for port in rule["ports"]
        }
        http = {spec.PROMETHEUS_NAMESPACE} | ({spec.INGRESS_NAMESPACE} if app.public else set())
        listeners = {(spec.INTEGRATION_NAMESPACE, port) for port in app.listeners.values()}
        assert allowed == {(ns, app.port) for ns in http} | listeners, app.name


def test_each_consumer_scales_on_its_lag_capped_by_partitions() -> None:
    scaled = of_kind("ScaledObject")
    assert set(scaled) == set(SERVICES)
    partitions = Settings().kafka_topic_partitions
    for name, so in scaled.items():
        consumed = {t.name: min(t.partitions, partitions) for t in TOPICS if name in t.consumers}
        assert so["spec"]["scaleTargetRef"]["name"] == name
        assert so["spec"]["maxReplicaCount"] == max(consumed.values())
        triggers = so["spec"]["triggers"]
        assert {t["metadata"]["topic"] for t in triggers} == set(consumed)
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {name}  # the service's group is its name
        assert all(t["metadata"]["allowIdleConsumers"] == "false" for t in triggers)
        assert {t["authenticationRef"]["name"] for t in triggers} <= set(of_kind("TriggerAuthentication"))


REQUIRED_ALERTS = {
    "OsteoCDSConsumerLagGrowing",
    "OsteoCDSCriticalAlertLatency",
    "OsteoCDSDeadLetters",
    "OsteoCDSServiceNotReady",
    "OsteoCDSCriticalAlertEscalated",
}


def test_alert_rules_parse_and_cover_the_runbook() -> None:
    path = ROOT / "deploy" / "prometheus" / "alerts.yml"
    doc = yaml.safe_load(path.read_text())
    jsonschema.validate(doc, RULES_SCHEMA)
    names = {r["alert"] for g in doc["groups"] for r in g["rules"]}
    assert names >= REQUIRED_ALERTS
    readme = (ROOT / "README.md").read_text()
    for name in names:
        assert f"`{name}`" in readme, f"README runbook does not explain {name}"
    promtool = shutil.which("promtool")
    if promtool is not None:
        out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
    # (prometheus.yml is not given to promtool: Debian's build has no Kubernetes service discovery)
    config_doc = yaml.safe_load((path.parent / "prometheus.yml").read_text())
    assert [j["job_name"] for j in config_doc["scrape_configs"]] == ["osteocds"]  # OsteoCDSServiceNotReady's job
    assert config_doc["rule_files"] == [path.name]


def test_every_metric_a_rule_or_panel_reads_is_exposed_by_the_code() -> None:
    used = {metric_of(name) for q in observability.all_queries() for name in observability.metrics_used(q)}
    assert used - observability.BUILTIN_METRICS <= METRIC_NAMES, used - METRIC_NAMES
    assert "osteocds_consumer_lag" in used and "osteocds_alerts_escalated_total" in used


def test_dashboard_is_valid_grafana_json() -> None:
    board = json.loads((ROOT / "deploy" / "grafana" / "osteocds.json").read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and board["uid"] == "osteocds-ops"
    assert all(p["targets"] and all(t["expr"] for t in p["targets"]) for p in board["panels"])
    titles = " ".join(p["title"] for p in board["panels"]).lower()
    for what in ("lag", "oldest", "batch", "dead letters", "outbox", "redis", "alert latency", "escalated"):
        assert what in titles, what


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian package prometheus)")
def test_alert_rules_fire_on_their_series() -> None:
    """promtool's rule unit tests (deploy/prometheus/alerts_test.yml, rendered from deploy/observability.py): each
    rule fires on the series it watches, the first event included, and stays quiet otherwise."""
    tests = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
    out = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian package prometheus)")
def test_a_failing_promtool_case_fails(tmp_path: Path) -> None:
    """The check above is not vacuous: a case expecting what the rules do not do fails."""
    doc = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts_test.yml").read_text())
    (tmp_path / "alerts.yml").write_text((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    for case in doc["tests"]:
        if case["name"] == "OsteoCDSDeadLetters:new-series":
            case["input_series"][0]["values"] = "_ _ _ _ _"  # no dead letter: the expected alert cannot fire
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    out = subprocess.run(
        ["promtool", "test", "rules", str(tmp_path / "alerts_test.yml")], capture_output=True, text=True, check=False
    )
    assert out.returncode != 0 and "OsteoCDSDeadLetters" in out.stdout + out.stderr


RULES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["groups"],
    "additionalProperties": False,
    "properties": {
        "groups": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "rules"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "interval": {"type": "string"},
                    "rules": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["alert", "expr"],
                            "additionalProperties": False,
                            "properties": {
                                "alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                "expr": {"type": "string", "minLength": 1},
                                "for": {"type": "string", "pattern": "^[0-9]+[smhdwy]$"},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        }
    },
}

_META = {"type": "object", "required": ["name", "namespace"], "properties": {"name": {"type": "string"}}}
#: structural schemas of the two KEDA v2 custom resources used (keda.sh/v1alpha1), after KEDA's CRD definitions
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledObject"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "kind": {"type": "string"},
                            "apiVersion": {"type": "string"},
                        },
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"type": "string"},
                                "name": {"type": "string"},
                                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                                "authenticationRef": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "TriggerAuthentication"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "additionalProperties": False,
                            "properties": {
                                "parameter": {"type": "string"},
                                "name": {"type": "string"},
                                "key": {"type": "string"},
                            },
                        },
                    }
                },
            },
        },
    },
}


def _unknown_fields(sent: Any, parsed: Any, path: str = "") -> list[str]:
    """The keys of `sent` that the parsed model did not keep (an unknown field: a typo KEDA would ignore)."""
    if isinstance(sent, dict) and isinstance(parsed, dict):
        out = [f"{path}.{k}" for k in sent if k not in parsed]
        return out + [x for k in sent if k in parsed for x in _unknown_fields(sent[k], parsed[k], f"{path}.{k}")]
    if isinstance(sent, list) and isinstance(parsed, list):
        return [
            x for i, (a, b) in enumerate(zip(sent, parsed, strict=False)) for x in _unknown_fields(a, b, f"{path}[{i}]")
        ]
    return []


def test_keda_resources_validate_against_the_models_of_kedas_published_crds() -> None:
    """Issue 20: the ScaledObjects and TriggerAuthentications against KEDA's own CRD schemas (2.16, as generated into
    `cloudcoil.models.keda`): a wrong type, a missing field or an unknown field fails here, not in the cluster."""
    from cloudcoil.models.keda import v1alpha1

    checked = 0
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc or doc.get("kind") not in ("ScaledObject", "TriggerAuthentication"):
                continue
            model = getattr(v1alpha1, doc["kind"]).model_validate(doc)
            parsed = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
            assert _unknown_fields(doc, parsed) == [], path.name
            checked += 1
    assert checked >= 10
