"""Generate the mlmon Grafana dashboards (deployments/grafana/dashboards/*.json).

    python deployments/grafana_dashboards.py           # rewrite the JSON files
    python deployments/grafana_dashboards.py --check   # exit 1 when a committed file is out of date

Grafana provisions the JSON files read-only (provisioning/dashboards/mlmon.yaml): change a dashboard
here, re-run this script and commit both. tests/deploy/test_grafana.py checks the files are current and
runs every query below, with Grafana's macros and variables expanded, against the real migrated schema
as the read-only role ``grafana_reader``.

Every panel reads the ``mlmon`` schema (tasks/store/SCHEMA.md) through the data source provisioned with
uid ``mlmon-postgres``. Conventions used by every query:

* a time-series query returns a ``time`` column (``window_start``), an optional ``metric`` column that
  names the series, and numeric values, ordered by time (Grafana needs them sorted);
* variables are written ``${var:sqlstring}`` (Grafana quotes and escapes each value); a multi-value
  variable is matched with ``= ANY (ARRAY[${var:sqlstring}]::text[])``, which stays valid when nothing
  is selected yet (an empty database), where ``IN ()`` would be a syntax error;
* tables that show a window link every row to its HTML report: ``${reports_url}/<runs.report_path>``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path
from textwrap import dedent
from typing import Any

OUT = Path(__file__).resolve().parent / "grafana" / "dashboards"
DATASOURCE = {"type": "grafana-postgresql-datasource", "uid": "mlmon-postgres"}
REPORTS_URL = "http://localhost:8080"
"""Default of the ``reports_url`` variable; keep it equal to MLMON_REPORTS_URL (.env.example)."""
PREFECT_URL = "http://localhost:4200"
"""Default of the ``prefect_url`` variable (the Prefect UI, for links to flow runs)."""
TAG = "mlmon"

Json = dict[str, Any]

# ------------------------------------------------------------------------------------------ filters

MODEL = "model = ${model:sqlstring}"
MODELS = "model = ANY (ARRAY[${model:sqlstring}]::text[])"
SEGMENT = "segment = ${segment:sqlstring}"
FEATURES = "feature = ANY (ARRAY[${feature:sqlstring}]::text[])"
IN_RANGE = "$__timeFilter(window_start)"

SEVERITY = (
    "CASE status WHEN 'pass' THEN 0 WHEN 'warn' THEN 1 WHEN 'fail' THEN 2 WHEN 'error' THEN 3 ELSE -1 END"
)
REPORT_LINK = {
    "title": "Open the HTML report of this window",
    "url": "${reports_url}/${__data.fields.report_path}",
    "targetBlank": True,
}
FLOW_RUN_LINK = {
    "title": "Open this flow run in Prefect",
    "url": "${prefect_url}/runs/flow-run/${__data.fields.flow_run_id}",
    "targetBlank": True,
}
STATUS_COLORS = {"pass": "green", "warn": "yellow", "fail": "red", "error": "dark-red", "running": "blue"}
STATUS_MAPPINGS = [
    {
        "type": "value",
        "options": {
            status: {"text": status, "color": color, "index": i}
            for i, (status, color) in enumerate(STATUS_COLORS.items())
        },
    }
]
SEVERITY_MAPPINGS = [
    {
        "type": "value",
        "options": {
            str(value): {"text": status, "color": STATUS_COLORS[status], "index": i}
            for i, (value, status) in enumerate(
                [(-1, "running"), (0, "pass"), (1, "warn"), (2, "fail"), (3, "error")]
            )
        },
    }
]


def sql(text: str) -> str:
    return dedent(text).strip()


def metric_series(metrics: list[str], *, by: str, extra: str = "") -> str:
    """Values of ``mlmon.metrics`` over time, one series per ``by`` (``feature`` or ``metric``)."""
    names = ", ".join(f"'{m}'" for m in metrics)
    where = f"metric = {names}" if len(metrics) == 1 else f"metric IN ({names})"
    return sql(f"""
        SELECT window_start AS "time", {by} AS metric, value
        FROM mlmon.metrics
        WHERE {MODEL} AND {SEGMENT} AND {where}{extra}
          AND {IN_RANGE}
        ORDER BY 1, 2
    """)


def threshold_series(name: str, where: str) -> str:
    """The threshold of the checks matching ``where`` over time, as one series called ``name`` (draw it
    with ``dashed``)."""
    return sql(f"""
        SELECT window_start AS "time", '{name}' AS metric, threshold AS value
        FROM mlmon.checks
        WHERE {MODEL} AND {SEGMENT} AND {where}
          AND threshold IS NOT NULL AND {IN_RANGE}
        ORDER BY 1
    """)


def window_series(metrics: list[str]) -> str:
    """Window-level values (``feature = ''``) of ``metrics`` over time, one series per metric."""
    return metric_series(metrics, by="metric", extra=" AND feature = ''")


# ------------------------------------------------------------------------------------------- panels


def target(query: str, fmt: str = "time_series", ref: str = "A") -> Json:
    return {
        "refId": ref,
        "datasource": DATASOURCE,
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": query,
    }


def _panel(kind: str, title: str, description: str, targets: list[Json], field: Json, options: Json) -> Json:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": field,
        "options": options,
    }


def timeseries(
    title: str,
    description: str,
    *queries: str,
    unit: str = "short",
    bars: bool = False,
    log: bool = False,
    threshold: float | None = None,
    overrides: list[Json] | None = None,
) -> Json:
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 2,
        "fillOpacity": 60 if bars else 0,
        "pointSize": 6,
        "showPoints": "always",
        "spanNulls": False,
        "axisSoftMin": 0,
    }
    defaults: Json = {"unit": unit, "custom": custom}
    if log:
        custom["scaleDistribution"] = {"type": "log", "log": 10}
        del custom["axisSoftMin"]
    if threshold is not None:
        custom["thresholdsStyle"] = {"mode": "dashed"}
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": "green", "value": None}, {"color": "red", "value": threshold}],
        }
    refs = "ABCDEFGH"
    return _panel(
        "timeseries",
        title,
        description,
        [target(q, "time_series", refs[i]) for i, q in enumerate(queries)],
        {"defaults": defaults, "overrides": overrides or []},
        {
            "legend": {
                "showLegend": True,
                "displayMode": "table",
                "placement": "right",
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def dashed(pattern: str) -> list[Json]:
    """Overrides drawing the series whose names match ``pattern`` (a regexp) dashed, without points:
    limits and SLOs next to the values they bound."""
    return [
        {
            "matcher": {"id": "byRegexp", "options": pattern},
            "properties": [
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                {"id": "custom.showPoints", "value": "never"},
            ],
        }
    ]


def table(title: str, description: str, query: str, *, units: dict[str, str] | None = None) -> Json:
    """A table; a ``status`` column is coloured, ``report_path`` is hidden and links every row."""
    overrides: list[Json] = []
    if re.search(r"\bstatus\b", query.split("FROM")[0]):
        overrides.append(
            {
                "matcher": {"id": "byName", "options": "status"},
                "properties": [
                    {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                    {"id": "mappings", "value": STATUS_MAPPINGS},
                ],
            }
        )
    defaults: Json = {"custom": {"align": "auto", "cellOptions": {"type": "auto"}, "inspect": True}}
    if "report_path" in query:
        defaults["links"] = [REPORT_LINK]
        overrides.append({"matcher": {"id": "byName", "options": "report_path"}, "properties": [_hidden()]})
    if "flow_run_id" in query:
        overrides.append(
            {
                "matcher": {"id": "byName", "options": "flow_run_id"},
                "properties": [{"id": "links", "value": [FLOW_RUN_LINK]}],
            }
        )
    for column, unit in (units or {}).items():
        overrides.append(
            {"matcher": {"id": "byName", "options": column}, "properties": [{"id": "unit", "value": unit}]}
        )
    return _panel(
        "table",
        title,
        description,
        [target(query, "table")],
        {"defaults": defaults, "overrides": overrides},
        {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}},
    )


CHECK_COLUMNS = (
    'c.window_start, c.status, c.check_name AS "check", c.feature, c.value, c.threshold,',
    "c.message, r.report_path",
)
"""What a checks table shows by default, line by line."""
WINDOW_CHECK_COLUMNS = (
    'c.window_start, c.status, c.check_name AS "check", c.value, c.threshold,',
    "c.message, r.report_path",
)
"""The same for window-level checks (no feature)."""
CHECK_IN_RANGE = "$__timeFilter(c.window_start)"
NOT_PASSING = f"c.status <> 'pass' AND {CHECK_IN_RANGE}"


def checks_table(
    title: str,
    description: str,
    *,
    where: tuple[str, ...],
    select: tuple[str, ...] = CHECK_COLUMNS,
    order: str = "c.window_start DESC, c.check_name, c.feature",
    limit: int | None = 500,
    units: dict[str, str] | None = None,
) -> Json:
    """A table of the selected model's and segment's checks (``c``) matching ``where``, each row linking to
    its window's report (``r``). ``select`` and ``where`` are SQL lines (the ``where`` lines are ANDed)."""
    lines = [
        "SELECT " + "\n       ".join(select),
        "FROM mlmon.checks AS c",
        "JOIN mlmon.runs AS r USING (model, window_start, window_end)",
        f"WHERE c.{MODEL} AND c.{SEGMENT} AND " + "\n  AND ".join(where),
        f"ORDER BY {order}",
    ]
    if limit is not None:
        lines.append(f"LIMIT {limit}")
    return table(title, description, "\n".join(lines), units=units)


