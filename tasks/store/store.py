"""The Postgres store: schema migrations, one-transaction window writes, and the reads the app needs.

Grafana reads the ``mlmon`` schema directly (see ``tasks/store/SCHEMA.md``); every column is documented
in ``migrations/0001_init.sql``.

* :func:`migrate` applies the numbered ``migrations/NNNN_<what>.sql`` files once each, in order, under
  an advisory lock (two processes may migrate at once), and refuses a file changed after it was applied.
* :func:`write_window` replaces one (model, window) in every table in a single transaction: a re-run
  never duplicates rows, and a failed write leaves the previous results untouched.
* :func:`mark_running` / :func:`mark_failed` only touch the ``runs`` row: a failed re-run keeps the last
  good metrics, checks, drift and quarantine rows (the run row says ``error`` and why, and
  ``computed_at`` tells how old those results are).

Values from logs and configs are always passed as data (query parameters or COPY input), never as SQL.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Status, WindowResult
from mlmon.tasks.connect import POSTGRES_TIMEOUT_S, db_timeout_s
from mlmon.tasks.errors import StoreError
from mlmon.tasks.incidents import IncidentState, PreviousIncident
from mlmon.tasks.incidents import Kind as IncidentKind
from mlmon.tasks.window import Window

Connection = psycopg2.extensions.connection
Target = str | Connection
"""A libpq URI (a connection is opened and closed per call) or an open connection (reused, not closed)."""

WINDOW_TABLES = ("runs", "metrics", "checks", "drift", "quarantine")
"""Every table keyed by (model, window_start, window_end), i.e. what one window owns."""

MIGRATIONS: Traversable = resources.files("mlmon.tasks.store") / "migrations"
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_MIGRATE_LOCK = 0x6D6C6D6F6E  # b"mlmon": key of the advisory lock that serialises migrate() calls
_MAX_MESSAGE = 2000  # characters of an error message kept in runs.message
_MAX_LISTED = 8  # failed checks named in runs.message


# --------------------------------------------------------------------------------------------- connect


def connect(uri: str, timeout_s: float | None = None, *, statement_timeout_s: float = 120) -> Connection:
    """Open a connection that fails fast: ``connect_timeout`` and a server-side statement timeout.

    The session runs in UTC (timestamps come back in UTC, like the windows) with UTF-8 text. An
    unreachable server raises :class:`StoreError` within about ``timeout_s`` (default
    ``MLMON_DB_TIMEOUT_S``, else 5 s; libpq waits at least 2 s per address tried).
    """
    if timeout_s is None:
        timeout_s = db_timeout_s(POSTGRES_TIMEOUT_S)
    try:
        params = psycopg2.extensions.parse_dsn(uri)
    except psycopg2.ProgrammingError as e:
        raise StoreError(
            f"invalid Postgres URI {redact(uri)}: {_one_line(e)}; "
            "check MLMON_POSTGRES_URI (e.g. postgresql://user:password@host:5432/dbname)"
        ) from e
    ours = f"-c statement_timeout={round(statement_timeout_s * 1000)} -c TimeZone=UTC"
    try:
        return psycopg2.connect(
            uri,
            connect_timeout=max(2, math.ceil(timeout_s)),
            # options from the URI come last, so a user's own statement_timeout wins
            options=f"{ours} {params.get('options', '')}".strip(),
            client_encoding="UTF8",
            application_name=params.get("application_name", "mlmon"),
        )
    except psycopg2.OperationalError as e:
        raise StoreError(
            f"cannot reach Postgres at {redact(uri)}: {_one_line(e)}; "
            "check MLMON_POSTGRES_URI or that the server is running"
        ) from e


def redact(uri: str) -> str:
    """The URI without its password (URL or ``key=value`` form), safe for logs and error messages.

    >>> redact("postgresql://app:s3cret@db:5432/mlmon?sslmode=require")
    'postgresql://app:***@db:5432/mlmon?sslmode=require'
    >>> redact("host=db password='a b' dbname=mlmon")
    'host=db password=*** dbname=mlmon'
    """
    uri = re.sub(r"(://[^:/?#@]*):[^@/?#]+@", r"\1:***@", uri)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]+)", r"\1***", uri, flags=re.IGNORECASE)


@contextmanager
def _transaction(target: Target, what: str) -> Iterator[psycopg2.extensions.cursor]:
    """One transaction: committed on success, rolled back on any error (psycopg2 errors -> StoreError)."""
    owned = isinstance(target, str)
    conn = connect(target) if isinstance(target, str) else target
    if not owned and conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        raise ValueError(f"{what}: the connection is inside a transaction; commit or roll it back first")
    autocommit = conn.autocommit
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            yield cur
        conn.commit()
    except BaseException as e:
        if not conn.closed:  # a dropped connection has nothing left to roll back
            conn.rollback()
        if isinstance(e, psycopg2.Error):
            raise StoreError(f"{what} failed and was rolled back: {_pg_reason(e)}") from e
        raise
    finally:
        if owned:
            conn.close()
        elif not conn.closed:
            conn.autocommit = autocommit


def _pg_reason(e: psycopg2.Error) -> str:
    reason = _one_line(e)
    if isinstance(e, psycopg2.errors.UndefinedTable | psycopg2.errors.InvalidSchemaName):
        reason += "; the mlmon schema is missing: run mlmon.tasks.store.store.migrate() (every flow run does)"
    return reason


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


# --------------------------------------------------------------------------------------------- migrate


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file, e.g. ``0001_init.sql`` -> version 1, name ``init``."""

    version: int
    name: str
    sql: str
    checksum: str  # sha256 of the text with \r\n normalised, so a Windows checkout is not "changed"

    @property
    def file(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


def migrations(folder: Path | Traversable = MIGRATIONS) -> list[Migration]:
    """The migration files of ``folder``, in version order. A misnamed or duplicate file is an error."""
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        m = _MIGRATION_FILE.match(entry.name)
        if not m:
            raise StoreError(
                f"migration file {entry.name!r} in {folder} is misnamed: use NNNN_<what>.sql "
                "(four digits, lower-case snake_case), e.g. 0002_add_segments.sql"
            )
        text = entry.read_text(encoding="utf-8").replace("\r\n", "\n")
        mig = Migration(int(m.group(1)), m.group(2), text, hashlib.sha256(text.encode()).hexdigest())
        if mig.version in found:
            raise StoreError(
                f"two migration files share version {mig.version:04d} in {folder}: "
                f"{found[mig.version].file} and {mig.file}; renumber one"
            )
        found[mig.version] = mig
    return [found[v] for v in sorted(found)]


_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS mlmon;
COMMENT ON SCHEMA mlmon IS 'mlmon: ML monitoring results, one row set per (model, window). Read by Grafana.';
CREATE TABLE mlmon.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE mlmon.schema_migrations IS
    'Migration files applied to this database (tasks/store/migrations). Grafana: not used; for operators.';
COMMENT ON COLUMN mlmon.schema_migrations.version IS 'NNNN of NNNN_<name>.sql.';
COMMENT ON COLUMN mlmon.schema_migrations.name IS '<name> of NNNN_<name>.sql.';
COMMENT ON COLUMN mlmon.schema_migrations.checksum IS
    'sha256 of the file when applied; a changed file is refused.';
COMMENT ON COLUMN mlmon.schema_migrations.applied_at IS 'When the file was applied.';
"""


def migrate(target: Target, *, folder: Path | Traversable = MIGRATIONS) -> list[int]:
    """Bring the ``mlmon`` schema up to date; return the versions applied now (``[]`` when current).

    Everything runs in one transaction holding ``pg_advisory_xact_lock``: concurrent callers wait, then
    find nothing left to do. Refuses (``StoreError``, nothing applied) when an applied file changed, when
    the database has a version this code does not know (an older mlmon against a newer schema), or when a
    new file is numbered below one already applied.
    """
    wanted = migrations(folder)
    with _transaction(target, "migrating the mlmon schema") as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
        cur.execute("SELECT to_regclass('mlmon.schema_migrations') IS NOT NULL")
        if not cur.fetchone()[0]:
            cur.execute(_BOOTSTRAP)
        cur.execute("SELECT version, name, checksum FROM mlmon.schema_migrations ORDER BY version")
        applied = {v: (name, checksum) for v, name, checksum in cur.fetchall()}
        todo = _pending(applied, wanted, folder)
        for m in todo:
            try:
                cur.execute(m.sql)
            except psycopg2.Error as e:
                raise StoreError(f"migration {m.file} failed; nothing was applied: {_one_line(e)}") from e
            cur.execute(
                "INSERT INTO mlmon.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (m.version, m.name, m.checksum),
            )
    return [m.version for m in todo]


def _pending(
    applied: dict[int, tuple[str, str]], wanted: list[Migration], folder: Path | Traversable
) -> list[Migration]:
    by_version = {m.version: m for m in wanted}
    for version, (name, checksum) in applied.items():
        m = by_version.get(version)
        if m is None:
            raise StoreError(
                f"the database has schema migration {version:04d}_{name}.sql, which this mlmon does not have "
                f"(in {folder}): upgrade mlmon, or check MLMON_POSTGRES_URI points at the right database"
            )
        if m.checksum != checksum:
            raise StoreError(
                f"migration {m.file} was changed after it was applied to this database "
                f"(sha256 {checksum[:12]}… applied, {m.checksum[:12]}… on disk): restore the file and "
                f"put the change in a new migration numbered {max(by_version) + 1:04d}"
            )
    todo = [m for m in wanted if m.version not in applied]
    if todo and applied and todo[0].version < max(applied):
        raise StoreError(
            f"migration {todo[0].file} is numbered below {max(applied):04d}, already applied: "
            f"renumber it {max(max(applied), max(by_version)) + 1:04d} or higher"
        )
    return todo


# ----------------------------------------------------------------------------------------------- write

# COPY input is CSV with every string quoted (csv.QUOTE_NONNUMERIC): a quoted "" is an empty string, and
# the nullable columns listed in FORCE_NULL turn "" (what csv writes for None) into NULL.
_COPY = {
    "metrics": (
        "COPY mlmon.metrics (model, window_start, window_end, metric, feature, segment, value) "
        "FROM STDIN WITH (FORMAT csv, FORCE_NULL (value))"
    ),
    "checks": (
        "COPY mlmon.checks (model, window_start, window_end, check_name, category, feature, segment, "
        "status, value, threshold, message) FROM STDIN WITH (FORMAT csv, FORCE_NULL (value, threshold))"
    ),
    "drift": (
        "COPY mlmon.drift (model, window_start, window_end, feature, segment, kind, test_method, "
        "statistic, p_value, p_adjusted, effect_method, effect, effect_threshold, n_reference, n_current, "
        "status, message) FROM STDIN WITH (FORMAT csv, "
        "FORCE_NULL (test_method, statistic, p_value, p_adjusted, effect, effect_threshold))"
    ),
    "quarantine": (
        "COPY mlmon.quarantine (model, window_start, window_end, seq, doc_id, reason, field, detail, "
        "document) FROM STDIN WITH (FORMAT csv)"
    ),
}

_INSERT_RUN = """
INSERT INTO mlmon.runs (
    model, window_start, window_end, status, started_at, finished_at, computed_at, n_rows,
    n_quarantined, n_labelled, label_coverage, n_failed_checks, reference_hash, report_path, flow_run_id,
    evidently_rows, message, labels_checked_at)
VALUES (
    %(model)s, %(window_start)s, %(window_end)s, %(status)s, %(started_at)s, now(), %(computed_at)s,
    %(n_rows)s, %(n_quarantined)s, %(n_labelled)s, %(label_coverage)s, %(n_failed_checks)s,
    %(reference_hash)s, %(report_path)s, %(flow_run_id)s, %(evidently_rows)s, %(message)s,
    %(computed_at)s)
"""


def write_window(
    target: Target,
    result: WindowResult,
    *,
    report_path: str | None,
    flow_run_id: str | None,
    started_at: datetime | None = None,
) -> None:
    """Replace everything stored for ``(result.model, result.window)`` in one transaction.

    Deletes the window's rows in every table, then inserts the run row and COPYs the metrics, checks,
    drift and quarantine rows. Any failure rolls the whole window back (:class:`StoreError`) and leaves
    the previous results as they were. Concurrent writes of the same window are serialised.

    ``started_at`` defaults to the start recorded by :func:`mark_running` for the same flow run (else
    NULL). ``labels_checked_at`` is set to ``result.computed_at``: a full run joins the labels known then.
    Non-finite numbers are stored as NULL; NUL characters as U+FFFD (see :func:`_text`).
    """
    model, w = _text(result.model), result.window
    key = (model, w.start, w.end)
    # everything computed in Python happens before the transaction opens
    run = _run_row(model, result, report_path, flow_run_id, started_at)
    copies = {table: _csv(rows) for table, rows in _window_rows(model, result).items()}
    with _transaction(target, f"writing {result.model!r} {w}") as cur:
        _lock_window(cur, model, w)
        cur.execute(
            "DELETE FROM mlmon.runs WHERE model = %s AND window_start = %s AND window_end = %s"
            " RETURNING status, started_at, flow_run_id",
            key,
        )
        previous = cur.fetchone()
        if started_at is None and previous and previous[0] == "running" and previous[2] == run["flow_run_id"]:
            run["started_at"] = previous[1]  # set by mark_running for this flow run
        for table in WINDOW_TABLES[1:]:  # table names are constants of this module, never data
            cur.execute(
                f"DELETE FROM mlmon.{table} WHERE model = %s AND window_start = %s AND window_end = %s", key
            )
        cur.execute(_INSERT_RUN, run)
        for table, buffer in copies.items():
            cur.copy_expert(_COPY[table], buffer)


def mark_running(target: Target, model: str, window: Window, flow_run_id: str | None) -> None:
    """Record that a flow run started on the window (status ``running``), in its own short transaction.

    The window's previous results (other tables, counts, report link) stay until the new ones are
    written. Migrates first: this may be the first thing a flow does against a new database.
    """
    migrate(target)
    with _transaction(target, f"marking {model!r} {window} running") as cur:
        cur.execute(
            """
            INSERT INTO mlmon.runs (model, window_start, window_end, status, started_at, flow_run_id)
            VALUES (%s, %s, %s, 'running', now(), %s)
            ON CONFLICT (model, window_start, window_end) DO UPDATE
            SET status = 'running', started_at = now(), finished_at = NULL,
                flow_run_id = EXCLUDED.flow_run_id, message = NULL
            """,
            (_text(model), window.start, window.end, _text(flow_run_id)),
        )


def mark_failed(
    target: Target, model: str, window: Window, error_message: str, flow_run_id: str | None
) -> None:
    """Record that a run on the window failed (status ``error``, ``message`` = the error).

    Only the ``runs`` row changes: the last good metrics, checks, drift and quarantine rows are kept
    (with their counts, ``report_path`` and ``computed_at`` in the run row), so Grafana still shows the
    last known state and the row says it is stale. Migrates first, like :func:`mark_running`.
    """
    migrate(target)
    message = _text(error_message)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    with _transaction(target, f"marking {model!r} {window} failed") as cur:
        cur.execute(
            """
            INSERT INTO mlmon.runs
                (model, window_start, window_end, status, finished_at, flow_run_id, message)
            VALUES (%s, %s, %s, 'error', now(), %s, %s)
            ON CONFLICT (model, window_start, window_end) DO UPDATE
            SET status = 'error', finished_at = now(), flow_run_id = EXCLUDED.flow_run_id,
                message = EXCLUDED.message,
                -- keep the start only if it belongs to this run (set by mark_running)
                started_at = CASE
                    WHEN runs.status = 'running'
                         AND runs.flow_run_id IS NOT DISTINCT FROM EXCLUDED.flow_run_id
                    THEN runs.started_at END
            """,
            (_text(model), window.start, window.end, _text(flow_run_id), message),
        )


def _lock_window(cur: psycopg2.extensions.cursor, model: str, w: Window) -> None:
    """Hold the window's advisory lock until the transaction ends: every writer of a window takes it."""
    key = f"mlmon.window\x1f{model}\x1f{w.start.isoformat()}\x1f{w.end.isoformat()}"
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))


