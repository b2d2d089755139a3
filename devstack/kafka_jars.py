"""Apache Kafka's jars for the local cluster (devstack/apache_kafka.py; issue 22): Apache Kafka's own
`org.apache.kafka:kafka_2.13` artifact (and `kafka-tools`, and a log4j2 binding) from Maven Central, fetched once with
Maven into `.run/kafka/<version>/lib` (gitignored), and the `java` that runs them. Development tooling only.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The jars' cache: `.run/kafka/<version>/lib` (`.run/` is gitignored).
CACHE = ROOT / ".run" / "kafka"
#: 4.4.0 and 4.1.1 both resolve from Maven Central here and run on Java 17; the newest is used.
KAFKA_VERSION = "4.4.0"
#: The SLF4J binding for the broker's logs (Kafka 4.x logs through log4j2; the artifact names no binding).
LOG4J_VERSION = "2.24.3"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>osteocds.local</groupId><artifactId>apache-kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{v}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>{v}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{l}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{l}</version></dependency>
  </dependencies>
</project>
"""


def java() -> str:
    binary = shutil.which("java")
    if binary is None:
        raise RuntimeError("java not found: install Debian's openjdk-17-jre-headless (Apache Kafka 4.x needs Java 17)")
    return binary


def ensure_jars(version: str = KAFKA_VERSION) -> Path:
    """The broker's classpath folder, fetched from Maven Central once (`mvn dependency:copy-dependencies`)."""
    base = CACHE / version
    lib = base / "lib"
    done = base / "complete"
    if done.exists():
        return lib
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one fetch at a time (parallel test runs, `up` beside the tests)
        if done.exists():
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("mvn not found: install Debian's maven to fetch Apache Kafka from Maven Central")
        (base / "pom.xml").write_text(_POM.format(v=version, l=LOG4J_VERSION))
        tmp = base / "lib.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [mvn, "-q", "-B", "-f", str(base / "pom.xml"), "dependency:copy-dependencies"]
        cmd += [f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or not (tmp / f"kafka_2.13-{version}.jar").exists():
            raise RuntimeError(
                f"fetching Apache Kafka {version} failed: {' '.join(cmd)}\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
            )
        shutil.rmtree(lib, ignore_errors=True)
        tmp.rename(lib)
        done.write_text(version + "\n")
    return lib
