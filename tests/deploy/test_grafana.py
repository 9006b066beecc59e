"""Grafana provisioning: the dashboards, the data source and the alert rules.

Static checks read the files; the integration tests run every panel, variable and alert query, with
Grafana's macros and variables expanded as Grafana would (tests/deploy/grafana.py), against the real
migrated schema filled by the writer, as the read-only role grafana_reader, and check the result has
the shape the panel needs (a sorted time column and numeric values for a time series; the columns the
data links and overrides name for a table; one labelled number per model for an alert).
"""

from __future__ import annotations

import importlib.util
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml

from mlmon.tasks.checks.outcome import Category, Status
from tests.deploy import compose, grafana
from tests.deploy.compose import ROOT
from tests.deploy.conftest import (
    DAYS,
    FEATURES,
    MODEL,
    QUOTED_MODEL,
    TIME_RANGE_END,
    TIME_RANGE_START,
    Backfilled,
    Monitored,
    Roles,
)
from tests.store.factories import window

TIME_RANGE = grafana.TimeRange(TIME_RANGE_START, TIME_RANGE_END)
TEXT = {19, 25, 1042, 1043}  # name, text, bpchar, varchar
NUMBER = {20, 21, 23, 700, 701, 1700}  # int8, int2, int4, float4, float8, numeric
TIME = {1082, 1114, 1184}  # date, timestamp, timestamptz
ALL_DASHBOARDS = grafana.dashboards()
# The SQL dashboards on the mlmon metrics database; the live one (Prometheus) is checked on a real
# Prometheus by tests/test_live_prometheus.py and by the file checks below.
DASHBOARDS = {n: d for n, d in ALL_DASHBOARDS.items() if d["uid"] != "mlmon-live"}
DATASOURCES = [d for f in grafana.provisioning("datasources").values() for d in f["datasources"]]
(DATASOURCE,) = [d for d in DATASOURCES if d["type"] == "grafana-postgresql-datasource"]
(PROMETHEUS,) = [d for d in DATASOURCES if d["type"] == "prometheus"]
RULES = [r for f in grafana.provisioning("alerting").values() for g in f["groups"] for r in g["rules"]]


