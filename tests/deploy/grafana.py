"""What Grafana does to a panel's SQL before PostgreSQL sees it, emulated for the tests.

1. The browser replaces dashboard variables (``templateSrv.replace`` with the SQL data sources'
   ``interpolateVariable``, or the ``:sqlstring`` format): see grafana/packages/grafana-sql
   ``SqlDatasource.ts`` and ``formatRegistry.ts``.
2. The server replaces ``$__interval``, ``$__interval_ms``, ``$__unixEpochFrom()`` / ``To()`` and then
   the PostgreSQL macros (``$__timeFilter(col)`` -> ``col BETWEEN '<from>' AND '<to>'``, ...): see
   grafana/pkg/tsdb/grafana-postgresql-datasource ``macros.go`` and ``sqleng/sql_engine.go``.

Anything not emulated (another variable format, an unknown macro) raises instead of passing through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deployments" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
PROVISIONING = GRAFANA / "provisioning"

Value = str | list[str]

# templateSrv's variable regex: $var, [[var]] / [[var:fmt]], ${var} / ${var.field} / ${var:fmt}
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}")
_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def dashboards() -> dict[str, dict[str, Any]]:
    """Every provisioned dashboard by file name."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def provisioning(kind: str) -> dict[str, dict[str, Any]]:
    """The YAML files of provisioning/<kind>/ by file name (raw: Grafana's $VAR expansion not applied)."""
    folder = PROVISIONING / kind
    return {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.y*ml"))}


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    found = []
    for p in dashboard.get("panels", []):
        found.append(p)
        found.extend(p.get("panels", []))
    return found


def variable_names(text: str) -> set[str]:
    """Dashboard variables referenced in ``text`` (Grafana's own ``$__…`` names excluded)."""
    names = set()
    for m in _VARIABLE.finditer(text):
        name = m.group(1) or m.group(2) or m.group(4)
        if not name.startswith("__"):
            names.add(name)
    return names


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sqlstring(value: Value) -> str:
    """Grafana's ``:sqlstring`` format: each value quoted, ' doubled, " backslashed, joined with commas."""

    def one(v: str) -> str:
        return "'" + v.replace("'", "''").replace('"', '\\"') + "'"

    return ",".join(one(v) for v in value) if isinstance(value, list) else one(value)


def replace_variables(sql: str, variables: Mapping[str, dict[str, Any]], values: Mapping[str, Value]) -> str:
    """Step 1: dashboard variables replaced like the browser does for a SQL data source."""

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name.startswith("__"):
            return m.group(0)  # Grafana's own: macros and $__interval, replaced by the server
        if m.group(5):
            raise ValueError(f"${{{name}.{m.group(5)}}}: field paths are not emulated")
        if name not in variables:
            raise KeyError(f"variable ${name} is not defined by the dashboard")
        value = values[name]
        if fmt == "sqlstring":
            return sqlstring(value)
        if fmt is not None:
            raise ValueError(f"${{{name}:{fmt}}}: format {fmt!r} is not emulated")
        var = variables[name]
        if isinstance(value, list):
            return ",".join(quote_literal(v) for v in value)
        if var.get("multi") or var.get("includeAll"):
            return quote_literal(value)
        return value.replace("'", "''")

    return _VARIABLE.sub(replace, sql)


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    interval: timedelta = timedelta(hours=1)

    def rfc3339(self, t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def expand_macros(sql: str, r: TimeRange) -> str:
    """Step 2: what the PostgreSQL data source does on the server (not TimescaleDB)."""
    sql = sql.replace("$__interval_ms", str(int(r.interval.total_seconds() * 1000)))
    sql = sql.replace("$__interval", _format_interval(r.interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(r.start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(r.end.timestamp())))

    def macro(m: re.Match[str]) -> str:
        name, args = m.group(1), [a.strip() for a in m.group(2).split(",")]
        frm, to = r.rfc3339(r.start), r.rfc3339(r.end)
        if name == "__time":
            return f'{args[0]} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{frm}' AND '{to}'"
        if name == "__timeFrom":
            return f"'{frm}'"
        if name == "__timeTo":
            return f"'{to}'"
        if name in ("__timeGroup", "__timeGroupAlias"):
            seconds = _parse_interval(args[1].strip("'"))
            group = f"floor(extract(epoch from {args[0]})/{seconds:g})*{seconds:g}"
            return group + (' AS "time"' if name == "__timeGroupAlias" else "")
        if name == "__unixEpochFilter":
            return f"{args[0]} >= {int(r.start.timestamp())} AND {args[0]} <= {int(r.end.timestamp())}"
        raise ValueError(f"macro ${name}() is not emulated")

    sql = _MACRO.sub(macro, sql)
    if "$" in re.sub(r"'[^']*'", "", sql):
        raise ValueError(f"a $ is left after interpolation: {sql}")
    return sql


def _parse_interval(text: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if m is None:
        raise ValueError(f"interval {text!r} not understood")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _format_interval(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def expand(
    sql: str, variables: Mapping[str, dict[str, Any]], values: Mapping[str, Value], r: TimeRange
) -> str:
    """A panel's SQL as PostgreSQL receives it."""
    return expand_macros(replace_variables(sql, variables, values), r)
