import psycopg2
import pytest

pytestmark = pytest.mark.integration


def test_servers_answer(mongo_db, pg_schema_uri):
    mongo_db.things.insert_one({"a": 1})
    assert mongo_db.things.count_documents({}) == 1
    with psycopg2.connect(pg_schema_uri) as conn, conn.cursor() as cur:
        cur.execute("select current_database()")
        assert cur.fetchone()[0].startswith("t_")