def targets() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(dashboard file, panel, target) for every query of every panel."""
    for name, dash in DASHBOARDS.items():
        for panel in grafana.panels(dash):
            for target in panel.get("targets", []):
                yield name, panel, target


def all_sql() -> list[str]:
    queries = [t["rawSql"] for _, _, t in targets()]
    queries += [
        v["query"] for d in DASHBOARDS.values() for v in grafana.variables(d).values() if v["type"] == "query"
    ]
    queries += [q["model"]["rawSql"] for r in RULES for q in r["data"] if "rawSql" in q["model"]]
    return queries


# ------------------------------------------------------------------------------------------- files


def test_the_dashboards_are_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "grafana_dashboards", ROOT / "deployments/grafana_dashboards.py"
    )
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    rendered = generator.render()
    assert sorted(rendered) == sorted(ALL_DASHBOARDS), "a dashboard file is missing or not generated"
    for name, text in rendered.items():
        on_disk = (grafana.DASHBOARDS / name).read_text(encoding="utf-8")
        assert on_disk == text, f"{name} is out of date: run `python deployments/grafana_dashboards.py`"


def test_dashboards_have_unique_uids_titles_and_panel_ids() -> None:
    assert len(DASHBOARDS) == 6 and len(ALL_DASHBOARDS) == 7
    uids = [d["uid"] for d in ALL_DASHBOARDS.values()]
    titles = [d["title"] for d in ALL_DASHBOARDS.values()]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)
    for name, dash in ALL_DASHBOARDS.items():
        assert re.fullmatch(r"[a-z0-9-]{1,40}", dash["uid"]), f"{name}: uid {dash['uid']!r}"
        assert dash["id"] is None, f"{name}: provisioned dashboards must not carry a database id"
        ids = [p["id"] for p in grafana.panels(dash)]
        assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"


def test_panels_fit_the_grid_without_overlapping() -> None:
    for name, dash in ALL_DASHBOARDS.items():
        cells: Counter[tuple[int, int]] = Counter()
        for p in grafana.panels(dash):
            g = p["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24, f"{name}: {p['title']} is off the grid"
            cells.update(itertools.product(range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])))
        assert max(cells.values()) == 1, f"{name}: panels overlap"


def test_every_query_uses_the_provisioned_data_source() -> None:
    assert DATASOURCE["uid"] == "mlmon-postgres" and DATASOURCE["user"] == "grafana_reader"
    ref = {"type": DATASOURCE["type"], "uid": DATASOURCE["uid"]}
    for name, panel, target in targets():
        assert panel["datasource"] == ref and target["datasource"] == ref, f"{name}: {panel['title']}"
        assert target["rawQuery"] is True and target["editorMode"] == "code", f"{name}: {panel['title']}"
        assert target["format"] in ("time_series", "table"), f"{name}: {panel['title']}"
    for name, dash in DASHBOARDS.items():
        for var in grafana.variables(dash).values():
            if var["type"] == "query":
                assert var["datasource"] == ref, f"{name}: variable {var['name']}"


def test_every_variable_used_is_defined() -> None:
    for name, dash in ALL_DASHBOARDS.items():
        defined = grafana.variables(dash)
        texts = [link.get("url", "") for link in dash["links"]]
        texts += [v.get("query", "") for v in defined.values()]
        for panel in grafana.panels(dash):
            texts += [panel.get("title", ""), panel.get("options", {}).get("content", "")]
            texts += [t.get("rawSql") or t["expr"] for t in panel.get("targets", [])]
            field = panel.get("fieldConfig", {})
            links = [*field.get("defaults", {}).get("links", [])]
            links += [
                p["value"][0]
                for o in field.get("overrides", [])
                for p in o["properties"]
                if p["id"] == "links"
            ]
            texts += [link["url"] for link in links]
        used = set().union(*(grafana.variable_names(t) for t in texts))
        assert used <= set(defined), f"{name}: undefined variables {sorted(used - set(defined))}"


def test_the_dashboards_offer_model_feature_and_segment_variables() -> None:
    expected = {
        "overview.json": {"model", "reports_url", "prefect_url"},
        "drift.json": {"model", "segment", "feature", "reports_url"},
        "quality.json": {"model", "segment", "feature", "reports_url"},
        "performance.json": {"model", "segment", "reports_url"},
        "health.json": {"model", "segment", "reports_url"},
        "model_health.json": {"model", "segment", "reports_url"},
    }
    assert {n: set(grafana.variables(d)) for n, d in DASHBOARDS.items()} == expected


def test_the_report_links_default_to_the_env_examples_urls() -> None:
    env = compose.env_file()
    for name, dash in ALL_DASHBOARDS.items():
        variables = grafana.variables(dash)
        assert variables["reports_url"]["query"] == env["MLMON_REPORTS_URL"], name
        if "prefect_url" in variables:
            assert variables["prefect_url"]["query"] == env["PREFECT_PUBLIC_URL"], name


def test_the_live_dashboard_reads_the_provisioned_prometheus() -> None:
    live = ALL_DASHBOARDS["live.json"]
    ref = {"type": "prometheus", "uid": PROMETHEUS["uid"]}
    assert PROMETHEUS["uid"] == "mlmon-prometheus" and PROMETHEUS["url"] == "http://prometheus:9090"
    assert set(grafana.variables(live)) == {"model", "reports_url"}
    assert grafana.variables(live)["model"]["datasource"] == ref
    queries = [(p, t) for p in grafana.panels(live) for t in p.get("targets", [])]
    assert len(queries) >= 10
    for panel, target in queries:
        assert panel["datasource"] == ref and target["datasource"] == ref, panel["title"]
    # the datasource's interval is the compose Prometheus's scrape interval ($__rate_interval uses it)
    prometheus_yml = yaml.safe_load((ROOT / "deployments/prometheus/prometheus.yml").read_text())
    assert PROMETHEUS["jsonData"]["timeInterval"] == prometheus_yml["global"]["scrape_interval"]


def test_every_table_that_shows_a_window_links_to_its_report() -> None:
    for name, panel, target in targets():
        if "report_path" not in target["rawSql"]:
            continue
        links = panel["fieldConfig"]["defaults"].get("links", [])
        assert [link["url"] for link in links] == ["${reports_url}/${__data.fields.report_path}"], name


def test_provisioning_variables_are_set_for_grafana_and_alert_templates_avoid_dollars() -> None:
    grafana_env = compose.environment(compose.load()["services"]["grafana"])
    for kind in ("datasources", "dashboards"):
        for path in (grafana.PROVISIONING / kind).glob("*.yaml"):
            text = re.sub(r"#.*", "", path.read_text(encoding="utf-8"))
            used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))
            assert used <= set(grafana_env), (
                f"{path.name}: {sorted(used - set(grafana_env))} not set for grafana"
            )
    assert "GRAFANA_READER_PASSWORD" in DATASOURCE["secureJsonData"]["password"]
    for path in (grafana.PROVISIONING / "alerting").glob("*.yaml"):
        body = re.sub(r"#.*", "", path.read_text(encoding="utf-8"))
        assert "$" not in body, f"{path.name}: Grafana would expand $… as an environment variable"


# ---------------------------------------------------------------------------------- names vs code


def produced(kind: str) -> tuple[set[str], list[re.Pattern[str]]]:
    """Names the engine writes: literal names, and f-string templates as patterns."""
    call = r"Metric\(\s*" if kind == "metric" else r"(?:CheckResult\(\s*(?:check=)?|_check\(\s*)"
    literal: set[str] = set()
    patterns = []
    for path in (ROOT / "tasks").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        literal |= set(re.findall(call + r'"([a-z0-9_]+)"', text))
        for template in re.findall(call + r'f"([a-z0-9_{}]+)"', text):
            patterns.append(re.compile(re.sub(r"\{[^}]*\}", "[a-z0-9_]+", template) + "$"))
    if kind == "metric":
        from mlmon.tasks.checks.performance import CLASSIFICATION_METRICS, REGRESSION_METRICS

        literal |= set(CLASSIFICATION_METRICS) | set(REGRESSION_METRICS)  # Metric(name, ...) over these
    return literal, patterns


def names_in_sql(column: str) -> set[str]:
    found = set()
    for q in all_sql():
        found |= set(re.findall(rf"\b{column}\s*(?:=|<>)\s*'([^']+)'", q))
        for group in re.findall(rf"\b{column}\s+IN\s*\(([^)]*)\)", q):
            found |= set(re.findall(r"'([^']+)'", group))
    return found


@pytest.mark.parametrize("kind, column", [("metric", "metric"), ("check", "check_name")])
def test_every_metric_and_check_queried_is_one_the_engine_writes(kind: str, column: str) -> None:
    literal, patterns = produced(kind)
    queried = names_in_sql(column)
    assert len(queried) >= (20 if kind == "metric" else 4)
    unknown = sorted(n for n in queried if n not in literal and not any(p.match(n) for p in patterns))
    assert not unknown, f"{column} values no code under tasks/ writes: {unknown}"


def test_categories_and_statuses_queried_exist() -> None:
    assert names_in_sql("category") <= {c.value for c in Category}
    assert names_in_sql("status") <= {s.value for s in Status} | {"running"}


# ------------------------------------------------------------------------------------- alert rules


def test_alert_rules_are_well_formed_and_point_at_real_panels() -> None:
    uids = [r["uid"] for r in RULES]
    assert len(set(uids)) == len(uids) >= 5
    by_uid = {d["uid"]: d for d in DASHBOARDS.values()}
    provider = grafana.provisioning("dashboards")["mlmon.yaml"]["providers"][0]
    for group in (g for f in grafana.provisioning("alerting").values() for g in f["groups"]):
        assert group["folder"] == provider["folder"]
    for rule in RULES:
        refs = {q["refId"]: q for q in rule["data"]}
        assert rule["condition"] in refs, rule["uid"]
        for q in rule["data"]:
            assert q["datasourceUid"] in (DATASOURCE["uid"], "__expr__"), rule["uid"]
            assert q["model"]["refId"] == q["refId"]
            if q["datasourceUid"] == DATASOURCE["uid"]:
                assert q["model"]["format"] == "table", f"{rule['uid']}: numeric alerting needs table format"
            else:
                assert q["model"]["expression"] in refs, rule["uid"]
        panel_ids = {p["id"] for p in grafana.panels(by_uid[rule["dashboardUid"]])}
        assert rule["panelId"] in panel_ids, f"{rule['uid']}: no panel {rule['panelId']}"
        assert rule["labels"]["service"] == "mlmon" and rule["annotations"]["summary"]


# ---------------------------------------------------------------------------- queries, for real


def run(dsn: str, sql: str) -> tuple[list[str], list[int], list[tuple]]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            names = [d.name for d in cur.description]
            return names, [d.type_code for d in cur.description], cur.fetchall()
    finally:
        conn.close()


def choices(
    dsn: str, dash: dict[str, Any], prefer: dict[str, Any], time_range: grafana.TimeRange | None = None
) -> dict[str, grafana.Value]:
    """A value for every variable, in order, as Grafana would pick them: query variables are run (as
    the reader, with the values chosen so far). ``prefer`` picks a value (a list for a multi-value
    variable); otherwise a multi-value variable gets All (every option), a single one its first option."""
    variables = grafana.variables(dash)
    values: dict[str, grafana.Value] = {}
    for name, var in variables.items():
        if var["type"] == "textbox":
            values[name] = var["query"]
            continue
        _, types, rows = run(dsn, grafana.expand(var["query"], variables, values, time_range or TIME_RANGE))
        assert types[0] in TEXT, f"variable {name}: the first column must be text"
        options = [r[0] for r in rows]
        wanted = prefer.get(name, "all")
        if var["multi"]:  # a list picks those values; anything else means All
            values[name] = wanted if isinstance(wanted, list) else options
        else:
            values[name] = (options[0] if options else "") if wanted == "all" else wanted
    return values


def shape_problems(panel: dict[str, Any], target: dict[str, Any], names: list[str], types: list[int],
                   rows: list[tuple]) -> list[str]:  # fmt: skip
    """Why Grafana could not draw this result in this panel (an empty list when it can)."""
    problems = []
    if len(set(names)) != len(names):
        problems.append(f"duplicate column names {names}")
    field = panel.get("fieldConfig", {})
    links = [*field.get("defaults", {}).get("links", [])]
    links += [
        p["value"][0] for o in field.get("overrides", []) for p in o["properties"] if p["id"] == "links"
    ]
    for link in links:
        for column in re.findall(r"\$\{__data\.fields\.(\w+)\}", link["url"]):
            if column not in names:
                problems.append(f"data link needs column {column}")
    for o in field.get("overrides", []):
        if o["matcher"]["id"] == "byName" and o["matcher"]["options"] not in names:
            problems.append(f"override names column {o['matcher']['options']!r}, not returned")
    if target["format"] == "time_series":
        if "time" not in names:
            return [*problems, f"time series without a time column: {names}"]
        t = names.index("time")
        if types[t] not in TIME:
            problems.append("the time column is not a timestamp")
        others = [i for i in range(len(names)) if i != t]
        if bad := [names[i] for i in others if types[i] not in TEXT | NUMBER]:
            problems.append(f"columns neither text (labels) nor numbers (values): {bad}")
        if not [i for i in others if types[i] in NUMBER]:
            problems.append("no numeric value column")
        times = [r[t] for r in rows]
        if None in times:
            problems.append("NULL time")
        elif times != sorted(times):
            problems.append("rows are not ordered by time (Grafana's long-to-wide conversion fails)")
        labels = [tuple(r[i] for i in [t, *others] if types[i] in TEXT | TIME) for r in rows]
        if len(set(labels)) != len(labels):
            problems.append("two rows for the same time and series")
    if panel["type"] == "state-timeline":
        allowed = {int(k) for k in panel["fieldConfig"]["defaults"]["mappings"][0]["options"]}
        values = {r[i] for r in rows for i, ty in enumerate(types) if ty in NUMBER}
        if not values <= allowed:
            problems.append(f"values {values - allowed} have no colour mapping")
    if panel["type"] == "stat" and (len(rows) != 1 or types[0] not in NUMBER):
        problems.append("a stat panel needs one row with a number")
    return problems


PANEL_QUERIES = [
    pytest.param(name, panel, target, id=f"{name[:-5]}-{panel['id']}{target['refId']}-{panel['title']}")
    for name, panel, target in targets()
]


@pytest.mark.integration
@pytest.mark.parametrize("name, panel, target", PANEL_QUERIES)
def test_every_panel_query_runs_as_the_reader_and_fits_its_panel(
    monitored: Monitored, name: str, panel: dict[str, Any], target: dict[str, Any]
) -> None:
    dash = DASHBOARDS[name]
    variables = grafana.variables(dash)
    # what a user sees first: the model with data, segment all, every feature
    main = choices(monitored.reader, dash, {"model": MODEL, "segment": "all"})
    if variables["model"]["multi"]:
        assert sorted(main["model"]) == sorted([MODEL, QUOTED_MODEL])
    if "feature" in variables:
        assert set(FEATURES) <= set(main["feature"])
    sql = grafana.expand(target["rawSql"], variables, main, TIME_RANGE)
    names, types, rows = run(monitored.reader, sql)
    assert rows, f"no rows for {MODEL}, segment all:\n{sql}"
    assert not shape_problems(panel, target, names, types, rows), sql
    # the other forms the variables take: quotes in values, one value of a multi-value variable, none
    others = [
        {"model": [QUOTED_MODEL] if variables["model"]["multi"] else QUOTED_MODEL, "segment": "plan=o'brien",
         "feature": ["f0"]},
        {"model": [], "segment": "model_version=v1", "feature": []},
    ]  # fmt: skip
    for prefer in others:
        values = {**main, **{k: v for k, v in prefer.items() if k in variables}}
        if not variables["model"]["multi"] and values["model"] == []:
            values["model"] = ""
        sql = grafana.expand(target["rawSql"], variables, values, TIME_RANGE)
        names, types, rows = run(monitored.reader, sql)
        assert not shape_problems(panel, target, names, types, rows), sql


@pytest.mark.integration
def test_every_panel_query_fits_its_panel_after_a_demo_backfill(demo_backfilled: Backfilled) -> None:
    """The simulator's week through the real engine (not factory rows): every panel, as the reader, with
    the variables as a user first sees them, returns rows of the panel's shape."""
    d = demo_backfilled
    span = grafana.TimeRange(d.windows[0].start, d.windows[-1].end)
    empty = []
    for name, panel, target in targets():
        dash = DASHBOARDS[name]
        variables = grafana.variables(dash)
        values = choices(d.reader, dash, {"model": d.model, "segment": "all"}, span)
        if variables["model"]["multi"]:
            assert values["model"] == [d.model]
        sql = grafana.expand(target["rawSql"], variables, values, span)
        names, types, rows = run(d.reader, sql)
        if not rows:
            empty.append(f"{name}: {panel['title']}")
        assert not shape_problems(panel, target, names, types, rows), f"{name}: {panel['title']}\n{sql}"
    # A week with a drift episode, a quality incident, a latency spike and a worse shadow challenger on
    # its last day (which fills the latest window's failing checks) fills every panel, except the
    # regression panels (the demo model is a classifier) and the open incidents (this backfill writes
    # windows, not incidents).
    assert sorted(empty) == [
        "overview.json: Open incidents (latest windows)",
        "performance.json: MAPE and R²",
        "performance.json: Regression errors",
    ]


