"""``mlmon up``: the whole thing on one machine, until Ctrl-C.

* a real Prefect server (``prefect server start`` in a subprocess), its database ``prefect`` on the same
  PostgreSQL as the metrics (the embedded one by default, over its Unix socket);
* the deployments of the models config, served from this process (:func:`mlmon.serve.serve_all`):
  each model on its schedule, plus the one-window and backfill deployments;
* a static web server for the HTML reports;
* the live half, when the config has the demo model: a small simulated serving app
  (:mod:`mlmon.serving`, live metrics on) and, when the ``prometheus`` binary is installed (Debian's
  ``prometheus`` package), a real Prometheus scraping it with mlmon's recording and alert rules.

Everything lives under ``MLMON_HOME``: running ``mlmon up`` again resumes with the same Prefect
history, schedules and results. Schedules are not paused on shutdown, so the first run after a restart
catches up the windows missed while it was down.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from mlmon.embedded import pid_running
from mlmon.serve import ServiceError
from mlmon.settings import Settings
from mlmon.tasks.errors import StoreError

PREFECT_PORT = 4200
REPORTS_PORT = 8000
PROMETHEUS_PORT = 9090
SERVING_PORT = 8001
DEMO_MODEL = "demo_classifier"
_ASYNCPG_QUERY = {"host", "port", "ssl"}  # libpq URI query keys asyncpg understands (sslmode -> ssl)


# ----------------------------------------------------------------------------------- Prefect server


def prefect_database_url(pg_uri: str, database: str = "prefect") -> str:
    """The SQLAlchemy/asyncpg URL of ``database`` on the server of a libpq URI (URL form).

    >>> prefect_database_url("postgresql://postgres:@/mlmon?host=/tmp/pg")
    'postgresql+asyncpg://postgres@/prefect?host=/tmp/pg'
    >>> prefect_database_url("postgresql://app:pw@db:5432/mlmon?sslmode=require")
    'postgresql+asyncpg://app:pw@db:5432/prefect?ssl=require'
    """
    parts = urlsplit(pg_uri)
    if parts.scheme not in ("postgresql", "postgres"):
        raise StoreError(
            f"expected a postgresql:// URI for the Prefect database, got {parts.scheme or pg_uri!r}"
        )
    netloc = parts.netloc.replace(":@", "@")  # an empty password is no password
    query = [("ssl" if k == "sslmode" else k, v) for k, v in parse_qsl(parts.query)]
    query = [(k, v) for k, v in query if k in _ASYNCPG_QUERY]
    return f"postgresql+asyncpg://{netloc}/{database}" + (f"?{urlencode(query, safe='/')}" if query else "")


def ensure_database(pg_uri: str, name: str = "prefect") -> bool:
    """Create database ``name`` on the server of ``pg_uri`` unless it exists; True if it was created."""
    import psycopg2

    from mlmon.tasks.store import store

    conn = store.connect(pg_uri)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(f'CREATE DATABASE "{name}"')  # a constant of this module, never user input
            return True
    except psycopg2.Error as e:
        raise StoreError(f"could not create the database {name!r} for Prefect: {e}".strip()) from e
    finally:
        conn.close()


@dataclass
class PrefectServer:
    """A running ``prefect server start``; :meth:`stop` ends it."""

    api_url: str
    pid: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None  # None when reused from an earlier `mlmon up`

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after ``timeout`` seconds."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(self.pid, self.process):
            time.sleep(0.2)
        if _alive(self.pid, self.process):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=5)


def start_prefect_server(
    pg_uri: str,
    prefect_home: Path,
    *,
    host: str = "127.0.0.1",
    port: int = PREFECT_PORT,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> PrefectServer:
    """Start ``prefect server start`` on ``host:port`` (0 = any free port) with its database ``prefect``
    on the PostgreSQL of ``pg_uri`` (created if missing); return once its health endpoint answers.

    A server started by an earlier call for the same ``prefect_home`` that is still healthy is reused.
    ``env`` adds variables for the server process (e.g. ``PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED``).
    """
    prefect_home = Path(prefect_home)
    prefect_home.mkdir(parents=True, exist_ok=True)
    state_file, log_path = prefect_home / "server.json", prefect_home / "server.log"
    previous = _read_state(state_file)
    if previous and _alive(previous["pid"]) and _healthy(previous["api_url"]):
        return PrefectServer(previous["api_url"], previous["pid"], log_path)
    ensure_database(pg_uri)
    port = port or _free_port(host)
    if _port_open(host, port):
        raise ServiceError(f"port {port} on {host} is in use: stop what listens there or choose another port")
    api_url = f"http://{host}:{port}/api"
    server_env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_database_url(pg_uri),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(port),
        **(env or {}),
    }
    server_env.pop("PREFECT_API_URL", None)  # the server is the API; it must not look for another one
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    with log_path.open("ab") as log:
        # its own session: Ctrl-C in the terminal reaches `mlmon up`, which stops the server in order
        proc = subprocess.Popen(
            cmd, env=server_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = PrefectServer(api_url, proc.pid, log_path, proc)
    deadline = time.monotonic() + timeout
    while not _healthy(api_url):
        if proc.poll() is not None:
            raise ServiceError(f"the Prefect server exited with code {proc.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            server.stop()
            raise ServiceError(f"the Prefect server did not answer within {timeout:.0f}s; see {log_path}")
        time.sleep(0.5)
    state_file.write_text(json.dumps({"pid": proc.pid, "api_url": api_url}))
    return server


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _alive(pid: int, process: subprocess.Popen[bytes] | None = None) -> bool:
    if process is not None:
        return process.poll() is None
    return pid_running(pid)


def _read_state(path: Path) -> dict | None:
    try:
        state = json.loads(path.read_text())
        return state if isinstance(state.get("pid"), int) and isinstance(state.get("api_url"), str) else None
    except (OSError, ValueError, AttributeError):
        return None


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------ reports server


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # the base class's signature
        pass  # one line per request would drown the flow logs


def serve_reports(
    reports_dir: Path, *, host: str = "127.0.0.1", port: int = REPORTS_PORT
) -> ThreadingHTTPServer:
    """Serve ``reports_dir`` over HTTP from a daemon thread (port 0 = any); ``shutdown()`` stops it."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_QuietHandler, directory=str(reports_dir))
    try:
        httpd = ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise ServiceError(f"cannot serve the reports on {host}:{port}: {e.strerror or e}") from e
    threading.Thread(target=httpd.serve_forever, name="mlmon-reports", daemon=True).start()
    return httpd


