# The Astro image: Astro Runtime 3.3-8 = Apache Airflow 3.3.2 (requirements-local.txt pins the same
# version for the no-Docker stack; tests/unit/test_repo_docker.py checks that the two agree).
# Python 3.12: Runtime 3.3 ships 3.12, 3.13 and 3.14; 3.12 is the newest that `astro-run-dag`
# (added to requirements.txt by `astro dev start`) installs on, and the nearest to the local 3.11.
#
# The `-base` flavour has no ONBUILD steps, so the order of the install is ours: system packages,
# then torch's CPU build from PyTorch's CPU index (PyPI's Linux torch is the CUDA build: several GB
# of nvidia-* packages), then requirements.txt with the Runtime's Airflow held where it is, then the
# project (after .dockerignore). These are the steps of the default ONBUILD image, with torch first.
# NOT BUILT in this repository's checks: no Docker engine was available (see README).
FROM astrocrpublic.azurecr.io/runtime:3.3-8-python-3.12-base

USER root
COPY packages.txt .
RUN apt-get update \
    && xargs --no-run-if-empty apt-get install -y --no-install-recommends < packages.txt \
    && rm -rf /var/lib/apt/lists/*
USER astro

# torch first, the CPU build, the version requirements.txt pins (2.13.0+cpu satisfies torch==2.13.0).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

# requirements.txt pins no Airflow: the Runtime's apache-airflow* stay as they are (constraint file).
COPY requirements.txt .
RUN pip freeze | grep -E '^apache-airflow(-core|-task-sdk)?==' > /tmp/runtime-airflow.txt \
    && pip install --no-cache-dir -c /tmp/runtime-airflow.txt -r requirements.txt

COPY --chown=astro:0 . .

# Offline model and telemetry settings, as in scripts/env.sh. The OpenLineage *transport* is
# deliberately not set here: on Astro the platform configures lineage, and an image-level
# AIRFLOW__OPENLINEAGE__TRANSPORT would override it. `astro dev start` sets the file transport
# in docker-compose.override.yml; .env.example documents the HTTP (Marquez) alternative.
# No lineage namespace either: each environment sets its own (compose: mlops-local-docker; a
# Deployment: AIRFLOW__OPENLINEAGE__NAMESPACE in its environment variables, README "Deploy").
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    SODA_CORE_TELEMETRY_ENABLED=false \
    TOKENIZERS_PARALLELISM=false

# Folders the tasks write to by default (data/ and reports/ are not copied into the image).
RUN mkdir -p /usr/local/airflow/data /usr/local/airflow/reports/lineage
