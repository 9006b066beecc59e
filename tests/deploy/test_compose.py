"""docker-compose.yml and .env.example, checked without Docker against the spec and against the code.

Nothing here starts a container (no Docker engine where this was written): the file is validated
against the Compose Specification's JSON schema (``compose-spec.json``, vendored from
github.com/compose-spec/compose-spec, schema/compose-spec.json at 170098ba07d9, Apache-2.0), then
interpolated with .env.example the way compose does and cross-checked with the Python sources, the
Postgres init script, the Grafana provisioning files and pyproject.toml.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests.deploy import compose
from tests.deploy.compose import ROOT, environment

SCHEMA = Path(__file__).with_name("compose-spec.json")
INIT_SQL = ROOT / "deployments" / "postgres" / "init" / "10_mlmon_roles.sql"
SOURCES = ("mlmon", "tasks", "flows", "reports")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|(^|_)KEY$")
# os.environ.get("X") / os.environ["X"] / os.getenv("X") / os.environ.setdefault("X", ...) / environ.get(...)
ENV_READ = re.compile(
    r"""(?:environ(?:\.get|\.setdefault|\.pop)?\s*[\[(]|getenv\s*\()\s*["']([A-Z][A-Z0-9_]*)["']"""
)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return compose.load()


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    """.env.example with its empty secrets filled in, as an operator's .env would be."""
    env = compose.env_file()
    return {k: v or f"test-{k.lower().replace('_', '-')}" for k, v in env.items()}


@pytest.fixture(scope="module")
def resolved(raw: dict[str, Any], example_env: dict[str, str]) -> dict[str, Any]:
    """The compose file as compose sees it with .env.example's values."""
    return compose.interpolate(raw, example_env)


def services(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return cfg["services"]


def one_shot(service: dict[str, Any]) -> bool:
    """A job that runs once and exits (``restart: "no"``), waited for with service_completed_successfully."""
    return str(service.get("restart", "no")) == "no"


def container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports", [])}


def host_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).rsplit(":", 2)[-2]) for p in service.get("ports", [])}


# --------------------------------------------------------------------------------------- structure


def test_the_file_is_valid_against_the_compose_specification(raw: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(raw), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_stack_has_every_service_it_needs(raw: dict[str, Any]) -> None:
    assert set(services(raw)) == {
        "mongo", "postgres", "prefect-server", "migrate", "worker", "grafana", "reports", "prometheus",
        "serving-demo",
    }  # fmt: skip


def test_the_file_says_it_has_not_been_run_with_docker() -> None:
    head = compose.COMPOSE_FILE.read_text(encoding="utf-8")[:2000]
    assert "NOT RUN YET" in head and "no Docker engine" in head


def test_every_image_is_pinned_to_a_version(raw: dict[str, Any]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    for name, svc in services(raw).items():
        image = svc.get("image")
        assert image, f"{name}: no image (give built images a name too)"
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert "@" not in repo, f"{name}: digest pins are fine but this test does not read them: {image}"
        assert tag != "latest" and re.match(r"v?\d+\.\d+", tag), f"{name}: {image!r} is not a version tag"
        if "build" in svc:
            assert image == f"mlmon:{version}", f"{name}: built image should be mlmon:{version} (pyproject)"


def test_every_long_running_service_has_a_health_check(raw: dict[str, Any]) -> None:
    for name, svc in services(raw).items():
        if one_shot(svc):
            continue
        check = svc.get("healthcheck") or {}
        test = check.get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL") and not check.get("disable"), (
            f"{name}: no healthcheck"
        )
        assert check.get("interval") and check.get("retries"), f"{name}: healthcheck without interval/retries"


def test_one_shot_jobs_are_only_waited_for_until_they_succeed(raw: dict[str, Any]) -> None:
    for name, svc in services(raw).items():
        if one_shot(svc):
            assert "healthcheck" not in svc and "ports" not in svc, f"{name}: a job has no health or ports"


def test_dependencies_wait_until_the_service_is_ready(raw: dict[str, Any]) -> None:
    all_services = services(raw)
    for name, svc in all_services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: use the long depends_on syntax with a condition"
        for dep, spec in deps.items():
            assert dep in all_services, f"{name} depends on unknown service {dep}"
            wanted = "service_completed_successfully" if one_shot(all_services[dep]) else "service_healthy"
            assert spec.get("condition") == wanted, f"{name} -> {dep}: condition should be {wanted}"
    # what must be up before what (the graph is checked for cycles by compose itself)
    assert set(all_services["worker"]["depends_on"]) == {"migrate", "mongo", "prefect-server"}
    assert set(all_services["migrate"]["depends_on"]) == {"postgres"}
    assert set(all_services["prefect-server"]["depends_on"]) == {"postgres"}
    assert {"postgres", "migrate"} <= set(all_services["grafana"]["depends_on"])


# -------------------------------------------------------------------------------------- the code


def variables_the_code_reads() -> set[str]:
    names = set()
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(ENV_READ.findall(path.read_text(encoding="utf-8")))
    return names


def test_the_worker_sets_every_variable_the_code_reads(raw: dict[str, Any]) -> None:
    read = variables_the_code_reads()
    # the grep itself works: these are read in mlmon/settings.py and tasks/connect.py
    assert {"MLMON_MONGO_URI", "MLMON_POSTGRES_URI", "MLMON_REPORTS_DIR", "MLMON_DB_TIMEOUT_S"} <= read
    worker = environment(services(raw)["worker"])
    # read by the serving app's live metrics (mlmon/live.py), set by whoever runs the serving workers
    missing = sorted(read - set(worker) - {"PROMETHEUS_MULTIPROC_DIR"})
    assert not missing, f"the code reads {missing}, which the worker service does not set"


def test_the_worker_sets_no_mlmon_variable_the_code_ignores(raw: dict[str, Any]) -> None:
    read = variables_the_code_reads()
    for name in ("worker", "migrate"):
        stale = sorted(
            k for k in environment(services(raw)[name]) if k.startswith("MLMON_") and k not in read
        )
        assert not stale, f"{name} sets {stale}, which no code reads (renamed?)"


def test_prefect_variables_are_real_prefect_settings(raw: dict[str, Any]) -> None:
    from prefect.settings import Settings
    from prefect.settings.legacy import _get_settings_fields  # pinned prefect==3.8.8

    known = set(_get_settings_fields(Settings))
    assert "PREFECT_API_URL" in known
    for name, svc in services(raw).items():
        unknown = sorted(k for k in environment(svc) if k.startswith("PREFECT_") and k not in known)
        if name == "postgres":  # the init script's own variables, not Prefect settings
            unknown = [k for k in unknown if k not in ("PREFECT_DB_PASSWORD", "PREFECT_DB_NAME")]
        assert not unknown, f"{name}: {unknown} are not Prefect settings (typo?)"


def test_the_worker_runs_a_command_of_the_mlmon_cli(raw: dict[str, Any]) -> None:
    from mlmon.cli import build_parser

    command = services(raw)["worker"]["command"]
    assert command[0] == "mlmon"
    subcommands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if command[1] not in subcommands:
        pytest.xfail(f"`mlmon {command[1]}` is not implemented yet (known: {sorted(subcommands)})")
    build_parser().parse_args(command[1:])


def test_python_one_liners_compile_and_import_what_they_use(raw: dict[str, Any]) -> None:
    """The migrate job and the Python health checks: a typo there only shows up in production."""
    snippets = []
    for name, svc in services(raw).items():
        for cmd in (svc.get("command"), (svc.get("healthcheck") or {}).get("test")):
            if cmd and "python" in cmd and "-c" in cmd:
                snippets.append((name, cmd[cmd.index("-c") + 1]))
    assert {n for n, _ in snippets} >= {"migrate", "worker", "prefect-server"}
    for name, code in snippets:
        tree = ast.parse(code, filename=f"<{name}>")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = __import__(node.module, fromlist=[a.name for a in node.names])
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{name}: {node.module} has no {alias.name}"


# ------------------------------------------------------------------------------------------ mounts


def test_mounted_host_paths_exist_in_the_repo_and_are_not_ignored(raw: dict[str, Any]) -> None:
    bind_mounts = 0
    for name, svc in services(raw).items():
        for volume in svc.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/")):
                continue
            assert source.startswith("./"), f"{name}: {source} is outside the repo (not portable)"
            path = ROOT / source
            assert path.exists(), f"{name} mounts {source}, which does not exist"
            ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", source], check=False)
            assert ignored.returncode == 1, f"{name} mounts {source}, which .gitignore ignores"
            bind_mounts += 1
    assert bind_mounts >= 4


def test_named_volumes_and_configs_are_declared(raw: dict[str, Any]) -> None:
    for name, svc in services(raw).items():
        for volume in svc.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in raw["volumes"], f"{name}: volume {source} is not declared"
        for config in svc.get("configs", []):
            assert config["source"] in raw.get("configs", {}), f"{name}: config {config['source']} undeclared"


def mounts(svc: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Target path -> (source, read_only)."""
    found = {}
    for volume in svc.get("volumes", []):
        source, target, *mode = str(volume).split(":")
        found[target] = (source, "ro" in mode)
    return found


def test_the_worker_state_lives_in_volumes(resolved: dict[str, Any]) -> None:
    worker = services(resolved)["worker"]
    env, vols = environment(worker), mounts(worker)
    assert vols[env["MLMON_REPORTS_DIR"]] == ("reports", False)
    assert vols[env["MLMON_HOME"]][0] == "mlmon-home"
    assert vols[env["MLMON_CONFIG"]] == ("./deployments/models.yaml", True)
    # every model's reference Parquet (relative to the config file) is inside a volume
    cfg = yaml.safe_load((ROOT / "deployments" / "models.yaml").read_text(encoding="utf-8"))
    config_dir = PurePosixPath(env["MLMON_CONFIG"]).parent
    for model, spec in cfg["models"].items():
        reference = _normalise(config_dir / spec["reference"]["path"])
        assert any(reference.is_relative_to(t) for t in vols), f"{model}: {reference} is in no volume"


def _normalise(path: PurePosixPath) -> PurePosixPath:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return PurePosixPath(*parts)


def test_the_reports_server_serves_the_workers_reports_read_only(resolved: dict[str, Any]) -> None:
    nginx = resolved["configs"]["reports-nginx"]["content"]
    (root,) = re.findall(r"^\s*root\s+(\S+);", nginx, flags=re.M)
    assert mounts(services(resolved)["reports"])[root] == ("reports", True)
    assert "location = /healthz" in nginx


def test_the_nginx_config_has_no_dollar_for_compose_to_eat(raw: dict[str, Any]) -> None:
    """Compose interpolates inline config content: an nginx $variable would silently become empty."""
    assert compose.references(raw["configs"]["reports-nginx"]["content"]) == []


def test_grafana_gets_its_provisioning_and_dashboards(resolved: dict[str, Any]) -> None:
    grafana = services(resolved)["grafana"]
    vols, env = mounts(grafana), environment(grafana)
    assert vols["/etc/grafana/provisioning"] == ("./deployments/grafana/provisioning", True)
    provider = yaml.safe_load((ROOT / "deployments/grafana/provisioning/dashboards/mlmon.yaml").read_text())
    (path,) = [p["options"]["path"] for p in provider["providers"]]
    assert vols[path] == ("./deployments/grafana/dashboards", True)
    home = PurePosixPath(env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (
        home.parent == PurePosixPath(path) and (ROOT / "deployments/grafana/dashboards" / home.name).exists()
    )


def test_prometheus_gets_its_config_rules_and_targets_and_scrapes_the_demo_app(
    resolved: dict[str, Any],
) -> None:
    import shutil
    import subprocess

    s = services(resolved)
    vols = mounts(s["prometheus"])
    command = s["prometheus"]["command"]
    config_path = next(a.split("=", 1)[1] for a in command if a.startswith("--config.file="))
    assert vols[config_path] == ("./deployments/prometheus/prometheus.yml", True)
    config = yaml.safe_load((ROOT / "deployments/prometheus/prometheus.yml").read_text())
    (rules,) = config["rule_files"]
    assert vols[str(PurePosixPath(rules).parent)] == ("./deployments/prometheus/rules", True)
    assert list((ROOT / "deployments/prometheus/rules").glob(PurePosixPath(rules).name))
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    (sd,) = jobs["mlmon-serving"]["file_sd_configs"]
    (targets,) = sd["files"]
    assert vols[str(PurePosixPath(targets).parent)] == ("./deployments/prometheus/targets", True)
    assert yaml.safe_load((ROOT / "deployments/prometheus/targets/serving.yml").read_text()) == []
    # the demo job scrapes the serving-demo service on the port it listens on
    (static,) = jobs["mlmon-serving-demo"]["static_configs"]
    (target,) = static["targets"]
    host, port = target.split(":")
    demo = s[host]["command"]
    assert int(port) == int(demo[demo.index("--port") + 1]) and demo[demo.index("--host") + 1] == "0.0.0.0"
    (url,) = re.findall(r"https?://[^'\" ]+", " ".join(s[host]["healthcheck"]["test"]))
    assert urlsplit(url).port == int(port)
    listen = next(a.split("=", 1)[1] for a in command if a.startswith("--web.listen-address="))
    assert container_ports(s["prometheus"]) == {int(listen.rsplit(":", 1)[1])} == {9090}
    (url,) = re.findall(r"https?://[^'\" ]+", " ".join(s["prometheus"]["healthcheck"]["test"]))
    assert urlsplit(url).port == 9090
    promtool = shutil.which("promtool")
    if promtool:  # Debian's prometheus package ships it; the syntax check of the real tool
        done = subprocess.run([promtool, "check", "config", "--syntax-only",
                               str(ROOT / "deployments/prometheus/prometheus.yml")],
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr


def test_postgres_runs_the_init_script(resolved: dict[str, Any]) -> None:
    vols = mounts(services(resolved)["postgres"])
    assert vols["/docker-entrypoint-initdb.d"] == ("./deployments/postgres/init", True)
    # the image runs *.sql and *.sh only; anything else there would be silently skipped
    for f in (ROOT / "deployments/postgres/init").iterdir():
        assert f.suffix in (".sql", ".sh"), f"{f.name} would be ignored by the postgres image"


# ----------------------------------------------------------------------------- names, URIs, ports


def uris(cfg: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(service, variable, URI) for every environment value that is a URL."""
    found = []
    for name, svc in services(cfg).items():
        for key, value in environment(svc).items():
            if re.match(r"^[a-z][a-z0-9+]*://", value):
                found.append((name, key, value))
    return found


def test_uris_name_real_services_on_their_ports(resolved: dict[str, Any]) -> None:
    all_services = services(resolved)
    checked = 0
    for name, key, uri in uris(resolved):
        parts = urlsplit(uri)
        if parts.hostname in ("localhost", "127.0.0.1"):
            continue  # a public URL for the browser: checked against the published ports below
        assert parts.hostname in all_services, f"{name}.{key}: {parts.hostname} is not a service"
        target = all_services[parts.hostname]
        assert parts.port in container_ports(target), (
            f"{name}.{key}: {parts.hostname} listens on no {parts.port}"
        )
        checked += 1
    assert checked >= 4


def test_postgres_uris_use_the_roles_and_databases_the_init_script_creates(resolved: dict[str, Any]) -> None:
    pg = environment(services(resolved)["postgres"])
    init = INIT_SQL.read_text(encoding="utf-8")
    databases = {pg["POSTGRES_DB"]: "mlmon_writer", pg["PREFECT_DB_NAME"]: "prefect"}
    seen = set()
    for name, key, uri in uris(resolved):
        parts = urlsplit(uri)
        if not parts.scheme.startswith("postgresql"):
            continue
        database = parts.path.lstrip("/")
        assert database in databases, f"{name}.{key}: database {database} is not created"
        role = "grafana_reader" if key == "MLMON_POSTGRES_READ_URI" else databases[database]
        assert parts.username == role, f"{name}.{key}: {parts.username} on {database}"
        assert f"'{parts.username}'" in init, (
            f"{name}.{key}: the init script does not create {parts.username}"
        )
        seen.add(database)
    assert seen == set(databases)
    datasource = yaml.safe_load(
        (ROOT / "deployments/grafana/provisioning/datasources/mlmon.yaml").read_text()
    )
    (ds,) = [d for d in datasource["datasources"] if d["type"] == "grafana-postgresql-datasource"]
    host, port = ds["url"].split(":")
    assert int(port) in container_ports(services(resolved)[host])
    assert ds["jsonData"]["database"] == pg["POSTGRES_DB"] and ds["user"] == "grafana_reader"


def test_containers_listen_where_the_ports_and_health_checks_say(resolved: dict[str, Any]) -> None:
    s = services(resolved)
    grafana = environment(s["grafana"])
    assert container_ports(s["grafana"]) == {int(grafana["GF_SERVER_HTTP_PORT"])} == {3000}
    command = s["prefect-server"]["command"]
    assert container_ports(s["prefect-server"]) == {int(command[command.index("--port") + 1])} == {4200}
    listen = re.findall(r"^\s*listen\s+(\d+);", resolved["configs"]["reports-nginx"]["content"], flags=re.M)
    assert container_ports(s["reports"]) == {int(p) for p in listen} == {80}
    worker = environment(s["worker"])
    assert urlsplit(worker["PREFECT_API_URL"]).port == 4200
    # each health check probes the port its service listens on
    probes = {"grafana": 3000, "prefect-server": 4200, "reports": 80,
              "worker": int(worker["PREFECT_RUNNER_SERVER_PORT"])}  # fmt: skip
    for name, port in probes.items():
        (url,) = re.findall(r"https?://[^'\" ]+", " ".join(s[name]["healthcheck"]["test"]))
        assert urlsplit(url).port == port, f"{name}: health check probes {url}"


def test_published_ports_and_public_urls_agree(resolved: dict[str, Any], example_env: dict[str, str]) -> None:
    s, env = services(resolved), example_env
    assert host_ports(s["grafana"]) == {int(env["GRAFANA_PORT"])} == {3000}
    assert host_ports(s["prefect-server"]) == {int(env["PREFECT_PORT"])} == {4200}
    assert host_ports(s["reports"]) == {int(env["REPORTS_PORT"])}
    assert urlsplit(env["GRAFANA_ROOT_URL"]).port == int(env["GRAFANA_PORT"])
    assert urlsplit(env["PREFECT_PUBLIC_URL"]).port == int(env["PREFECT_PORT"])
    assert urlsplit(env["MLMON_REPORTS_URL"]).port == int(env["REPORTS_PORT"])
    assert environment(s["prefect-server"])["PREFECT_UI_API_URL"] == env["PREFECT_PUBLIC_URL"] + "/api"
    assert environment(s["worker"])["MLMON_REPORTS_URL"] == env["MLMON_REPORTS_URL"]


def test_ports_bind_to_localhost_unless_configured(raw: dict[str, Any]) -> None:
    for name, svc in services(raw).items():
        for port in svc.get("ports", []):
            assert str(port).startswith(("${BIND_ADDRESS:-127.0.0.1}:", "${DB_BIND_ADDRESS:-127.0.0.1}:")), (
                f"{name}: {port} should start with the bind-address variable (default 127.0.0.1)"
            )


# ----------------------------------------------------------------------------------------- secrets


def test_no_password_is_written_in_the_file(raw: dict[str, Any]) -> None:
    required = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]+\}$")
    for name, svc in services(raw).items():
        for key, value in environment(svc).items():
            if SECRET_KEY.search(key):
                assert required.match(value), f"{name}.{key} must be ${{VAR:?…}} from .env, not {value!r}"
            parts = urlsplit(value) if "://" in value else None
            if parts and parts.password:
                assert required.match(parts.password), f"{name}.{key}: the URI's password must come from .env"
    text = compose.COMPOSE_FILE.read_text(encoding="utf-8")
    for user, password in re.findall(r"://([^:/@\s]+):([^@\s]+)@", text):
        assert required.match(password), f"literal password in a URI for {user}"


def test_secrets_have_no_default_and_stop_compose_when_missing(
    raw: dict[str, Any], example_env: dict[str, str]
) -> None:
    found = compose.references_in(raw)
    secrets = {n for n, _, _ in found if SECRET_KEY.search(n)}
    assert {"POSTGRES_PASSWORD", "MLMON_WRITER_PASSWORD", "GRAFANA_READER_PASSWORD"} <= secrets
    for name, op, _ in found:
        if name in secrets:
            assert op == ":?", f"${{{name}}} must use :? (no default, refuse to start when empty)"
    with pytest.raises(compose.MissingVariable, match=r"set POSTGRES_PASSWORD in \.env"):
        compose.interpolate(raw, {**example_env, "POSTGRES_PASSWORD": ""})


def test_env_example_defines_exactly_the_variables_compose_uses(raw: dict[str, Any]) -> None:
    used = {n for n, _, _ in compose.references_in(raw)}
    defined = compose.env_file()
    assert sorted(used - set(defined)) == [], "used in docker-compose.yml, missing from .env.example"
    assert sorted(set(defined) - used) == [], "in .env.example, used nowhere"


def test_env_example_leaves_every_secret_empty_and_explains_each_setting() -> None:
    text = compose.ENV_EXAMPLE.read_text(encoding="utf-8")
    lines = text.splitlines()
    for key, value in compose.env_file().items():
        if SECRET_KEY.search(key):
            assert value == "", f".env.example: {key} must be empty (an example password gets deployed)"
        i = next(i for i, line in enumerate(lines) if line.startswith(f"{key}="))
        block = lines[max(0, i - 6) : i]
        assert any(line.startswith("#") for line in block), f".env.example: {key} has no comment above it"


def test_env_is_ignored_by_git() -> None:
    assert subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", ".env"], check=False).returncode == 0
    assert (
        subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", ".env.example"], check=False).returncode
        == 1
    )
