"""Kafka's jars, resolved once from Maven Central with ``mvn`` into a cache, and the local Java (17+)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from streams.errors import BrokerError

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"  # the log4j2 release Kafka 4.1 ships; binds slf4j 1.7 (Kafka's API)
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_MARKER = "libs.complete"


def _cache_home(version: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    root = cache_dir or os.environ.get("STREAMS_CACHE_DIR") or Path.home() / ".cache" / "quality-streams"
    return Path(root).expanduser() / f"kafka-{version}"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerError(
            "Java was not found on PATH (nor in JAVA_HOME); the local Kafka broker needs Java 17 or newer. "
            "Install it (for example `apt-get install default-jre-headless`, or run scripts/install-kafka), "
            "or point KAFKA_BOOTSTRAP_SERVERS at a running broker."
        )
    return found


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.quality-streams</groupId>
  <artifactId>kafka-dev-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""


def resolve_kafka_classpath(
    version: str = KAFKA_VERSION, cache_dir: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Jars of the Kafka ``version`` server and its runtime dependencies, downloaded once.

    They are kept in ``<cache_dir or $STREAMS_CACHE_DIR or ~/.cache/quality-streams>/kafka-<version>/libs``;
    once complete, later calls read the directory and run no Maven.
    """
    home = _cache_home(version, cache_dir)
    libs, marker = home / "libs", home / _MARKER
    if marker.is_file():
        jars = [libs / name for name in marker.read_text().split()]
        if jars and all(jar.is_file() for jar in jars):
            return jars
    _java()  # Maven itself needs Java: say so first
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) was not found on PATH; it is needed once to download the Kafka jars from Maven Central. "
            "Install it (for example `apt-get install maven`, or run scripts/install-kafka), "
            "or point KAFKA_BOOTSTRAP_SERVERS at a running broker."
        )
    home.mkdir(parents=True, exist_ok=True)
    pom = home / "pom.xml"
    pom.write_text(_POM.format(kafka=version, log4j=LOG4J_VERSION))
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=home))
    cmd = [mvn, "-B", "-q", "-f", str(pom), f"{_DEPENDENCY_PLUGIN}:copy-dependencies", f"-DoutputDirectory={staging}"]
    log.info("resolving Apache Kafka %s with Maven into %s", version, libs)
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, check=False)
        names = sorted(p.name for p in staging.glob("*.jar"))
        if done.returncode != 0 or not any(name.startswith("kafka_2.13-") for name in names):
            raise BrokerError(
                f"Maven could not resolve org.apache.kafka:kafka_2.13:{version} (exit {done.returncode}); the version "
                f"may not exist or Maven Central may be unreachable:\n{(done.stdout + done.stderr)[-2000:]}"
            )
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, subprocess.TimeoutExpired):
            raise BrokerError(f"Maven did not finish resolving Kafka {version} within {exc.timeout:.0f} s.") from exc
        raise
    marker.unlink(missing_ok=True)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    marker.write_text("\n".join(names) + "\n")
    log.info("resolved %d jars for Kafka %s in %.1f s", len(names), version, time.monotonic() - started)
    return [libs / name for name in names]
