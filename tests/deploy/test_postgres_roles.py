"""deployments/postgres/init/10_mlmon_roles.sql, run for real: each role can do its job and no more.

(The embedded test server trusts local connections, so passwords are set but not checked here.)
"""

from __future__ import annotations

import psycopg2
import psycopg2.errors
import pytest

from mlmon.tasks.store import query, store
from tests.deploy.conftest import PASSWORDS, Roles, as_role, run_init_sql, window_result, with_database
from tests.postgres import rows as fetch
from tests.store.factories import window
from tests.store.test_query import HOSTILE

pytestmark = pytest.mark.integration


def test_it_creates_the_roles_the_prefect_database_and_the_schema(roles: Roles) -> None:
    rows = fetch(
        roles.admin,
        "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles"
        " WHERE rolname IN ('mlmon_writer', 'grafana_reader', 'prefect') ORDER BY 1",
    )
    assert rows == [
        ("grafana_reader", True, False, False, False),
        ("mlmon_writer", True, False, False, False),
        ("prefect", True, False, False, False),
    ]
    assert fetch(roles.admin, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                 roles.prefect_db) == [("prefect",)]  # fmt: skip
    assert fetch(
        roles.admin, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'mlmon'"
    ) == [("mlmon_writer",)]
    (config,) = fetch(roles.admin, "SELECT rolconfig FROM pg_roles WHERE rolname = 'grafana_reader'")[0]
    assert "default_transaction_read_only=on" in config and "statement_timeout=60s" in config


def test_the_writer_migrates_and_writes_windows_like_the_worker(roles: Roles) -> None:
    assert store.migrate(roles.writer) == [m.version for m in store.migrations()]
    r = window_result("churn", 0, failing=True)
    store.write_window(roles.writer, r, report_path="churn/day0.html", flow_run_id="run-0")
    store.write_window(roles.writer, r, report_path="churn/day0.html", flow_run_id="run-0")  # a re-run
    store.mark_running(roles.writer, "churn", window(1), "run-1")
    store.mark_failed(roles.writer, "churn", window(1), "boom", "run-1")
    assert [run.status for run in store.list_runs(roles.writer)] == ["fail", "error"]
    # retention's purge needs a temporary table: the writer may create one
    store.purge_windows(roles.writer, window(5).end, dry_run=True)
    owners = fetch(
        roles.admin,
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'mlmon'",
    )
    assert owners == [("mlmon_writer",)]


def test_the_reader_reads_every_table_and_view_and_nothing_else(roles: Roles) -> None:
    store.migrate(roles.writer)
    store.write_window(
        roles.writer, window_result("churn", 0, failing=False), report_path=None, flow_run_id=None
    )
    for relation in ("runs", "metrics", "checks", "drift", "quarantine", "latest_runs", "latest_checks"):
        assert fetch(roles.reader, f"SELECT count(*) FROM mlmon.{relation}")[0][0] > 0, relation
    # search_path is mlmon for Grafana's query builder
    assert fetch(roles.reader, "SELECT count(*) FROM runs") == [(1,)]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO mlmon.metrics (model, window_start, window_end, metric, value)"
        " VALUES ('x', now(), now() + interval '1 day', 'm', 1)",
        "DELETE FROM mlmon.runs",
        "UPDATE mlmon.checks SET status = 'pass'",
        "CREATE TABLE mlmon.evil (x int)",
        "CREATE TABLE public.evil (x int)",
        "DROP TABLE mlmon.metrics",
        "TRUNCATE mlmon.quarantine",
    ],
)
def test_the_reader_cannot_change_anything_even_in_a_read_write_transaction(roles: Roles, sql: str) -> None:
    store.migrate(roles.writer)
    conn = psycopg2.connect(roles.reader)
    try:
        with conn.cursor() as cur:
            with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
                cur.execute(sql)  # the role's sessions default to read-only
            conn.rollback()
            conn.autocommit = True  # each statement its own transaction, now read-write
            cur.execute("SET default_transaction_read_only = off")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(sql)  # and privileges say no anyway
    finally:
        conn.close()


def test_tables_a_later_migration_creates_are_readable_by_grafana(roles: Roles) -> None:
    """Default privileges: a 0002_*.sql run by the writer needs no GRANT of its own."""
    store.migrate(roles.writer)
    conn = psycopg2.connect(roles.writer)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE mlmon.future (x int); INSERT INTO mlmon.future VALUES (1)")
        cur.execute("CREATE VIEW mlmon.future_view AS SELECT x FROM mlmon.future")
    conn.close()
    assert fetch(roles.reader, "SELECT x FROM mlmon.future_view") == [(1,)]


