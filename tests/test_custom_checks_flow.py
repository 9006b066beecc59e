"""A business KPI from an installed package, end to end: a real Prefect flow run reads MongoDB over the
wire, computes the KPIs from logged business fields, stores them in PostgreSQL, reports and alerts them;
a KPI that raises is an ``error`` and the rest of the window is kept."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.plugins import ensure_kpi_plugin
from tests.postgres import rows
from tests.receiver import receiver

pytestmark = [pytest.mark.integration, pytest.mark.prefect]

START = datetime(2026, 3, 2, tzinfo=UTC)
PER_DAY = 600
WEBHOOK_ENV = "MLMON_TEST_KPI_WEBHOOK"


def documents(day: int, conversion: float, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    t0 = START + timedelta(days=day)
    docs = []
    for i in range(PER_DAY):
        converted = bool(rng.uniform() < conversion)
        docs.append(
            {
                "request_id": f"{day}-{i}", "model_name": "shop", "model_version": "v1",
                "timestamp": t0 + timedelta(seconds=i * 86400 / PER_DAY),
                "features": {"basket": float(rng.gamma(2.0, 20.0)), "channel": str(rng.choice(["web", "app"]))},
                "prediction": {"value": "buy" if rng.uniform() < 0.4 else "skip"},
                "outcome": {"converted": converted, "revenue": float(rng.gamma(4.0, 3.0)) if converted else 0.0},
                "latency_ms": float(rng.gamma(2.0, 5.0)), "status": "ok",
            }
        )  # fmt: skip
    return docs


@pytest.fixture(scope="module")
def kpi_env(mongo_uri: str, pg_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    import pymongo
    from prefect.testing.utilities import prefect_test_harness

    from mlmon.tasks import reference
    from mlmon.tasks.config import load_config

    ensure_kpi_plugin()
    tmp = tmp_path_factory.mktemp("kpi")
    database = f"kpi_{uuid.uuid4().hex[:8]}"
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, tz_aware=True)
    coll = client[database]["predictions"]
    coll.insert_many(documents(0, 0.30, 1))  # the reference day
    coll.insert_many(documents(1, 0.08, 2))  # conversion collapses: the KPI fails
    model = {
        "source": {"database": database, "filter": {"model_name": "shop"}},
        "features": {"basket": {"type": "numerical"}, "channel": {"type": "categorical"}},
        "task": "binary", "classes": ["buy", "skip"], "positive_class": "buy",
        "reference": {"path": str(tmp / "shop.parquet")},
        "business_fields": {"converted": {"path": "outcome.converted", "type": "boolean"},
                            "revenue": {"path": "outcome.revenue"}},
        "checks": {
            "conversion_rate": {"function": "rate", "params": {"column": "converted"}, "min": 0.2},
            "revenue_per_conversion": {"params": {"revenue": "revenue", "converted": "converted"}, "min": 1.0},
            "margin_per_prediction": {"params": {"revenue": "revenue"}},  # `cost` is not logged: raises
        },
        "evidently": {"enabled": False},
        "alerts": {"webhook_env": WEBHOOK_ENV},
    }  # fmt: skip
    cfg_path = tmp / "models.yaml"
    cfg_path.write_text(yaml.safe_dump({"models": {"shop": model}}))
    cfg = load_config(cfg_path).model("shop")
    reference.build_from_mongo(mongo_uri, cfg, START, START + timedelta(days=1), cfg.reference_path)
    with receiver() as hook, prefect_test_harness(server_startup_timeout=60):
        env = {
            "MLMON_MONGO_URI": mongo_uri, "MLMON_POSTGRES_URI": pg_uri, "MLMON_HOME": str(tmp / "home"),
            "MLMON_CONFIG": str(cfg_path), "MLMON_REPORTS_DIR": str(tmp / "reports"), WEBHOOK_ENV: hook.url,
        }  # fmt: skip
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            yield {"env": env, "hook": hook, "config": str(cfg_path)}
    client.drop_database(database)
    client.close()


def test_a_kpi_from_an_installed_package_is_computed_stored_reported_and_alerted(kpi_env: dict) -> None:
    from mlmon.flows.monitor import monitor_window

    start, end = START + timedelta(days=1), START + timedelta(days=2)
    summary = monitor_window("shop", start, end, kpi_env["config"])
    pg = kpi_env["env"]["MLMON_POSTGRES_URI"]

    assert summary["status"] == "error"  # the raising KPI; the collapse of conversion fails too
    assert {"conversion_rate::all", "margin_per_prediction::all"} <= set(summary["failed_checks"])
    custom = {
        name: (status, value, threshold, message)
        for name, status, value, threshold, message in rows(
            pg,
            "select check_name, status, value, threshold, message from mlmon.checks "
            "where model = 'shop' and window_start = %s and category = 'custom' and segment = 'all'",
            start,
        )
    }
    assert set(custom) == {"conversion_rate", "revenue_per_conversion", "margin_per_prediction"}
    status, value, threshold, _ = custom["conversion_rate"]
    assert status == "fail" and 0.04 < value < 0.12 and threshold == 0.2
    assert custom["revenue_per_conversion"][0] == "pass" and 8 < custom["revenue_per_conversion"][1] < 16
    status, value, _, message = custom["margin_per_prediction"]
    assert status == "error" and value is None and "KeyError" in message and "cost" in message

    # the rest of the window is kept: drift, quality, health results and the run row
    (n_drift,) = rows(
        pg, "select count(*) from mlmon.drift where model = 'shop' and window_start = %s", start
    )[0]
    other = rows(
        pg, "select distinct category from mlmon.checks where model = 'shop' and window_start = %s", start
    )
    assert n_drift >= 3 and {"drift", "quality", "health", "custom"} <= {c for (c,) in other}
    ((metric,),) = rows(
        pg, "select value from mlmon.metrics where model = 'shop' and window_start = %s "
        "and metric = 'conversion_rate' and segment = 'all'", start,
    )  # fmt: skip
    assert metric == pytest.approx(custom["conversion_rate"][1])
    assert rows(pg, "select status from mlmon.runs where model = 'shop' and window_start = %s", start) == [
        ("error",)
    ]

    # reported: the window's HTML report has the custom-checks section with all three
    (page,) = [
        p
        for p in Path(kpi_env["env"]["MLMON_REPORTS_DIR"]).glob("shop/*.html")
        if ".evidently." not in p.name
    ]
    html = page.read_text()
    assert 'id="custom"' in html and "revenue_per_conversion" in html and "no column &#39;cost&#39;" in html

    # alerted: the webhook names the failed KPI and the errored one
    posts = [json.dumps(p) for p in kpi_env["hook"].bodies()]
    assert len(posts) == 1 and "conversion_rate" in posts[0] and "margin_per_prediction" in posts[0]
