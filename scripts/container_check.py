"""`make container-check`: run `astro dev parse` and `astro dev pytest` as the Astro image would,
without a Docker engine.

What the image's container has, and so what this emulation gives the two test runs:

* the project as the Dockerfile's ``COPY . .`` sees it: the tree minus ``.dockerignore`` (no
  ``.venv``, no ``.git``, no ``.env``, no ``data/``, ...), at ``<tmp>/usr/local/airflow``, with
  ``dags``, ``tests``, ``plugins``, ``include`` and ``.astro`` copied over it afresh (``astro dev
  pytest`` copies those in with ``docker cp`` before it starts the container);
* only the environment the container gets: the Runtime's ``AIRFLOW_HOME``, the Dockerfile's
  ``ENV`` lines and the project's ``.env`` (``--env-file``), nothing from the caller's shell
  (no scripts/env.sh, no MLOPS_TEST_PG_URI unless .env sets it), PATH without ``.venv/bin``;
* a Python that is not the project's venv: a throwaway venv whose site-packages point at the
  installed requirements (the image's packages), so ``sys.executable`` has no ruff or
  actionlint beside it; pytest-timeout is switched off (``-p no:timeout``: the image has none).

Then, in that copy, the two commands the Astro CLI runs in the container:

1. ``pytest .astro/test_dag_integrity_default.py``  (``astro dev parse``)
2. ``pytest tests/``                                 (``astro dev pytest``)

Both must pass; a test that needs the venv, git, actionlint or the local cluster must skip with a
reason or fail here. No PostgreSQL is reachable unless .env names one (MLOPS_TEST_PG_URI), so the
tests that need one are skipped with the reason (tests/conftest.py).

    python -m scripts.container_check [--keep] [PROJECT_DIR]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE_HOME = "usr/local/airflow"  # the Runtime's AIRFLOW_HOME and working directory
DOCKER_CP_DIRS = ("dags", "tests", "plugins", "include", ".astro")  # astro dev pytest copies these in
PARSE_TEST = ".astro/test_dag_integrity_default.py"


# ------------------------------------------------------------------ .dockerignore
def _pattern_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regex on a relative path."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if i < len(pattern) and pattern[i] == "/":
                out = out[:-2] + "(?:.*/)?"
                i += 1
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
        i += 1
    return re.compile(out + "$")


def dockerignore_rules(root: Path) -> list[tuple[bool, re.Pattern]]:
    """[(exclude?, regex)] in file order; later rules win, ``!`` re-includes."""
    path = root / ".dockerignore"
    rules = []
    for line in path.read_text().splitlines() if path.exists() else []:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = os.path.normpath(line[1:].strip() if include else line).lstrip("/")
        rules.append((not include, _pattern_regex(pattern)))
    return rules


def ignored(rel: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """Whether Docker leaves ``rel`` out of the build context: a pattern matches it or a parent."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for exclude, regex in rules:
        if any(regex.match(p) for p in prefixes):
            excluded = exclude
    return excluded


def copy_context(src: Path, dest: Path) -> int:
    """Copy what the image's ``COPY . .`` copies; returns the number of files."""
    rules = dockerignore_rules(src)
    n = 0
    for dirpath, dirnames, filenames in os.walk(src):
        rel_dir = os.path.relpath(dirpath, src)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not ignored(rel_dir + d, rules) or _has_exception(rules)]
        for name in filenames:
            rel = rel_dir + name
            if ignored(rel, rules):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(dirpath) / name, target, follow_symlinks=False)
            n += 1
    return n


def _has_exception(rules) -> bool:
    return any(not exclude for exclude, _ in rules)


def docker_cp(src: Path, dest: Path) -> None:
    """``docker cp <dir> astro-pytest:/usr/local/airflow/`` for each folder astro dev pytest copies."""
    for name in DOCKER_CP_DIRS:
        if (src / name).is_dir():
            shutil.copytree(src / name, dest / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))


# ------------------------------------------------------------------ environment
def dockerfile_env(dockerfile: Path) -> dict[str, str]:
    """The ENV instructions of a Dockerfile (``ENV A=1 B=2`` with ``\\`` continuations)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    env: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*ENV\s+(.*)$", line, flags=re.IGNORECASE)
        if not m:
            continue
        body = m.group(1).strip()
        if "=" not in body.split()[0]:  # legacy form: ENV KEY value
            key, _, value = body.partition(" ")
            env[key] = value.strip()
            continue
        for key, value in re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)', body):
            env[key] = value.strip('"')
    return env


def env_file(path: Path) -> dict[str, str]:
    """``docker create --env-file``: KEY=VALUE lines taken literally, # comments and blanks skipped."""
    env: dict[str, str] = {}
    if not path.exists():
        return env
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value
    return env


def image_python(work: Path) -> Path:
    """A Python outside the project whose packages are the installed requirements: a venv without
    pip whose site-packages add this interpreter's (``site.addsitedir``, so .pth files work)."""
    venv = work / "image-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(site_packages, "_image_packages.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return venv / "bin" / "python"


def container_env(src: Path, home: Path, work: Path) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(work / "home"),
        "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(home),  # set by the Runtime image
    }
    env.update(dockerfile_env(src / "Dockerfile"))
    env.update(env_file(src / ".env"))
    (work / "home").mkdir(exist_ok=True)
    return env


# ------------------------------------------------------------------ the two runs
def run_checks(src: Path = ROOT, keep: bool = False, pytest_args: tuple[str, ...] = ("-q",)) -> dict:
    """Build the emulated container for ``src`` and run both commands; returns their exit codes."""
    work = Path(tempfile.mkdtemp(prefix="mlops-container-"))
    home = work / IMAGE_HOME
    home.mkdir(parents=True)
    try:
        n_files = copy_context(src, home)
        docker_cp(src, home)
        leaked = [p for p in (".venv", ".git", ".env") if (home / p).exists()]
        if leaked:
            raise SystemExit(f".dockerignore lets {leaked} into the image")
        python = image_python(work)
        env = container_env(src, home, work)
        base = [str(python), "-m", "pytest", "-p", "no:timeout", "-p", "no:cacheprovider", *pytest_args]
        results = {"files": n_files, "workdir": str(home)}
        for name, target in (("parse", PARSE_TEST), ("pytest", "tests/")):
            if not (home / target).exists():
                results[name] = None
                continue
            t0 = time.monotonic()
            proc = subprocess.run([*base, target], cwd=home, env=env)
            results[name] = proc.returncode
            results[f"{name}_s"] = round(time.monotonic() - t0, 1)
        return results
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    keep = "--keep" in argv
    args = [a for a in argv if a != "--keep"]
    src = Path(args[0]).resolve() if args else ROOT
    results = run_checks(src, keep=keep)
    print(f"container-check: {results}")
    failed = {k: v for k, v in results.items() if k in ("parse", "pytest") and v != 0}
    if failed:
        print(f"container-check FAILED: {failed} (exit codes of `astro dev parse` / `astro dev pytest` as emulated)")
        return 1
    print("container-check passed: astro dev parse and astro dev pytest, as the image runs them")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
