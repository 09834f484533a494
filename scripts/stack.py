"""Run a real Airflow 3 stack without Docker: scheduler, dag-processor, triggerer and api-server.

Airflow 3 tasks talk to the metadata database only through the api-server's execution API,
so all of these must run. ``AirflowStack`` starts them as background processes (pid files and
logs under ``<AIRFLOW_HOME>/run``), reuses them when they are already up, and drives Airflow
through its REST API (v2): unpause DAGs, create backfills, trigger runs, wait for runs.

Used by ``make run`` (scripts/run_chain.py), ``make stop``, the bench and the e2e tests, each
with its own environment (AIRFLOW_HOME, metadata database, port).

    python -m scripts.stack start|stop|status      (environment from scripts/env.sh)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL = {"success", "failed"}


class StackError(RuntimeError):
    pass


def parse_ts(value: str | None):
    """A timestamp of the REST API (ISO 8601, ``Z`` or an offset) as an aware datetime; None stays None."""
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class AirflowStack:
    def __init__(self, env: dict[str, str] | None = None, services: Iterable[str] = SERVICES):
        self.env = dict(os.environ if env is None else env)
        self.home = Path(self.env["AIRFLOW_HOME"])
        self.run_dir = self.home / "run"
        self.port = int(self.env.get("AIRFLOW__API__PORT", "8080"))
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.services = tuple(services)
        self._token: str | None = None
        self._client = httpx.Client(base_url=self.base_url, timeout=30.0)

    # ---------------------------------------------------------------- processes
    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _alive(self, name: str) -> int | None:
        pid_file = self._pid_file(name)
        if not pid_file.exists():
            return None
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError, PermissionError):
            return None
        # a zombie child (exited, not reaped) is not alive
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().split()
            if stat[2] == "Z":
                return None
        except OSError:
            return None
        return pid

    def status(self) -> dict[str, int | None]:
        return {name: self._alive(name) for name in self.services}

    def start(self, timeout: float = 120.0) -> None:
        """Start every service that is not running, then wait until the API answers."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        airflow = [sys.executable, "-m", "airflow"]
        for name in self.services:
            if self._alive(name):
                continue
            cmd = [*airflow, name]
            if name == "api-server":
                cmd += ["--port", str(self.port), "--host", "127.0.0.1"]
            log = open(self.run_dir / f"{name}.log", "ab")  # noqa: SIM115 (kept open by the child)
            proc = subprocess.Popen(
                cmd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the caller; stopped by stop()
            )
            self._pid_file(name).write_text(str(proc.pid))
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            dead = [n for n in self.services if not self._alive(n)]
            if dead:
                raise StackError(f"Airflow service(s) exited: {dead}; see {self.run_dir}/<name>.log")
            try:
                r = self._client.get("/api/v2/monitor/health")
                if r.status_code == 200:
                    health = r.json()
                    if health.get("scheduler", {}).get("status") == "healthy":
                        return
                    last = health
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(1.0)
        raise StackError(f"Airflow did not become healthy in {timeout}s (last: {last})")

    def stop(self, timeout: float = 30.0) -> None:
        for name in reversed(self.services):
            pid = self._alive(name)
            if pid is None:
                self._pid_file(name).unlink(missing_ok=True)
                continue
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while self._alive(name) and time.monotonic() < deadline:
                time.sleep(0.2)
            if self._alive(name):
                os.killpg(pid, signal.SIGKILL)
            self._pid_file(name).unlink(missing_ok=True)
        self._client.close()

    # ---------------------------------------------------------------- REST API
    def credentials(self) -> tuple[str, str]:
        path = Path(
            self.env.get(
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
                self.home / "simple_auth_manager_passwords.json.generated",
            )
        )
        users = json.loads(path.read_text())
        user = "admin" if "admin" in users else next(iter(users))
        return user, users[user]

    def _auth(self) -> dict[str, str]:
        if self._token is None:
            user, password = self.credentials()
            r = self._client.post("/auth/token", json={"username": user, "password": password})
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One REST call; a read (GET) that times out is tried again, twice (a loaded api-server)."""
        for attempt in range(3 if method == "GET" else 1):
            try:
                return self._client.request(method, "/api/v2" + path, headers=self._auth(), **kwargs)
            except httpx.TimeoutException:
                if attempt == 2 or method != "GET":
                    raise
                time.sleep(5.0)
        raise AssertionError("unreachable")

    def api(self, method: str, path: str, **kwargs) -> Any:
        r = self._request(method, path, **kwargs)
        if r.status_code == 401:  # token expired
            self._token = None
            r = self._request(method, path, **kwargs)
        if r.status_code >= 400:
            raise StackError(f"{method} {path} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    def wait_dags(self, dag_ids: Iterable[str], timeout: float = 120.0) -> None:
        """Wait until the dag-processor has serialised every DAG (and none has import errors)."""
        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            errors = self.api("GET", "/importErrors").get("import_errors", [])
            if errors:
                raise StackError(
                    "DAG import errors: " + "; ".join(e["filename"] + ": " + e["stack_trace"][-300:] for e in errors)
                )
            have = {d["dag_id"] for d in self.api("GET", "/dags", params={"limit": 100}).get("dags", [])}
            if wanted <= have:
                return
            time.sleep(1.0)
        raise StackError(f"DAGs not parsed within {timeout}s: {sorted(wanted - have)}")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def backfill(
        self,
        dag_id: str,
        from_date: str,
        to_date: str,
        max_active_runs: int = 4,
        reprocess: str = "completed",
        conf: dict | None = None,
    ) -> dict:
        body = {
            "dag_id": dag_id,
            "from_date": from_date,
            "to_date": to_date,
            "max_active_runs": max_active_runs,
            "reprocess_behavior": reprocess,
            "run_backwards": False,
            "dag_run_conf": conf or {},
        }
        return self.api("POST", "/backfills", json=body)

    def trigger(self, dag_id: str, conf: dict | None = None, logical_date: str | None = None) -> dict:
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={"conf": conf or {}, "logical_date": logical_date})

    def dag_runs(self, dag_id: str = "~", **params) -> list[dict]:
        runs: list[dict] = []
        offset = 0
        while True:
            page = self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "offset": offset, **params})
            runs += page["dag_runs"]
            offset += 100
            if offset >= page["total_entries"]:
                return runs

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})[
            "task_instances"
        ]

    def asset_events(self, **params) -> list[dict]:
        return self.api("GET", "/assets/events", params={"limit": 1000, **params})["asset_events"]

    def wait_quiet(
        self,
        dag_ids: Iterable[str],
        settle_s: float = 15.0,
        timeout: float = 900.0,
        done: Any = None,
        ignore: Any = None,
    ) -> list[dict]:
        """Wait until no run of ``dag_ids`` is queued or running for ``settle_s`` seconds in a row
        (asset-triggered runs appear a moment after their producer finishes) and ``done()``,
        when given, returns true. Active runs for which ``ignore(run)`` is true do not count.
        Returns all runs of those DAGs."""
        dag_ids = list(dag_ids)
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            runs = [r for d in dag_ids for r in self.dag_runs(d)]
            active = [r for r in runs if r["state"] not in TERMINAL and not (ignore and ignore(r))]
            if active or (done is not None and not done()):
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle_s:
                return runs
            time.sleep(2.0)
        raise StackError(f"runs of {dag_ids} still active after {timeout}s")


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "status"
    stack = AirflowStack()
    if cmd == "start":
        stack.start()
        print(f"Airflow is up: {stack.base_url}")
    elif cmd == "stop":
        stack.stop()
        print("Airflow services stopped")
    elif cmd == "status":
        st = stack.status()
        for name, pid in st.items():
            print(f"{name:14s} {f'running (pid {pid})' if pid else 'stopped'}")
        return 0 if all(st.values()) else 1
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
