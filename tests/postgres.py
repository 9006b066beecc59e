"""Reading PostgreSQL in the tests: the rows of one query, on a connection of its own."""

from __future__ import annotations

import psycopg2


def rows(uri: str, sql: str, *params: object) -> list[tuple]:
    """Every row ``sql`` returns (``%s`` placeholders filled by ``params``); the connection is closed."""
    conn = psycopg2.connect(uri)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()
