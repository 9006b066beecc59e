"""Read docker-compose.yml the way Docker Compose does, without Docker: YAML, then ``${VAR}`` interpolation.

Only what this project's compose file uses is emulated, and anything else is an error rather than a
silent guess: ``$$`` (a literal ``$``), ``$NAME``, ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}``,
``${NAME:?message}`` and ``${NAME?message}`` (https://docs.docker.com/compose/how-tos/environment-variables/
variable-interpolation/). Nested ``${...}`` inside a default is not supported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

_REFERENCE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>.*))?$", re.S)


class MissingVariable(ValueError):
    """A ``${NAME:?message}`` whose variable is unset or empty (compose refuses to start)."""


def load() -> dict[str, Any]:
    """docker-compose.yml as written (variables not interpolated)."""
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file (comments and blank lines skipped), as compose reads .env."""
    values = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{path}:{n}: not KEY=VALUE: {line!r}")
        values[key] = value
    return values


def references(text: str) -> list[tuple[str, str | None, str]]:
    """Every variable reference in ``text`` as (name, operator, argument); ``$$`` is not a reference."""
    found = []
    for m in _REFERENCE.finditer(text):
        if m["escaped"]:
            continue
        if m["named"]:
            found.append((m["named"], None, ""))
            continue
        parsed = _BRACED.match(m["braced"])
        if parsed is None or "${" in (parsed["arg"] or ""):
            raise ValueError(f"unsupported variable reference ${{{m['braced']}}}")
        found.append((parsed["name"], parsed["op"], parsed["arg"] or ""))
    return found


def references_in(value: Any) -> list[tuple[str, str | None, str]]:
    """Every variable reference in the strings of a loaded compose file (comments are not interpolated)."""
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in references_in(k) + references_in(v)]
    if isinstance(value, list):
        return [r for v in value for r in references_in(v)]
    return references(value) if isinstance(value, str) else []


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """``value`` (a string, or lists / mappings of them) with every variable replaced as compose does."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def replace(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        if m["named"]:
            return env.get(m["named"], "")
        ((name, op, arg),) = references(m.group(0))
        current = env.get(name)
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise MissingVariable(f"{name}: {arg}")
        if op == ":-" and not current:
            return arg
        if op == "-" and current is None:
            return arg
        return current or ""

    return _REFERENCE.sub(replace, value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a mapping (compose allows a mapping or a list of KEY=VALUE)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}