def _hidden() -> Json:
    return {"id": "custom.hidden", "value": True}


def stat(title: str, description: str, query: str, *, red_from: float | None, decimals: int = 0) -> Json:
    """One number; red from ``red_from`` on (``None``: never red)."""
    steps: list[Json] = [{"color": "green" if red_from is not None else "blue", "value": None}]
    if red_from is not None:
        steps.append({"color": "red", "value": red_from})
    return _panel(
        "stat",
        title,
        description,
        [target(query, "table")],
        {
            "defaults": {
                "unit": "short",
                "decimals": decimals,
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value",
            "justifyMode": "center",
            "orientation": "auto",
        },
    )


def state_timeline(title: str, description: str, query: str) -> Json:
    """Status per window as colours; ``query`` returns time, metric (the row) and a severity number."""
    return _panel(
        "state-timeline",
        title,
        description,
        [target(query, "time_series")],
        {
            "defaults": {
                "mappings": SEVERITY_MAPPINGS,
                "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": [{"color": "text", "value": None}]},
                "custom": {"fillOpacity": 80, "lineWidth": 0},
            },
            "overrides": [],
        },
        {
            "mergeValues": False,
            "showValue": "never",
            "alignValue": "left",
            "rowHeight": 0.85,
            "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )


def text(title: str, markdown: str) -> Json:
    return {
        "type": "text",
        "title": title,
        "options": {"mode": "markdown", "content": dedent(markdown).strip()},
    }


# ---------------------------------------------------------------------------------------- variables


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = False,
    default: str | None = None,
    datasource: Json = DATASOURCE,
    sort: int = 0,
) -> Json:
    """A variable filled by a query, SQL unless ``datasource`` says otherwise (refreshed when the time
    range changes)."""
    if multi:
        current: Json = {"selected": True, "text": ["All"], "value": ["$__all"]}
    elif default is not None:
        current = {"selected": True, "text": default, "value": default}
    else:
        current = {}
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": datasource,
        "query": query,
        "definition": query,
        "refresh": 2,
        "multi": multi,
        "includeAll": multi,
        "current": current,
        "options": [],
        "sort": sort,
        "regex": "",
        "hide": 0,
        "skipUrlSync": False,
    }


def textbox(name: str, label: str, value: str, description: str) -> Json:
    option = {"selected": True, "text": value, "value": value}
    return {
        "type": "textbox",
        "name": name,
        "label": label,
        "description": description,
        "query": value,
        "current": option,
        "options": [option],
        "hide": 2,
        "skipUrlSync": False,
    }


def model_variable(*, multi: bool) -> Json:
    return query_variable("model", "Model", "SELECT DISTINCT model FROM mlmon.runs ORDER BY 1", multi=multi)


def segment_variable() -> Json:
    return query_variable(
        "segment",
        "Segment",
        sql(f"""
            SELECT segment FROM mlmon.metrics
            WHERE {MODEL} AND metric = 'row_count' AND {IN_RANGE}
            GROUP BY segment ORDER BY segment <> 'all', segment
        """),
        default="all",
    )


REPORTS_URL_VARIABLE = textbox(
    "reports_url",
    "Reports URL",
    REPORTS_URL,
    "Base URL of the HTML reports (MLMON_REPORTS_URL); override with ?var-reports_url=…",
)
PREFECT_URL_VARIABLE = textbox(
    "prefect_url", "Prefect UI", PREFECT_URL, "Base URL of the Prefect UI; override with ?var-prefect_url=…"
)


# ---------------------------------------------------------------------------------------- dashboard

Row = list[tuple[Json, int, int]]
"""One row of a dashboard: (panel, width, height) side by side."""


