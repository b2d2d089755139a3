"""The secured mode on one machine (issue 22): the transport security of docker-compose.yml, reproduced on local
processes. Kafka: a SASL_SSL listener (TLS with the local CA, SCRAM-SHA-512, one user per principal of
deploy/generate.py), the StandardAuthorizer with the ACLs of `deploy.generate.kafka_acls()` (the list the compose
set-up script is rendered from), denials written by the authorizer logger to a file. Redis: TLS only, one ACL user
per service (the file deploy/make_secrets.py writes from `deploy.generate.redis_users()`).

Certificates and passwords come from deploy/make_secrets.py, into a private directory of the run (`workdir`).
What differs from compose, and why: KRaft's controller listener is TLS with client certificates (the broker's own
certificate, principal `CN=kafka`) where compose keeps it on the container's loopback as ANONYMOUS; here every
listener is on the host's loopback, which other local users reach, and SCRAM cannot authenticate a controller
listener (its credentials live in the metadata the controller serves). Inter-broker traffic is SASL_SSL as `admin`.

Development tooling: no service imports this module."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from contracts.topics import CHANGELOGS, SERVICES, TOPICS
from deploy.generate import PRINCIPALS, KafkaAcl, kafka_acls
from deploy.make_secrets import FILE_MODE, write_all
from devstack import infra

#: the broker's super user: inter-broker traffic, topic creation, ACLs (never a service)
ADMIN = "admin"
#: the principal of the brokers' own certificate (deploy/make_secrets.py issues it for "kafka") on the controller
#: listener (TLS with client certificates)
BROKER_CERT_PRINCIPAL = "User:CN=kafka"
SCRAM = "SCRAM-SHA-512"  # as docker-compose.yml
#: the client listener's name (and protocol), and the controller's
LISTENER = "SASL_SSL"
CONTROLLER_LISTENER = "CONTROLLER"
#: the authorizer's decisions (kafka.authorizer.logger: denials at INFO), in each node's log directory
AUTHORIZER_LOG = "kafka-authorizer.log"
JAVA_ACLS = Path(__file__).resolve().parent / "java" / "ApplyAcls.java"


def private_workdir(workdir: Path) -> None:
    """`workdir` made readable by its owner only (0700): the nodes' configuration holds the super user's password
    (its JAAS line), the brokers' data patients' records, and `up --secured` keeps it in the repository's run folder,
    made with the usual umask (tests/apache/test_secured_files.py)."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o700)


def make_secrets(workdir: Path) -> Path:
    """deploy/make_secrets.py's files in `workdir/secrets` (0700; files 0600), plus the admin's SCRAM password."""
    private_workdir(workdir)
    directory = workdir / "secrets"
    write_all(directory)
    admin = directory / f"{ADMIN}-kafka-password"
    if not admin.exists():
        fd = os.open(admin, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24))
    return directory


def _password(directory: Path, principal: str, system: str) -> str:
    return (directory / f"{principal}-{system}-password").read_text().strip()


