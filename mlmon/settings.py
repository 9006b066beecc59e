"""Where things are: connection URIs, the state folder, the config and the reports folder.

Everything comes from the environment (never from files in the repo):

================================  ==========================================================
``MLMON_MONGO_URI``               MongoDB URI; unset = start/reuse the embedded wire server
``MLMON_POSTGRES_URI``            PostgreSQL URI; unset = start/reuse the embedded PostgreSQL
``MLMON_HOME``                    state folder (embedded servers, profiles); default ``./.mlmon``
``MLMON_CONFIG``                  models config; default ``deployments/models.yaml``
``MLMON_REPORTS_DIR``             where HTML reports go; default ``$MLMON_HOME/reports``
``MLMON_REPORTS_URL``             optional public base URL of the reports (links in alerts)
``MLMON_ALERT_WEBHOOK_URL``       optional: `serve`/`up` install the alert automations notifying it
================================  ==========================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlmon import embedded


@dataclass(frozen=True)
class Settings:
    home: Path
    config_path: Path
    reports_dir: Path
    mongo_uri_env: str | None
    postgres_uri_env: str | None
    reports_url: str | None

    @classmethod
    def from_env(cls, config: str | Path | None = None) -> Settings:
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
        )

    @property
    def profiles_dir(self) -> Path:
        return self.home / "profiles"

    def mongo_uri(self) -> str:
        """The configured MongoDB, or the embedded one (started on first use, then reused)."""
        return self.mongo_uri_env or embedded.start_mongo(self.home / "mongo")

    def postgres_uri(self) -> str:
        """The configured PostgreSQL, or the embedded one (started on first use, then reused)."""
        return self.postgres_uri_env or embedded.start_postgres(self.home / "postgres")

    @property
    def embedded(self) -> bool:
        return not (self.mongo_uri_env and self.postgres_uri_env)
