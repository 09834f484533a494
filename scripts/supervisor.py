"""The local stack's processes under supervisord (PyPI ``supervisor``): restarted when they exit.

One supervisord per stack (``make run``, each end-to-end test, the bench), with everything under
that stack's ``<AIRFLOW_HOME>/run``: the generated ``supervisord.conf``, the control socket
(a unix socket, mode 0700), supervisord's log (one line per start, exit and restart) and one log
per service. Programs:

- ``api-server``, ``scheduler``, ``dag-processor``, ``triggerer``: always;
- with ``MLOPS_EXECUTOR=celery``: ``redis`` (Debian's redis-server, 127.0.0.1 only, password from
  ``.secrets/redis``, append-only file under ``run/redis``) and two Celery workers,
  ``worker-default`` (queue ``default``) and ``worker-training`` (``default`` and the training queue
  ``MLOPS_TRAINING_QUEUE``), each with its own working and temp directory.

A service that exits is started again (``autorestart``); one that dies at once (PostgreSQL still
down) is retried with supervisord's growing back-off, 1 s more per attempt, ``startretries`` times
(about 5 minutes in all) before it is left FATAL. Stopping sends SIGTERM to the service's whole
process group (task processes included) and SIGKILL after ``stopwaitsecs``.

    python -m scripts.supervisor env     the Celery profile's settings as shell exports (scripts/env.sh)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import xmlrpc.client
from datetime import datetime
from pathlib import Path

from scripts.processes import end_group

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
CELERY_SERVICES = ("redis", "worker-default", "worker-training")
START_SECS = 10  # a service must stay up this long to count as started
START_RETRIES = 25  # back-off 1 + 2 + ... + 25 s = 325 s of waiting before FATAL

# Why each setting (applied to every stack unless the caller set it):
FAULT_SETTINGS = {
    # a pooled connection that died with the database is tested and replaced, not handed out
    "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_PRE_PING": "True",
    # a task whose process died without a word (SIGKILLed worker, OOM) is failed, then retried,
    # after 60 s without a heartbeat (default 300 s)
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "10",
    # a restarted scheduler takes over the tasks its killed predecessor had queued within 30 s
    # (default 300 s); tasks queued but never started are queued again after 180 s (default 600 s)
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "30",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "180",
}


def secret(name: str) -> str:
    """A generated local secret (scripts/secrets.sh, the one home of that contract)."""
    out = subprocess.run([str(ROOT / "scripts" / "secrets.sh"), name], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def celery_env(env: dict[str, str]) -> dict[str, str]:
    """The Celery profile's settings, derived from the stack's own environment (its metadata DB,
    its Redis port), so a caller only sets ``MLOPS_EXECUTOR=celery``."""
    port = env.get("MLOPS_REDIS_PORT", "56379")
    password = env.get("MLOPS_REDIS_PASSWORD") or secret("redis")
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "MLOPS_REDIS_PASSWORD": password,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://:{password}@127.0.0.1:{port}/0",
        # Celery's task results (Airflow reads task states from its own database; these only tell the
        # scheduler that a message was handled) in Redis database 1. Not `db+postgresql` on the
        # metadata database: with Celery 5.7 the provider (3.26) cannot decode the rows it reads
        # there (TypeError in meta_from_decoded), and the scheduler exits on it.
        "AIRFLOW__CELERY__RESULT_BACKEND": f"redis://:{password}@127.0.0.1:{port}/1",
        # a message is acknowledged when its task has finished, not when a worker took it: a worker
        # SIGKILLed mid-task leaves it unacknowledged and Redis hands it out again after the
        # visibility timeout; Airflow meanwhile fails the silent task instance after the heartbeat
        # timeout above and queues its retry (the redelivered message is then refused, the task
        # instance being no longer queued), so nothing runs twice at once
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
        # a worker reserves one message per free slot, never a backlog that would die with it
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        # longer than the longest task here; a task running longer would be redelivered
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "1800",
        # two workers x 2 slots = AIRFLOW__CORE__PARALLELISM 4 on a 2-core machine
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": env.get("MLOPS_CELERY_CONCURRENCY", "2"),
        "MLOPS_TRAINING_QUEUE": env.get("MLOPS_TRAINING_QUEUE") or "training",
    }


def profile_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the fault settings (unless set) and, for ``MLOPS_EXECUTOR=celery``, the Celery profile."""
    out = dict(env)
    for key, value in FAULT_SETTINGS.items():
        out.setdefault(key, value)
    if out.get("MLOPS_EXECUTOR", "local") == "celery":
        # derived from this stack's DB and Redis port: always; the tunables: unless the caller set them
        for key, value in celery_env(out).items():
            if key in _DERIVED or key not in env:
                out[key] = value
    return out