# ---- Kafka ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KafkaSecurity:
    """What a secured broker and its clients need: the broker's properties (merged into each node's
    server.properties, whose `listeners` name LISTENER and CONTROLLER_LISTENER), the storage format arguments
    that create the SCRAM users, and the clients' settings per principal."""

    directory: Path
    server_properties: dict[str, str]
    format_args: list[str]
    #: the run's directory: each node's authorizer log is `<its kafka.logs.dir>/AUTHORIZER_LOG` below it
    workdir: Path
    #: `admin`'s client configuration for the Java tools (--command-config)
    admin_properties: Path
    principals: tuple[str, ...] = field(default=(ADMIN, *PRINCIPALS))

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    def password_file(self, principal: str) -> Path:
        return self.directory / f"{principal}-kafka-password"

    def principal_settings(self, principal: str) -> dict[str, str]:
        """The environment of a client connecting as `principal` (shared/transport.py reads it): SASL_SSL, SCRAM,
        its user and password file, the CA that signed the broker's certificate."""
        return {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": SCRAM,
            "KAFKA_SASL_USERNAME": principal,
            "KAFKA_SASL_PASSWORD_FILE": str(self.password_file(principal)),
            "KAFKA_SSL_CAFILE": str(self.ca),
        }

    @property
    def admin(self) -> dict[str, str]:
        """The super user's client environment (topic creation, ACLs; never a service's)."""
        return self.principal_settings(ADMIN)

    def authorizer_logs(self) -> list[Path]:
        """Every node's authorizer log (one per node: several JVMs do not share a file)."""
        return sorted(self.workdir.rglob(AUTHORIZER_LOG))

    def denials(self) -> list[str]:
        """What the brokers refused and recorded, every node's, oldest first per node: operations the authorizer
        denied, and failed logins."""
        return [
            line
            for log in self.authorizer_logs()
            for line in log.read_text(errors="replace").splitlines()
            if " is Denied operation" in line or "Failed authentication" in line
        ]

    def log4j_properties(self) -> str:
        """The authorizer logger's file (log4j2 properties, appended to each node's configuration): the decisions
        the StandardAuthorizer logs, denials at INFO (allowed ones are DEBUG, not kept)."""
        return "".join(f"{k} = {v}\n" for k, v in self._log4j().items())

    def _log4j(self) -> dict[str, str]:
        return {
            "appender.authorizer.type": "File",
            "appender.authorizer.name": "AuthorizerFile",
            # the node's log directory (kafka.logs.dir); the storage tool, started without it, logs nothing here
            "appender.authorizer.fileName": f"${{sys:kafka.logs.dir:-{self.workdir}}}/{AUTHORIZER_LOG}",
            "appender.authorizer.createOnDemand": "true",
            "appender.authorizer.layout.type": "PatternLayout",
            "appender.authorizer.layout.pattern": "[%d] %p %m (%c)%n",
            "logger.authorizer.name": "kafka.authorizer.logger",
            "logger.authorizer.level": "INFO",
            "logger.authorizer.additivity": "false",
            "logger.authorizer.appenderRef.file.ref": "AuthorizerFile",
            # failed logins (bad password, unknown user, no TLS): the network layer logs them at INFO
            "logger.authentication.name": "org.apache.kafka.common.network.Selector",
            "logger.authentication.level": "INFO",
            "logger.authentication.additivity": "false",
            "logger.authentication.appenderRef.file.ref": "AuthorizerFile",
        }