def _run_row(
    model: str, r: WindowResult, report_path: str | None, flow_run_id: str | None, started_at: datetime | None
) -> dict[str, Any]:
    return {
        "model": model,
        "window_start": r.window.start,
        "window_end": r.window.end,
        "status": str(r.status),
        "started_at": started_at,
        "computed_at": r.computed_at,
        "n_rows": r.n_rows,
        "n_quarantined": r.n_quarantined,
        "n_labelled": r.n_labelled,
        "label_coverage": _number(r.label_coverage),
        "n_failed_checks": len(r.failed),
        "reference_hash": _text(r.reference_hash),
        "report_path": _text(report_path),
        "flow_run_id": _text(flow_run_id),
        "evidently_rows": r.evidently_rows,
        "message": _text(run_message(r.checks)),
    }


def run_message(checks: Iterable[CheckResult]) -> str:
    """One line for ``runs.message``: the failed checks, else the warnings, else how many passed.

    >>> from mlmon.tasks.checks.outcome import Category
    >>> run_message([CheckResult("volume", Category.QUALITY, Status.FAIL, 3, 100, "too few rows"),
    ...              CheckResult("ks", Category.DRIFT, Status.WARN, None, None, "", "age", "country=FR")])
    '1 failed: volume'
    """
    checks = list(checks)
    for statuses, verb in (({Status.FAIL, Status.ERROR}, "failed"), ({Status.WARN}, "warned")):
        hit = [c for c in checks if c.status in statuses]
        if hit:
            names = [_label(c) for c in hit[:_MAX_LISTED]]
            more = f" and {len(hit) - _MAX_LISTED} more" if len(hit) > _MAX_LISTED else ""
            return f"{len(hit)} {verb}: {', '.join(names)}{more}"
    return f"all {len(checks)} checks passed"


