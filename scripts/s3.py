"""An S3-protocol object store on 127.0.0.1 for the Celery profile: moto in server mode.

The Celery profile (``MLOPS_EXECUTOR=celery``) hands every file between tasks through object
storage, as on a real multi-machine deployment: the tasks reach it with ``s3://`` URIs through
Airflow's ``ObjectStoragePath``, the amazon provider (s3fs) and an AWS connection whose extra
carries ``endpoint_url``. Point the same settings at AWS S3 or MinIO and nothing else changes.

* ``python -m scripts.s3 env`` prints the settings as shell exports (scripts/env.sh evals it in
  the Celery profile); a value already in the environment wins. It generates the key pair once
  into ``<state>/credentials.json`` (0600) and picks a free port once (``MLOPS_S3_PORT`` fixes it).
* ``start`` runs ``python -m moto.server`` on 127.0.0.1 (pid and log under ``<state>``), replays
  the request recording so objects survive ``make stop`` / ``make run``, and creates the bucket
  of every ``s3://`` storage URI; ``stop`` and ``status`` do what they say.

moto accepts any credentials: the key pair makes the connection look like a real one (and is
what MinIO or S3 would check); keep the server on 127.0.0.1. The state folder is
``MLOPS_S3_DIR`` (default ``<project>/.s3``, ignored by git).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from scripts.cli import run_command
from scripts.processes import end_group
from scripts.stack_env import free_port

ROOT = Path(__file__).resolve().parents[1]
CONN_ID = "mlops_s3"
REGION = "us-east-1"
#: storage URIs of the profile: one bucket per purpose (lifecycle rules differ in production)
URIS = {
    "MLOPS_LANDING_URI": "s3://mlops-landing/demand",
    "MLOPS_ARCHIVE_URI": "s3://mlops-archive/demand",
    "MLOPS_ARTIFACTS_URI": "s3://mlops-artifacts",
    "MLOPS_REPORTS_URI": "s3://mlops-reports",
}


class S3Server:
    """One moto server with its state folder (credentials, port, pid, log, request recording)."""

    def __init__(
        self, state_dir: str | os.PathLike | None = None, port: int | None = None, env: dict[str, str] | None = None
    ):
        self.environ = dict(os.environ if env is None else env)
        self.dir = Path(state_dir or self.environ.get("MLOPS_S3_DIR") or ROOT / ".s3")
        self._port = port

    # ------------------------------------------------------------------ settings
    @property
    def port(self) -> int:
        if self._port is None:
            configured = self.environ.get("MLOPS_S3_PORT")
            port_file = self.dir / "port"
            if configured:
                self._port = int(configured)
            elif port_file.exists():
                self._port = int(port_file.read_text())
            else:
                self._port = free_port()
                self._state_dir()
                port_file.write_text(str(self._port))
        return self._port

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _state_dir(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        return self.dir

    def credentials(self) -> dict[str, str]:
        """The key pair, generated on first use into a 0600 file."""
        path = self._state_dir() / "credentials.json"
        if not path.exists():
            creds = {
                "access_key_id": "AK" + secrets.token_hex(9).upper(),
                "secret_access_key": secrets.token_urlsafe(30),
            }
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(creds, fh)
        return json.loads(path.read_text())

    def connection_uri_json(self) -> str:
        """The AWS connection (``AIRFLOW_CONN_MLOPS_S3``) as Airflow's JSON connection format."""
        creds = self.credentials()
        return json.dumps(
            {
                "conn_type": "aws",
                "login": creds["access_key_id"],
                "password": creds["secret_access_key"],
                "extra": {"endpoint_url": self.endpoint, "region_name": REGION},
            }
        )

    @staticmethod
    def lineage_transport(reports_uri: str) -> dict:
        """OpenLineage's file transport writing one object per event under ``<reports_uri>/lineage/``
        through the storage connection (object stores cannot append to one file)."""
        return {
            "type": "file",
            "log_file_path": reports_uri.rstrip("/") + "/lineage/events",
            "append": False,
            "debug_mode": True,  # object names carry the job and the event type
            "filesystem": "include.lineage.summary.storage_filesystem",
        }

    def env(self) -> dict[str, str]:
        """Environment of the profile: storage URIs, the connection and its id, the lineage transport."""
        reports = self.environ.get("MLOPS_REPORTS_URI") or URIS["MLOPS_REPORTS_URI"]
        return {
            **URIS,
            "MLOPS_STORAGE_CONN_ID": CONN_ID,
            f"AIRFLOW_CONN_{CONN_ID.upper()}": self.connection_uri_json(),
            "MLOPS_S3_ENDPOINT": self.endpoint,
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(self.lineage_transport(reports)),
        }

    # ------------------------------------------------------------------ process
    def _pid(self) -> int | None:
        pid_file = self.dir / "server.pid"
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return None
        except (OSError, ValueError):
            return None
        return pid

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self, buckets_from: dict[str, str] | None = None, timeout: float = 60.0) -> None:
        """Start the server unless it runs, replay its recording, create the buckets."""
        if self._pid() is None:
            state = self._state_dir()
            if self._answers():
                raise RuntimeError(f"port {self.port} is taken by another process (set MLOPS_S3_PORT)")
            env = {
                **self.environ,
                # moto keeps objects in memory: the recording of every request, replayed on start, is
                # what lets objects survive a restart (the store's own disk, as for MinIO)
                "MOTO_ENABLE_RECORDING": "True",
                "MOTO_RECORDER_FILEPATH": str(state / "recording.jsonl"),
            }
            log = open(state / "server.log", "ab")  # noqa: SIM115 (kept open by the child)
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            (state / "server.pid").write_text(str(proc.pid))
            deadline = time.monotonic() + timeout
            while not self._answers():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start; see {state / 'server.log'}")
                time.sleep(0.2)
            if (state / "recording.jsonl").exists() and (state / "recording.jsonl").stat().st_size:
                self._post("/moto-api/recorder/replay-recording")
        self.create_buckets(buckets_from)

    def _post(self, path: str) -> None:
        import httpx

        httpx.post(self.endpoint + path, timeout=600).raise_for_status()

    def client(self):
        import boto3

        creds = self.credentials()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=creds["access_key_id"],
            aws_secret_access_key=creds["secret_access_key"],
        )

    def create_buckets(self, uris: dict[str, str] | None = None) -> list[str]:
        """Create the bucket of every ``s3://`` URI among ``uris`` (default: the environment, else URIS)."""
        uris = uris if uris is not None else {k: self.environ.get(k) or v for k, v in URIS.items()}
        names = sorted({urlsplit(u).netloc for u in uris.values() if u.startswith("s3://")})
        client = self.client()
        have = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        for name in names:
            if name not in have:
                client.create_bucket(Bucket=name)
        return names

    def stop(self, timeout: float = 15.0) -> None:
        pid = self._pid()
        if pid is not None:
            # running: the server's pid answers and is no zombie (its parent may be long gone)
            end_group(pid, timeout, alive=lambda: self._pid() is not None, poll_s=0.1)
        (self.dir / "server.pid").unlink(missing_ok=True)

    def reset(self) -> None:
        """Stop and forget every object (the recording); credentials and port stay."""
        self.stop()
        (self.dir / "recording.jsonl").unlink(missing_ok=True)


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def main(argv: list[str]) -> int:
    server = S3Server()

    def env() -> None:
        for key, value in server.env().items():
            if not server.environ.get(key):
                print(f"export {key}={_shell_quote(value)}")

    def start() -> None:
        server.start()
        print(f"S3 server (moto) on {server.endpoint}")

    def stop() -> None:
        server.stop()
        print("S3 server stopped")

    def status() -> int:
        pid = server._pid()
        print(f"s3 (moto)      {f'running (pid {pid}) on {server.endpoint}' if pid else 'stopped'}")
        return 0 if pid else 1

    return run_command(argv, {"env": env, "start": start, "stop": stop, "status": status}, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
