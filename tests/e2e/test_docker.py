"""docker/: the Compose file and the worker image definition are consistent with the code."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.settings import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_runs_kraft_kafka_two_workers_producers_and_prometheus(compose: dict[str, Any]) -> None:
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:4.")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    worker = services["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["build"]["dockerfile"] == "docker/Dockerfile"
    env = worker["environment"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    # every STREAMS_* variable the compose file sets is a real setting
    fields = {f"STREAMS_{name.upper()}" for name in Settings.model_fields}
    assert {k for k in env if k.startswith("STREAMS_")} <= fields
    assert {"feature-producer", "prediction-producer", "prometheus"} <= set(services)
    for name in ("feature-producer", "prediction-producer"):
        assert services[name]["command"][0] == "produce"


def test_prometheus_scrapes_the_worker_web_port(compose: dict[str, Any]) -> None:
    prom = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    (job,) = prom["scrape_configs"]
    (sd,) = job["dns_sd_configs"]
    port = int(compose["services"]["worker"]["environment"]["STREAMS_WEB_PORT"])
    assert sd["names"] == ["worker"] and sd["port"] == port
    assert job["metrics_path"] == "/metrics"


def test_dockerfile_is_slim_non_root_pinned_with_healthcheck() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert "-slim" in text
    assert "USER 10001" in text
    assert "HEALTHCHECK" in text and "/health" in text
    lock = [ln for ln in (DOCKER / "requirements.lock").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lock and all("==" in ln for ln in lock)
    names = {ln.split("==")[0].lower() for ln in lock}
    assert {"polars", "pandera", "faust-streaming", "aiokafka", "cloudevents"} <= names


def _compose_command() -> list[str] | None:
    """The Docker Compose client of this machine, probed: a ``docker`` CLI may exist without compose."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, timeout=60, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_compose_config_validates_with_the_docker_client() -> None:
    compose = _compose_command()
    if compose is None:
        pytest.skip("no Docker Compose client here (neither docker-compose nor a docker CLI with the compose plugin)")
    cmd = [*compose, "-f", str(DOCKER / "compose.yaml"), "config", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
