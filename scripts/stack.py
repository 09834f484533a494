"""Run a real Airflow 3 stack without Docker: scheduler, dag-processor, triggerer and api-server.

Airflow 3 tasks talk to the metadata database only through the api-server's execution API,
so all of these must run. ``AirflowStack`` runs them under this stack's own supervisord
(scripts/supervisor.py: restarted when they exit, logs and control socket under
``<AIRFLOW_HOME>/run``), with Redis and two Celery workers when ``MLOPS_EXECUTOR=celery``;
reuses them when they are already up; and drives Airflow through its REST API (v2): unpause
DAGs, create backfills, trigger runs, wait for runs.

Used by ``make run`` (scripts/run_chain.py), ``make stop``, ``make status``, the bench and the
tests, each with its own environment (AIRFLOW_HOME, metadata database, port).

    python -m scripts.stack start|stop|status|redis-up|redis-down   (environment from scripts/env.sh)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from scripts.cli import run_command
from scripts.processes import end_group
from scripts.s3 import S3Server
from scripts.supervisor import AIRFLOW_SERVICES, Supervisor, profile_env

SERVICES = AIRFLOW_SERVICES
TERMINAL = {"success", "failed"}


class StackError(RuntimeError):
    pass


def parse_ts(value: str | None):
    """A timestamp of the REST API (ISO 8601, ``Z`` or an offset) as an aware datetime; None stays None."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class AirflowStack:
    def __init__(self, env: dict[str, str] | None = None, services: Iterable[str] = SERVICES):
        self.env = profile_env(dict(os.environ if env is None else env))
        self.home = Path(self.env["AIRFLOW_HOME"])
        self.run_dir = self.home / "run"
        self.port = int(self.env.get("AIRFLOW__API__PORT", "8080"))
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.supervisor = Supervisor(self.run_dir, self.env)
        extra = tuple(n for n in self.supervisor.programs if n not in SERVICES)
        # Redis first, the workers last (the order supervisord starts them in)
        self.services = tuple(n for n in self.supervisor.programs if n in (*services, *extra))
        self._token: str | None = None
        # generous: a loaded 2-core machine can take long to answer
        self._client = httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(120.0, connect=10.0))
        self.api_retry_s = float(self.env.get("MLOPS_API_RETRY_S", "180"))

    # ---------------------------------------------------------------- processes
    def status(self) -> dict[str, int | None]:
        """pid of each service, None when it is not running (or supervisord is not)."""
        info = self.info()
        return {n: (info[n]["pid"] if info.get(n, {}).get("state") == "RUNNING" else None) for n in self.services}

    def info(self) -> dict[str, dict]:
        """supervisord's view of each service: state, pid, uptime_s, restarts, last_exit ({} when it is down)."""
        return self.supervisor.info() if self.supervisor.running() else {}

    def restarts(self, since: datetime | None = None) -> dict[str, int]:
        """Services that exited unexpectedly and were restarted (count), since ``since`` or since this
        stack's supervisord started. Zero counts are left out."""
        return self.supervisor.restarts(since)

    def kill(self, service: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to the service's main process (a fault, for the tests); returns its pid."""
        pid = self.status()[service]
        if pid is None:
            raise StackError(f"{service} is not running")
        os.kill(pid, sig)
        return pid

    def start(self, timeout: float = 300.0) -> None:
        """Start every service that is not running, then wait until the API answers."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._stop_legacy()
        self._guard_password_file()
        if self.supervisor.celery:  # the profile's S3-protocol object store (scripts/s3.py)
            S3Server(env=self.env).start()
        self.supervisor.ensure()
        self.supervisor.start(self.services)
        self.wait_healthy(timeout)
        self._guard_password_file()

    def _guard_password_file(self) -> None:
        """The api-server writes the generated UI passwords into this file: create it 0600 first
        (it keeps the mode of an existing file) and repair the mode of one written earlier."""
        path = self._password_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(path, 0o600)

    def wait_healthy(self, timeout: float = 120.0) -> None:
        """Wait until every service runs and the scheduler is healthy; services the supervisor is
        still restarting are waited for, a service it gave up on (FATAL) fails at once."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            info = self.info()
            fatal = [n for n in self.services if info.get(n, {}).get("state") in ("FATAL", "STOPPED", "UNKNOWN", None)]
            if fatal:
                raise StackError(f"Airflow service(s) not running: {fatal}; see {self.run_dir}/<name>.log")
            waiting = [n for n in self.services if info[n]["state"] != "RUNNING"]
            try:
                r = self._client.get("/api/v2/monitor/health")
                if r.status_code == 200:
                    health = r.json()
                    if not waiting and all(
                        health.get(k, {}).get("status") == "healthy" for k in ("metadatabase", "scheduler")
                    ):
                        return
                    last = {"health": health, "starting": waiting}
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(1.0)
        raise StackError(f"Airflow did not become healthy in {timeout}s (last: {last})")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every service (whole process groups: task processes too) and this stack's supervisord."""
        self.supervisor.shutdown(timeout=max(timeout, 90.0))
        S3Server(env=self.env).stop()  # the Celery profile's, even when `make stop` is run without the switch
        self._stop_legacy(timeout)
        self._client.close()

    def _stop_legacy(self, timeout: float = 30.0) -> None:
        """Services started by an earlier version of this module (pid files, no supervisor)."""
        for pid_file in self.run_dir.glob("*.pid"):
            if pid_file.name == self.supervisor.pidfile.name:
                continue
            try:
                pid = int(pid_file.read_text().strip())
                end_group(pid, timeout, alive=lambda pid=pid: Path(f"/proc/{pid}").exists())
            except (ValueError, PermissionError):
                pass
            pid_file.unlink(missing_ok=True)

    # ---------------------------------------------------------------- REST API
    def _password_file(self) -> Path:
        return Path(
            self.env.get(
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
                self.home / "simple_auth_manager_passwords.json.generated",
            )
        )

    def credentials(self) -> tuple[str, str]:
        users = json.loads(self._password_file().read_text())
        user = "admin" if "admin" in users else next(iter(users))
        return user, users[user]

    def _auth(self) -> dict[str, str]:
        if self._token is None:
            user, password = self.credentials()
            r = self._send("POST", "/auth/token", retry_on_status=True, json={"username": user, "password": password})
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def _send(self, method: str, url: str, retry_on_status: bool, **kwargs) -> httpx.Response:
        """One request, retried for up to ``api_retry_s`` while the api-server is restarting or its
        database is away (connection refused, timeouts, 5xx), so a driver outlives the outages the
        stack itself survives. A POST is retried only when it never reached the server."""
        deadline = time.monotonic() + self.api_retry_s
        delay = 1.0
        while True:
            try:
                r = self._client.request(method, url, **kwargs)
                if not (retry_on_status and r.status_code in (500, 502, 503, 504)):
                    return r
                failure: Exception | str = f"{r.status_code}: {r.text[:200]}"
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc
            except httpx.TransportError as exc:  # sent, no answer: only an idempotent request again
                if not retry_on_status:
                    raise
                failure = exc
            if time.monotonic() + delay > deadline:
                raise StackError(f"{method} {url}: no answer within {self.api_retry_s:.0f}s (last: {failure})")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def api(self, method: str, path: str, **kwargs) -> Any:
        idempotent = method.upper() != "POST"
        r = self._send(method, "/api/v2" + path, idempotent, headers=self._auth(), **kwargs)
        if r.status_code == 401:  # token expired
            self._token = None
            r = self._send(method, "/api/v2" + path, idempotent, headers=self._auth(), **kwargs)
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
        try:
            return self.api("POST", "/backfills", json=body)
        except (StackError, httpx.TransportError) as exc:
            # the request may have created it before its answer was lost (a timeout), or an
            # earlier attempt did: the running backfill of the same range is this one
            if isinstance(exc, StackError) and "-> 409" not in str(exc):
                raise
            for _ in range(10):
                for bf in self.api("GET", "/backfills", params={"dag_id": dag_id, "limit": 100})["backfills"]:
                    span = (parse_ts(bf["from_date"]), parse_ts(bf["to_date"]))
                    if span == (parse_ts(from_date), parse_ts(to_date)) and not bf.get("completed_at"):
                        return bf
                time.sleep(2.0)
            raise

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


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, sec = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}"