@pytest.mark.integration
def test_every_panel_works_on_an_empty_database(roles: Roles) -> None:
    """Right after `docker compose up`: schema migrated, no run yet, so every variable has no option."""
    from mlmon.tasks.store import store

    store.migrate(roles.writer)
    for name, panel, target in targets():
        dash = DASHBOARDS[name]
        variables = grafana.variables(dash)
        values = choices(roles.reader, dash, {})
        assert all(v in ([], "") for k, v in values.items() if variables[k]["type"] == "query")
        _, _, rows = run(roles.reader, grafana.expand(target["rawSql"], variables, values, TIME_RANGE))
        if panel["type"] == "stat":
            continue  # count(*) and friends return one row of 0 / NULL, which Grafana shows as such
        assert rows == [], f"{name}: {panel['title']}"


@pytest.mark.integration
def test_the_segment_variable_lists_all_first(monitored: Monitored) -> None:
    dash = DASHBOARDS["drift.json"]
    values = choices(monitored.reader, dash, {"model": MODEL})
    variables = grafana.variables(dash)
    _, _, rows = run(
        monitored.reader, grafana.expand(variables["segment"]["query"], variables, values, TIME_RANGE)
    )
    assert [r[0] for r in rows] == ["all", "model_version=v1", "plan=o'brien"]


