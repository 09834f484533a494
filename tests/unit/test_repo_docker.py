"""The Docker path (Astro CLI project): Dockerfile, packages.txt, .dockerignore, compose override, .astro/.

These are static checks: no Docker engine runs here, so `astro dev start` itself was not run
(see README). What can be checked without one is checked: the Runtime image carries exactly the
Airflow version requirements.txt pins, the compose override wires the warehouse and Weaviate
into the Airflow containers, and the Astro project files are where the CLI expects them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

# Astro Runtime (Airflow 3 line, tag "<airflow major.minor>-<build>") -> Apache Airflow version,
# from Astronomer's Runtime release catalog (the data behind `astro dev init` / upgrades).
# Add a row when moving the Dockerfile to another Runtime build.
RUNTIME_AIRFLOW = {
    "3.3-5": "3.3.1",
    "3.3-7": "3.3.1",
    "3.3-8": "3.3.2",
}
AIRFLOW_SERVICES = ("scheduler", "dag-processor", "api-server", "triggerer")


def _from_line(root: Path) -> str:
    lines = [ln.strip() for ln in (root / "Dockerfile").read_text().splitlines()]
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    assert len(froms) == 1, f"expected one FROM line, got {froms}"
    return froms[0]


def runtime_tag(root: Path = ROOT) -> tuple[str, str, str | None]:
    """(image, runtime build, python) of the Dockerfile's FROM."""
    line = _from_line(root)
    m = re.fullmatch(
        r"FROM\s+(astrocrpublic\.azurecr\.io/runtime):(\d+\.\d+-\d+)(?:-python-(\d+\.\d+))?(?:\s+AS\s+\S+)?",
        line,
        flags=re.IGNORECASE,
    )
    assert m, f"Dockerfile must start FROM an Astro Runtime 3.x image, got {line!r}"
    return m.group(1), m.group(2), m.group(3)


def pinned_airflow(root: Path = ROOT) -> str:
    for line in (root / "requirements.txt").read_text().splitlines():
        m = re.match(r"^\s*apache-airflow\s*==\s*([0-9][^\s;#]*)", line)
        if m:
            return m.group(1)
    raise AssertionError("requirements.txt pins no apache-airflow==X.Y.Z")


def check_runtime_matches_pin(root: Path = ROOT) -> None:
    _, build, python = runtime_tag(root)
    airflow = pinned_airflow(root)
    assert build in RUNTIME_AIRFLOW, (
        f"unknown Astro Runtime {build}: add it to RUNTIME_AIRFLOW with its Airflow version "
        "(Astro Runtime release notes)"
    )
    assert RUNTIME_AIRFLOW[build] == airflow, (
        f"Dockerfile's Astro Runtime {build} is Airflow {RUNTIME_AIRFLOW[build]}, requirements.txt pins {airflow}"
    )
    assert build.split("-")[0] == ".".join(airflow.split(".")[:2])  # the tag's series is Airflow major.minor
    if python is not None:
        assert python in {"3.12", "3.13", "3.14"}, f"Runtime 3.3 images ship Python 3.12-3.14, not {python}"


def test_runtime_image_carries_the_pinned_airflow():
    check_runtime_matches_pin(ROOT)


def test_version_check_catches_a_mismatch(tmp_path):
    """The check fails when the two disagree (it is not vacuous)."""
    (tmp_path / "Dockerfile").write_text("FROM astrocrpublic.azurecr.io/runtime:3.3-7\n")
    (tmp_path / "requirements.txt").write_text("apache-airflow==3.3.2\n")
    with pytest.raises(AssertionError, match="3.3-7 is Airflow 3.3.1"):
        check_runtime_matches_pin(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM apache/airflow:3.3.2\n")
    with pytest.raises(AssertionError, match="Astro Runtime 3.x image"):
        check_runtime_matches_pin(tmp_path)


def test_dockerfile_does_not_bake_in_a_lineage_transport():
    """On Astro the platform configures OpenLineage; an image-level transport would override it."""
    code = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if not ln.lstrip().startswith("#")]
    assert not any("AIRFLOW__OPENLINEAGE__TRANSPORT" in ln for ln in code)
    assert any("HF_HUB_OFFLINE=1" in ln for ln in code)


def test_packages_txt_lists_plain_debian_package_names():
    lines = [ln.strip() for ln in (ROOT / "packages.txt").read_text().splitlines() if ln.strip()]
    assert lines, "packages.txt lists the system packages the tasks need"
    for name in lines:
        assert re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name), f"not an apt package name: {name!r}"


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    entries = set((ROOT / ".dockerignore").read_text().split())
    for needed in (".env", ".venv", ".git", ".pgdata/", ".airflow/", "data/", "reports/", "airflow_settings.yaml"):
        assert needed in entries, f".dockerignore misses {needed}"


def _override() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.override.yml").read_text())


def test_compose_override_adds_warehouse_and_weaviate():
    services = _override()["services"]
    wh = services["warehouse"]
    assert wh["image"].startswith("pgvector/pgvector:pg16")
    assert "airflow" in wh["networks"]
    assert any(str(p).endswith(":5432") for p in wh["ports"])
    wv = services["weaviate"]
    assert wv["image"].startswith("semitechnologies/weaviate:")
    assert str(wv["environment"]["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"]).lower() == "true"
    assert "8081:8080" in wv["ports"] and "50051:50051" in wv["ports"]


def test_airflow_containers_reach_the_warehouse_service():
    services = _override()["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        conn = env["AIRFLOW_CONN_WAREHOUSE"]
        assert re.match(r"^postgres(ql)?://[^@/]+@warehouse:5432/warehouse$", conn), conn
        assert env["MLOPS_WAREHOUSE_URI"].split("@", 1)[1] == "warehouse:5432/warehouse"
        weaviate = json.loads(env["AIRFLOW_CONN_WEAVIATE_DEFAULT"])
        assert (weaviate["host"], weaviate["port"], weaviate["extra"]["grpc_port"]) == ("weaviate", 8080, 50051)
        transport = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
        assert transport["type"] == "file" and transport["log_file_path"].startswith("/usr/local/airflow/reports/")


def test_astro_project_files():
    config = yaml.safe_load((ROOT / ".astro" / "config.yaml").read_text())
    assert config["project"]["name"]
    assert (ROOT / ".astro" / "dag_integrity_exceptions.txt").exists()
    parse_test = (ROOT / ".astro" / "test_dag_integrity_default.py").read_text()
    assert "def test_file_imports" in parse_test  # the test `astro dev parse` runs
    for path in ("dags", "include", "plugins", "tests", "requirements.txt", "packages.txt", "airflow_settings.yaml"):
        assert (ROOT / path).exists(), f"Astro project layout misses {path}"