def row(*panels: Json, h: int, widths: tuple[int, ...] | None = None) -> Row:
    """``panels`` side by side, ``h`` grid units tall, sharing the 24 columns equally unless ``widths``."""
    return [
        (panel, w, h) for panel, w in zip(panels, widths or [24 // len(panels)] * len(panels), strict=True)
    ]


def dashboard(uid: str, title: str, description: str, rows: list[Row], variables: list[Json]) -> Json:
    """Lay ``rows`` of (panel, width, height) out on Grafana's 24-column grid; ids follow reading order."""
    panels, y, next_id = [], 0, 1
    for row in rows:
        x = 0
        for panel, w, h in row:
            panels.append({"id": next_id, "gridPos": {"h": h, "w": w, "x": x, "y": y}, **panel})
            next_id += 1
            x += w
        if x > 24:
            raise ValueError(f"{uid}: a row is {x} columns wide (max 24)")
        y += max(h for _, _, h in row)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG],
        "id": None,
        "editable": False,
        "graphTooltip": 1,
        "timezone": "utc",
        "time": {"from": "now-30d", "to": "now"},
        "refresh": "15m",
        "schemaVersion": 39,
        "version": 1,
        "links": [
            {
                "title": "mlmon dashboards",
                "type": "dashboards",
                "tags": [TAG],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            },
            {
                "title": "HTML reports",
                "type": "link",
                "url": "${reports_url}/index.html",
                "targetBlank": True,
                "icon": "doc",
            },
        ],
        "annotations": {"list": []},
        "templating": {"list": variables},
        "panels": panels,
    }


def overview() -> Json:
    latest = "FROM mlmon.latest_runs WHERE " + MODELS
    return dashboard(
        "mlmon-overview",
        "mlmon · overview",
        "Latest verdict of every monitored model, what is failing, and the run history.",
        [
            row(
                text(
                    "How to read this",
                    """
                    Each model is checked once per window (drift, data quality, model quality, service
                    health). **Click a row** of a table to open that window's HTML report; the other
                    dashboards (top right) show each family of checks over time. Reports index:
                    [${reports_url}/index.html](${reports_url}/index.html) · flow runs:
                    [Prefect](${prefect_url}).
                    """,
                ),
                h=3,
            ),
            row(
                stat(
                    "Models",
                    "Models with at least one window.",
                    f"SELECT count(*) AS models {latest}",
                    red_from=None,
                ),
                stat(
                    "Models failing now",
                    "Models whose latest window has status fail or error.",
                    "SELECT count(*) FILTER (WHERE status IN ('fail', 'error')) AS \"failing models\""
                    f" {latest}",
                    red_from=1,
                ),
                stat(
                    "Failed checks (latest windows)",
                    "Checks with status fail or error in the latest window of the selected models.",
                    f'SELECT coalesce(sum(n_failed_checks), 0) AS "failed checks" {latest}',
                    red_from=1,
                ),
                stat(
                    "Windows behind (stalest model)",
                    "Time since the newest window ended, in window lengths, for the model furthest "
                    "behind. Between 1 and 2 is normal (the current window is still open); above 2 a "
                    "scheduled run is missing.",
                    "SELECT max(seconds_since_window_end / extract(epoch FROM window_end - window_start))"
                    f' AS "windows behind" {latest}',
                    red_from=2,
                    decimals=1,
                ),
                h=4,
            ),
            row(
                table(
                    "Latest window per model",
                    "The newest window of each model, worst first. Click a row for its HTML report, "
                    "the flow run id for Prefect.",
                    sql(f"""
                        SELECT model, status, window_start, window_end, n_rows AS "rows",
                               n_quarantined AS "quarantined", label_coverage AS "label coverage",
                               n_failed_checks AS "failed checks", message, finished_at AS "finished",
                               report_path, flow_run_id
                        {latest}
                        ORDER BY severity DESC NULLS FIRST, model
                    """),
                    units={"label coverage": "percentunit"},
                ),
                h=8,
            ),
            row(
                state_timeline(
                    "Status per window",
                    "Verdict of every window: pass, warn, fail, error (the run failed) or running.",
                    sql(f"""
                        SELECT window_start AS "time", model AS metric, {SEVERITY} AS status
                        FROM mlmon.runs
                        WHERE {MODELS} AND {IN_RANGE}
                        ORDER BY 1, 2
                    """),
                ),
                h=7,
            ),
            row(
                table(
                    "Failing checks in each model's latest window",
                    "Every check with status fail or error in the latest window. Click a row for the "
                    "HTML report.",
                    sql(f"""
                        SELECT c.model, c.status, c.category, c.check_name AS "check", c.feature,
                               c.segment, c.value, c.threshold, c.message, c.window_start, r.report_path
                        FROM mlmon.latest_checks AS c
                        JOIN mlmon.runs AS r USING (model, window_start, window_end)
                        WHERE c.status IN ('fail', 'error') AND c.{MODELS}
                        ORDER BY c.model, c.status DESC, c.category, c.check_name, c.feature, c.segment
                        LIMIT 500
                    """),
                ),
                h=9,
            ),
            row(
                timeseries(
                    "Failed checks per window",
                    "Checks with status fail or error, per window.",
                    sql(f"""
                        SELECT window_start AS "time", model AS metric, n_failed_checks AS "failed checks"
                        FROM mlmon.runs
                        WHERE {MODELS} AND {IN_RANGE} AND status <> 'running'
                        ORDER BY 1, 2
                    """),
                    bars=True,
                ),
                timeseries(
                    "Rows per window",
                    "Documents accepted into each window (quarantined ones excluded).",
                    sql(f"""
                        SELECT window_start AS "time", model AS metric, n_rows AS "rows"
                        FROM mlmon.runs
                        WHERE {MODELS} AND {IN_RANGE} AND n_rows IS NOT NULL
                        ORDER BY 1, 2
                    """),
                ),
                timeseries(
                    "Label coverage",
                    "Share of a window's predictions with a ground-truth label: model-quality panels "
                    "are only as trustworthy as this.",
                    sql(f"""
                        SELECT window_start AS "time", model AS metric, label_coverage AS "label coverage"
                        FROM mlmon.runs
                        WHERE {MODELS} AND {IN_RANGE} AND label_coverage IS NOT NULL
                        ORDER BY 1, 2
                    """),
                    unit="percentunit",
                ),
                h=8,
            ),
            row(
                table(
                    "Open incidents (latest windows)",
                    "What is broken now, one sentence per incident (the same as in the report and the "
                    "alert): the incidents of each model's latest window that are not resolved, worst "
                    "first, with how long they have been open. Click a row for the window's report.",
                    sql(f"""
                        SELECT i.model, i.status, i.change_kind AS "change", i.subject AS "what",
                               i.sentence, i.opened_start AS "open since", i.n_windows AS "windows",
                               r.report_path
                        FROM mlmon.incidents i
                        JOIN mlmon.latest_runs r USING (model, window_start, window_end)
                        WHERE i.{MODELS} AND i.change_kind <> 'resolved'
                        ORDER BY CASE i.status WHEN 'error' THEN 0 WHEN 'fail' THEN 1 ELSE 2 END,
                                 i.model, i.incident_key
                        LIMIT 200
                    """),
                ),
                h=8,
            ),
            row(
                table(
                    "Runs in the time range",
                    "Every window in the time range, newest first. Click a row for its HTML report.",
                    sql(f"""
                        SELECT window_start, model, status, n_rows AS "rows",
                               n_failed_checks AS "failed checks", message, started_at AS "started",
                               finished_at AS "finished", report_path, flow_run_id
                        FROM mlmon.runs
                        WHERE {MODELS} AND {IN_RANGE}
                        ORDER BY window_start DESC, model
                        LIMIT 1000
                    """),
                ),
                h=10,
            ),
        ],
        [model_variable(multi=True), REPORTS_URL_VARIABLE, PREFECT_URL_VARIABLE],
    )


