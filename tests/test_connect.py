"""MLMON_DB_TIMEOUT_S: one setting for how long every stage waits for MongoDB or PostgreSQL."""

from __future__ import annotations

import socket
import time

import pytest

from mlmon.settings import Settings
from mlmon.tasks.connect import MONGO_TIMEOUT_S, POSTGRES_TIMEOUT_S, db_timeout_s, mongo_client
from mlmon.tasks.errors import ConfigError
from mlmon.tasks.store import store


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unset_or_empty_is_the_callers_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLMON_DB_TIMEOUT_S", raising=False)
    assert db_timeout_s(3.0) == 3.0
    monkeypatch.setenv("MLMON_DB_TIMEOUT_S", "  ")
    assert db_timeout_s(5.0) == 5.0
    monkeypatch.setenv("MLMON_DB_TIMEOUT_S", " 12.5 ")
    assert db_timeout_s(3.0) == 12.5


@pytest.mark.parametrize("value", ["3s", "0", "-1", "nan", "inf", "1e999", "ten"])
def test_a_bad_value_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MLMON_DB_TIMEOUT_S", value)
    with pytest.raises(ConfigError, match=r"MLMON_DB_TIMEOUT_S=.* is not a number of seconds above 0"):
        db_timeout_s(3.0)
    with pytest.raises(ConfigError, match="MLMON_DB_TIMEOUT_S"):  # before any database is touched
        Settings.from_env()


def test_the_mongo_client_waits_as_long_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from pymongo.errors import ServerSelectionTimeoutError

    monkeypatch.delenv("MLMON_DB_TIMEOUT_S", raising=False)
    client = mongo_client(f"mongodb://127.0.0.1:{closed_port()}/")
    assert client.options.server_selection_timeout == MONGO_TIMEOUT_S
    assert client.options.pool_options.connect_timeout == MONGO_TIMEOUT_S
    client.close()

    monkeypatch.setenv("MLMON_DB_TIMEOUT_S", "0.4")
    client = mongo_client(f"mongodb://127.0.0.1:{closed_port()}/")
    assert client.options.server_selection_timeout == 0.4
    t = time.monotonic()
    with pytest.raises(ServerSelectionTimeoutError):
        client["db"]["coll"].find_one()
    assert 0.3 < time.monotonic() - t < 3  # the set 0.4 s, not the default 3 s
    client.close()


def test_postgres_connections_wait_as_long_as_set(pg_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLMON_DB_TIMEOUT_S", raising=False)
    with store.connect(pg_uri) as conn:
        assert conn.get_dsn_parameters()["connect_timeout"] == str(round(POSTGRES_TIMEOUT_S))
    conn.close()
    monkeypatch.setenv("MLMON_DB_TIMEOUT_S", "7")
    with store.connect(pg_uri) as conn:
        assert conn.get_dsn_parameters()["connect_timeout"] == "7"
    conn.close()