def _label(c: CheckResult) -> str:
    """``check[feature]@segment``, leaving out an empty feature and the whole-window segment."""
    return c.check + (f"[{c.feature}]" if c.feature else "") + (f"@{c.segment}" if c.segment != ALL else "")


def _window_rows(model: str, r: WindowResult) -> dict[str, Iterator[tuple[Any, ...]]]:
    """COPY rows per table, in the column order of :data:`_COPY`."""
    ws, we = r.window.start.isoformat(), r.window.end.isoformat()
    n = _number
    return {
        "metrics": ((model, ws, we, m.metric, m.feature, m.segment, n(m.value)) for m in r.metrics),
        "checks": (
            (model, ws, we, c.check, str(c.category), c.feature, c.segment, str(c.status),
             n(c.value), n(c.threshold), c.message)
            for c in r.checks
        ),
        "drift": (
            (model, ws, we, d.feature, d.segment, d.kind, d.test_method, n(d.statistic), n(d.p_value),
             n(d.p_adjusted), d.effect_method, n(d.effect), n(d.effect_threshold), d.n_reference,
             d.n_current, str(d.status), d.message)
            for d in r.drift
        ),
        "quarantine": (
            (model, ws, we, i, q.doc_id, q.reason, q.field, q.detail, q.document)
            for i, q in enumerate(r.quarantine)
        ),
    }  # fmt: skip


