# Environment of the local stack. Sourced by the Makefile and the scripts:  . scripts/env.sh
# Every value can be overridden from the caller's environment or .env.
MLOPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MLOPS_ROOT
if [ -f "$MLOPS_ROOT/.env" ]; then set -a; . "$MLOPS_ROOT/.env"; set +a; fi

# One switch to use your own PostgreSQL (with the vector extension available) instead of the local
# cluster: MLOPS_PG_URI=postgresql://<user>:<password>@<host>:5432 (no database). `make db-up` then only
# creates the `airflow` and `warehouse` databases there; the warehouse, Airflow and the tests use it.
if [ -n "${MLOPS_PG_URI:-}" ]; then
  _mlops_pg="${MLOPS_PG_URI%/}"
  export MLOPS_WAREHOUSE_URI="${MLOPS_WAREHOUSE_URI:-$_mlops_pg/warehouse}"
  export MLOPS_AIRFLOW_DB_URI="${MLOPS_AIRFLOW_DB_URI:-postgresql+psycopg://${_mlops_pg#*://}/airflow}"
  export MLOPS_TEST_PG_URI="${MLOPS_TEST_PG_URI:-$_mlops_pg/postgres}"
  unset _mlops_pg
fi
# The local cluster (scripts/db.sh) authenticates with scram-sha-256: superuser `postgres`, password
# generated on first use into .secrets/postgres (0600, git-ignored; scripts/secrets.sh).
. "$MLOPS_ROOT/scripts/secrets.sh"
export MLOPS_PG_PORT="${MLOPS_PG_PORT:-55432}"
if [ -z "${MLOPS_PG_URI:-}" ]; then
  _mlops_pg="postgres:$(mlops_secret postgres)@127.0.0.1:${MLOPS_PG_PORT}"
  export MLOPS_WAREHOUSE_URI="${MLOPS_WAREHOUSE_URI:-postgresql://$_mlops_pg/warehouse}"
  export MLOPS_AIRFLOW_DB_URI="${MLOPS_AIRFLOW_DB_URI:-postgresql+psycopg://$_mlops_pg/airflow}"
  export MLOPS_TEST_PG_URI="${MLOPS_TEST_PG_URI:-postgresql://$_mlops_pg/postgres}"
  unset _mlops_pg
fi
export MLOPS_API_PORT="${MLOPS_API_PORT:-8080}"

export AIRFLOW_HOME="${AIRFLOW_HOME:-$MLOPS_ROOT/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$MLOPS_ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$MLOPS_ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="$MLOPS_AIRFLOW_DB_URI"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:${MLOPS_API_PORT}/execution/"
export AIRFLOW__API__PORT="$MLOPS_API_PORT"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__BASE_URL="http://127.0.0.1:${MLOPS_API_PORT}"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-10}"
export AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="${AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL:-10}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
# the ETL sensor looks for a late file every 10 s on the local stack (default 60 s)
export MLOPS_FILE_POKE_INTERVAL_S="${MLOPS_FILE_POKE_INTERVAL_S:-10}"
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}"
export AIRFLOW_CONN_WAREHOUSE="${AIRFLOW_CONN_WAREHOUSE:-$MLOPS_WAREHOUSE_URI}"

# MLOPS_EXECUTOR=local (default: LocalExecutor) or celery: CeleryExecutor with Redis as the broker and
# two workers, all supervised (scripts/supervisor.py, which holds the Celery settings and says why).
export MLOPS_EXECUTOR="${MLOPS_EXECUTOR:-local}"
export MLOPS_REDIS_PORT="${MLOPS_REDIS_PORT:-56379}"
if [ "$MLOPS_EXECUTOR" = "celery" ]; then
  eval "$(PYTHONPATH="$MLOPS_ROOT" "${MLOPS_PYTHON:-$MLOPS_ROOT/.venv/bin/python}" -m scripts.supervisor env)"
else
  export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
fi

export PYTHONPATH="$MLOPS_ROOT${PYTHONPATH:+:$PYTHONPATH}"
# offline: the embedding model ships in a package; Soda telemetry stalls without network
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 SODA_CORE_TELEMETRY_ENABLED=false
export TOKENIZERS_PARALLELISM=false

# Celery profile (MLOPS_EXECUTOR=celery): every hand-off between tasks goes through an S3-protocol
# server on 127.0.0.1 (moto, scripts/s3.py): s3:// storage URIs, the AWS connection, lineage as objects.
if [ "${MLOPS_EXECUTOR:-}" = "celery" ] && [ -x "$MLOPS_ROOT/.venv/bin/python" ]; then
  eval "$(cd "$MLOPS_ROOT" && .venv/bin/python -m scripts.s3 env)"
fi

# OpenLineage (apache-airflow-providers-openlineage): every task's run events, with the datasets it
# read and wrote, go as JSON lines to reports/lineage/events.jsonl (readable offline). Set
# AIRFLOW__OPENLINEAGE__TRANSPORT to send them elsewhere (HTTP to Marquez: see .env.example), or
# AIRFLOW__OPENLINEAGE__DISABLED=true to turn lineage off.
export AIRFLOW__OPENLINEAGE__NAMESPACE="${AIRFLOW__OPENLINEAGE__NAMESPACE:-mlops-local}"
export MLOPS_LINEAGE_FILE="${MLOPS_LINEAGE_FILE:-$MLOPS_ROOT/reports/lineage/events.jsonl}"
mkdir -p "$(dirname "$MLOPS_LINEAGE_FILE")"
_mlops_ol_file="{\"type\": \"file\", \"log_file_path\": \"$MLOPS_LINEAGE_FILE\", \"append\": true}"
export AIRFLOW__OPENLINEAGE__TRANSPORT="${AIRFLOW__OPENLINEAGE__TRANSPORT:-$_mlops_ol_file}"
unset _mlops_ol_file
