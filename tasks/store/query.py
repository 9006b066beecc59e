"""``mlmon sql``: one read-only query against the metrics database, printed safely.

Read-only by privilege, not by convention: the query runs as the read-only role (``grafana_reader``:
SELECT on schema ``mlmon`` only, read-only sessions, see ``mlmon.embedded`` and
``deployments/postgres/init/10_mlmon_roles.sql``), so ``commit; insert …``, ``COPY … TO PROGRAM``,
``pg_read_file(…)`` or ``pg_terminate_backend(…)`` fail on the server whatever the text says. On top of
that the text must be exactly one statement (:func:`single_statement`), the session is read-only and
has a statement timeout, and every printed value has its control characters escaped
(:func:`printable`), so a logged value cannot drive the terminal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg2

from mlmon.tasks.errors import MlmonError
from mlmon.tasks.store import store

STATEMENT_TIMEOUT_S = 30.0
MAX_WIDTH = 60  # characters per printed column


class QueryError(MlmonError):
    """``mlmon sql`` refused the query, or the server rejected it (nothing was changed)."""


@dataclass(frozen=True)
class QueryResult:
    """The first ``limit`` rows of a query, as text (unescaped), plus whether more were left out."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    truncated: bool


# A tokenizer just precise enough to find the ``;`` that end statements: quoted strings (with ''),
# E'…' strings (with backslash escapes), dollar-quoted strings, quoted identifiers, -- and nested /* */
# comments. An identifier may contain $ (so ``a$b$`` is no dollar quote). Anything it cannot read is
# refused; the server's privileges are the boundary, this only keeps the command to one statement.
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$\u0080-\uffff]")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")


def single_statement(sql: str) -> str:
    """``sql`` without a trailing ``;``, or :class:`QueryError` unless it is exactly one statement.

    >>> single_statement("select 1; -- done")
    'select 1'
    >>> single_statement("select ';' as x, $$;$$, \\"a;b\\"")
    'select \\';\\' as x, $$;$$, "a;b"'
    >>> single_statement("commit; drop table mlmon.runs")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    QueryError: mlmon sql runs exactly one statement; this text has more after the ';' at character 7
    """
    i, n = 0, len(sql)
    end: int | None = None  # index of the first top-level ';'
    while i < n:
        ch = sql[i]
        if end is not None and not (ch.isspace() or sql.startswith(("--", "/*"), i)):
            raise QueryError(
                f"mlmon sql runs exactly one statement; this text has more after the ';' at character {end + 1}"
            )
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            i = _comment_end(sql, i)
        elif ch == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _IDENT_CHAR.match(sql[i - 2]))
            i = _string_end(sql, i, "'", backslash=escapes)
        elif ch == '"':
            i = _string_end(sql, i, '"', backslash=False)
        elif ch == "$" and (i == 0 or not _IDENT_CHAR.match(sql[i - 1])) and (m := _DOLLAR_TAG.match(sql, i)):
            close = sql.find(m.group(0), m.end())
            if close < 0:
                raise QueryError(f"unterminated dollar-quoted string {m.group(0)} at character {i + 1}")
            i = close + len(m.group(0))
        elif ch == ";" and end is None:
            end = i
            i += 1
        else:
            i += 1
    body = sql[:end] if end is not None else sql
    if not body.strip():
        raise QueryError('mlmon sql needs a query, e.g. "select * from mlmon.runs order by window_start"')
    return body.strip()


def _comment_end(sql: str, i: int) -> int:
    depth, i = 0, i
    while i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise QueryError("unterminated /* comment")


def _string_end(sql: str, i: int, quote: str, *, backslash: bool) -> int:
    j = i + 1
    while j < len(sql):
        if backslash and sql[j] == "\\":
            j += 2
        elif sql[j] == quote:
            if sql.startswith(quote * 2, j):
                j += 2
            else:
                return j + 1
        else:
            j += 1
    raise QueryError(f"unterminated {'identifier' if quote == chr(34) else 'string'} at character {i + 1}")


def printable(value: object) -> str:
    r"""The text of a value with every non-printable character escaped (``\x1b``, ``\n``, ``\u202e``).

    >>> printable("ok\x1b[2J\u202e")
    'ok\\x1b[2J\\u202e'
    >>> printable(None), printable(1.5)
    ('', '1.5')
    """
    if value is None:
        return ""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def run_read_only(
    read_uri: str, sql: str, *, limit: int, timeout_s: float = STATEMENT_TIMEOUT_S
) -> QueryResult:
    """Run one statement as the role of ``read_uri`` in a read-only transaction; return up to ``limit`` rows.

    The transaction is rolled back afterwards whatever happened. A server error is a :class:`QueryError`.
    """
    statement = single_statement(sql)
    conn = store.connect(read_uri, statement_timeout_s=timeout_s)
    try:
        conn.set_session(readonly=True, autocommit=False)
        with conn.cursor() as cur:
            try:
                cur.execute(statement)
            except psycopg2.Error as e:
                raise QueryError(
                    f"query failed: {printable(' '.join((e.pgerror or str(e)).split()))}"
                ) from None
            if cur.description is None:
                return QueryResult((), (), False)
            fetched = cur.fetchmany(limit + 1)
            columns = tuple(d.name for d in cur.description)
    finally:
        if not conn.closed:
            conn.rollback()
            conn.close()
    rows = tuple(tuple("" if v is None else str(v) for v in r) for r in fetched[:limit])
    return QueryResult(columns, rows, len(fetched) > limit)


def format_table(result: QueryResult) -> str:
    """Aligned columns (each at most :data:`MAX_WIDTH` characters, control characters escaped) and a
    row count."""
    if not result.columns:
        return "(no rows returned)"
    head = [printable(h) for h in result.columns]
    rows = [[printable(v) for v in r] for r in result.rows]
    widths = [min(MAX_WIDTH, max([len(h)] + [len(r[i]) for r in rows])) for i, h in enumerate(head)]
    lines = ["  ".join(h[:w].ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v[:w].ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(f"({len(rows)} rows{'; truncated, use --limit' if result.truncated else ''})")
    return "\n".join(lines)