def _csv(rows: Iterable[tuple[Any, ...]]) -> io.BytesIO:
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").writerows(rows)
    # NUL only occurs inside strings, so one pass over the whole buffer sanitises them all (see _text);
    # "replace" turns lone surrogates (e.g. from JSON "\ud800") into "?" instead of failing the window.
    return io.BytesIO(buf.getvalue().replace("\x00", "\ufffd").encode("utf-8", "replace"))


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL (\\x00): it becomes U+FFFD, the Unicode replacement character.

    Lone surrogates cannot be encoded as UTF-8: they become ``?``.
    """
    if value is None:
        return None
    return str(value).replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _number(value: float | None) -> float | None:
    """Finite floats as they are; None, NaN and ±inf as None (stored NULL: a gap in Grafana, ignored by
    avg/max, where a stored 'NaN' or 'Infinity' would poison every aggregate over the column)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------------------------------ read


@dataclass(frozen=True)
class Run:
    """One row of ``mlmon.runs`` (timestamps in UTC)."""

    model: str
    window_start: datetime
    window_end: datetime
    status: str  # a Status value, or "running"
    started_at: datetime | None
    finished_at: datetime | None
    computed_at: datetime | None
    n_rows: int | None
    n_quarantined: int | None
    n_labelled: int | None
    label_coverage: float | None
    n_failed_checks: int | None
    reference_hash: str | None
    report_path: str | None
    flow_run_id: str | None
    evidently_rows: int | None
    message: str | None
    labels_checked_at: datetime | None

    @property
    def window(self) -> Window:
        return Window(self.window_start, self.window_end)