def evaluate(rule: dict[str, Any], dsn: str) -> dict[tuple[str, ...], bool]:
    """Run the rule's query like Grafana's numeric (tabular) alerting: label set -> condition met."""
    refs = {q["refId"]: q for q in rule["data"]}
    condition = refs[rule["condition"]]["model"]
    assert condition["type"] == "threshold"
    query = refs[condition["expression"]]["model"]
    names, types, rows = run(dsn, grafana.expand_macros(query["rawSql"], TIME_RANGE))
    numeric = [i for i, t in enumerate(types) if t in NUMBER]
    assert len(numeric) == 1, f"{rule['uid']}: numeric alerting needs exactly one numeric column: {names}"
    assert all(t in TEXT for i, t in enumerate(types) if i != numeric[0]), f"{rule['uid']}: {names}"
    labels = [tuple(v for i, v in enumerate(r) if i != numeric[0]) for r in rows]
    assert len(set(labels)) == len(labels), f"{rule['uid']}: two rows with the same labels"
    (evaluator,) = [c["evaluator"] for c in condition["conditions"]]
    op = {"gt": float.__gt__, "lt": float.__lt__}[evaluator["type"]]
    return {
        lab: op(float(r[numeric[0]]), float(evaluator["params"][0]))
        for lab, r in zip(labels, rows, strict=True)
    }