def drift() -> Json:
    by_feature = f"FROM mlmon.drift WHERE {MODEL} AND {SEGMENT} AND {FEATURES} AND {IN_RANGE}"
    return dashboard(
        "mlmon-drift",
        "mlmon · drift",
        "Per-column drift of the features, the prediction and its score against the reference.",
        [
            row(
                timeseries(
                    "Effect size relative to its threshold",
                    "Effect size divided by the column's threshold: a column is drifted when this is "
                    "at least 1 AND its corrected p-value is below alpha.",
                    sql(f"""
                        SELECT window_start AS "time", feature AS metric,
                               effect / NULLIF(effect_threshold, 0) AS "effect / threshold"
                        {by_feature}
                        ORDER BY 1, 2
                    """),
                    threshold=1,
                ),
                timeseries(
                    "Effect size (drift_effect)",
                    "The effect size of each column (normed Wasserstein, Jensen–Shannon, … as "
                    "configured per column).",
                    metric_series(["drift_effect"], by="feature", extra=f" AND {FEATURES}"),
                ),
                h=9,
            ),
            row(
                state_timeline(
                    "Drift verdict per column",
                    "fail = drifted, warn = too little data to test, pass = no drift, error = not "
                    "computable.",
                    sql(f"""
                        SELECT window_start AS "time", feature AS metric, {SEVERITY} AS verdict
                        {by_feature}
                        ORDER BY 1, 2
                    """),
                ),
                h=8,
            ),
            row(
                timeseries(
                    "Adjusted p-value",
                    "p-value after the multiple-testing correction over the window's columns (log "
                    "scale); small = significant.",
                    sql(f"""
                        SELECT window_start AS "time", feature AS metric, p_adjusted AS "p adjusted"
                        {by_feature} AND p_adjusted IS NOT NULL
                        ORDER BY 1, 2
                    """),
                    log=True,
                ),
                timeseries(
                    "Drifted columns per window",
                    "How many of the tested columns drifted (every column, whatever $feature says).",
                    sql(f"""
                        SELECT window_start AS "time", sum(value) AS "drifted columns",
                               count(*) AS "columns tested"
                        FROM mlmon.metrics
                        WHERE {MODEL} AND {SEGMENT} AND metric = 'drifted' AND {IN_RANGE}
                        GROUP BY window_start
                        ORDER BY 1
                    """),
                    bars=True,
                ),
                h=8,
            ),
            row(
                timeseries(
                    "Predicted class shares",
                    "Share of each predicted class per window (class balance of the predictions).",
                    metric_series(["prediction_share"], by="feature"),
                    unit="percentunit",
                ),
                checks_table(
                    "Dataset drift verdict per window",
                    "The dataset-level drift check of every window. Click a row for the HTML report.",
                    where=(
                        "c.check_name = 'dataset_drift'",
                        f"c.feature = '' AND {CHECK_IN_RANGE}",
                    ),
                    select=("c.window_start, c.status, c.value, c.threshold, c.message, r.report_path",),
                    order="c.window_start DESC",
                    limit=None,
                ),
                h=8,
            ),
            row(
                table(
                    "Drift table of the newest window in the time range",
                    "Every score of every column, drifted first, then by effect relative to its "
                    "threshold. Click a row for the HTML report.",
                    sql(f"""
                        SELECT d.feature, d.status, d.kind, d.test_method, d.statistic, d.p_value,
                               d.p_adjusted, d.effect_method, d.effect, d.effect_threshold,
                               d.n_reference, d.n_current, d.message, d.window_start, r.report_path
                        FROM mlmon.drift AS d
                        JOIN mlmon.runs AS r USING (model, window_start, window_end)
                        WHERE d.{MODEL} AND d.{SEGMENT} AND d.{FEATURES}
                          AND d.window_start = (
                              SELECT max(window_start) FROM mlmon.drift WHERE {MODEL} AND {IN_RANGE}
                          )
                        ORDER BY CASE d.status WHEN 'fail' THEN 0 WHEN 'error' THEN 1 WHEN 'warn' THEN 2
                                 ELSE 3 END,
                                 d.effect / NULLIF(d.effect_threshold, 0) DESC NULLS LAST, d.feature
                    """),
                ),
                h=12,
            ),
        ],
        [
            model_variable(multi=False),
            segment_variable(),
            query_variable(
                "feature",
                "Column",
                sql(f"""
                    SELECT feature FROM mlmon.drift
                    WHERE {MODEL} AND {IN_RANGE}
                    GROUP BY feature ORDER BY feature
                """),
                multi=True,
            ),
            REPORTS_URL_VARIABLE,
        ],
    )


