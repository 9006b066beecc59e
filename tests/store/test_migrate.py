"""Schema migrations: applied once, in order, under a lock; a changed applied file is refused."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mlmon.tasks.errors import StoreError
from mlmon.tasks.store import store
from tests.postgres import rows as query
from tests.store.concurrency import at_once

integration = pytest.mark.integration


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy of the shipped migrations, to add or change files in."""
    dest = tmp_path / "migrations"
    shutil.copytree(Path(str(store.MIGRATIONS)), dest)
    return dest


@integration
def test_migrate_applies_each_file_once_and_is_idempotent(pg_schema_uri: str) -> None:
    shipped = store.migrations()
    assert [m.file for m in shipped][:1] == ["0001_init.sql"]
    assert store.migrate(pg_schema_uri) == [m.version for m in shipped]
    assert store.migrate(pg_schema_uri) == []
    recorded = query(pg_schema_uri, "SELECT version, name, checksum FROM mlmon.schema_migrations ORDER BY 1")
    assert recorded == [(m.version, m.name, m.checksum) for m in shipped]
    tables = {t for (t,) in query(pg_schema_uri, "SELECT table_name FROM information_schema.tables "
                                                 "WHERE table_schema = 'mlmon'")}  # fmt: skip
    assert {*store.WINDOW_TABLES, "schema_migrations", "latest_runs", "latest_checks"} <= tables


@integration
def test_every_table_column_says_what_grafana_uses_it_for(pg_schema_uri: str) -> None:
    store.migrate(pg_schema_uri)
    missing = query(
        pg_schema_uri,
        """
        SELECT c.relname || '.' || a.attname
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'mlmon' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
          AND col_description(c.oid, a.attnum) IS NULL
        """,
    )
    assert missing == []
    undocumented = query(
        pg_schema_uri,
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
        "n.nspname = 'mlmon' AND c.relkind IN ('r', 'v') AND obj_description(c.oid, 'pg_class') IS NULL",
    )
    assert undocumented == []


@integration
def test_two_processes_migrating_at_once_apply_it_once(pg_schema_uri: str) -> None:
    results = at_once(lambda: store.migrate(pg_schema_uri), timeout=30)
    assert sorted(results) == [[], [], [m.version for m in store.migrations()]]
    assert query(pg_schema_uri, "SELECT count(*) FROM mlmon.schema_migrations") == [
        (len(store.migrations()),)
    ]


@integration
def test_a_new_file_is_applied_and_a_changed_applied_file_is_refused(
    pg_schema_uri: str, folder: Path
) -> None:
    shipped = [m.version for m in store.migrations()]
    n = max(shipped)  # the highest shipped version (numbers may have gaps while branches merge)
    assert store.migrate(pg_schema_uri, folder=folder) == shipped
    (folder / f"{n + 1:04d}_add_note.sql").write_text("ALTER TABLE mlmon.runs ADD COLUMN note text;\n")
    assert store.migrate(pg_schema_uri, folder=folder) == [n + 1]

    init = folder / "0001_init.sql"
    init.write_text(init.read_text() + "\n-- an innocent-looking edit\n")
    (folder / f"{n + 2:04d}_more.sql").write_text("CREATE TABLE mlmon.should_not_exist (x int);\n")
    with pytest.raises(StoreError, match=rf"0001_init\.sql was changed after it was applied.*{n + 3:04d}"):
        store.migrate(pg_schema_uri, folder=folder)
    assert query(pg_schema_uri, "SELECT to_regclass('mlmon.should_not_exist')") == [(None,)]


@integration
def test_crlf_line_endings_do_not_count_as_a_change(pg_schema_uri: str, folder: Path) -> None:
    store.migrate(pg_schema_uri, folder=folder)
    init = folder / "0001_init.sql"
    init.write_bytes(init.read_bytes().replace(b"\n", b"\r\n"))
    assert store.migrate(pg_schema_uri, folder=folder) == []


@integration
def test_a_failing_migration_applies_nothing(pg_schema_uri: str, folder: Path) -> None:
    broken = folder / f"{max(m.version for m in store.migrations()) + 1:04d}_broken.sql"
    broken.write_text("CREATE TABLE mlmon.half (x int);\nSELECT no_such_function();\n")
    with pytest.raises(StoreError, match=rf"migration {re.escape(broken.name)} failed.*no_such_function"):
        store.migrate(pg_schema_uri, folder=folder)
    # one transaction: not even 0001 or the bookkeeping table survived
    assert query(pg_schema_uri, "SELECT to_regclass('mlmon.runs'), to_regclass('mlmon.half')") == [
        (None, None)
    ]
    broken.unlink()
    assert store.migrate(pg_schema_uri, folder=folder) == [m.version for m in store.migrations()]


@integration
def test_a_database_newer_than_the_code_is_refused(pg_schema_uri: str, folder: Path) -> None:
    future = f"{max(m.version for m in store.migrations()) + 1:04d}_future"
    (folder / f"{future}.sql").write_text("SELECT 1;\n")
    store.migrate(pg_schema_uri, folder=folder)
    with pytest.raises(StoreError, match=rf"{future}\.sql, which this mlmon does not have"):
        store.migrate(pg_schema_uri)


@integration
def test_a_file_numbered_below_an_applied_one_is_refused(pg_schema_uri: str, folder: Path) -> None:
    n = max(m.version for m in store.migrations())
    (folder / f"{n + 2:04d}_later.sql").write_text("SELECT 1;\n")
    store.migrate(pg_schema_uri, folder=folder)
    (folder / f"{n + 1:04d}_forgotten.sql").write_text("SELECT 1;\n")
    with pytest.raises(
        StoreError, match=rf"{n + 1:04d}_forgotten\.sql is numbered below {n + 2:04d}.*{n + 3:04d}"
    ):
        store.migrate(pg_schema_uri, folder=folder)


@pytest.mark.parametrize("name", ["1_init.sql", "0002-add.sql", "0002_Add.sql"])
def test_misnamed_files_are_refused(folder: Path, name: str) -> None:
    (folder / name).write_text("SELECT 1;\n")
    with pytest.raises(StoreError, match="misnamed"):
        store.migrations(folder)


def test_duplicate_versions_are_refused(folder: Path) -> None:
    (folder / "0001_again.sql").write_text("SELECT 1;\n")
    with pytest.raises(StoreError, match="share version 0001"):
        store.migrations(folder)
