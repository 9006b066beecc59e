# The mlmon image: the `mlmon` command with the pinned dependencies of pyproject.toml. Used by
# docker-compose.yml for the `worker` (`mlmon serve`) and the one-shot `migrate` job.
# Not built here (no Docker engine where it was written); tests/deploy/test_dockerfile.py checks it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Fixed uid/gid, so files in the named volumes keep one owner across rebuilds.
RUN groupadd --system --gid 10001 mlmon \
 && useradd --system --uid 10001 --gid mlmon --home-dir /var/lib/mlmon --no-create-home \
        --shell /usr/sbin/nologin mlmon

WORKDIR /app

# Only what the package needs: never `COPY . .`, which would bring .env, .venv and .mlmon along.
COPY pyproject.toml README.md ./
COPY mlmon ./mlmon
COPY tasks ./tasks
COPY flows ./flows
COPY reports ./reports
COPY deployments/models.yaml deployments/automations.yaml ./deployments/

# The project and its pinned dependencies, with the `live` extra (prometheus-client: the compose stack's
# serving-demo exposes live metrics from this image). The state folders exist in the image, owned by mlmon, so
# Docker initialises the named volumes mounted on them with that owner.
RUN pip install '.[live]' \
 && mkdir -p /app/reference_data /var/lib/mlmon/home /var/lib/mlmon/reports \
 && chown -R mlmon:mlmon /app/reference_data /var/lib/mlmon

USER mlmon

ENV MLMON_HOME=/var/lib/mlmon/home \
    MLMON_REPORTS_DIR=/var/lib/mlmon/reports \
    MLMON_CONFIG=/app/deployments/models.yaml

CMD ["mlmon", "serve"]
