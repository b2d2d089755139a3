"""The one source of the deployment (issue 14): what each service runs, listens on, consumes, needs and may
reach. `python -m deploy.render` writes from it docker-compose.yml, the Kubernetes manifests (deploy/k8s/), the
Grafana dashboard (deploy/grafana/) and the Prometheus alert rules (deploy/prometheus/); tests/test_deploy.py
fails when a committed file differs from its rendering. Ports and modules come from devstack/stack.py (what
`osteocds up` starts) and topics from the registry, so compose, Kubernetes and the local stack cannot drift.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final

from contracts.topics import LAB_NORMALISATION, NOTIFICATION, SERVICES, TOPICS
from devstack.stack import MLLP_PORT, SERVICE_MODULES
from shared.settings import Settings

#: the image compose builds (`build: .`) and runs, by its local name
IMAGE: Final = "osteocds:0.1.0"
#: the image Kubernetes pulls, registry/name:tag: `OSTEOCDS_IMAGE` (or `python -m deploy.render --image`) when
#: rendering; the default names a placeholder registry: push the image there or render with your own
DEFAULT_K8S_IMAGE: Final = f"registry.osteocds.example/osteocds/{IMAGE}"
#: where the documentation is served (an absolute base): alert rules link to `<base>/README.md#runbook`.
#: `OSTEOCDS_DOCS_URL` (or `python -m deploy.render --docs-url`) when rendering; the default is a placeholder
DEFAULT_DOCS_URL: Final = "https://osteocds.example"


def k8s_image() -> str:
    """The image reference of the Kubernetes Deployments (OSTEOCDS_IMAGE, else DEFAULT_K8S_IMAGE)."""
    return os.environ.get("OSTEOCDS_IMAGE") or DEFAULT_K8S_IMAGE


def runbook_url() -> str:
    """The runbook's absolute URL, linked from every alert rule (OSTEOCDS_DOCS_URL, else DEFAULT_DOCS_URL)."""
    base = (os.environ.get("OSTEOCDS_DOCS_URL") or DEFAULT_DOCS_URL).rstrip("/")
    return f"{base}/README.md#runbook"


NAMESPACE: Final = "osteocds"
#: the single image's user (Dockerfile: useradd --uid 10001)
RUN_AS_USER: Final = 10001

#: Settings every service gets, the same in compose and Kubernetes.
COMMON_ENV: Final[dict[str, str]] = {
    "KAFKA_ENABLE_IDEMPOTENCE": "true",
    "KAFKA_SESSION_TIMEOUT_MS": "10000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "3000",
    "KAFKA_FETCH_MAX_WAIT_MS": "100",
    # issue 22: states also in each service's compacted changelog; a rebuild restores from it (README, "Restore from
    # changelogs"): Apache Kafka compacts, and its default 7-day retention would leave a replay partial
    "STATE_CHANGELOG": "true",
    "HTTP_HOST": "0.0.0.0",
    "LOG_LEVEL": "INFO",
    # every endpoint but /healthz and /readyz needs a token of the hospital's identity provider (shared/web/auth.py)
    "AUTH_PUBLIC_DOCS": "false",
}


#: Transport security (shared/transport.py, issue 13), the same in compose and Kubernetes: SASL_SSL with one
#: SCRAM user per service (its name) and TLS to Redis with one ACL user per service; secrets are files in /run/secrets
#: (compose secrets; a projected volume in Kubernetes).
SECRETS_DIR: Final = "/run/secrets"
KAFKA_TRANSPORT_ENV: Final[dict[str, str]] = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SSL_CAFILE": f"{SECRETS_DIR}/ca.crt",
    "KAFKA_SASL_PASSWORD_FILE": f"{SECRETS_DIR}/kafka_sasl_password",
}
REDIS_TRANSPORT_ENV: Final[dict[str, str]] = {
    "REDIS_SSL_CA_CERTS": f"{SECRETS_DIR}/ca.crt",
    "REDIS_PASSWORD_FILE": f"{SECRETS_DIR}/redis_password",
}


@dataclass(frozen=True)
class Target:
    """Where the infrastructure and the identity provider are, per target."""

    kafka_bootstrap: str
    redis_url: str
    #: settings only this target sets (identity provider, tracing endpoint)
    env: dict[str, str] = field(default_factory=dict)


COMPOSE: Final = Target(
    kafka_bootstrap="kafka:9092",
    redis_url="rediss://redis:6379/0",
    env={
        # Access tokens from the hospital's identity provider (Keycloak, Entra ID): Keycloak puts realm roles
        # in realm_access.roles; Entra ID app roles in roles.
        "OIDC_ISSUER": "${OIDC_ISSUER:?set OIDC_ISSUER to the identity provider's issuer URL}",
        "OIDC_AUDIENCE": "${OIDC_AUDIENCE:-osteocds}",
        "OIDC_ROLES_CLAIM": "${OIDC_ROLES_CLAIM:-roles}",
    },
)
KUBERNETES: Final = Target(
    kafka_bootstrap="kafka-bootstrap.kafka.svc:9092",
    redis_url="rediss://redis.redis.svc:6379/0",
    env={
        # the hospital's identity provider (here a Keycloak realm in the cluster: IDP_ENDPOINT)
        "OIDC_ISSUER": "https://keycloak.keycloak.svc:8443/realms/hospital",
        "OIDC_AUDIENCE": "osteocds",
        "OIDC_ROLES_CLAIM": "realm_access.roles",
        # tracing on: an OpenTelemetry collector in the cluster (shared/observability/tracing.py)
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability.svc:4318",
    },
)