def kafka_security(workdir: Path) -> KafkaSecurity:
    """The secured broker's configuration in `workdir` (certificates and passwords made once, kept)."""
    d = make_secrets(workdir)
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN}" password="{_password(d, ADMIN, "kafka")}";'
    )
    props = {
        "listener.security.protocol.map": f"{LISTENER}:SASL_SSL,{CONTROLLER_LISTENER}:SSL",
        "inter.broker.listener.name": LISTENER,
        "controller.listener.names": CONTROLLER_LISTENER,
        "sasl.enabled.mechanisms": SCRAM,
        "sasl.mechanism.inter.broker.protocol": SCRAM,
        f"listener.name.{LISTENER.lower()}.scram-sha-512.sasl.jaas.config": jaas,
        # the broker's key and certificate (one PEM file, as compose mounts it) and the CA; PEM, no key store
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(d / "kafka.pem"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(d / "ca.crt"),
        "ssl.client.auth": "none",
        # the controller listener: TLS with the nodes' own certificate on both sides (principal CN=kafka)
        f"listener.name.{CONTROLLER_LISTENER.lower()}.ssl.client.auth": "required",
        "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN};{BROKER_CERT_PRINCIPAL}",
    }
    fmt: list[str] = []
    for p in (ADMIN, *PRINCIPALS):
        fmt += ["--add-scram", f"{SCRAM}=[name={p},password={_password(d, p, 'kafka')}]"]
    admin_props = workdir / "admin-client.properties"
    write_private(
        admin_props,
        "\n".join(
            [
                "security.protocol=SASL_SSL",
                f"sasl.mechanism={SCRAM}",
                f"sasl.jaas.config={jaas}",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={d / 'ca.crt'}",
                "",
            ]
        ),
    )
    return KafkaSecurity(d, props, fmt, workdir, admin_props)


def provision(security: KafkaSecurity, bootstrap: str, lib: Path, settings: dict[str, str]) -> int:
    """What compose's kafka-setup does, on a running secured cluster: the topics and the changelogs (created as
    `admin` with the registry's partitions and the cluster's replication; the services may not create any), then the
    ACLs (one JVM call). The SCRAM users were created when the storage was formatted (`format_args`). Returns the
    ACL count."""
    import asyncio

    from shared.runtime.kafka import ensure_topics
    from shared.settings import Settings

    env = {k.lower(): v for k, v in {**settings, **security.admin}.items()}
    env["kafka_bootstrap_servers"] = bootstrap
    create = ensure_topics(Settings.model_validate(env), (*TOPICS, *CHANGELOGS))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # also when called inside a running event loop
        pool.submit(asyncio.run, create).result()
    return apply_acls(security, bootstrap, lib)


def write_private(path: Path, text: str) -> None:
    """A file readable by its owner only (it holds a password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def apply_acls(
    security: KafkaSecurity, bootstrap: str, lib: Path, acls: list[KafkaAcl] | None = None, timeout: float = 120
) -> int:
    """Create the ACLs (by default deploy.generate.kafka_acls(), the list kafka-setup.sh is rendered from) in one
    JVM call through the Admin API (devstack/java/ApplyAcls.java, run from source with the broker's jars in `lib`), and
    delete any other the broker holds (a kept cluster's ACLs of an older list: a permission since removed is gone);
    returns how many the broker then holds."""
    acls = kafka_acls() if acls is None else acls
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False, dir=security.admin_properties.parent) as f:
        for a in acls:
            f.write(f"User:{a.principal}\t{a.operation}\t{a.resource}\t{a.name}\t{a.pattern}\n")
    try:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("java not found: install OpenJDK 17 (Debian: openjdk-17-jdk-headless)")
        done = subprocess.run(
            [java, "-Xmx128m", "-cp", f"{lib}/*", str(JAVA_ACLS), bootstrap, str(security.admin_properties), f.name],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        Path(f.name).unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"applying the ACLs failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return int(done.stdout.strip().splitlines()[-1])


# ---- Redis ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SecuredRedis:
    """A redis-server as docker-compose.yml runs it: TLS only (`--port 0`), default user off, one ACL user per
    service limited to its key prefix."""

    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def principal_settings(self, user: str) -> dict[str, str]:
        """The environment of a service connecting as `user` (shared/transport.py reads it)."""
        return {
            "REDIS_URL": self.url,
            "REDIS_USERNAME": user,
            "REDIS_PASSWORD_FILE": str(self.directory / f"{user}-redis-password"),
            "REDIS_SSL_CA_CERTS": str(self.directory / "ca.crt"),
        }


@contextlib.contextmanager
def secured_redis(workdir: Path, port: int | None = None) -> Iterator[SecuredRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: install Debian's redis-server")
    d = make_secrets(workdir)
    port = port or infra.free_port()
    data = workdir / "redis"
    data.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [
            *(binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"),
            *("--tls-cert-file", str(d / "redis.crt"), "--tls-key-file", str(d / "redis.key")),
            *("--tls-ca-cert-file", str(d / "ca.crt"), "--tls-auth-clients", "no"),
            *("--aclfile", str(d / "redis-users.acl")),
            *("--save", "", "--appendonly", "no", "--dir", str(data)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=infra.OWN_SESSION,
    )
    try:
        infra.wait_port("127.0.0.1", port, proc)
        yield SecuredRedis(port, d)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def service_settings(
    kafka: KafkaSecurity | None, redis: SecuredRedis | None, services: tuple[str, ...] = SERVICES
) -> dict[str, dict[str, str]]:
    """Each service's own transport settings: its Kafka principal and its Redis user (the per-service environment
    of devstack/stack.py's spawn_services)."""
    return {
        svc: {
            **(kafka.principal_settings(svc) if kafka else {}),
            **(redis.principal_settings(svc) if redis else {}),
        }
        for svc in services
    }


@dataclass(frozen=True)
class SecuredInfra:
    """`osteocds up --secured`: the broker (its settings without any principal's credentials), the TLS Redis, each
    service's own settings, and the hospital bus's (what `demo` publishes as)."""

    kafka: infra.Provisioned
    redis: infra.Provisioned
    own_env: dict[str, dict[str, str]]
    bus: dict[str, str]


@contextlib.contextmanager
def local_secured(workdir: Path, nodes: int = 3, first_port: int | None = None) -> Iterator[SecuredInfra]:
    """A secured Apache Kafka cluster in `workdir` (kept: a later call starts it again with the same secrets), its
    topics and ACLs, and a TLS-only Redis with the services' ACL users (empty at each start: the services rebuild
    their state from the broker, shared/runtime/healing.py)."""
    from deploy.generate import HOSPITAL
    from devstack import apache_kafka

    ports = None if first_port is None else [first_port + i for i in range(nodes)]
    with (
        apache_kafka.cluster(nodes, secured=True, workdir=workdir, ports=ports) as c,
        secured_redis(workdir) as r,
    ):
        provision(c.security, c.bootstrap, c.lib, c.settings)
        common = {k: v for k, v in c.settings.items() if k not in c.security.admin}
        yield SecuredInfra(
            infra.Provisioned(c.bootstrap, "apache", common, c),
            infra.Provisioned(r.url, "secured", {}),
            service_settings(c.security, r),
            c.client_settings(HOSPITAL),
        )