def print_status(stack: AirflowStack) -> bool:
    """supervisord and each service: state, pid, uptime, restarts; True when the stack is whole."""
    sv = stack.supervisor
    if not sv.running():
        print(f"supervisord     stopped ({stack.run_dir})")
        return False
    print(f"supervisord     running (pid {sv.pid()}, socket {sv.sock}, log {sv.log})")
    print(f"{'service':15s} {'state':9s} {'pid':>7s} {'uptime':>9s} {'restarts':>8s}  last exit")
    info = stack.info()
    for name in sorted(info, key=lambda n: sv.programs.index(n) if n in sv.programs else 99):
        p = info[name]
        print(
            f"{name:15s} {p['state']:9s} {p['pid'] or '-':>7} {_hms(p['uptime_s']):>9s} {p['restarts']:>8d}"
            f"  {p['last_exit'] or ''}"
        )
    return all(info.get(n, {}).get("state") == "RUNNING" for n in stack.services)


def main(argv: list[str]) -> int:
    stack = AirflowStack()

    def start() -> None:
        stack.start()
        print(f"Airflow is up: {stack.base_url}")

    def stop() -> None:
        stack.stop()
        print("Airflow services and their supervisor stopped")

    def status() -> int:
        return 0 if print_status(stack) else 1

    def redis(up: bool) -> int:
        if "redis" not in stack.supervisor.programs:
            print("Redis belongs to the Celery profile: MLOPS_EXECUTOR=celery", file=sys.stderr)
            return 2
        if up:
            stack.supervisor.ensure()
            stack.supervisor.start(["redis"])
            print(f"Redis on 127.0.0.1:{stack.env['MLOPS_REDIS_PORT']} (password: .secrets/redis)")
        else:
            if stack.supervisor.running():
                stack.supervisor.stop(["redis"])
            print("Redis stopped")
        return 0

    commands = {"start": start, "stop": stop, "status": status}
    commands |= {"redis-up": lambda: redis(True), "redis-down": lambda: redis(False)}
    return run_command(argv, commands, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