#: where Kubernetes finds what the services talk to (namespace, port), for the network policies
KAFKA_ENDPOINT: Final = ("kafka", 9092)
REDIS_ENDPOINT: Final = ("redis", 6379)
OTLP_ENDPOINT: Final = ("observability", 4318)
#: the identity provider's JWKS (tokens are verified by every service)
IDP_ENDPOINT: Final = ("keycloak", 8443)
PROMETHEUS_NAMESPACE: Final = "monitoring"
#: the namespace of the ingress controller through which clinicians and the hospital bus reach the HTTP APIs
INGRESS_NAMESPACE: Final = "ingress-nginx"
#: the namespace of the hospital's integration engine, which sends HL7 v2 over MLLP to lab-normalisation
INTEGRATION_NAMESPACE: Final = "hospital-integration"

#: Kubernetes Secrets (created by the platform, never applied from deploy/k8s/): the CA, and per service
#: `<name>-kafka` (username, password) and `<name>-redis` (password). Their shape, with placeholders, is in
#: deploy/k8s-secrets.example/ (issue 20: a Secret next to a Deployment overwrote the real one on every apply).
CA_SECRET: Final = "osteocds-ca"


def kafka_secret(app: str) -> str:
    return f"{app}-kafka"


def redis_secret(app: str) -> str:
    return f"{app}-redis"


#: scale out when a partition's lag passes this (KEDA), keep at least one replica
LAG_THRESHOLD: Final = 50
#: target for a critical alert, from the hospital input to the alert (Prometheus rule OsteoCDSCriticalAlertLatency)
CRITICAL_ALERT_LATENCY_TARGET_S: Final = 60


@dataclass(frozen=True)
class App:
    name: str
    module: str
    port: int
    consumes: tuple[str, ...]
    #: reached from outside the namespace (the hospital bus, clinicians), besides Prometheus
    public: bool = False
    redis: bool = True
    #: more listeners (name -> port, TCP, reached from INTEGRATION_NAMESPACE) and the settings that open them
    listeners: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cpu_request: str = "100m"
    cpu_limit: str = "1"
    memory_request: str = "256Mi"
    memory_limit: str = "512Mi"

    @property
    def command(self) -> list[str]:
        return ["python", "-m", self.module]

    @property
    def max_replicas(self) -> int:
        """One consumer per partition at most: more would idle (per-patient order is per partition)."""
        partitions = Settings().kafka_topic_partitions
        return max(min(t.partitions, partitions) for t in TOPICS if t.name in self.consumes)


def _consumes(service: str) -> tuple[str, ...]:
    return tuple(t.name for t in TOPICS if service in t.consumers)


#: issue 24: MLLP is TLS with client certificates bound to MSH-3/4 (services/lab_normalisation/mllp.py). Its files
#: (this listener's certificate and key, the CA of the senders' certificates, the allowed senders) are mounted in
#: MLLP_DIR: compose from ./secrets (deploy/make_secrets.py), Kubernetes from the Secret MLLP_SECRET.
MLLP_DIR: Final = "/run/mllp"
MLLP_SECRET: Final = "lab-normalisation-mllp"
MLLP_FILES: Final = ("mllp.crt", "mllp.key", "mllp-client-ca.crt", "mllp-allowed-senders.yaml")
MLLP_ENV: Final[dict[str, str]] = {
    "MLLP_HOST": "0.0.0.0",
    "MLLP_PORT": str(MLLP_PORT),
    "MLLP_TLS_CERTFILE": f"{MLLP_DIR}/mllp.crt",
    "MLLP_TLS_KEYFILE": f"{MLLP_DIR}/mllp.key",
    "MLLP_TLS_CLIENT_CAFILE": f"{MLLP_DIR}/mllp-client-ca.crt",
    "MLLP_ALLOWED_SENDERS_FILE": f"{MLLP_DIR}/mllp-allowed-senders.yaml",
}

APPS: Final[tuple[App, ...]] = tuple(
    App(
        name=name,
        module=SERVICE_MODULES[name][0],
        port=SERVICE_MODULES[name][1],
        consumes=_consumes(name),
        public=name in (LAB_NORMALISATION, NOTIFICATION),
        # HL7 v2 over MLLP (services/lab_normalisation: MLLP_HOST / MLLP_PORT)
        listeners={"mllp": MLLP_PORT} if name == LAB_NORMALISATION else {},
        env=dict(MLLP_ENV) if name == LAB_NORMALISATION else {},
    )
    for name in SERVICES
)

#: `python -m shared.runtime.lag`: every group's lag from the broker, also while a service is down (no Redis)
LAG_EXPORTER: Final = App(
    name="lag-exporter",
    module="shared.runtime.lag",
    port=8110,
    consumes=(),
    redis=False,
    memory_request="128Mi",
    memory_limit="256Mi",
)