def quality() -> Json:
    per_feature = f" AND {FEATURES}"
    return dashboard(
        "mlmon-quality",
        "mlmon · data quality",
        "Missing, out-of-range and unseen values per feature; volume and quarantined documents.",
        [
            row(
                timeseries(
                    "Missing share",
                    "Share of rows without a value, per feature.",
                    metric_series(["missing_share"], by="feature", extra=per_feature),
                    unit="percentunit",
                ),
                timeseries(
                    "Out-of-range share",
                    "Share of non-missing numbers outside the allowed range (configured, else the "
                    "reference min..max).",
                    metric_series(["out_of_range_share"], by="feature", extra=per_feature),
                    unit="percentunit",
                ),
                h=8,
            ),
            row(
                timeseries(
                    "Unseen category share",
                    "Share of non-missing categories outside the allowed set (configured, else the "
                    "reference categories).",
                    metric_series(["unseen_share"], by="feature", extra=per_feature),
                    unit="percentunit",
                ),
                timeseries(
                    "Rows per window",
                    "Documents accepted into the window (the volume check compares them with "
                    "quality.expected_volume).",
                    window_series(["row_count"]),
                    bars=True,
                ),
                h=8,
            ),
            row(
                timeseries(
                    "Quarantined share",
                    "Share of documents rejected by the log contract (whole window only).",
                    window_series(["quarantined_share"]),
                    unit="percentunit",
                ),
                timeseries(
                    "Quarantined documents by reason",
                    "Rejected documents per reason code (whole window only).",
                    sql(f"""
                        SELECT window_start AS "time", reason AS metric, count(*) AS documents
                        FROM mlmon.quarantine
                        WHERE {MODEL} AND {IN_RANGE}
                        GROUP BY 1, 2
                        ORDER BY 1, 2
                    """),
                    bars=True,
                ),
                h=8,
            ),
            row(
                checks_table(
                    "Quality checks not passing",
                    "Data-quality checks with status warn, fail or error, newest first. Click a row for "
                    "the HTML report.",
                    where=(
                        "c.category = 'quality'",
                        f"c.status <> 'pass' AND (c.feature = '' OR c.{FEATURES})",
                        CHECK_IN_RANGE,
                    ),
                    select=(
                        'c.window_start, c.status, c.check_name AS "check", c.feature, c.value,',
                        "c.threshold, c.message, r.report_path",
                    ),
                    order="c.window_start DESC, c.status DESC, c.check_name, c.feature",
                ),
                h=9,
            ),
            row(
                table(
                    "Quarantined documents",
                    "The rejected documents themselves (newest windows first, 200 at most), with the "
                    "reason and the field at fault. The text comes from the logs: untrusted.",
                    sql(f"""
                        SELECT window_start, seq, doc_id, reason, field, detail, document
                        FROM mlmon.quarantine
                        WHERE {MODEL} AND {IN_RANGE}
                        ORDER BY window_start DESC, seq
                        LIMIT 200
                    """),
                ),
                h=10,
            ),
        ],
        [
            model_variable(multi=False),
            segment_variable(),
            query_variable(
                "feature",
                "Feature",
                sql(f"""
                    SELECT feature FROM mlmon.metrics
                    WHERE {MODEL} AND metric = 'missing_share' AND {IN_RANGE}
                    GROUP BY feature ORDER BY feature
                """),
                multi=True,
            ),
            REPORTS_URL_VARIABLE,
        ],
    )


def performance() -> Json:
    return dashboard(
        "mlmon-performance",
        "mlmon · model quality",
        "Model quality on the labelled predictions of each window, and how many are labelled.",
        [
            row(
                timeseries(
                    "Classification scores",
                    "Accuracy, precision, recall, F1 (positive class) and ROC AUC on the labelled rows.",
                    window_series(["accuracy", "precision", "recall", "f1", "roc_auc"]),
                    unit="percentunit",
                ),
                timeseries(
                    "Log loss",
                    "Log loss of the predicted probabilities (lower is better).",
                    window_series(["log_loss"]),
                ),
                h=9,
            ),
            row(
                timeseries(
                    "Regression errors",
                    "MAE and RMSE, in the target's unit (lower is better).",
                    window_series(["mae", "rmse"]),
                ),
                timeseries(
                    "MAPE and R²",
                    "Mean absolute percentage error (lower is better) and R² (higher is better).",
                    window_series(["mape", "r2"]),
                ),
                h=8,
            ),
            row(
                timeseries(
                    "Label coverage",
                    "Share of the window's predictions with a ground-truth label so far (labels may "
                    "arrive late).",
                    window_series(["label_coverage"]),
                    unit="percentunit",
                ),
                timeseries(
                    "Labelled predictions",
                    "Predictions with a label: the sample size behind the scores.",
                    window_series(["n_labelled"]),
                    bars=True,
                ),
                h=8,
            ),
            row(
                checks_table(
                    "Model-quality checks",
                    "Every model-quality check, newest first, not passing first. Click a row for the "
                    "HTML report.",
                    where=("c.category = 'performance'", CHECK_IN_RANGE),
                    select=WINDOW_CHECK_COLUMNS,
                    order="c.window_start DESC, c.status = 'pass', c.check_name",
                ),
                h=9,
            ),
        ],
        [model_variable(multi=False), segment_variable(), REPORTS_URL_VARIABLE],
    )


def health() -> Json:
    slo_line = dashed(".*(SLO|limit).*")
    return dashboard(
        "mlmon-health",
        "mlmon · service health",
        "Latency percentiles against their SLOs, error rate and throughput of the serving app.",
        [
            row(
                timeseries(
                    "Latency percentiles and SLOs",
                    "p50 / p95 / p99 latency of the window's requests; dashed: the SLOs configured in "
                    "service.latency_p*_ms.",
                    sql(f"""
                        SELECT window_start AS "time",
                               replace(replace(metric, 'latency_', ''), '_ms', '') AS metric, value
                        FROM mlmon.metrics
                        WHERE {MODEL} AND {SEGMENT}
                          AND metric IN ('latency_p50_ms', 'latency_p95_ms', 'latency_p99_ms')
                          AND feature = '' AND {IN_RANGE}
                        ORDER BY 1, 2
                    """),
                    sql(f"""
                        SELECT window_start AS "time",
                               replace(check_name, 'latency_', '') || ' SLO' AS metric, threshold AS value
                        FROM mlmon.checks
                        WHERE {MODEL} AND {SEGMENT}
                          AND check_name IN ('latency_p50', 'latency_p95', 'latency_p99')
                          AND feature = '' AND threshold IS NOT NULL AND {IN_RANGE}
                        ORDER BY 1, 2
                    """),
                    unit="ms",
                    overrides=slo_line,
                ),
                timeseries(
                    "Error rate and limit",
                    "Share of requests whose status is not in service.ok_statuses; dashed: "
                    "service.max_error_rate.",
                    window_series(["error_rate"]),
                    threshold_series("error_rate limit", "check_name = 'error_rate' AND feature = ''"),
                    unit="percentunit",
                    overrides=slo_line,
                ),
                h=9,
            ),
            row(
                timeseries(
                    "Requests per minute",
                    "Average throughput over the window.",
                    window_series(["requests_per_minute"]),
                    unit="reqpm",
                ),
                timeseries(
                    "Requests per window",
                    "Requests logged in the window (accepted documents).",
                    window_series(["row_count"]),
                    bars=True,
                ),
                h=8,
            ),
            row(
                checks_table(
                    "Health checks not passing",
                    "Latency and error-rate checks with status warn, fail or error, newest first. Click "
                    "a row for the HTML report.",
                    where=("c.category = 'health'", NOT_PASSING),
                    select=WINDOW_CHECK_COLUMNS,
                    order="c.window_start DESC, c.check_name",
                ),
                h=8,
            ),
        ],
        [model_variable(multi=False), segment_variable(), REPORTS_URL_VARIABLE],
    )