_RUN_COLUMNS = ", ".join(f.name for f in fields(Run))


def list_runs(target: Target, model: str | None = None) -> list[Run]:
    """Every stored run (of one model, or all), ordered by model then window."""
    with _transaction(target, "listing runs") as cur:
        cur.execute(
            f"SELECT {_RUN_COLUMNS} FROM mlmon.runs WHERE %(model)s::text IS NULL OR model = %(model)s"
            " ORDER BY model, window_start, window_end",
            {"model": _text(model)},
        )
        return [Run(*row) for row in cur.fetchall()]


def window_rows(target: Target, model: str, window: Window) -> dict[str, int]:
    """How many rows each table holds for (model, window), e.g. ``{"runs": 1, "metrics": 120, ...}``."""
    key = (_text(model), window.start, window.end)
    counts: dict[str, int] = {}
    with _transaction(target, f"counting rows of {model!r} {window}") as cur:
        for table in WINDOW_TABLES:  # constants of this module, never data
            cur.execute(
                f"SELECT count(*) FROM mlmon.{table}"
                " WHERE model = %s AND window_start = %s AND window_end = %s",
                key,
            )
            counts[table] = cur.fetchone()[0]
    return counts


# ------------------------------------------------------------------------- operations (status, labels)

_DONE_SQL = "('pass', 'warn', 'fail')"  # mlmon.tasks.schedule.DONE


def status_runs(target: Target, since: datetime, models: Iterable[str] | None = None) -> list[Run]:
    """What ``mlmon status`` reads, in one query, ordered by model then window: per model every run whose
    window ended after ``since``, plus its latest run, its latest processed (pass / warn / fail) run and
    its first run (whatever their age)."""
    with _transaction(target, "reading run status") as cur:
        cur.execute(
            f"""
            SELECT {_RUN_COLUMNS} FROM (
                SELECT r.*,
                    row_number() OVER (PARTITION BY model ORDER BY window_start DESC, window_end DESC)
                        AS rn_latest,
                    row_number() OVER (PARTITION BY model ORDER BY window_start, window_end) AS rn_first,
                    row_number() OVER (PARTITION BY model, status IN {_DONE_SQL}
                                       ORDER BY window_start DESC, window_end DESC) AS rn_done
                FROM mlmon.runs AS r
                WHERE %(models)s::text[] IS NULL OR model = ANY(%(models)s::text[])
            ) AS x
            WHERE window_end > %(since)s OR rn_latest = 1 OR rn_first = 1
                OR (rn_done = 1 AND status IN {_DONE_SQL})
            ORDER BY model, window_start, window_end
            """,
            {"since": since, "models": None if models is None else [_text(m) for m in models]},
        )
        return [Run(*row) for row in cur.fetchall()]


HISTORY_SPAN = 8 * 7  # days of past runs read for the learned volume (8 weeks: 8 same-weekday windows)


def volume_history(target: Target, model: str, window: Window, *, days: int = HISTORY_SPAN) -> list[Any]:
    """The rows of the model's processed (pass / warn / fail) windows of the same length that ended
    before ``window`` within ``days``, newest first, as
    :class:`mlmon.tasks.checks.health.PastVolume` (what the learned ``volume_history`` check needs)."""
    from datetime import timedelta

    from mlmon.tasks.checks.health import PastVolume

    with _transaction(target, f"reading the volume history of {model!r}") as cur:
        cur.execute(
            f"SELECT window_start, window_end, n_rows FROM mlmon.runs"
            f" WHERE model = %s AND status IN {_DONE_SQL} AND n_rows IS NOT NULL"
            " AND window_end <= %s AND window_start >= %s AND window_end - window_start = %s"
            " ORDER BY window_start DESC",
            (_text(model), window.start, window.start - timedelta(days=days), window.length),
        )
        return [PastVolume(Window(s, e), int(n)) for s, e, n in cur.fetchall()]


