"""Session-wide real servers: one PostgreSQL and one MongoDB wire server per test session.

Set ``MLMON_TEST_MONGO_URI`` (e.g. ``mongodb://localhost:27017``) to run every Mongo test unchanged
against a real MongoDB, and ``MLMON_TEST_POSTGRES_URI`` for an existing PostgreSQL. Otherwise the
embedded servers are started in a temporary folder and stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlmon import embedded


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    """Outside pytest's own temp root: every new pytest session re-chmods that root to 0700, which
    would lock the embedded PostgreSQL (running as its own user) out of a concurrent session's data."""
    path = Path(tempfile.mkdtemp(prefix="mlmon-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(state_dir: Path) -> Iterator[None]:
    """Keep the tests' Prefect and mlmon state out of the checkout and the user's home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLMON_HOME", str(state_dir / "home"))
        mp.setenv("PREFECT_HOME", str(state_dir / "prefect"))
        mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        (state_dir / "prefect").mkdir(exist_ok=True)
        yield


def _server(
    variable: str, start: Callable[[Path], str], stop: Callable[[Path], object], data: Path
) -> Iterator[str]:
    """The URI in ``variable`` when set (a server of yours), else an embedded server in ``data``, stopped
    at the end of the session."""
    uri = os.environ.get(variable)
    if uri:
        yield uri
        return
    yield start(data)
    stop(data)


@pytest.fixture(scope="session")
def mongo_uri(state_dir: Path) -> Iterator[str]:
    yield from _server("MLMON_TEST_MONGO_URI", embedded.start_mongo, embedded.stop_mongo, state_dir / "mongo")


@pytest.fixture(scope="session")
def pg_uri(state_dir: Path) -> Iterator[str]:
    yield from _server(
        "MLMON_TEST_POSTGRES_URI", embedded.start_postgres, embedded.stop_postgres, state_dir / "pg"
    )


@pytest.fixture
def mongo_db(mongo_uri: str) -> Iterator[object]:
    """A fresh, uniquely named database per test (dropped afterwards)."""
    import pymongo

    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000, tz_aware=True)
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield client[name]
    client.drop_database(name)
    client.close()


@pytest.fixture
def pg_schema_uri(pg_uri: str) -> Iterator[str]:
    """A fresh Postgres database per test, so schema tests never see each other's rows."""
    import psycopg2

    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(pg_uri)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    base, _, query = pg_uri.partition("?")
    prefix = base.rsplit("/", 1)[0]
    yield f"{prefix}/{name}" + (f"?{query}" if query else "")
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()