# ----------------------------------------------------------------------------------- model health


def model_health() -> Json:
    """One row per model-health family (tasks/checks/families.py), each family's checks under its
    ``category``: outliers, multivariate_drift, explanations, fairness, estimated_performance, versions."""
    rows: list[Row] = [
        row(
            text(
                "Model health",
                """
                Families fitted once on the reference and run on every window. Each row below is one
                family; a family switched off in the model's config has no data. What each verdict
                means: the README's *Model health* section.
                """,
            ),
            h=3,
        ),
        *family_rows(),
    ]
    return dashboard(
        "mlmon-model-health",
        "mlmon · model health",
        "Outliers, multivariate drift, drift by impact, fairness, estimated performance and model versions.",
        rows,
        [model_variable(multi=False), segment_variable(), REPORTS_URL_VARIABLE],
    )


def multivariate_drift_rows() -> list[Row]:
    """Multivariate drift (tasks/checks/multivariate.py): the domain classifier's AUC and what it uses."""
    return [
        row(
            timeseries(
                "Multivariate drift: domain classifier AUC",
                "Out-of-fold ROC AUC of a classifier telling window rows from reference rows (0.5 = "
                "indistinguishable). Fails when significantly above 0.5 AND at least min_auc (dashed).",
                window_series(["multivariate_auc"]),
                threshold=0.55,
            ),
            timeseries(
                "Features the domain classifier relies on",
                "AUC lost when the feature is shuffled in the held-out folds: the features whose joint "
                "behaviour changed.",
                metric_series(["multivariate_importance"], by="feature"),
            ),
            checks_table(
                "Multivariate drift not passing",
                "multivariate_drift checks with status warn, fail or error, newest first. Click a row for "
                "the HTML report.",
                where=(
                    "c.category = 'multivariate_drift'",
                    NOT_PASSING,
                ),
            ),
            h=8,
        )
    ]


def explanations_rows() -> list[Row]:
    """Drift impact (tasks/checks/explanations.py): importance × drift per feature, attributed shifts."""
    return [
        row(
            timeseries(
                "Drift impact per feature",
                "Importance to the model's output (surrogate of the logged predictions) × drift effect "
                "relative to its threshold: which drift can move the predictions.",
                metric_series(["drift_impact"], by="feature"),
            ),
            timeseries(
                "Prediction shift attributed to each feature",
                "How much the mean model output moves when only this feature takes the window's values.",
                metric_series(["prediction_shift_attribution"], by="feature"),
            ),
            checks_table(
                "Drift that matters",
                "Drifted features the model relies on (feature_impact) and prediction drift with the "
                "features that explain it (prediction_drift_attribution). Click a row for the report.",
                where=("c.category = 'explanations'", NOT_PASSING),
            ),
            h=8,
        )
    ]


def _wide(metrics: list[str]) -> str:
    """One column per metric (named as the metric) by window: the overrides style each by name."""
    columns = ",\n        ".join(f"MAX(value) FILTER (WHERE metric = '{m}') AS \"{m}\"" for m in metrics)
    names = ", ".join(f"'{m}'" for m in metrics)
    return sql(f"""
        SELECT window_start AS "time",
        {columns}
        FROM mlmon.metrics
        WHERE {MODEL} AND {SEGMENT} AND feature = '' AND metric IN ({names})
          AND {IN_RANGE}
        GROUP BY 1
        ORDER BY 1
    """)