def replace_model_quality(
    target: Target,
    model: str,
    window: Window,
    checks: Iterable[CheckResult],
    metrics: Iterable[Any],
    *,
    metric_names: Iterable[str],
    n_labelled: int,
    label_coverage: float | None,
    categories: Iterable[str] = ("performance",),
) -> dict[str, int]:
    """Replace only the model-quality results of a stored window, in one transaction.

    Deletes the window's ``checks`` rows of ``categories`` (default: ``performance``; a late-label
    re-evaluation adds the label-dependent families') and its ``metrics`` rows named in
    ``metric_names`` (every segment), inserts ``checks`` and ``metrics`` (:class:`Metric`) in their place,
    sets ``runs.n_labelled``, ``runs.label_coverage`` and ``runs.labels_checked_at = now()``, and
    recomputes the run's verdict (``status``, ``n_failed_checks``, ``message``) from its checks, as
    :func:`write_window` does. Nothing else changes (drift, quality and health rows, the run's other
    counts and its report link). Refuses
    (:class:`StoreError`, nothing changed) when the window has no run row. Serialised with
    :func:`write_window` on the same window. Returns the rows inserted per table.
    """
    model_t = _text(model)
    key = (model_t, window.start, window.end)
    checks = list(checks)
    categories = sorted({str(k) for k in categories})
    if any(str(c.category) not in categories for c in checks):
        raise ValueError(
            f"replace_model_quality only writes checks of the categories it replaces: {categories}"
        )
    partial = WindowResult(
        model=model, window=window, computed_at=window.end, n_rows=0, n_quarantined=0, n_labelled=0,
        reference_hash="", checks=tuple(checks), metrics=tuple(metrics), drift=(), quarantine=(),
    )  # fmt: skip
    rows = _window_rows(model_t, partial)
    check_rows, metric_rows = list(rows["checks"]), list(rows["metrics"])
    names = sorted(set(metric_names) | {m.metric for m in partial.metrics})
    with _transaction(target, f"replacing model quality of {model!r} {window}") as cur:
        _lock_window(cur, model_t, window)
        cur.execute(
            "UPDATE mlmon.runs SET n_labelled = %s, label_coverage = %s, labels_checked_at = now()"
            " WHERE model = %s AND window_start = %s AND window_end = %s",
            (n_labelled, _number(label_coverage), *key),
        )
        if cur.rowcount != 1:
            raise StoreError(
                f"no stored run of {model!r} {window}: run the window first (mlmon run / backfill); "
                "model quality is only re-evaluated for processed windows"
            )
        cur.execute(
            "DELETE FROM mlmon.checks WHERE model = %s AND window_start = %s AND window_end = %s"
            " AND category = ANY(%s)",
            (*key, categories),
        )
        cur.execute(
            "DELETE FROM mlmon.metrics WHERE model = %s AND window_start = %s AND window_end = %s"
            " AND metric = ANY(%s)",
            (*key, names),
        )
        cur.copy_expert(_COPY["checks"], _csv(check_rows))
        cur.copy_expert(_COPY["metrics"], _csv(metric_rows))
        _refresh_verdict(cur, key)
    return {"checks": len(check_rows), "metrics": len(metric_rows)}


def _refresh_verdict(cur: psycopg2.extensions.cursor, key: tuple[Any, ...]) -> None:
    """Recompute ``runs.status``, ``n_failed_checks`` and ``message`` from the window's stored checks,
    exactly as :func:`write_window` derives them, unless the run is not a finished one (running, error)."""
    cur.execute(
        "SELECT check_name, category, status, feature, segment FROM mlmon.checks"
        " WHERE model = %s AND window_start = %s AND window_end = %s"
        " ORDER BY category, check_name, feature, segment",
        key,
    )
    checks = [
        CheckResult(name, Category(cat), Status(st), None, None, "", feature, segment)
        for name, cat, st, feature, segment in cur.fetchall()
    ]
    failed = sum(c.status in (Status.FAIL, Status.ERROR) for c in checks)
    cur.execute(
        f"UPDATE mlmon.runs SET status = %s, n_failed_checks = %s, message = %s"
        f" WHERE model = %s AND window_start = %s AND window_end = %s AND status IN {_DONE_SQL}",
        (str(Status.worst([c.status for c in checks])), failed, _text(run_message(checks)), *key),
    )


@dataclass(frozen=True)
class Purge:
    """What :func:`purge_windows` deleted (or, in a dry run, would delete)."""

    windows: tuple[tuple[str, Window], ...]  # (model, window) whose rows are deleted, oldest first
    rows: dict[str, int]  # rows per table, e.g. {"runs": 3, "metrics": 420, ...}
    running: tuple[tuple[str, Window], ...]  # old windows kept because their run is 'running'