def test_each_role_connects_only_to_its_own_database(roles: Roles) -> None:
    prefect = with_database(as_role(roles.admin, "prefect"), roles.prefect_db)
    assert fetch(prefect, "SELECT current_user") == [("prefect",)]
    with psycopg2.connect(prefect) as conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # what Prefect's migrations do
        cur.execute("CREATE TABLE flow_run (id int)")
    conn.close()
    for dsn in (with_database(roles.writer, roles.prefect_db), with_database(roles.reader, roles.prefect_db)):
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            psycopg2.connect(dsn)
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        psycopg2.connect(as_role(roles.admin, "prefect"))  # the metrics database


def test_running_it_again_keeps_everything_and_updates_passwords(roles: Roles) -> None:
    store.migrate(roles.writer)
    store.write_window(
        roles.writer, window_result("churn", 0, failing=False), report_path=None, flow_run_id=None
    )
    before = fetch(roles.admin, "SELECT rolpassword FROM pg_authid WHERE rolname = 'mlmon_writer'")
    again = run_init_sql(roles.admin, {**PASSWORDS, "MLMON_WRITER_PASSWORD": "rotated",
                                       "PREFECT_DB_NAME": roles.prefect_db})  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert fetch(roles.admin, "SELECT rolpassword FROM pg_authid WHERE rolname = 'mlmon_writer'") != before
    assert fetch(roles.reader, "SELECT count(*) FROM mlmon.runs") == [(1,)]
    assert store.migrate(roles.writer) == []


@pytest.mark.parametrize("missing", sorted(PASSWORDS))
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_a_missing_password_stops_the_init_with_its_name(pg_schema_uri: str, missing: str, how: str) -> None:
    env = {k: v for k, v in PASSWORDS.items() if k != missing} | ({missing: ""} if how == "empty" else {})
    done = run_init_sql(pg_schema_uri, env)
    assert done.returncode != 0
    assert f"{missing} is not set: set it in .env" in done.stderr
    assert fetch(pg_schema_uri, "SELECT count(*) FROM pg_namespace WHERE nspname = 'mlmon'") == [(0,)]


@pytest.mark.parametrize("sql", HOSTILE)
def test_mlmon_sql_as_grafana_reader_refuses_every_hostile_statement(roles: Roles, sql: str) -> None:
    """`mlmon sql` against the compose roles (MLMON_POSTGRES_READ_URI = grafana_reader): refused, and the
    writer's canary table is untouched."""
    store.migrate(roles.writer)
    conn = psycopg2.connect(roles.writer)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE mlmon.canary (x int); INSERT INTO mlmon.canary VALUES (1)")
    conn.close()
    with pytest.raises(query.QueryError):
        query.run_read_only(roles.reader, sql, limit=10)
    assert fetch(roles.writer, "SELECT array_agg(x) FROM mlmon.canary") == [([1],)]
    assert fetch(roles.reader, "SELECT count(*) FROM mlmon.canary") == [(1,)]  # reading still works


def test_the_embedded_default_grants_what_the_compose_init_script_grants(
    roles: Roles, pg_schema_uri: str
) -> None:
    """Same roles, same privileges: the embedded provisioning (mlmon.embedded.ROLES_SQL) is the compose
    script's schema part, so a privilege fixed in one and not the other fails here."""
    import uuid

    from mlmon import embedded

    store.migrate(roles.writer)
    compose = _privileges(roles.admin)
    name = f"e_{uuid.uuid4().hex[:8]}"
    other = with_database(roles.admin, name)
    admin = psycopg2.connect(roles.admin)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        provisioned = embedded.ensure_roles(other)
        store.migrate(provisioned.writer)
        assert _privileges(other) == compose
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _privileges(admin: str) -> list[tuple]:
    """What each mlmon role may do in this database, as a comparable table."""
    checks = []
    for role in ("mlmon_writer", "grafana_reader"):
        for priv in ("CONNECT", "CREATE", "TEMPORARY"):
            checks.append(
                f"SELECT '{role}', 'db', '{priv}', has_database_privilege('{role}', current_database(), '{priv}')"
            )
        for priv in ("USAGE", "CREATE"):
            checks.append(
                f"SELECT '{role}', 'schema mlmon', '{priv}', has_schema_privilege('{role}', 'mlmon', '{priv}')"
            )
            checks.append(
                f"SELECT '{role}', 'schema public', '{priv}', has_schema_privilege('{role}', 'public', '{priv}')"
            )
        for priv in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"):
            checks.append(
                f"SELECT '{role}', 'table ' || c.relname, '{priv}', has_table_privilege('{role}', c.oid, '{priv}')"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'mlmon' AND c.relkind IN ('r', 'v')"
            )
        for fn in (
            "pg_terminate_backend(integer, bigint)",
            "pg_cancel_backend(integer)",
            "pg_read_file(text)",
        ):
            checks.append(
                f"SELECT '{role}', 'function', '{fn}', has_function_privilege('{role}', '{fn}', 'EXECUTE')"
            )
    rows = fetch(admin, " UNION ALL ".join(checks))
    owner = fetch(admin, "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c"
                         " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'mlmon'")  # fmt: skip
    return sorted(rows) + owner
