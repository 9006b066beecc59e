"""The ``mlmon`` command line. Every subcommand has ``--help``.

Heavy imports (Prefect, pandas, Evidently) happen inside the subcommands, so ``mlmon --help`` is instant.

Exit codes, the same for every command (:class:`Exit`): 0 success, 1 checks failed (commands that judge
windows: ``run``, ``backfill``), 2 usage or config error, 3 runtime or infrastructure error. mlmon's own
errors print one line without a traceback; ``--debug`` (anywhere on the line) prints
the traceback too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any

EPILOG = """\
environment:
  MLMON_MONGO_URI      MongoDB URI (unset: an embedded MongoDB wire server under MLMON_HOME)
  MLMON_POSTGRES_URI   PostgreSQL URI (unset: an embedded PostgreSQL under MLMON_HOME)
  MLMON_POSTGRES_READ_URI  read-only PostgreSQL URI for `mlmon sql` (unset: the embedded one's reader)
  MLMON_HOME           state folder, default ./.mlmon
  MLMON_CONFIG         models config, default deployments/models.yaml
  MLMON_REPORTS_DIR    HTML reports folder, default $MLMON_HOME/reports
  MLMON_REPORTS_URL    public base URL of the reports (links in alerts, Prefect artifacts)
  MLMON_ALERT_WEBHOOK_URL  Slack-compatible webhook the alert automations notify (serve/up install them)
  PREFECT_API_URL      Prefect server flows report to (unset: the local one recorded in MLMON_HOME)

exit codes: 0 success, 1 checks failed, 2 usage or config error, 3 runtime or infrastructure error
"""


class Exit(IntEnum):
    """One exit-code convention for every command."""

    OK = 0
    CHECKS_FAILED = 1  # the command judged something and it failed (a window with status fail)
    USAGE = 2  # bad arguments or config: fix the command line or the file
    RUNTIME = 3  # could not run: a server, a database, a file system, or a bug


def _prepare_prefect_env(home: Path) -> None:
    """Keep Prefect's local state under MLMON_HOME unless the user points Prefect elsewhere."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not os.environ.get("PREFECT_API_URL") and not os.environ.get("PREFECT_HOME"):
        (home / "prefect").mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(home / "prefect")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")


def _prefect_for_flows(s: Any) -> None:
    """Point Prefect at a server before a command runs flows, so it does not boot a temporary one
    (12-15 s) per command: ``PREFECT_API_URL`` when set; else the local server recorded in the state
    folder (``mlmon up`` or an earlier command started it); else, on the embedded PostgreSQL, start one
    in the background and keep it for later commands (``mlmon services stop`` stops it). With an external
    PostgreSQL and no ``PREFECT_API_URL``, Prefect's temporary server is used, as Prefect does."""
    from mlmon import embedded

    if os.environ.get("PREFECT_API_URL"):
        return
    url = embedded.running_prefect_server(s.home / "prefect")
    if url is None and s.postgres_uri_env is None:
        url = embedded.start_prefect_server(s.prefect_postgres_uri(), s.home / "prefect")
        print(
            f"mlmon: started a local Prefect server at {url.removesuffix('/api')} in the background; later "
            "commands reuse it (`mlmon services stop` stops it with the embedded databases)",
            file=sys.stderr,
        )
    if url is not None:
        os.environ["PREFECT_API_URL"] = url


def _check_bounds(cfg: Any, start: datetime, end: datetime | None) -> None:
    """Refuse window bounds that are not window boundaries (instead of silently moving them): the user
    asked for data the run would not have covered. The message names the nearest boundaries."""
    from mlmon.tasks.errors import ConfigError
    from mlmon.tasks.window import unaligned

    for flag, t in (("--start", start), ("--end", end)):
        if t is not None and (why := unaligned(t, cfg.window_length, cfg.window_anchor)):
            hint = "monday" if cfg.window_length == timedelta(weeks=1) else f"'{t:%Y-%m-%dT%H:%MZ}'"
            raise ConfigError(
                f"{flag} {why}. Pass a boundary, or align model {cfg.name!r}'s windows with "
                f"window_origin (e.g. window_origin: {hint})"
            )


def _check_reference(cfg: Any) -> None:
    """A missing or unusable reference fails here, in one line, before a server or a flow starts (inside
    a flow run it would also fail, but after Prefect logged a traceback)."""
    from mlmon.tasks.errors import ReferenceDataError
    from mlmon.tasks.reference import check_reference

    if problems := check_reference(cfg).problems:
        raise ReferenceDataError("; ".join(problems))


def _judged(statuses: list[str]) -> int:
    """Exit code of a command that judged windows: 3 when one could not be evaluated (status error),
    else 1 when one failed, else 0 (warn is not a failure)."""
    if "error" in statuses:
        return Exit.RUNTIME
    return Exit.CHECKS_FAILED if "fail" in statuses else Exit.OK


def _time(text: str) -> datetime:
    from mlmon.tasks.window import as_utc

    try:
        return as_utc(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO date/time: {text!r} (e.g. 2026-01-31 or 2026-01-31T12:00Z)"
        ) from None


def _settings(args: argparse.Namespace) -> Any:
    from mlmon.settings import Settings

    s = Settings.from_env(getattr(args, "config", None))
    _prepare_prefect_env(s.home)
    return s


def _model_cfg(args: argparse.Namespace) -> Any:
    from mlmon.tasks.config import load_config

    s = _settings(args)
    return s, load_config(s.config_path).model(args.model)


# --------------------------------------------------------------------------- subcommands


def cmd_run(args: argparse.Namespace) -> int:
    from mlmon.tasks.window import Window, parse_duration

    s, cfg = _model_cfg(args)
    if args.start:
        _check_bounds(cfg, args.start, args.end)
        start = args.start
        end = args.end or start + cfg.window_length
    else:
        w = Window.containing(
            datetime.now(UTC) - parse_duration(cfg.schedule.lateness), cfg.window_length, cfg.window_anchor
        )
        start, end = w.start - cfg.window_length, w.start
    check_range(start, end, datetime.now(UTC), what="window")
    _check_reference(cfg)
    _prefect_for_flows(s)
    from mlmon.flows.monitor import monitor_window

    summary = monitor_window(args.model, start, end, str(s.config_path))
    print(json.dumps(summary, indent=2))
    return _judged([summary["status"]])


def cmd_backfill(args: argparse.Namespace) -> int:
    s, cfg = _model_cfg(args)
    check_range(args.start, args.end, datetime.now(UTC), what="range")
    _check_bounds(cfg, args.start, args.end)
    _check_reference(cfg)
    _prefect_for_flows(s)
    if getattr(args, "pool", None):
        return _backfill_on_pool(args, s)
    from mlmon.flows.monitor import backfill

    results = backfill(args.model, args.start, args.end, str(s.config_path))
    _print_results(results, s)
    return _judged([r["status"] for r in results])


def _backfill_on_pool(args: argparse.Namespace, s: Any) -> int:
    """``backfill --pool``: one deployment run per window on a process work pool (mlmon.fanout)."""
    import time

    from mlmon import fanout

    t0 = time.monotonic()
    runs = fanout.fan_out(
        args.model, args.start, args.end, str(s.config_path), args.pool, timeout=args.timeout
    )
    print(f"\n{'window':<20} {'flow run state':<15} worker")
    for r in runs:
        print(f"{r.window_start.isoformat()[:16]:<20} {r.state:<15} {r.worker or '-'}")
    workers = {r.worker for r in runs if r.worker}
    print(f"{len(runs)} windows on {len(workers)} worker(s) in {time.monotonic() - t0:.0f} s")
    return Exit.OK if all(r.state == "COMPLETED" for r in runs) else Exit.RUNTIME


def check_range(start: datetime, end: datetime, now: datetime, *, what: str) -> None:
    """Refuse, before any server starts, a reversed or empty range and one that ends in the future
    (its rows are not all logged yet: processing it would store a partial window as if complete)."""
    from mlmon.tasks.errors import ConfigError

    if start >= end:
        raise ConfigError(
            f"the {what} is empty or reversed: --start {start.isoformat()} is not before "
            f"--end {end.isoformat()}; swap them or pick a later --end"
        )
    if end > now:
        raise ConfigError(
            f"the {what} ends in the future ({end.isoformat()}; now is {now.replace(microsecond=0).isoformat()}): "
            "only complete windows can be monitored; pick an --end at or before now"
            + (" (or leave --start out for the last complete window)" if what == "window" else "")
        )


def _print_results(results: list[dict[str, Any]], s: Any) -> None:
    print(f"\n{'window':<20} {'status':<6} {'rows':>7} {'quar.':>6}  failed checks")
    for r in results:
        failed = ", ".join(r["failed_checks"][:4]) + (" …" if len(r["failed_checks"]) > 4 else "")
        print(
            f"{r['window_start'][:16]:<20} {r['status']:<6} {r['rows']:>7,} {r['quarantined']:>6,}  {failed}"
        )
    print(f"\nreport index: {s.reports_dir / 'index.html'}")


def cmd_reference_build(args: argparse.Namespace) -> int:
    from mlmon.tasks import reference

    s, cfg = _model_cfg(args)
    out = Path(args.output) if args.output else cfg.reference_path
    info = reference.build_from_mongo(s.mongo_uri(), cfg, args.start, args.end, out)
    print(
        f"reference for {cfg.name}: {info['rows']:,} rows ({info['quarantined']:,} quarantined, "
        f"{info['labelled']:,} labelled) from [{args.start.isoformat()}, {args.end.isoformat()}) "
        f"-> {out} (hash {info['hash']})"
    )
    return 0


def cmd_reports(args: argparse.Namespace) -> int:
    from mlmon.reports import render

    s = _settings(args)
    runs = render.scan_index(s.reports_dir)
    path = render.write_index(s.reports_dir, runs)
    print(f"{len(runs)} reports indexed: {path}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    """Load the config (every name resolved) and check each model's reference file against it."""
    from mlmon.tasks.config import load_config
    from mlmon.tasks.errors import ConfigError
    from mlmon.tasks.reference import check_reference
    from mlmon.tasks.window import EPOCH

    s = _settings(args)
    cfg = load_config(s.config_path)
    problems: list[str] = []
    for name, m in cfg.models.items():
        check = check_reference(m)
        problems += check.problems
        origin = (
            "" if m.window_anchor == EPOCH else f" from {m.window_anchor:%Y-%m-%dT%H:%MZ} ({m.window_origin})"
        )
        print(
            f"{name}: {len(m.features)} features, task {m.task.value}, window {m.window}{origin}, "
            f"reference {'ok' if not check.problems else 'NOT USABLE'}"
        )
        for note in check.notes:
            print(f"  note: {note}")
    if problems:
        raise ConfigError(f"{s.config_path}: " + "\n  ".join(["the config cannot run:", *problems]))
    return 0


def cmd_config_draft(args: argparse.Namespace) -> int:
    from mlmon.tasks import draft
    from mlmon.tasks.connect import mongo_client

    s = _settings(args)
    client = mongo_client(s.mongo_uri())
    flt = json.loads(args.filter) if args.filter else {}
    docs = list(client[args.database][args.collection].find(flt).limit(args.sample))
    if not docs:
        print(
            f"mlmon: error: no documents in {args.database}.{args.collection} matching {flt}", file=sys.stderr
        )
        return Exit.USAGE
    print(
        draft.draft_config(
            docs, model=args.model, database=args.database, collection=args.collection, flt=flt
        )
    )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from mlmon import simulate

    s = _settings(args)
    start = args.start or (
        datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=args.days)
    )
    summary = simulate.run_simulation(s.mongo_uri(), args.database, start, args.days, args.per_day, args.seed)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mlmon import demo

    s = _settings(args)
    _prefect_for_flows(s)
    return demo.run_demo(s, days=args.days, per_day=args.per_day, fresh=args.fresh)


def cmd_sql(args: argparse.Namespace) -> int:
    """Run one read-only query, as the read-only role, and print the rows as a table."""
    from mlmon.tasks.store import query

    s = _settings(args)
    print(query.format_table(query.run_read_only(s.postgres_read_uri(), args.query, limit=args.limit)))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from mlmon.serve import serve_all

    s = _settings(args)
    serve_all(s.config_path, catch_up=args.catch_up, limit=args.limit)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from mlmon.up import run_up

    return run_up(
        _settings(args), host=args.host, prefect_port=args.prefect_port, reports_port=args.reports_port
    )


def cmd_status(args: argparse.Namespace) -> int:
    from mlmon.tasks.config import load_config
    from mlmon.tasks.operations import format_status, status_rows
    from mlmon.tasks.store import store

    s = _settings(args)
    cfg = load_config(s.config_path)
    pg = s.postgres_uri()
    store.migrate(pg)
    print(format_status(status_rows(cfg, pg, datetime.now(UTC))))
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    from mlmon.tasks.operations import retention
    from mlmon.tasks.window import parse_duration

    s = _settings(args)
    from mlmon.tasks.errors import ConfigError

    try:
        age = parse_duration(args.older_than)
    except ValueError as e:
        raise ConfigError(f"--older-than: {e}") from None
    result = retention(s.postgres_uri(), s.reports_dir, age, datetime.now(UTC), dry_run=args.dry_run)
    print(result.summary())
    return 0


def cmd_labels_recheck(args: argparse.Namespace) -> int:
    from mlmon.tasks import labels, reference
    from mlmon.tasks.connect import mongo_client

    s, cfg = _model_cfg(args)
    client = mongo_client(s.mongo_uri())
    try:
        base = reference.baseline(cfg, s.profiles_dir)
        windows = labels.recheck(
            s.postgres_uri(), client[cfg.source.database], cfg, base, datetime.now(UTC), s.reports_dir
        )
    finally:
        client.close()
    print(f"{len(windows)} window(s) re-evaluated for model quality" + "".join(f"\n  {w}" for w in windows))
    _alert_rechecked(s, cfg, windows)
    return 0


def _alert_rechecked(s: Any, cfg: Any, windows: list[Any]) -> None:
    """Alert on re-evaluated windows as a scheduled run would: the webhook, and the Prefect event when
    a Prefect API is configured (sent before the process exits)."""
    from mlmon.flows.monitor import report_link
    from mlmon.tasks import alerts
    from mlmon.tasks.store import store

    emit = None
    if os.environ.get("PREFECT_API_URL"):
        from prefect.events import emit_event

        def emit(event: str, resource: dict[str, str], payload: dict[str, Any]) -> None:
            emit_event(event=event, resource=resource, payload=payload)

    pg = s.postgres_uri()
    runs = {r.window: r for r in store.list_runs(pg, cfg.name) if r.window in windows}
    for w in windows:
        path = runs[w].report_path
        link = report_link(s.reports_dir / path, s) if path else None
        outcome = alerts.notify(pg, cfg.alerts, alerts.stored_alert(pg, cfg, w, link), emit=emit)
        said = (
            ", ".join(f"{k} {v}" for k, v in outcome.items())
            or "no channel (set PREFECT_API_URL or alerts.webhook_env)"
        )
        print(f"  {w.label} now {runs[w].status}: alerts {said}")


def cmd_alerts_install(args: argparse.Namespace) -> int:
    from mlmon import automations
    from mlmon.tasks.errors import ConfigError

    _settings(args)
    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError(
            "PREFECT_API_URL is not set: point it at the Prefect server the flows report to "
            "(`mlmon up` prints it; in docker compose it is http://localhost:4200/api)"
        )
    path = Path(args.file) if args.file else automations.default_file()
    for a in automations.install(path, webhook_url=args.webhook_url, block=args.block):
        print(f"{a.action} automation {a.name} ({a.id})")
    print(
        f"on {os.environ['PREFECT_API_URL']}: failing windows now notify through it (Automations in the UI)"
    )
    return 0


def cmd_services(args: argparse.Namespace) -> int:
    from mlmon import embedded

    s = _settings(args)
    if args.action == "start":
        print(f"MongoDB:    {s.mongo_uri()}")
        print(f"PostgreSQL: {s.postgres_uri()}")
    elif args.action == "stop":
        if embedded.stop_prefect_server(s.home / "prefect"):
            print("local Prefect server stopped")
        embedded.stop_mongo(s.home / "mongo")
        embedded.stop_postgres(s.home / "postgres")
        print("embedded servers stopped")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``mlmon check``: compare two files in process (no Prefect, no database) and exit 0/1/2/3."""
    from mlmon.tasks.errors import ConfigError, InputDataError

    try:
        from mlmon.tasks.compare import compare, resolve_config

        reference = args.reference
        if reference is None:
            if not args.config:
                raise ConfigError("--reference is needed (or --config, to use the model's reference.path)")
            cfg = resolve_config(args.config, args.model)
            assert cfg is not None
            reference = cfg.reference_path
        result = compare(reference, args.current, args.config, model=args.model)
    except (ConfigError, InputDataError) as e:
        print(f"mlmon: error: {e}", file=sys.stderr)
        return CHECK_USAGE
    except Exception as e:  # anything else (MlmonError or not): the comparison could not run
        print(f"mlmon: error: could not run the comparison: {type(e).__name__}: {e}", file=sys.stderr)
        return CHECK_NOT_RUN
    bad = {"fail", "error"} | ({"warn"} if args.fail_on == "warn" else set())
    code = CHECK_FAILED if any(ch.status.value in bad for ch in result.result.checks) else CHECK_OK
    if args.report:
        try:
            result.save_html(args.report)
        except OSError as e:
            print(f"mlmon: error: cannot write the report {args.report}: {e}", file=sys.stderr)
            return CHECK_NOT_RUN
    if args.format == "json":
        print(json.dumps({**result.to_dict(), "fail_on": args.fail_on, "exit_code": code}, indent=2))
    elif args.format == "junit":
        print(_junit(result, bad))
    else:
        print(_check_text(result, bad, args.report))
    return code


CHECK_OK, CHECK_FAILED, CHECK_USAGE, CHECK_NOT_RUN = (
    Exit.OK,
    Exit.CHECKS_FAILED,
    Exit.USAGE,
    Exit.RUNTIME,
)  # one convention


def _check_text(result: Any, bad: set[str], report: str | None) -> str:
    from mlmon.tasks.contract import column_label

    r = result.result
    n = {s: sum(ch.status.value == s for ch in r.checks) for s in ("pass", "warn", "fail", "error")}
    drifted = sorted({column_label(d.feature) for d in r.drift if d.drifted and d.segment == "all"})
    lines = [
        f"mlmon check: {result.status.upper()} · model {r.model} · {r.n_rows:,} rows"
        f" ({r.n_quarantined:,} quarantined) · {len(r.checks)} checks: {n['fail']} failed,"
        f" {n['error']} errors, {n['warn']} warnings",
        f"drifted columns: {', '.join(drifted) if drifted else 'none'}",
    ]
    order = {"error": 0, "fail": 1, "warn": 2}
    shown = sorted((ch for ch in r.checks if ch.status.value in order), key=lambda ch: order[ch.status.value])
    for ch in shown:
        where = column_label(ch.feature) if ch.feature else "-"
        seg = "" if ch.segment == "all" else f" [{ch.segment}]"
        mark = "✗" if ch.status.value in bad else "!"
        lines.append(f"  {mark} {ch.status.value:<5} {ch.check:<22} {where:<16}{seg} {ch.message}")
    if report:
        lines.append(f"report: {Path(report).resolve()}")
    return "\n".join(lines)


def _junit(result: Any, bad: set[str]) -> str:
    """JUnit XML: one testcase per check (CI systems list them), failures for the statuses that fail."""
    import xml.etree.ElementTree as ET

    from mlmon.tasks.contract import column_label

    r = result.result
    suite = ET.Element("testsuite", name=f"mlmon.{r.model}", timestamp=r.computed_at.isoformat())
    failures = errors = 0
    for ch in r.checks:
        name = ch.check + (f"[{column_label(ch.feature)}]" if ch.feature else "")
        name += "" if ch.segment == "all" else f" ({ch.segment})"
        case = ET.SubElement(
            suite, "testcase", classname=f"mlmon.{r.model}.{ch.category.value}", name=name, time="0"
        )
        status = ch.status.value
        if status == "error":
            errors += 1
            ET.SubElement(case, "error", message=ch.message, type="error").text = ch.message
        elif status in bad:
            failures += 1
            ET.SubElement(case, "failure", message=ch.message, type=status).text = ch.message
        else:
            ET.SubElement(case, "system-out").text = f"{status}: {ch.message}"
    suite.set("tests", str(len(r.checks)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    root = ET.Element("testsuites", name="mlmon check", tests=str(len(r.checks)), failures=str(failures),
                      errors=str(errors))  # fmt: skip
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlmon",
        description="Batch monitoring for ML models: MongoDB prediction logs -> drift, data-quality, "
        "model-quality and service-health checks -> Postgres metrics and HTML reports, run as Prefect flows.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"mlmon {_version()}")
    p.add_argument(
        "--debug", action="store_true", help="print tracebacks of errors (allowed anywhere on the line)"
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str,
        help_: str,
        func: Any,
        description: str | None = None,
        *,
        under: Any = sub,
        config: str = "models config (default: $MLMON_CONFIG or deployments/models.yaml)",
    ) -> argparse.ArgumentParser:
        """A command running ``func``, top level or ``under`` a :func:`group`; ``config`` is the help of
        its --config option (``argparse.SUPPRESS`` hides it)."""
        sp = under.add_parser(
            name, help=help_, description=description or help_, epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        sp.set_defaults(func=func)
        sp.add_argument("--config", help=config)
        return sp

    def group(name: str, help_: str, description: str, dest: str) -> Any:
        """A command whose ACTIONs are added with ``add(..., under=group(...))``."""
        parser = sub.add_parser(name, help=help_, description=description)
        return parser.add_subparsers(dest=dest, metavar="ACTION", required=True)

    sp = add("run", "run every check for one window of one model", cmd_run,
             "Run every check for one window (default: the last complete window) and store the results. "
             "Re-running a window replaces its results.")  # fmt: skip
    sp.add_argument("model", help="model name from the config")
    sp.add_argument("--start", type=_time, help="window start (UTC ISO time); default: last complete window")
    sp.add_argument("--end", type=_time, help="window end; default: start + the model's window length")

    sp = add("backfill", "run every window of a date range (safe to re-run)", cmd_backfill)
    sp.add_argument("model", help="model name from the config")
    sp.add_argument("--start", type=_time, required=True, help="range start (UTC ISO date/time)")
    sp.add_argument("--end", type=_time, required=True, help="range end, exclusive")
    sp.add_argument(
        "--pool", help="fan the windows out as deployment runs on this Prefect process work pool (created if "
        "missing); workers: `prefect worker start --pool POOL --type process`",
    )  # fmt: skip
    sp.add_argument("--timeout", type=float, default=3600.0, help="with --pool: seconds to wait for the runs")

    sp = add("demo", "seed simulated traffic, backfill it and show where the results are", cmd_demo,
             "Start the embedded servers (unless URIs are set), seed a week of simulated traffic for the "
             "demo model (with a drift episode, a data-quality incident and a latency spike), build its "
             "reference, backfill every day and print where the reports and tables are.")  # fmt: skip
    sp.add_argument(
        "--days", type=int, default=10, help="monitored days after the reference day (default 10)"
    )
    sp.add_argument("--per-day", type=int, default=2500, help="predictions per day (default 2500)")
    sp.add_argument("--fresh", action="store_true", help="drop the demo data and seed again")

    ref_sub = group("reference", "build reference datasets", "Reference datasets.", "ref_command")
    sp = add("build", "build a model's reference Parquet from a past window in MongoDB", cmd_reference_build,
             "Extract [start, end) of a model's logs (same contract and quarantine as a monitored window, "
             "labels joined) and write it as the model's reference Parquet.",
             under=ref_sub, config="models config")  # fmt: skip
    sp.add_argument("model", help="model name from the config")
    sp.add_argument("--start", type=_time, required=True, help="window start (UTC ISO time)")
    sp.add_argument("--end", type=_time, required=True, help="window end, exclusive")
    sp.add_argument("--output", help="Parquet path (default: the model's reference.path)")

    add("reports", "rebuild the HTML report index and print where it is", cmd_reports)

    cfg_sub = group("config", "check or draft the models config", "Models config tools.", "cfg_command")
    add("check", "validate the config and say what is missing", cmd_config_check,
        "Validate the models config (unknown keys, types, durations, segments) and report, per model, its "
        "features, task, window and whether its reference file exists.",
        under=cfg_sub, config="models config")  # fmt: skip
    sp = add("draft", "draft a model config from a sample of an existing collection", cmd_config_draft,
             "Sample documents from a collection, infer field paths, types and categories, and print a "
             "config for you to edit.", under=cfg_sub, config=argparse.SUPPRESS)  # fmt: skip
    sp.add_argument("--collection", required=True, help="collection of prediction documents")
    sp.add_argument("--database", default="mlmon", help="database (default mlmon)")
    sp.add_argument("--model", default="my_model", help="name for the drafted model")
    sp.add_argument("--filter", help='extra filter as JSON, e.g. \'{"model_name": "churn"}\'')
    sp.add_argument("--sample", type=int, default=1000, help="documents to sample (default 1000)")

    sp = add("simulate", "write simulated traffic for the demo model to MongoDB", cmd_simulate)
    sp.add_argument("--start", type=_time, help="first day (default: --days days ago, midnight UTC)")
    sp.add_argument("--days", type=int, default=11, help="days of traffic (default 11)")
    sp.add_argument("--per-day", type=int, default=2500, help="predictions per day")
    sp.add_argument("--seed", type=int, default=7, help="random seed")
    sp.add_argument("--database", default="mlmon", help="database (default mlmon)")

    sp = add("serve", "serve the scheduled deployments of every model (no work pool needed)", cmd_serve,
             "Serve one scheduled monitor deployment per configured model (cron and timezone from the config; "
             "each run processes the window its *scheduled* time says, then any due window it finds missing), "
             "plus the monitor-window and backfill-windows deployments. Needs PREFECT_API_URL; deployments are "
             "not paused when the process stops.")  # fmt: skip
    sp.add_argument("--catch-up", help="how far back to look for missed windows (e.g. 7d; default 7d)")
    sp.add_argument("--limit", type=int, help="maximum concurrent flow runs")

    sp = add("up", "the whole stack without Docker: Prefect server, served deployments, reports web server", cmd_up,
             "Start, on embedded defaults, a real Prefect server (on the embedded PostgreSQL), serve the "
             "deployments, and serve the HTML reports over HTTP; print which URL shows what. Ctrl-C stops it "
             "cleanly; running it again resumes.")  # fmt: skip
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sp.add_argument("--prefect-port", type=int, default=4200, help="Prefect UI/API port (default 4200)")
    sp.add_argument("--reports-port", type=int, default=8000, help="reports web server port (default 8000)")

    add(
        "status",
        "per model: last window processed, its status, and how far behind schedule it is",
        cmd_status,
    )

    sp = add(
        "retention",
        "delete results and reports older than an age (never a window in progress)",
        cmd_retention,
    )
    sp.add_argument(
        "--older-than", required=True, help="age such as 90d or 12w (windows ending before now - age)"
    )
    sp.add_argument("--dry-run", action="store_true", help="only count what would be deleted")

    lab_sub = group("labels", "late labels", "Late-arriving labels.", "labels_command")
    sp = add("recheck", "re-evaluate model quality of windows whose labels arrived after they ran",
             cmd_labels_recheck,
             "For windows inside the model's schedule.label_horizon whose labels arrived after their last "
             "evaluation, recompute only the model-quality checks and metrics (drift, quality and health "
             "results are left untouched).", under=lab_sub, config="models config")  # fmt: skip
    sp.add_argument("model", help="model name from the config")

    al_sub = group("alerts", "alert notifications", "Alert notifications.", "alerts_command")
    sp = add("install", "install the Prefect automations that turn mlmon.window.failed into notifications",
             cmd_alerts_install,
             "Create or update (by name) the automations of deployments/automations.yaml on the Prefect "
             "server in PREFECT_API_URL, notifying through a Slack-compatible webhook (--webhook-url, or "
             "MLMON_ALERT_WEBHOOK_URL) or an existing notification block (--block). Safe to run again.",
             under=al_sub, config=argparse.SUPPRESS)  # fmt: skip
    sp.add_argument(
        "--webhook-url", help="Slack-compatible incoming-webhook URL (default $MLMON_ALERT_WEBHOOK_URL)"
    )
    sp.add_argument("--block", help="existing notification block as <type>/<name>, e.g. slack-webhook/team")
    sp.add_argument("--file", help="automations file (default deployments/automations.yaml)")

    sp = add("check", "compare a dataset with a reference in process: a CI/CD gate (no database, no Prefect)",
             cmd_check,
             "Run every check of the pipeline on --current against --reference (Parquet, CSV or JSON lines) "
             "and exit 0 when nothing fails, 1 when a check fails, 2 for a usage or config error, 3 when the "
             "comparison could not run. Without --config, feature kinds, the task and the prediction/target "
             "columns are inferred from the reference.",
             config="models config YAML (default: none, everything is inferred from the reference)")  # fmt: skip
    sp.add_argument(
        "--reference", help="reference dataset (what the model was validated on); default: the reference.path "
        "of the --config model"
    )  # fmt: skip
    sp.add_argument(
        "--current", required=True, help="dataset to check (new predictions, a new model's output)"
    )
    sp.add_argument("--model", help="model of the config to use (needed when it configures several)")
    sp.add_argument(
        "--format", choices=["text", "json", "junit"], default="text", help="output (default text)"
    )
    sp.add_argument("--fail-on", choices=["fail", "warn"], default="fail",
                    help="exit 1 on failed checks (default) or on warnings too")  # fmt: skip
    sp.add_argument("--report", help="also write the HTML report to this file")

    sp = add("sql", "run one read-only SQL query against the metrics database", cmd_sql,
             "Run exactly one SQL statement as the read-only role (MLMON_POSTGRES_READ_URI, or the embedded "
             "server's grafana_reader: SELECT on schema mlmon only), with a 30 s statement timeout, and print "
             "the rows with control characters escaped.")  # fmt: skip
    sp.add_argument("query", help='SQL, e.g. "select * from mlmon.runs order by window_start"')
    sp.add_argument("--limit", type=int, default=200, help="rows to print (default 200)")

    sp = add("services", "start or stop the embedded MongoDB / PostgreSQL", cmd_services)
    sp.add_argument("action", choices=["start", "stop"])
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlmon")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def exit_code(error: BaseException) -> Exit:
    """The exit code of an error: config and usage errors (a query ``mlmon sql`` refuses or the server
    rejects is the user's to fix) are 2, everything else that stops a run is 3."""
    from mlmon.tasks.errors import ConfigError, ReferenceDataError
    from mlmon.tasks.store.query import QueryError

    return Exit.USAGE if isinstance(error, ConfigError | ReferenceDataError | QueryError) else Exit.RUNTIME


def main(argv: list[str] | None = None) -> int:
    from mlmon.tasks.errors import MlmonError

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]  # accepted after the subcommand too
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MlmonError as e:
        print(f"mlmon: error: {e}", file=sys.stderr)
        if debug:
            traceback.print_exc()
        return exit_code(e)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as e:  # not mlmon's own: a server, a library or a bug; one line unless --debug
        print(f"mlmon: error: {type(e).__name__}: {e}".strip(), file=sys.stderr)
        if debug:
            traceback.print_exc()
        else:
            print("mlmon: run again with --debug for the traceback", file=sys.stderr)
        return Exit.RUNTIME


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
