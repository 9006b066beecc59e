"""``mlmon sql`` is read-only by privilege: hostile statements fail on the server, as the read-only role.

The embedded default is tried for real (its own PostgreSQL in a fresh MLMON_HOME, as a user gets it);
the compose roles are tried in tests/deploy/test_postgres_roles.py.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from mlmon import cli, embedded
from mlmon.tasks.store import query, store
from tests.store.factories import result, window

HOSTILE = (
    "commit; insert into mlmon.canary values (2)",
    "set transaction read write; insert into mlmon.canary values (2)",
    "commit; drop table mlmon.canary",
    "COPY mlmon.canary TO PROGRAM 'id'",
    "COPY mlmon.canary TO '/tmp/mlmon-canary-copy'",
    "select pg_read_file('/etc/passwd')",
    "select pg_terminate_backend(pid) from pg_stat_activity where pid <> pg_backend_pid()",
    "insert into mlmon.canary values (2) returning x",
    "drop table mlmon.canary",
    "select 1; set statement_timeout = 0",
    "select 1 /* ; */ ; commit ; delete from mlmon.canary",
)


@pytest.mark.parametrize(
    ("sql", "one"),
    [
        ("select 1", "select 1"),
        ("  select 1 ;  -- bye\n", "select 1"),
        ("select ';' , $$;$$, $t$ $$; $t$, \"a;b\"", "select ';' , $$;$$, $t$ $$; $t$, \"a;b\""),
        ("select E'\\';' as x", "select E'\\';' as x"),
        ("select 1 /* nested /* ; */ ; */", "select 1 /* nested /* ; */ ; */"),
        ("select a$b$ from t", "select a$b$ from t"),
    ],
)
def test_one_statement_is_accepted(sql: str, one: str) -> None:
    assert query.single_statement(sql) == one


@pytest.mark.parametrize(
    "sql",
    [
        "commit; insert into x values (1)",
        "select 'a'';'; drop table x",
        "select a$b$; drop table x; select $b$",  # a$b$ is an identifier, not a dollar quote
        "select 1e'x'; drop table x; select 'y'",  # no escape string after a number
        "select 'unterminated",
        "select $$ open",
        "/* open",
        " ; ",
        "",
    ],
)
def test_anything_but_one_statement_is_refused(sql: str) -> None:
    with pytest.raises(query.QueryError):
        query.single_statement(sql)


def test_control_characters_are_printed_escaped() -> None:
    r = query.QueryResult(("v\x1b]0;x\x07",), (("\x1b[2J\x1b[31mred\u202e\n",),), False)
    out = query.format_table(r)
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "\\x1b[2J\\x1b[31mred\\u202e\\n" in out


# --------------------------------------------------------------------------------- real servers


@pytest.fixture(scope="module")
def embedded_home() -> Iterator[Path]:
    """A fresh MLMON_HOME with no URIs set: the embedded default, with its own PostgreSQL."""
    home = Path(tempfile.mkdtemp(prefix="mlmon-sql-"))
    home.chmod(0o755)
    yield home
    embedded.stop_postgres(home / "postgres")
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def embedded_env(embedded_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("MLMON_POSTGRES_URI", "MLMON_POSTGRES_READ_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLMON_HOME", str(embedded_home))
    return embedded_home


def one(uri: str, sql: str) -> tuple:
    conn = psycopg2.connect(uri)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()
    finally:
        conn.close()


@pytest.mark.integration
def test_the_embedded_pipeline_writes_as_a_least_privilege_role(embedded_env: Path) -> None:
    from mlmon.settings import Settings

    s = Settings.from_env()
    writer = s.postgres_uri()
    store.migrate(writer)
    store.write_window(writer, result("churn", window(0)), report_path=None, flow_run_id=None)
    assert one(writer, "SELECT current_user, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles"
                       " WHERE rolname = current_user") == ("mlmon_writer", False, False, False)  # fmt: skip
    assert one(s.postgres_read_uri(), "SELECT current_user, count(*) FROM mlmon.runs GROUP BY 1") == (
        "grafana_reader", 1)  # fmt: skip
    # retention runs as the writer too: its purge needs a temporary table
    from datetime import UTC, datetime, timedelta

    from mlmon.tasks import operations

    done = operations.retention(
        writer, embedded_env / "reports", timedelta(days=1), datetime.now(UTC), dry_run=False
    )
    assert done.windows == 1


@pytest.mark.integration
@pytest.mark.parametrize("sql", HOSTILE)
def test_mlmon_sql_refuses_every_hostile_statement_and_the_canary_is_untouched(
    embedded_env: Path, sql: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlmon.settings import Settings

    writer = Settings.from_env().postgres_uri()
    store.migrate(writer)
    conn = psycopg2.connect(writer)
    with conn, conn.cursor() as cur:
        cur.execute(
            "DROP TABLE IF EXISTS mlmon.canary; CREATE TABLE mlmon.canary (x int); INSERT INTO mlmon.canary VALUES (1)"
        )
    conn.close()

    assert cli.main(["sql", sql]) == cli.Exit.USAGE  # the query is the user's to fix
    assert "mlmon: error:" in capsys.readouterr().err
    assert one(writer, "SELECT array_agg(x) FROM mlmon.canary") == ([1],)
    assert not Path("/tmp/mlmon-canary-copy").exists()


@pytest.mark.integration
def test_mlmon_sql_prints_rows_escaped_and_has_a_statement_timeout(
    embedded_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlmon.settings import Settings

    s = Settings.from_env()
    assert cli.main(["sql", "select E'\\x1b[2Jgone' as v"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2Jgone" in out
    with pytest.raises(query.QueryError, match="statement timeout"):
        query.run_read_only(s.postgres_read_uri(), "select pg_sleep(5)", limit=1, timeout_s=0.3)


def test_a_configured_server_without_a_read_uri_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlmon.settings import Settings
    from mlmon.tasks.errors import ConfigError

    monkeypatch.setenv("MLMON_POSTGRES_URI", "postgresql://mlmon_writer@db/mlmon")
    monkeypatch.delenv("MLMON_POSTGRES_READ_URI", raising=False)
    with pytest.raises(ConfigError, match="MLMON_POSTGRES_READ_URI"):
        Settings.from_env().postgres_read_uri()


@pytest.mark.integration
def test_a_database_created_before_the_roles_keeps_working(pg_schema_uri: str, tmp_path: Path) -> None:
    """An embedded data folder from before: migrated and written by the superuser. After the roles are
    set up the writer migrates further (altering the old tables) and writes; the reader reads."""
    store.migrate(pg_schema_uri)  # as the superuser, as mlmon did before
    store.write_window(pg_schema_uri, result("churn", window(0)), report_path=None, flow_run_id=None)
    roles = embedded.ensure_roles(pg_schema_uri)
    assert embedded.ensure_roles(pg_schema_uri) == roles  # idempotent
    folder = tmp_path / "migrations"
    folder.mkdir()
    for m in store.migrations():
        (folder / m.file).write_text(m.sql)
    (folder / "0099_later.sql").write_text("ALTER TABLE mlmon.runs ADD COLUMN later int;")
    writer, reader = (
        psycopg2.extensions.make_dsn(pg_schema_uri, user=u) for u in ("mlmon_writer", "grafana_reader")
    )
    assert store.migrate(writer, folder=folder) == [99]
    store.write_window(writer, result("churn", window(1)), report_path=None, flow_run_id=None)
    assert one(reader, "SELECT count(*) FROM mlmon.runs") == (2,)
    assert one(reader, "SELECT count(*) FROM mlmon.latest_runs") == (1,)


@pytest.mark.integration
@pytest.mark.prefect
def test_the_local_prefect_server_runs_as_its_own_role_owning_only_its_database(embedded_env: Path) -> None:
    """No part of mlmon runs as the superuser by default: the local Prefect server (``mlmon up``, the
    first flow command) connects as ``mlmon_prefect``, which owns the ``prefect`` database only."""
    from mlmon.settings import Settings
    from mlmon.up import prefect_database_url, start_prefect_server

    s = Settings.from_env()
    uri = s.prefect_postgres_uri()
    assert prefect_database_url(uri).startswith("postgresql+asyncpg://mlmon_prefect@/prefect")
    server = start_prefect_server(uri, embedded_env / "prefect", port=0)
    try:
        import httpx

        assert httpx.get(server.api_url + "/health", timeout=10).status_code == 200
    finally:
        server.stop()
    prefect = uri
    assert one(prefect, "SELECT current_user, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles"
                        " WHERE rolname = current_user") == ("mlmon_prefect", False, False, False)  # fmt: skip
    # Prefect's schema was migrated by that role, and it cannot touch mlmon's tables
    assert one(prefect, "SELECT count(*) > 10, bool_and(tableowner = 'mlmon_prefect') FROM pg_tables"
                        " WHERE schemaname = 'public'") == (True, True)  # fmt: skip
    store.migrate(s.postgres_uri())
    with pytest.raises(psycopg2.Error, match="permission denied"):  # not even a connection
        one(embedded.with_database(uri, "postgres"), "SELECT count(*) FROM mlmon.runs")


@pytest.mark.integration
def test_a_prefect_database_made_by_the_superuser_is_handed_to_the_prefect_role(tmp_path: Path) -> None:
    """A data folder from before the role: its ``prefect`` database and everything in it change owner."""
    path = tmp_path / "pg"
    admin = embedded.start_postgres(path)
    try:
        conn = psycopg2.connect(admin)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute('CREATE DATABASE "prefect"')
        conn.close()
        old = embedded.with_database(admin, "prefect")
        conn = psycopg2.connect(old)
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TYPE state_type AS ENUM ('a', 'b')")
            cur.execute("CREATE TABLE flow_run (id serial PRIMARY KEY, state state_type)")
            cur.execute("CREATE VIEW v AS SELECT id FROM flow_run")
        conn.close()
        roles = embedded.ensure_roles(admin)
        owners = one(
            old,
            "SELECT pg_get_userbyid(d.datdba), (SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables"
            " WHERE schemaname = 'public'), (SELECT viewowner FROM pg_views WHERE viewname = 'v'),"
            " (SELECT pg_get_userbyid(typowner) FROM pg_type WHERE typname = 'state_type')"
            " FROM pg_database d WHERE datname = 'prefect'",
        )
        assert owners == ("mlmon_prefect",) * 4
        embedded.ensure_roles(admin)  # idempotent
        conn = psycopg2.connect(roles.prefect)
        with conn, conn.cursor() as cur:  # the role can now migrate what it owns
            cur.execute("ALTER TABLE flow_run ADD COLUMN name text")
        conn.close()
    finally:
        embedded.stop_postgres(path)