# ------------------------------------------------------------------------ live: serving app, Prometheus


@dataclass
class Service:
    """A child process started by ``mlmon up`` (or a test); :meth:`stop` ends it."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def prometheus_binary() -> str | None:
    """The ``prometheus`` server on PATH or at /usr/bin/prometheus (Debian's package), else None."""
    found = shutil.which("prometheus")
    if found:
        return found
    return "/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None


def _start_service(
    name: str,
    cmd: list[str],
    log_path: Path,
    ready_url: str,
    url: str,
    timeout: float,
    env: Mapping[str, str] | None,
) -> Service:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
    service = Service(name, url, proc, log_path)
    deadline = time.monotonic() + timeout
    while not _answers(ready_url):
        if proc.poll() is not None:
            raise ServiceError(f"{name} exited with code {proc.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            service.stop()
            raise ServiceError(f"{name} did not answer within {timeout:.0f}s; see {log_path}")
        time.sleep(0.2)
    return service


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_serving_demo(
    config_path: Path,
    mongo_uri: str,
    home: Path,
    *,
    host: str = "127.0.0.1",
    port: int = SERVING_PORT,
    rate: float = 5.0,
    database: str = "mlmon",
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> Service:
    """Start the demo model's serving app (:mod:`mlmon.serving`) on ``host:port`` (0 = any free port),
    serving itself ``rate`` simulated requests/s (0: only what clients send); return once it answers."""
    port = port or _free_port(host)
    if _port_open(host, port):
        raise ServiceError(f"port {port} on {host} is in use: stop what listens there or choose another port")
    cmd = [sys.executable, "-m", "mlmon.serving", "--config", str(Path(config_path).resolve()), "--model",
           DEMO_MODEL, "--host", host, "--port", str(port), "--mongo-uri", mongo_uri, "--database", database, "--simulate", str(rate)]  # fmt: skip
    return _start_service(
        "the simulated serving app", cmd, Path(home) / "serving" / f"serving-{port}.log",
        f"http://{host}:{port}/health", f"http://{host}:{port}/metrics", timeout,
        {"MLMON_HOME": str(home), **(env or {})},
    )  # fmt: skip


def start_prometheus(
    home: Path,
    targets: list[str],
    *,
    host: str = "127.0.0.1",
    port: int = PROMETHEUS_PORT,
    scrape_interval: str = "5s",
    timeout: float = 60.0,
) -> Service:
    """Start a real Prometheus on ``host:port`` (0 = any free port) scraping ``targets`` with mlmon's
    recording and alert rules (:mod:`mlmon.promql`), its data under
    ``home``; return once it is ready. Raises :class:`ServiceError` when the binary is not installed."""
    import yaml

    from mlmon import promql

    binary = prometheus_binary()
    if binary is None:
        raise ServiceError("prometheus is not installed (Debian: apt-get install prometheus)")
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    rules = home / "mlmon-live.yml"
    rules.write_text(promql.render())
    config = home / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(promql.prometheus_config(targets, [str(rules)], scrape_interval=scrape_interval))
    )
    port = port or _free_port(host)
    if _port_open(host, port):
        raise ServiceError(f"port {port} on {host} is in use: stop what listens there or choose another port")
    cmd = [binary, f"--config.file={config}", f"--storage.tsdb.path={home / 'data'}",
           f"--web.listen-address={host}:{port}", "--storage.tsdb.retention.time=7d"]  # fmt: skip
    return _start_service(
        "Prometheus", cmd, home / "prometheus.log", f"http://{host}:{port}/-/ready", f"http://{host}:{port}",
        timeout, None,
    )  # fmt: skip


def _start_live(
    settings: Settings, mongo_uri: str, host: str, serving_port: int, prometheus_port: int
) -> list[Service]:
    """The demo's serving app and Prometheus, when the config has the demo model; [] otherwise."""
    from mlmon.tasks.config import load_config

    if DEMO_MODEL not in load_config(settings.config_path).models:
        return []
    # 2 requests/s: 1,800 values in the 15-minute drift window (enough for a live verdict), and a day of
    # simulated traffic (~170k documents) stays cheap for the embedded MongoDB and the daily window.
    started = [
        start_serving_demo(
            settings.config_path, mongo_uri, settings.home, host=host, port=serving_port, rate=2.0
        )
    ]
    if prometheus_binary() is None:
        print("mlmon up: prometheus not installed; the live dashboard's data is at the serving app's /metrics",
              file=sys.stderr)  # fmt: skip
        return started
    target = urlsplit(started[0].url).netloc
    try:
        started.append(
            start_prometheus(settings.home / "prometheus", [target], host=host, port=prometheus_port)
        )
    except ServiceError:
        started[0].stop()
        raise
    return started


# --------------------------------------------------------------------------------------------- up


def run_up(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    prefect_port: int = PREFECT_PORT,
    reports_port: int = REPORTS_PORT,
    serving_port: int = SERVING_PORT,
    prometheus_port: int = PROMETHEUS_PORT,
) -> int:
    """Start everything, print which URL shows what, serve the deployments until Ctrl-C, stop it all.

    Uses the Prefect server at ``PREFECT_API_URL`` when that is set instead of starting one. Embedded
    databases this call had to start are stopped on the way out; ones already running are left running.
    """
    from mlmon.tasks.config import load_config

    load_config(settings.config_path)  # a bad config fails here, before anything starts
    was_running = _embedded_running(settings)
    pg_uri, mongo_uri = settings.postgres_uri(), settings.mongo_uri()
    server = None
    api_url = os.environ.get("PREFECT_API_URL")
    reports = None
    live: list[Service] = []
    stopped = threading.Lock()

    def stop_all() -> None:
        """Stop what this call started, once (from the main thread or from the shutdown watchdog)."""
        if not stopped.acquire(blocking=False):
            return
        print("\nstopping…", file=sys.stderr, flush=True)
        if reports is not None:
            reports.shutdown()
            reports.server_close()
        for service in reversed(live):
            service.stop()
        if server is not None:
            server.stop()
        _stop_embedded(settings, was_running)
        print("mlmon up: stopped", file=sys.stderr, flush=True)

    try:
        if not api_url:
            # Prefect's own database: owned by the role mlmon_prefect (embedded) or the configured role
            server = start_prefect_server(
                settings.prefect_postgres_uri(), settings.home / "prefect", host=host, port=prefect_port
            )
            api_url = server.api_url
        reports = serve_reports(settings.reports_dir, host=host, port=reports_port)
        reports_url = f"http://{host}:{reports.server_address[1]}/"
        # flow runs are subprocesses of serve(): they read all of this from the environment
        os.environ.update(
            PREFECT_API_URL=api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            MLMON_HOME=str(settings.home),
            MLMON_CONFIG=str(settings.config_path.resolve()),
            MLMON_REPORTS_DIR=str(settings.reports_dir),
        )
        os.environ.setdefault("MLMON_REPORTS_URL", reports_url)
        try:
            live.extend(_start_live(settings, mongo_uri, host, serving_port, prometheus_port))
        except ServiceError as e:  # the batch half does not need the live one: say why, go on
            print(f"mlmon up: the live metrics are not running: {e}", file=sys.stderr, flush=True)
        _print_urls(settings, api_url, reports_url, pg_uri, mongo_uri, live)
        _exit_if_shutdown_hangs(stop_all)
        _serve(settings.config_path, api_url)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all()
    return 0


SHUTDOWN_GRACE_S = 20.0


def _serve(config_path: Path, api_url: str) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from mlmon.serve import serve_all

    with temporary_settings({PREFECT_API_URL: api_url}):  # in case Prefect read its settings already
        serve_all(config_path)


def _exit_if_shutdown_hangs(stop_all: Callable[[], None]) -> None:
    """Ctrl-C must always stop ``mlmon up``.

    Prefect's runner can wedge its event loop (e.g. when its API has gone away its observer fails with
    "Service exceeded error threshold" and no longer reacts to KeyboardInterrupt). The first
    SIGINT/SIGTERM raises KeyboardInterrupt as usual; if the process is still here ``SHUTDOWN_GRACE_S``
    later, it stops what it started itself and exits (flow-run state is in Postgres and Prefect).
    """

    def force_exit() -> None:
        print(f"\nmlmon up: Prefect did not stop within {SHUTDOWN_GRACE_S:.0f}s", file=sys.stderr, flush=True)
        stop_all()
        os._exit(0)

    def handler(signum: int, _frame: object) -> None:
        timer = threading.Timer(SHUTDOWN_GRACE_S, force_exit)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _print_urls(
    settings: Settings,
    api_url: str,
    reports_url: str,
    pg_uri: str,
    mongo_uri: str,
    live: list[Service] | None = None,
) -> None:
    from mlmon.serve import deployment_specs
    from mlmon.tasks.store.store import redact

    ui = api_url.removesuffix("/api")
    rows = [
        ("Prefect UI", ui, "flow runs, schedules, logs; each run's artifact links to its report"),
        ("Prefect API", api_url, "PREFECT_API_URL for `prefect` commands in another terminal"),
        ("HTML reports", f"{reports_url}index.html", "every window's report, newest first"),
        ("PostgreSQL", redact(pg_uri), "metrics tables (schema mlmon) for Grafana and `mlmon sql`"),
        ("MongoDB", mongo_uri, "prediction logs and labels (MLMON_MONGO_URI for the logger)"),
    ]
    what = {"Prometheus": "live metrics and mlmon's recording/alert rules (Grafana's live data source)",
            "the simulated serving app": "the demo model behind the logging helper, live metrics on"}  # fmt: skip
    rows += [
        ("Prometheus" if s.name == "Prometheus" else "Serving app", s.url, what[s.name]) for s in live or []
    ]
    print("mlmon is up. Ctrl-C stops it; `mlmon up` again resumes where it stopped.\n")
    for name, url, what in rows:
        print(f"  {name:<13} {url:<48} {what}")
    print(
        "\ndeployments (run one now from the UI, or `prefect deployment run NAME` with PREFECT_API_URL set):"
    )
    for spec in deployment_specs(settings.config_path):
        params = ", ".join(p for p in inspect.signature(spec.flow.fn).parameters if p != "config")
        when = f"cron {spec.cron} ({spec.timezone})" if spec.cron else (
            f"every {spec.interval}" if spec.interval else f"on demand, parameters {params}"
        )  # fmt: skip
        print(f"  {spec.full_name:<42} {when}")
    print(flush=True)


def _embedded_running(settings: Settings) -> tuple[bool, bool]:
    """Whether the embedded PostgreSQL / MongoDB of ``settings`` run already (only if they are used)."""
    pg = settings.postgres_uri_env is None and _pid_file_alive(settings.home / "postgres" / "postmaster.pid")
    mongo = settings.mongo_uri_env is None and _pid_file_alive(settings.home / "mongo" / "nx.pid")
    return pg, mongo


def _stop_embedded(settings: Settings, was_running: tuple[bool, bool]) -> None:
    from mlmon import embedded

    if settings.postgres_uri_env is None and not was_running[0]:
        embedded.stop_postgres(settings.home / "postgres")
    if settings.mongo_uri_env is None and not was_running[1]:
        embedded.stop_mongo(settings.home / "mongo")


def _pid_file_alive(path: Path) -> bool:
    try:
        return _alive(int(path.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return False