_DERIVED = {
    "AIRFLOW__CORE__EXECUTOR",
    "MLOPS_REDIS_PASSWORD",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
}


def worker_hostname() -> str:
    """``[core] hostname_callable`` of a Celery worker: its name, recorded as the task instance's hostname."""
    import socket

    return os.environ.get("MLOPS_WORKER_NAME") or socket.getfqdn()


class Supervisor:
    """One supervisord and its programs, driven through its XML-RPC interface on the unix socket."""

    def __init__(self, run_dir: Path, env: dict[str, str]):
        self.run_dir = Path(run_dir)
        self.env = env
        self.conf = self.run_dir / "supervisord.conf"
        self.log = self.run_dir / "supervisord.log"
        self.pidfile = self.run_dir / "supervisord.pid"
        sock = self.run_dir / "supervisor.sock"
        if len(str(sock)) > 100:  # AF_UNIX paths are limited to 108 bytes
            sock = Path("/tmp") / f"mlops-sv-{hashlib.sha1(str(sock).encode()).hexdigest()[:12]}.sock"
        self.sock = sock
        self.celery = env.get("MLOPS_EXECUTOR", "local") == "celery"

    @property
    def programs(self) -> tuple[str, ...]:
        if not self.celery:
            return AIRFLOW_SERVICES
        return CELERY_SERVICES[:1] + AIRFLOW_SERVICES + CELERY_SERVICES[1:]

    # ------------------------------------------------------------------ configuration
    def _commands(self) -> dict[str, dict[str, str]]:
        # the Celery profile's services start through scripts/airflow_cli.py (a provider fix)
        airflow = f"{sys.executable} -m {'scripts.airflow_cli' if self.celery else 'airflow'}"
        port = self.env.get("AIRFLOW__API__PORT", "8080")
        progs: dict[str, dict[str, str]] = {
            "api-server": {"command": f"{airflow} api-server --port {port} --host 127.0.0.1"},
            "scheduler": {"command": f"{airflow} scheduler"},
            "dag-processor": {"command": f"{airflow} dag-processor"},
            "triggerer": {"command": f"{airflow} triggerer"},
        }
        if self.celery:
            redis = shutil.which("redis-server") or "redis-server"
            progs["redis"] = {"command": f"{redis} {self.run_dir / 'redis.conf'}"}
            training = self.env.get("MLOPS_TRAINING_QUEUE") or "training"
            for name, queues in (("worker-default", "default"), ("worker-training", f"default,{training}")):
                wdir = self.run_dir / name
                progs[name] = {
                    # logs live on this disk (the api-server reads them): no log server per worker
                    "command": f"{airflow} celery worker --queues {queues} --celery-hostname {name}@%%h"
                    " --skip-serve-logs --without-mingle --without-gossip",
                    "directory": str(wdir),
                    "environment": f'TMPDIR="{wdir / "tmp"}",MLOPS_WORKER_NAME="{name}",'
                    'AIRFLOW__CORE__HOSTNAME_CALLABLE="scripts.supervisor.worker_hostname"',
                    # a worker given TERM finishes its running tasks first (Celery's warm shutdown)
                    "stopwaitsecs": "60",
                }
        return progs

    def render(self) -> str:
        lines = [
            "; generated by scripts/supervisor.py for this stack: edits are overwritten",
            "[unix_http_server]",
            f"file={self.sock}",
            "chmod=0700",
            "[supervisord]",
            f"logfile={self.log}",
            "logfile_maxbytes=10MB",
            f"pidfile={self.pidfile}",
            f"directory={ROOT}",
            "umask=022",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]",
            f"serverurl=unix://{self.sock}",
        ]
        # the reaper ends what a service that died left behind: its process group (LocalExecutor
        # workers, task processes, a Celery worker's pool), which would otherwise run on unsupervised
        lines += [
            "[eventlistener:reaper]",
            f"command={sys.executable} -m scripts.supervisor reap",
            f"directory={ROOT}",
            "events=PROCESS_STATE_EXITED",
            "autorestart=true",
            f"stderr_logfile={self.run_dir / 'reaper.log'}",
            "stderr_logfile_maxbytes=5MB",
        ]
        for priority, name in enumerate(self.programs, start=1):
            prog = self._commands()[name]
            lines += [
                f"[program:{name}]",
                f"command={prog['command']}",
                f"directory={prog.get('directory', ROOT)}",
                f"priority={priority * 10}",
                "autostart=false",
                "autorestart=true",
                f"startsecs={START_SECS}",
                f"startretries={START_RETRIES}",
                "stopsignal=TERM",
                f"stopwaitsecs={prog.get('stopwaitsecs', '30')}",
                "stopasgroup=true",
                "killasgroup=true",
                "redirect_stderr=true",
                f"stdout_logfile={self.run_dir / (name + '.log')}",
                "stdout_logfile_maxbytes=50MB",
                "stdout_logfile_backups=1",
            ]
            if "environment" in prog:
                lines.append(f"environment={prog['environment']}")
        return "\n".join(lines) + "\n"

    def _write_redis_conf(self) -> None:
        data = self.run_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        password = self.env.get("MLOPS_REDIS_PASSWORD") or secret("redis")
        text = "\n".join(
            [
                "# generated by scripts/supervisor.py (holds the password: mode 0600)",
                "bind 127.0.0.1",
                "protected-mode yes",
                f"port {self.env.get('MLOPS_REDIS_PORT', '56379')}",
                f"requirepass {password}",
                f"dir {data}",
                "daemonize no",
                # queued messages survive a Redis restart
                "appendonly yes",
                "appendfsync everysec",
                'save ""',
                "",
            ]
        )
        path = self.run_dir / "redis.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)

    def fingerprint(self) -> str:
        """What the running supervisord was started with: its config and the stack's environment."""
        keys = sorted(k for k in self.env if k.startswith(("AIRFLOW", "MLOPS_", "PYTHONPATH")))
        h = hashlib.sha256(self.render().encode())
        for k in keys:
            h.update(f"{k}={self.env[k]}\0".encode())
        return h.hexdigest()

    # ------------------------------------------------------------------ supervisord itself
    def rpc(self):
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.sock}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        if self.pid() is None:
            return False
        try:
            return self.rpc().getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def ensure(self) -> None:
        """supervisord up with this stack's configuration (restarted, services included, if that changed)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        stamp = self.run_dir / "supervisord.fingerprint"
        fingerprint = self.fingerprint()
        if self.running():
            if stamp.exists() and stamp.read_text() == fingerprint:
                return
            print(f"[supervisor] configuration changed: restarting the services of {self.run_dir}", flush=True)
            self.shutdown()
        for name in self.programs:
            if name.startswith("worker"):
                (self.run_dir / name / "tmp").mkdir(parents=True, exist_ok=True)
        if self.celery:
            self._write_redis_conf()
        self.conf.write_text(self.render())
        os.chmod(self.conf, 0o600)
        subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)],
            env=self.env,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not self.running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"supervisord did not start; see {self.log}")
            time.sleep(0.2)
        stamp.write_text(fingerprint)

    def start(self, names) -> None:
        rpc = self.rpc()
        for name in names:
            if rpc.getProcessInfo(name)["statename"] not in ("RUNNING", "STARTING", "BACKOFF"):
                rpc.startProcess(name, False)

    def stop(self, names) -> None:
        rpc = self.rpc()
        for name in reversed(list(names)):
            if rpc.getProcessInfo(name)["statename"] in ("RUNNING", "STARTING", "BACKOFF"):
                try:
                    rpc.stopProcess(name, True)
                except xmlrpc.client.Fault as exc:  # NOT_RUNNING: it exited meanwhile
                    if "NOT_RUNNING" not in exc.faultString:
                        raise

    def shutdown(self, timeout: float = 120.0) -> None:
        """Stop every program (reverse order) and supervisord itself."""
        pid = self.pid()
        if pid is None:
            return
        deadline = time.monotonic() + timeout
        try:
            # all at once (supervisord's own shutdown stops them one after the other)
            rpc = self.rpc()
            rpc.stopAllProcesses(False)
            while time.monotonic() < deadline and any(
                p["statename"] in ("RUNNING", "STARTING", "BACKOFF", "STOPPING") for p in rpc.getAllProcessInfo()
            ):
                time.sleep(0.5)
            rpc.shutdown()
        except (OSError, xmlrpc.client.Error):
            os.kill(pid, 15)
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.2)

    def info(self) -> dict[str, dict]:
        """Per program: state, pid, uptime_s (None unless running), restarts (since supervisord started)."""
        exits = self.exits()
        out = {}
        for p in self.rpc().getAllProcessInfo():
            up = p["now"] - p["start"] if p["statename"] == "RUNNING" else None
            out[p["name"]] = {
                "state": p["statename"],
                "pid": p["pid"] or None,
                "uptime_s": up,
                "restarts": len(exits.get(p["name"], [])),
                "last_exit": (
                    f"{exits[p['name']][-1][0]:%H:%M:%S} {exits[p['name']][-1][1]}" if p["name"] in exits else None
                ),
            }
        return out

    _LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ \w+ (.*)$")
    _EXIT = re.compile(r"^exited: (\S+) \((.*); not expected\)$")

    def exits(self, since: datetime | None = None) -> dict[str, list[tuple[datetime, str]]]:
        """Unexpected exits per program (when, why), each one followed by a restart by supervisord
        (its log is the record), since ``since`` (aware datetime) or since this supervisord started."""
        out: dict[str, list[tuple[datetime, str]]] = {}
        if not self.log.exists():
            return out
        for line in self.log.read_text(errors="replace").splitlines():
            m = self._LOG_LINE.match(line)
            if not m:
                continue
            when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").astimezone()
            if m.group(2).startswith("supervisord started with pid") and since is None:
                out = {}
            elif (e := self._EXIT.match(m.group(2))) and (since is None or when >= since):
                out.setdefault(e.group(1), []).append((when, e.group(2)))
        return out

    def restarts(self, since: datetime | None = None) -> dict[str, int]:
        """How many times each program was restarted after an unexpected exit (see ``exits``)."""
        return {name: len(events) for name, events in self.exits(since).items()}


def _end_group(pgid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the process group (a task process then fails and is retried at once), SIGKILL what
    is left after ``grace_s`` (idle LocalExecutor workers ignore SIGTERM)."""
    end_group(
        pgid,
        grace_s,
        poll_s=0.5,
        on_signal=lambda sig: print(
            f"{datetime.now():%Y-%m-%d %H:%M:%S} process group {pgid}: {sig}", file=sys.stderr, flush=True
        ),
    )


def reap() -> None:
    """supervisord event listener (PROCESS_STATE_EXITED): end the exited service's process group.
    supervisord made each service the leader of its own group; Linux does not hand out that id
    again while the group has members, so the group id names exactly what the service left."""
    import threading

    from supervisor import childutils

    while True:
        _headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        fields = dict(item.split(":", 1) for item in payload.split() if ":" in item)
        if fields.get("pid", "0").isdigit() and int(fields.get("pid", "0")) > 1:
            threading.Thread(target=_end_group, args=(int(fields["pid"]),), daemon=True).start()
        childutils.listener.ok(sys.stdout)


def main(argv: list[str]) -> int:
    if argv[1:] == ["reap"]:
        reap()
    if argv[1:] == ["env"]:
        import shlex

        env = celery_env(dict(os.environ))
        for key, value in {**FAULT_SETTINGS, **env}.items():
            print(f"export {key}={shlex.quote(os.environ.get(key, value) if key in FAULT_SETTINGS else value)}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