def purge_windows(target: Target, older_than: datetime, *, dry_run: bool) -> Purge:
    """Delete, in one transaction, every row of every window that ended before ``older_than``, except
    windows whose run is ``running`` (a flow works on them now), and their ``mlmon.alerts`` rows; and the
    stored shard summaries that ended before it (outside a running window). ``dry_run`` counts the rows
    and deletes nothing."""
    with _transaction(target, f"deleting windows older than {older_than.isoformat()}") as cur:
        tables = [*WINDOW_TABLES, "alerts", "incidents"]
        # rows of a window being written are locked: a running window cannot slip in mid-purge
        cur.execute(
            "SELECT model, window_start, window_end FROM mlmon.runs"
            " WHERE window_end < %s AND status = 'running' ORDER BY window_start FOR UPDATE",
            (older_than,),
        )
        running = tuple((m, Window(s, e)) for m, s, e in cur.fetchall())
        union = " UNION ".join(
            f"SELECT model, window_start, window_end FROM mlmon.{t} WHERE window_end < %(cutoff)s"
            for t in tables  # constants of this module, never data
        )
        cur.execute(
            "CREATE TEMPORARY TABLE mlmon_purge ON COMMIT DROP AS"
            f" SELECT model, window_start, window_end FROM ({union}) AS w"
            " EXCEPT SELECT model, window_start, window_end FROM mlmon.runs"
            " WHERE window_end < %(cutoff)s AND status = 'running'",
            {"cutoff": older_than},
        )
        cur.execute("SELECT model, window_start, window_end FROM mlmon_purge ORDER BY window_start, model")
        windows = tuple((m, Window(s, e)) for m, s, e in cur.fetchall())
        rows: dict[str, int] = {}
        same = "x.model = p.model AND x.window_start = p.window_start AND x.window_end = p.window_end"
        for t in tables:
            if dry_run:
                cur.execute(f"SELECT count(*) FROM mlmon.{t} AS x JOIN mlmon_purge AS p ON {same}")
                rows[t] = cur.fetchone()[0]
            else:
                cur.execute(f"DELETE FROM mlmon.{t} AS x USING mlmon_purge AS p WHERE {same}")
                rows[t] = cur.rowcount
        # stored shard summaries (the sharded path) go by their own range, except inside a running window
        old_shards = (
            " FROM mlmon.window_summaries AS x WHERE x.shard_end < %s AND NOT EXISTS ("
            "SELECT 1 FROM mlmon.runs AS r WHERE r.model = x.model AND r.status = 'running'"
            " AND r.window_start <= x.shard_start AND x.shard_end <= r.window_end)"
        )
        if dry_run:
            cur.execute("SELECT count(*)" + old_shards, (older_than,))
            rows["window_summaries"] = cur.fetchone()[0]
        else:
            cur.execute("DELETE" + old_shards, (older_than,))
            rows["window_summaries"] = cur.rowcount
    return Purge(windows=windows, rows=rows, running=running)


# ---------------------------------------------------------------------------------------------- alerts


@contextmanager
def alert_claim(
    target: Target, model: str, window: Window, channel: str, *, fingerprint: str, status: str, n_failed: int
) -> Iterator[bool]:
    """Claim the right to announce ``fingerprint`` for (model, window) on ``channel``; yield whether it is
    new. Send inside the ``with`` block: the claim commits when the block ends and rolls back if it
    raises (the next run tries again). Concurrent claims of the same window wait for each other, so the
    same fingerprint is sent at most once."""
    key = (_text(model), window.start, window.end, _text(channel))
    with _transaction(target, f"recording the {channel} alert of {model!r} {window}") as cur:
        cur.execute(
            """
            INSERT INTO mlmon.alerts AS a
                (model, window_start, window_end, channel, fingerprint, status, n_failed)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (model, window_start, window_end, channel) DO UPDATE
                SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
                    n_failed = EXCLUDED.n_failed, sent_at = now()
                WHERE a.fingerprint <> EXCLUDED.fingerprint
            RETURNING 1
            """,
            (*key, fingerprint, status, n_failed),
        )
        yield cur.fetchone() is not None


@contextmanager
def alert_release(target: Target, model: str, window: Window, channel: str) -> Iterator[bool]:
    """The window passes again: delete its ``channel`` alert; yield whether there was one (then send
    "resolved" inside the block; if that raises, the row stays and the next run tries again)."""
    key = (_text(model), window.start, window.end, _text(channel))
    with _transaction(target, f"clearing the {channel} alert of {model!r} {window}") as cur:
        cur.execute(
            "DELETE FROM mlmon.alerts"
            " WHERE model = %s AND window_start = %s AND window_end = %s AND channel = %s RETURNING 1",
            key,
        )
        yield cur.fetchone() is not None


def window_checks(target: Target, model: str, window: Window) -> list[CheckResult]:
    """Every stored check of (model, window), ordered by category, check, feature and segment."""
    with _transaction(target, f"reading the checks of {model!r} {window}") as cur:
        cur.execute(
            "SELECT check_name, category, status, value, threshold, message, feature, segment"
            " FROM mlmon.checks WHERE model = %s AND window_start = %s AND window_end = %s"
            " ORDER BY category, check_name, feature, segment",
            (_text(model), window.start, window.end),
        )
        return [
            CheckResult(name, Category(cat), Status(st), value, threshold, msg, feature, segment)
            for name, cat, st, value, threshold, msg, feature, segment in cur.fetchall()
        ]


# ------------------------------------------------------------------------------------------- incidents