@pytest.mark.integration
def test_alert_rules_fire_for_the_failing_model_only(monitored: Monitored) -> None:
    now = datetime.now(UTC)
    lag = {MODEL: window(DAYS - 1), QUOTED_MODEL: window(1)}
    stale = {(m,): (now - w.end) / (w.end - w.start) > 2 for m, w in lag.items()}
    expected = {
        "mlmon-latest-window-failed": {(MODEL,): True, (QUOTED_MODEL,): False},  # o'reilly's is running
        "mlmon-error-rate": {(MODEL,): True, (QUOTED_MODEL,): False},
        "mlmon-latency-p95": {(MODEL,): True, (QUOTED_MODEL,): False},
        "mlmon-dataset-drift": {(MODEL,): True, (QUOTED_MODEL,): False},
        "mlmon-stale": stale,
    }
    assert {r["uid"]: evaluate(r, monitored.reader) for r in RULES} == expected


@pytest.mark.integration
def test_alert_rules_see_nothing_on_an_empty_database(roles: Roles) -> None:
    from mlmon.tasks.store import store

    store.migrate(roles.writer)
    assert {r["uid"]: evaluate(r, roles.reader) for r in RULES} == {r["uid"]: {} for r in RULES}


def test_the_generator_script_runs_in_check_mode() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / "deployments/grafana_dashboards.py"), "--check"],
        capture_output=True, text=True, check=False, cwd=Path(ROOT),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