def _estimated_panel(metric: str, label: str) -> Json:
    """Estimate (CBPE), its band (filled between its bounds) and the realized value, on one panel."""
    est = f"estimated_{metric}"

    def prop(name: str, *props: tuple[str, Any]) -> Json:
        return {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": k, "value": v} for k, v in props],
        }

    overrides = [
        prop(
            est, ("displayName", f"{label} (estimated)"), ("color", {"mode": "fixed", "fixedColor": "blue"})
        ),
        prop(
            f"{est}_upper",
            ("displayName", "band (upper)"),
            ("custom.lineWidth", 0),
            ("custom.showPoints", "never"),
            ("custom.fillBelowTo", f"{est}_lower"),
            ("custom.fillOpacity", 20),
            ("color", {"mode": "fixed", "fixedColor": "blue"}),
        ),
        prop(
            f"{est}_lower",
            ("displayName", "band (lower)"),
            ("custom.lineWidth", 0),
            ("custom.showPoints", "never"),
            ("color", {"mode": "fixed", "fixedColor": "blue"}),
        ),
        prop(
            f"{est}_reference",
            ("displayName", "reference (estimated)"),
            ("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}),
            ("custom.showPoints", "never"),
            ("color", {"mode": "fixed", "fixedColor": "text"}),
        ),
        prop(
            metric,
            ("displayName", f"{label} (realized, once labelled)"),
            ("color", {"mode": "fixed", "fixedColor": "orange"}),
        ),
    ]
    return timeseries(
        f"{label}: estimated vs realized",
        f"{label} estimated from the calibrated probabilities (CBPE) before any label, with its band "
        "(where the realized value is expected), the reference's estimate, and the realized value the "
        "late-label re-evaluation writes for the same window.",
        _wide([est, f"{est}_lower", f"{est}_upper", f"{est}_reference", metric]),
        unit="percentunit",
        overrides=overrides,
    )


def estimated_performance_rows() -> list[Row]:
    """Estimated performance (tasks/checks/estimated.py): estimate, band and realized per metric, and the
    family's checks."""
    panels = [
        _estimated_panel(m, label)
        for m, label in (
            ("accuracy", "Accuracy"),
            ("roc_auc", "ROC AUC"),
            ("f1", "F1"),
            ("precision", "Precision"),
            ("recall", "Recall"),
        )
    ]
    checks = checks_table(
        "Estimated-performance checks",
        "A check fails when an estimate is below the reference's estimate by more than its noise and "
        "min_drop (README: Estimated performance). Click a row for the HTML report.",
        where=("c.category = 'estimated_performance'", CHECK_IN_RANGE),
        select=(
            'c.window_start, c.status, c.check_name AS "check", c.value, c.threshold, c.message,',
            "r.report_path",
        ),
        order="c.window_start DESC, c.status = 'pass', c.check_name",
    )
    return [row(*panels[:3], h=8), row(*panels[3:], checks, h=8)]


def versions_rows() -> list[Row]:
    """Champion–challenger and shadow models (category ``versions``): quality and agreement per version,
    and every challenger's verdict."""
    per_version = " AND feature <> ''"
    return [
        row(
            timeseries(
                "Accuracy by model version",
                "Accuracy of each version on its labelled rows in the window (shadow versions on the "
                "requests they scored again). Late labels refill it when the window is re-evaluated.",
                metric_series(["version_accuracy"], by="feature", extra=per_version),
                unit="percentunit",
            ),
            timeseries(
                "Agreement with the champion (shadow)",
                "Share of the requests a shadow challenger scored where it gave the champion's answer.",
                metric_series(["version_agreement"], by="feature", extra=per_version),
                unit="percentunit",
            ),
            h=8,
        ),
        row(
            checks_table(
                "Challenger verdicts",
                "Each challenger against the champion: fail = significantly worse by at least the "
                "minimum effect, pass = better or indistinguishable at this sample size (the message "
                "says which), warn = insufficient labelled rows. Click a row for the HTML report.",
                where=(
                    "c.category = 'versions'",
                    f"c.check_name = 'version_quality' AND {CHECK_IN_RANGE}",
                ),
                select=(
                    "c.window_start, c.status, c.feature AS version, c.value AS gain,",
                    "c.message, r.report_path",
                ),
                order="c.window_start DESC, c.feature",
                units={"gain": "percentunit"},
            ),
            h=8,
        ),
    ]


def family_rows() -> list[Row]:
    """The families' rows, in the order the dashboard shows them (each family adds its builder here)."""
    builders: list = [
        outliers_rows,
        multivariate_drift_rows,
        explanations_rows,
        fairness_rows,
        estimated_performance_rows,
        versions_rows,
    ]
    return [cells for build in builders for cells in build()]


def outliers_rows() -> list[Row]:
    """Outliers (tasks/checks/outliers.py): the window's outlier share against the reference's own and
    the fail line, and the most outlying rows with their request id and the features that made them so."""
    return [
        row(
            timeseries(
                "Outliers: share of rows",
                "Share of the window's rows an isolation forest and robust bounds (fitted on the "
                "reference) flag as outliers, the reference's own share (held-out rows), and dashed the "
                "fail line (reference share + outliers.min_excess; the check also needs a significant "
                "one-sided binomial test).",
                window_series(["outlier_share", "outlier_reference_share"]),
                threshold_series("fail line", "category = 'outliers' AND check_name = 'outlier_share'"),
                unit="percentunit",
                overrides=dashed(".*fail line.*"),
            ),
            table(
                "Outliers: most outlying rows",
                "The top outliers of each window (outliers.top_k), newest window first and most "
                "outlying first: request id, isolation-forest score (lower = more outlying) and the "
                "features that made the row an outlier (robust z from the reference median, or a "
                "category rare or unseen in the reference). Click a row for the HTML report.",
                sql(f"""
                    SELECT m.window_start, m.feature AS request_id, m.value AS score,
                           string_agg(
                               substr(f.feature, length(m.feature) + 2) || CASE
                                   WHEN f.metric = 'outlier_top_z' THEN ' (z=' || round(f.value::numeric, 1) || ')'
                                   WHEN f.value > 0 THEN ' (rare)' ELSE ' (unseen)' END,
                               '; ' ORDER BY abs(f.value) DESC
                           ) AS features,
                           r.report_path
                    FROM mlmon.metrics AS m
                    JOIN mlmon.runs AS r USING (model, window_start, window_end)
                    LEFT JOIN mlmon.metrics AS f
                      ON f.model = m.model AND f.window_start = m.window_start
                     AND f.window_end = m.window_end AND f.segment = m.segment
                     AND f.metric IN ('outlier_top_z', 'outlier_top_rare')
                     AND left(f.feature, length(m.feature) + 1) = m.feature || '|'
                    WHERE m.{MODEL} AND m.{SEGMENT} AND m.metric = 'outlier_top_score'
                      AND $__timeFilter(m.window_start)
                    GROUP BY m.window_start, m.feature, m.value, r.report_path
                    ORDER BY m.window_start DESC, m.value
                    LIMIT 200
                """),
            ),
            h=9,
            widths=(10, 14),
        )
    ]


def fairness_rows() -> list[Row]:
    """Fairness (category ``fairness``): the selection rate per group, and every gap with its limit."""
    return [
        row(
            timeseries(
                "Fairness: selection rate per group",
                "Share of each group's predictions in the positive class (multiclass: per class), one "
                "series per attribute=value. The gaps between these are the demographic-parity checks.",
                metric_series(["fairness_selection_rate"], by="feature"),
                unit="percentunit",
            ),
            checks_table(
                "Fairness gaps and their limits",
                "Each gap (demographic parity difference / ratio, equal opportunity, equalized odds …) per "
                "attribute with its limit; a gap fails only when its one-sided bound is beyond the limit. "
                "Not passing first; click a row for the HTML report.",
                where=("c.category = 'fairness'", CHECK_IN_RANGE),
                select=(
                    'c.window_start, c.status, c.check_name AS "check", c.feature AS attribute,',
                    'c.value, c.threshold AS "limit", c.message, r.report_path',
                ),
                order="c.window_start DESC, c.status = 'pass', c.check_name, c.feature",
            ),
            h=9,
        )
    ]


# ------------------------------------------------------------------------------------------- live

PROMETHEUS = {"type": "prometheus", "uid": "mlmon-prometheus"}
LIVE_MODEL = 'model=~"$model"'


def live_rules() -> dict[str, str]:
    """The recording rules' names (mlmon/promql.py writes the rules; this script only reads their names)."""
    spec = importlib.util.spec_from_file_location(
        "mlmon_promql", Path(__file__).resolve().parents[1] / "mlmon" / "promql.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.names()


def promql(
    expr: str, legend: str = "__auto", *, ref: str = "A", instant: bool = False, fmt: str = "time_series"
) -> Json:
    return {
        "refId": ref,
        "datasource": PROMETHEUS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "format": fmt,
    }


def live_timeseries(
    title: str, description: str, targets: list[Json], *, unit: str = "short", threshold: float | None = None
) -> Json:
    panel = timeseries(title, description, unit=unit, threshold=threshold)
    panel["datasource"] = PROMETHEUS
    panel["targets"] = targets
    panel["fieldConfig"]["defaults"]["custom"]["showPoints"] = "never"
    return panel


def live_distribution(title: str, description: str, share: str, reference: str) -> Json:
    """Bars per bin: the window's share beside the reference's (instant queries joined on ``bin``)."""
    return {
        "type": "barchart",
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": [
            promql(share, "window", ref="A", instant=True, fmt="table"),
            promql(reference, "reference", ref="B", instant=True, fmt="table"),
        ],
        "transformations": [
            {"id": "joinByField", "options": {"byField": "bin", "mode": "outer"}},
            {
                "id": "organize",
                "options": {
                    "renameByName": {"Value #A": "last 15 min", "Value #B": "reference"},
                    "excludeByName": {"Time 1": True, "Time 2": True},
                },
            },
            {
                "id": "filterFieldsByName",
                "options": {"include": {"names": ["bin", "last 15 min", "reference"]}},
            },
        ],
        "fieldConfig": {"defaults": {"unit": "percentunit", "min": 0}, "overrides": []},
        "options": {
            "xField": "bin",
            "orientation": "vertical",
            "groupWidth": 0.8,
            "barWidth": 0.9,
            "showValue": "never",
            "xTickLabelRotation": -45,
            "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
    }


def live() -> Json:
    n = live_rules()
    m = LIVE_MODEL
    model = query_variable(
        "model", "Model", "label_values(mlmon_live_predictions_total, model)", datasource=PROMETHEUS, sort=1
    )
    board = dashboard(
        "mlmon-live",
        "mlmon · live",
        "What the serving app sees right now, scraped by Prometheus: traffic, errors, latency and drift "
        "against the reference over the last 15 minutes. The batch dashboards give the verdict per window.",
        [
            row(
                text(
                    "How to read this dashboard",
                    """
                    Live metrics from the serving app's logging helper (`mlmon.logger` with
                    `mlmon.live`), scraped by Prometheus. Drift is the PSI of the last 15 minutes
                    against the reference profile's bins: under about 1,000 values in the window it
                    is mostly sampling noise (about 19 / n for 20 bins), so trust the batch verdict
                    there. PSI above 0.25 is a major shift.
                    """,
                ),
                h=3,
            ),
            row(
                live_timeseries(
                    "Request rate",
                    "Predictions per second over 5 minutes, by outcome (ok / error by service.ok_statuses).",
                    [promql(f"sum by (outcome) ({n['requests']}{{{m}}})", "{{outcome}}")],
                    unit="reqps",
                ),
                live_timeseries(
                    "Error ratio",
                    "Share of predictions whose status is not ok, over 5 minutes; the line is the "
                    "alert's limit.",
                    [promql(f"{n['error_ratio']}{{{m}}}", "error ratio")],
                    unit="percentunit",
                    threshold=0.05,
                ),
                live_timeseries(
                    "Latency percentiles",
                    "p50 / p95 / p99 of the logged latency over 5 minutes (from the latency histogram's "
                    "buckets: precise to a bucket).",
                    [
                        promql(f"{n[f'latency_p{q}']}{{{m}}}", f"p{q}", ref=ref)
                        for q, ref in ((50, "A"), (95, "B"), (99, "C"))
                    ],
                    unit="s",
                ),
                h=8,
            ),
            row(
                live_timeseries(
                    "Live drift per feature (PSI, last 15 min)",
                    "Population stability index of each feature over the last 15 minutes against the "
                    "reference's bins; above 0.25 is a major shift (dashed line).",
                    [promql(f'{n["psi"]}{{{m}, role="feature"}}', "{{column}}")],
                    threshold=0.25,
                ),
                live_timeseries(
                    "Live drift of the model's outputs (PSI, last 15 min)",
                    "PSI of the predicted class and of the score (p(positive class), or the top "
                    "probability for a multiclass model) against the reference.",
                    [promql(f'{n["psi"]}{{{m}, role="output"}}', "{{column}}")],
                    threshold=0.25,
                ),
                h=9,
            ),
            row(
                live_timeseries(
                    "Live drift (Jensen–Shannon distance, last 15 min)",
                    "Jensen–Shannon distance (base 2, 0 = same shares, 1 = no bin in common) of each "
                    "feature and output over the last 15 minutes against the reference's bins; bounded "
                    "and needs no floor for empty bins, where PSI grows without limit. Dashed: 0.1.",
                    [promql(f"{n['jensen_shannon']}{{{m}}}", "{{role}} {{column}}")],
                    threshold=0.1,
                ),
                h=8,
            ),
            row(
                live_distribution(
                    "Score distribution: last 15 min against the reference",
                    "Share of predictions in each bin of the reference's score distribution.",
                    f'{n["bin_share"]}{{{m}, role="output", column="score"}}',
                    f'{n["reference_share"]}{{{m}, role="output", column="score"}}',
                ),
                live_distribution(
                    "Predicted classes: last 15 min against the reference",
                    "Share of each predicted class (and of classes the reference never predicted).",
                    f'{n["bin_share"]}{{{m}, role="output", column="prediction"}}',
                    f'{n["reference_share"]}{{{m}, role="output", column="prediction"}}',
                ),
                h=9,
            ),
            row(
                live_timeseries(
                    "Values in the drift window",
                    "Non-missing values per column in the last 15 minutes: below 1000 the live PSI is "
                    "mostly noise.",
                    [promql(f'{n["column_count"]}{{{m}, role="feature"}}', "{{column}}")],
                    threshold=1000,
                ),
                live_timeseries(
                    "Logging helper: queue depth and dropped logs",
                    "Documents waiting in the helper's buffer, and documents dropped (buffer full, or "
                    "not written when the app stopped): dropped ones are missing from the batch windows.",
                    [
                        promql(f"sum by (model) (mlmon_logger_queue_depth{{{m}}})", "queued", ref="A"),
                        promql(
                            f'sum by (model) (increase(mlmon_logger_documents_total{{{m}, outcome="dropped"}}[$__rate_interval]))',
                            "dropped",
                            ref="B",
                        ),
                    ],
                ),
                h=8,
            ),
        ],
        [model, REPORTS_URL_VARIABLE],
    )
    board["time"] = {"from": "now-1h", "to": "now"}
    board["refresh"] = "30s"
    return board


DASHBOARDS = {
    "live.json": live,
    "overview.json": overview,
    "drift.json": drift,
    "quality.json": quality,
    "performance.json": performance,
    "health.json": health,
    "model_health.json": model_health,
}


def render() -> dict[str, str]:
    """File name -> the JSON text this script writes."""
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n" for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, content in render().items():
        path = OUT / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
    for name in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {OUT / name}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
