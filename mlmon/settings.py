"""Where things are: connection URIs, the state folder, the config and the reports folder.

Everything comes from the environment (never from files in the repo):

================================  ==========================================================
``MLMON_MONGO_URI``               MongoDB URI; unset = start/reuse the embedded wire server
``MLMON_POSTGRES_URI``            PostgreSQL URI the pipeline writes with (a least-privilege role such as
                                  compose's ``mlmon_writer``); unset = the embedded PostgreSQL, as
                                  ``mlmon_writer``
``MLMON_POSTGRES_READ_URI``       read-only PostgreSQL URI for ``mlmon sql`` (compose's ``grafana_reader``);
                                  unset with the embedded default = its ``grafana_reader``
``MLMON_HOME``                    state folder (embedded servers, profiles); default ``./.mlmon``
``MLMON_CONFIG``                  models config; default ``deployments/models.yaml``
``MLMON_REPORTS_DIR``             where HTML reports go; default ``$MLMON_HOME/reports``
``MLMON_REPORTS_URL``             optional public base URL of the reports (links in alerts)
``MLMON_ALERT_WEBHOOK_URL``       optional: `serve`/`up` install the alert automations notifying it
``MLMON_DB_TIMEOUT_S``            seconds to wait for MongoDB or PostgreSQL before a stage fails (default 3
                                  for MongoDB, 5 for PostgreSQL; see :mod:`mlmon.tasks.connect`)
================================  ==========================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlmon import embedded
from mlmon.tasks.connect import MONGO_TIMEOUT_S, db_timeout_s
from mlmon.tasks.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    home: Path
    config_path: Path
    reports_dir: Path
    mongo_uri_env: str | None
    postgres_uri_env: str | None
    reports_url: str | None
    postgres_read_uri_env: str | None = None

    @classmethod
    def from_env(cls, config: str | Path | None = None) -> Settings:
        db_timeout_s(MONGO_TIMEOUT_S)  # a bad MLMON_DB_TIMEOUT_S fails here, before any database is touched
        home = Path(os.environ.get("MLMON_HOME") or ".mlmon").resolve()
        cfg = Path(config or os.environ.get("MLMON_CONFIG") or "deployments/models.yaml")
        reports = Path(os.environ.get("MLMON_REPORTS_DIR") or home / "reports").resolve()
        return cls(
            home=home,
            config_path=cfg,
            reports_dir=reports,
            mongo_uri_env=os.environ.get("MLMON_MONGO_URI") or None,
            postgres_uri_env=os.environ.get("MLMON_POSTGRES_URI") or None,
            reports_url=os.environ.get("MLMON_REPORTS_URL") or None,
            postgres_read_uri_env=os.environ.get("MLMON_POSTGRES_READ_URI") or None,
        )

    @property
    def profiles_dir(self) -> Path:
        return self.home / "profiles"

    def mongo_uri(self) -> str:
        """The configured MongoDB, or the embedded one (started on first use, then reused)."""
        return self.mongo_uri_env or embedded.start_mongo(self.home / "mongo")

    def postgres_uri(self) -> str:
        """The configured PostgreSQL, or the embedded one (started on first use, then reused) as its
        least-privilege writer role: no part of the pipeline runs as the superuser."""
        return self.postgres_uri_env or embedded.start_postgres_roles(self.home / "postgres").writer

    def postgres_read_uri(self) -> str:
        """A read-only connection for ``mlmon sql``: ``MLMON_POSTGRES_READ_URI``, or the embedded
        server's ``grafana_reader``. Never the writer's URI: a read-only command is read-only by privilege."""
        if self.postgres_read_uri_env:
            return self.postgres_read_uri_env
        if self.postgres_uri_env:
            raise ConfigError(
                "MLMON_POSTGRES_READ_URI is not set: mlmon sql connects only as a read-only role. Set it to "
                "a role that can only SELECT from schema mlmon (in docker compose: "
                "postgresql://grafana_reader:<GRAFANA_READER_PASSWORD>@postgres:5432/mlmon)"
            )
        return embedded.start_postgres_roles(self.home / "postgres").reader

    def prefect_postgres_uri(self) -> str:
        """Where the local Prefect server keeps its database ``prefect``: the configured PostgreSQL, or
        the embedded one as the role ``mlmon_prefect``, which owns that database and nothing else."""
        return self.postgres_uri_env or embedded.start_postgres_roles(self.home / "postgres").prefect

    @property
    def embedded(self) -> bool:
        return not (self.mongo_uri_env and self.postgres_uri_env)
