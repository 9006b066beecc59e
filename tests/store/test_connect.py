"""Connecting: a database that is down is a clear StoreError within seconds, never a hang."""

from __future__ import annotations

import doctest
import socket
import time
from pathlib import Path

import psycopg2
import pytest

from mlmon.tasks.errors import StoreError
from mlmon.tasks.store import store
from tests.store.factories import result, window


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "uri",
    [
        "postgresql://mlmon:hunter2@127.0.0.1:{port}/mlmon",
        "postgresql://postgres@/postgres?host={missing}&password=hunter2",
    ],
)
def test_an_unreachable_database_is_a_clear_error_within_seconds(uri: str, tmp_path: Path) -> None:
    uri = uri.format(port=closed_port(), missing=tmp_path / "no-such-socket-dir")
    for call in (
        lambda: store.connect(uri),
        lambda: store.migrate(uri),
        lambda: store.write_window(uri, result(), report_path=None, flow_run_id=None),
        lambda: store.mark_failed(uri, "churn", window(), "boom", None),
        lambda: store.list_runs(uri),
    ):
        t = time.monotonic()
        with pytest.raises(StoreError, match=r"cannot reach Postgres at .*check MLMON_POSTGRES_URI") as e:
            call()
        assert time.monotonic() - t < 10
        assert "hunter2" not in str(e.value) and "***" in str(e.value)


def test_an_invalid_uri_says_so() -> None:
    with pytest.raises(StoreError, match="invalid Postgres URI"):
        store.connect("host=a password=hunter2 nonsense")


def test_docstring_examples() -> None:
    assert doctest.testmod(store).failed == 0


@pytest.mark.integration
def test_the_statement_timeout_stops_a_runaway_query(pg_schema_uri: str) -> None:
    conn = store.connect(pg_schema_uri, statement_timeout_s=0.2)
    try:
        with pytest.raises(psycopg2.errors.QueryCanceled), conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(2)")
    finally:
        conn.close()


@pytest.mark.integration
def test_a_missing_schema_says_to_migrate(pg_schema_uri: str) -> None:
    with pytest.raises(StoreError, match=r"run mlmon\.tasks\.store\.store\.migrate"):
        store.list_runs(pg_schema_uri)
