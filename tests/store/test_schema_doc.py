"""The example queries of tasks/store/SCHEMA.md run against a real, populated schema."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg2
import pytest

from mlmon.tasks.store import store
from tests.store.factories import result, window

pytestmark = pytest.mark.integration

DOC = Path(store.__file__).with_name("SCHEMA.md")
GRAFANA_MACROS = {
    r"\$__time\((\w+)\)": r'\1 AS "time"',
    r"\$__timeFilter\((\w+)\)": r"\1 BETWEEN '2026-01-01T00:00Z' AND '2026-02-01T00:00Z'",
    r"\$\{model:sqlstring\}": "'churn', 'o''brien'",
}


def example_queries() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    queries = [q.strip() for b in blocks for q in b.split(";") if q.strip()]
    queries = [q for q in queries if not re.match(r"(--.*\n)*\s*(CREATE ROLE|GRANT|ALTER DEFAULT)", q)]
    for pattern, repl in GRAFANA_MACROS.items():
        queries = [re.sub(pattern, repl, q) for q in queries]
    return queries


def test_the_documented_queries_run(pg_schema_uri: str) -> None:
    queries = example_queries()
    store.migrate(pg_schema_uri)
    assert len(queries) >= 10
    for model in ("churn", "o'brien"):
        store.write_window(
            pg_schema_uri, result(model=model, w=window(0)), report_path="r.html", flow_run_id=None
        )
        store.write_window(
            pg_schema_uri, result(model=model, w=window(1)), report_path="r.html", flow_run_id=None
        )
    store.mark_failed(pg_schema_uri, "churn", window(2), "boom", None)
    with psycopg2.connect(pg_schema_uri) as conn, conn.cursor() as cur:
        for q in queries:
            cur.execute(q)
            assert cur.description is not None, q
    conn.close()