def previous_incidents(target: Target, model: str, window: Window) -> list[PreviousIncident]:
    """The incidents still open after the window processed last before ``window`` (none when that window
    had none, or when there is no earlier processed window)."""
    with _transaction(target, f"reading the incidents before {model!r} {window}") as cur:
        cur.execute(
            f"""
            SELECT incident_key, kind, subject, status, sentence, feature, opened_start, n_windows,
                   last_announced_start
            FROM mlmon.incidents i
            JOIN (SELECT window_start, window_end FROM mlmon.runs
                  WHERE model = %(model)s AND window_start < %(start)s AND status IN {_DONE_SQL}
                  ORDER BY window_start DESC LIMIT 1) p USING (window_start, window_end)
            WHERE i.model = %(model)s AND i.change_kind <> 'resolved'
            ORDER BY incident_key
            """,
            {"model": _text(model), "start": window.start},
        )
        return [
            PreviousIncident(key, IncidentKind(kind), subject, Status(st), sentence, feature, opened, n, last)
            for key, kind, subject, st, sentence, feature, opened, n, last in cur.fetchall()
        ]


def write_incidents(target: Target, model: str, window: Window, states: Iterable[IncidentState]) -> None:
    """Replace the incident rows of (model, window) in one transaction (re-runs never duplicate)."""
    key = (_text(model), window.start, window.end)
    rows = [
        (
            *key,
            _text(s.incident.key),
            s.incident.kind.value,
            _text(s.incident.subject),
            s.incident.status.value,
            s.change.value,
            _text(s.incident.sentence),
            _text(s.incident.feature),
            _text(s.incident.segments),
            s.incident.n_checks,
            s.opened_start,
            s.n_windows,
            s.announce,
            s.last_announced_start,
        )
        for s in states
        if s.incident.status is not Status.PASS
    ]
    with _transaction(target, f"writing the incidents of {model!r} {window}") as cur:
        cur.execute(
            "DELETE FROM mlmon.incidents WHERE model = %s AND window_start = %s AND window_end = %s", key
        )
        if rows:
            cur.executemany(
                "INSERT INTO mlmon.incidents (model, window_start, window_end, incident_key, kind, subject,"
                " status, change_kind, sentence, feature, segments, n_checks, opened_start, n_windows,"
                " announced, last_announced_start)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )


# ---------------------------------------------------------------------------------------------- trends


@dataclass(frozen=True)
class HistoryPoint:
    """One stored value of a past window: a metric row, or ``n_rows`` from the run row (metric "n_rows")."""

    window_start: datetime
    window_end: datetime
    metric: str
    feature: str
    value: float | None


def metric_history(
    target: Target, model: str, before: datetime, n: int, metrics: Iterable[str], features: Iterable[str] = ()
) -> list[HistoryPoint]:
    """The whole-window values of ``metrics`` (window-level, and per column of ``features``) and the row
    count of the last ``n`` processed windows of ``model`` starting before ``before``, oldest first."""
    with _transaction(target, f"reading the trend history of {model!r}") as cur:
        cur.execute(
            f"""
            WITH w AS (SELECT window_start, window_end, n_rows FROM mlmon.runs
                       WHERE model = %(model)s AND window_start < %(before)s AND status IN {_DONE_SQL}
                       ORDER BY window_start DESC LIMIT %(n)s)
            SELECT w.window_start, w.window_end, 'n_rows', '', w.n_rows::double precision FROM w
            UNION ALL
            SELECT m.window_start, m.window_end, m.metric, m.feature, m.value
            FROM mlmon.metrics m JOIN w USING (window_start, window_end)
            WHERE m.model = %(model)s AND m.segment = 'all' AND m.metric = ANY(%(metrics)s)
              AND (m.feature = '' OR m.feature = ANY(%(features)s))
            ORDER BY 1, 3, 4
            """,
            {
                "model": _text(model),
                "before": before,
                "n": int(n),
                "metrics": [_text(m) for m in metrics],
                "features": [_text(f) for f in features],
            },
        )
        return [HistoryPoint(*row) for row in cur.fetchall()]


# --------------------------------------------------------------------------- shard summaries (0007)


def write_summaries(target: Target, model: str, rows: Iterable[tuple[Window, str, int, bytes]]) -> int:
    """Store per-shard summaries ``(shard, plan_key, n_rows, bytes)``; a re-run replaces its shards."""
    n = 0
    with _transaction(target, f"writing the shard summaries of {model!r}") as cur:
        for shard, plan_key, n_rows, data in rows:
            cur.execute(
                "INSERT INTO mlmon.window_summaries (model, shard_start, shard_end, plan_key, n_rows, summary)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (model, shard_start, shard_end) DO UPDATE SET"
                " plan_key = EXCLUDED.plan_key, n_rows = EXCLUDED.n_rows, summary = EXCLUDED.summary,"
                " computed_at = now()",
                (model, shard.start, shard.end, plan_key, n_rows, psycopg2.Binary(data)),
            )
            n += 1
    return n


def read_summaries(target: Target, model: str, window: Window) -> list[tuple[Window, str, bytes]]:
    """The stored shard summaries inside ``window``, in time order: ``(shard, plan_key, bytes)``."""
    with _transaction(target, f"reading the shard summaries of {model!r} {window}") as cur:
        cur.execute(
            "SELECT shard_start, shard_end, plan_key, summary FROM mlmon.window_summaries"
            " WHERE model = %s AND shard_start >= %s AND shard_end <= %s ORDER BY shard_start",
            (model, window.start, window.end),
        )
        return [(Window(a, b), key, bytes(data)) for a, b, key, data in cur.fetchall()]
