"""No secrets in the repository: scan every file a commit would hold for key-like strings.

Placeholders (``<your-api-key>``, ``${VAR}``, ``{{ template }}``) pass; real-looking keys,
tokens, private keys and passwords inside URIs fail the test, naming file and line.
The detector itself is tested on synthetic keys first, so the scan cannot pass vacuously.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# never part of the repository (also in .gitignore): used only when git is not available
_SKIP_DIRS = {
    ".git",
    ".venv",
    ".pgdata",
    ".secrets",
    ".airflow",
    ".run",
    "data",
    "reports",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    "astro",
}


def repo_files() -> list[Path]:
    """Files a commit would contain: tracked plus untracked-but-not-ignored (git's view)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout.decode()
        files = [ROOT / p for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in ROOT.rglob("*") if not (set(p.relative_to(ROOT).parts) & _SKIP_DIRS)]
    return sorted(p for p in files if p.is_file())


def text_of(path: Path, limit: int = 2_000_000) -> str | None:
    """The file's text, or None for binary or very large files."""
    try:
        if path.stat().st_size > limit:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


# --- the detector ---------------------------------------------------------------------------
_KEY_PATTERNS: dict[str, re.Pattern] = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret key": re.compile(r"(?i)aws_?secret_?access_?key[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+]{40}\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})\b"),
    "OpenAI key": re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]{16,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "JWT / API token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
}
# a URI carrying a literal password (between "user:" and "@host")
_URI_PASSWORD = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[A-Za-z0-9._%-]+:([^@\s/'\"()\[\]]+)@")
# "password": "value", api_key = 'value', token: value ...
_ASSIGNED_SECRET = re.compile(
    r"(?i)\b(?:secret|secret_key|token|api_?key|apikey|password|passwd|client_secret)\b[\"']?\s*[:=]\s*"
    r"[\"']([^\"'\s]{8,})[\"']"
)
_PLACEHOLDER = re.compile(
    r"^(?:<[^>]*>|\$?\{[^{}]*\}|\$[A-Z_][A-Z0-9_]*|\{\{.*\}\}|\*+|x+|\.\.\.|changeme|placeholder.*)$", re.IGNORECASE
)


def _is_placeholder(value: str) -> bool:
    value = value.strip()
    return bool(_PLACEHOLDER.match(value)) or value.startswith(("${{", "{{", "<", "$")) or "secrets." in value


def find_secrets(text: str) -> list[tuple[int, str]]:
    """(line number, kind) of every key-like string in ``text``."""
    found = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for kind, pattern in _KEY_PATTERNS.items():
            if pattern.search(line):
                found.append((lineno, kind))
        for m in _URI_PASSWORD.finditer(line):
            if not _is_placeholder(m.group(1)):
                found.append((lineno, "password in URI"))
        for m in _ASSIGNED_SECRET.finditer(line):
            if not _is_placeholder(m.group(1)):
                found.append((lineno, "secret assigned a literal"))
    return found


# --- tests ----------------------------------------------------------------------------------
def _fake(*parts: str) -> str:
    """Build a synthetic key at run time so this file itself holds none."""
    return "".join(parts)


@pytest.mark.parametrize(
    "line, kind",
    [
        (_fake("-----BEGIN ", "RSA PRIVATE KEY-----"), "private key"),
        (_fake("-----BEGIN ", "OPENSSH PRIVATE KEY-----"), "private key"),
        (_fake("aws_access_key_id = AK", "IA", "Q3EGRMN2PZ7XYV4K"), "AWS access key id"),
        (_fake('AIRFLOW_CONN_OPENAI_DEFAULT=\'{"password": "sk-', "proj-", "a" * 20, "B" * 20, "\"}'"), "OpenAI key"),
        (_fake('token = "gh', "p_", "x1Y2" * 9, '"'), "GitHub token"),
        (_fake("SLACK=xo", "xb-1234567890-abcdefghij"), "Slack token"),
        (_fake("key: AI", "za", "S" * 35), "Google API key"),
        (_fake("ASTRO_API_TOKEN=ey", "J", "a" * 20, ".ey", "J", "b" * 20, ".", "c" * 20), "JWT / API token"),
        (_fake("AIRFLOW_CONN_WAREHOUSE=postgresql://etl:", "S3cr3tPass", "@db.internal:5432/wh"), "password in URI"),
        (_fake('conn = {"password": "', "hunter2hunter2", '"}'), "secret assigned a literal"),
    ],
)
def test_detector_finds_synthetic_secrets(line, kind):
    assert kind in {k for _, k in find_secrets(line)}


@pytest.mark.parametrize(
    "line",
    [
        'AIRFLOW_CONN_OPENAI_DEFAULT=\'{"conn_type": "openai", "password": "<your-openai-api-key>"}\'',
        "AIRFLOW_CONN_WAREHOUSE=postgresql://etl_user:<password>@db.example.internal:5432/warehouse",
        "AIRFLOW_CONN_WAREHOUSE=postgres://postgres@warehouse:5432/warehouse",
        'uri = f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"',
        "ASTRO_API_TOKEN: ${{ secrets.ASTRO_API_TOKEN }}",
        'password = os.environ["PGPASSWORD"]',
        "url: postgresql://${PGUSER}:${PGPASSWORD}@host/db",
        'api_key: "{{ var.value.openai_key }}"',
    ],
)
def test_detector_passes_placeholders(line):
    assert find_secrets(line) == []


def test_repository_holds_no_secrets():
    files = repo_files()
    assert len(files) > 20, "the file listing looks wrong"
    findings = []
    for path in files:
        text = text_of(path)
        if text is None:
            continue
        for lineno, kind in find_secrets(text):
            findings.append(f"{path.relative_to(ROOT)}:{lineno}: {kind}")
    assert not findings, "key-like strings in the repository:\n" + "\n".join(findings)


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="no .git here (the Astro image): no git ignore rules to read")
def test_env_file_is_ignored():
    """A developer's .env (real values) never enters a commit; .env.example (placeholders) does."""
    names = {p.relative_to(ROOT).as_posix() for p in repo_files()}
    assert ".env.example" in names
    assert ".env" not in names
    probe = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert probe.returncode == 0, ".env must be listed in .gitignore"
    assert ".env" in (ROOT / ".dockerignore").read_text().split(), ".env must not be copied into the image"


# --- generated local secrets and the locked local stack -----------------------------------------
def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_generated_secret_files_are_private(tmp_path):
    """scripts/secrets.sh: 0700 folder, 0600 file, stable value, and git ignores the default folder."""
    env = {**os.environ, "MLOPS_SECRETS_DIR": str(tmp_path / "s")}
    first = subprocess.run([ROOT / "scripts" / "secrets.sh", "probe"], env=env, capture_output=True, text=True)
    again = subprocess.run([ROOT / "scripts" / "secrets.sh", "probe"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert re.fullmatch(r"[0-9a-f]{32}", first.stdout.strip()), first.stdout
    assert again.stdout == first.stdout
    assert _mode(tmp_path / "s") == 0o700
    assert _mode(tmp_path / "s" / "probe") == 0o600
    if (ROOT / ".git").exists():  # the Astro image has no .git (astro dev pytest)
        assert subprocess.run(["git", "check-ignore", "-q", ".secrets/postgres"], cwd=ROOT).returncode == 0
    assert ".secrets/" in (ROOT / ".dockerignore").read_text().split(), ".secrets/ must not enter the image"


def test_project_secret_files_are_0600():
    """Every secret file the local stack generated in this checkout (those that exist) is 0600."""
    home = Path(os.environ.get("MLOPS_ROOT", ROOT)) / ".airflow"
    candidates = [*(ROOT / ".secrets").glob("*"), home / "simple_auth_manager_passwords.json.generated"]
    candidates += [home / "run" / "redis.conf", home / "run" / "supervisord.conf"]
    existing = [p for p in candidates if p.exists()]
    assert (ROOT / ".secrets" / "postgres").exists(), "make db-up generates the PostgreSQL password"
    assert {p: oct(_mode(p)) for p in existing if _mode(p) != 0o600} == {}
    assert _mode(ROOT / ".secrets") == 0o700


def test_ui_password_file_is_created_private(tmp_path):
    """The api-server writes the UI passwords into a file the stack creates 0600 first (and repairs)."""
    from scripts.stack import AirflowStack

    home = tmp_path / "airflow"
    home.mkdir()
    leaked = home / "simple_auth_manager_passwords.json.generated"
    leaked.write_text('{"admin": "x"}')
    leaked.chmod(0o644)
    stack = AirflowStack({**os.environ, "AIRFLOW_HOME": str(home)})
    stack._guard_password_file()
    assert _mode(leaked) == 0o600
    assert leaked.read_text() == '{"admin": "x"}'
    leaked.unlink()
    stack._guard_password_file()
    assert _mode(leaked) == 0o600


def test_redis_and_supervisor_config_are_private(tmp_path):
    """The Celery profile's redis.conf holds the password: 0600, 127.0.0.1 only, requirepass."""
    from scripts.supervisor import Supervisor

    probe = _fake("probe", "-", "value")
    env = {**os.environ, "MLOPS_EXECUTOR": "celery", "MLOPS_REDIS_PASSWORD": probe, "MLOPS_REDIS_PORT": "1"}
    sv = Supervisor(tmp_path, env)
    sv._write_redis_conf()
    conf = (tmp_path / "redis.conf").read_text()
    assert _mode(tmp_path / "redis.conf") == 0o600
    assert "bind 127.0.0.1\n" in conf and f"requirepass {probe}\n" in conf
    rendered = sv.render()
    assert "chmod=0700" in rendered and f"file={sv.sock}" in rendered
    assert "inet_http_server" not in rendered  # no TCP control port


def _local_pg() -> tuple[str, int, str]:
    from urllib.parse import urlsplit

    if os.environ.get("MLOPS_PG_URI"):
        pytest.skip("an external PostgreSQL (MLOPS_PG_URI): its authentication is its owner's")
    uri = os.environ["MLOPS_TEST_PG_URI"] if os.environ.get("MLOPS_TEST_PG_URI") else None
    parts = urlsplit(uri) if uri else None
    port = parts.port if parts else int(os.environ.get("MLOPS_PG_PORT", "55432"))
    password = subprocess.run(
        [ROOT / "scripts" / "secrets.sh", "postgres"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return "127.0.0.1", port, password


@pytest.mark.pg
def test_local_postgres_refuses_a_connection_without_the_password(monkeypatch):
    import psycopg

    host, port, password = _local_pg()
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    for kwargs in ({}, {"password": _fake("not-the-", "password")}):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", connect_timeout=10, **kwargs)
    with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", password=password) as conn:
        method = conn.execute(
            "select auth_method from pg_hba_file_rules where error is null and auth_method <> 'scram-sha-256'"
        ).fetchall()
        assert method == [], f"pg_hba.conf has rules that are not scram-sha-256: {method}"
        assert conn.execute("show listen_addresses").fetchone()[0] == "127.0.0.1"
