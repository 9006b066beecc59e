"""The Dockerfile of the mlmon image, read as text (no Docker engine here to build it)."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from tests.deploy import compose
from tests.deploy.compose import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_the_base_image_is_python_3_11_slim_with_a_pinned_tag() -> None:
    (base,) = [args for word, args in instructions() if word == "FROM"]
    image, _, tag = base.partition(":")
    assert image == "python" and re.fullmatch(r"3\.11(\.\d+)?-slim(-\w+)?", tag), base
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert ">=3.11" in requires


def test_the_project_is_installed_from_its_pinned_pyproject() -> None:
    runs = " ".join(args for word, args in instructions() if word == "RUN")
    m = re.search(r"pip install '?\.(?:\[([a-z,]+)\])?'?(\s|$)", runs)
    assert m, runs
    # the compose stack runs mlmon.serving (live metrics) from this image: the live extra is needed
    assert "live" in (m.group(1) or "").split(","), runs
    assert "-e " not in runs and "--editable" not in runs


def test_only_the_package_sources_are_copied_never_the_whole_context() -> None:
    copies = [args.split() for word, args in instructions() if word in ("COPY", "ADD")]
    assert copies
    for *sources, _target in copies:
        for source in sources:
            assert source not in (".", "./", "*"), "COPY . would bring .env, .venv and .mlmon into the image"
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repo"
    copied = {s for *sources, _ in copies for s in sources}
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in package_dir.items():
        assert folder in copied, f"package {package} (folder {folder}/) is installed but not copied"


def test_the_image_runs_as_a_non_root_user_after_installing() -> None:
    words = [w for w, _ in instructions()]
    users = [args for w, args in instructions() if w == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), "the image must not run as root"
    last_run = max(i for i, w in enumerate(words) if w == "RUN")
    assert words.index("USER") > last_run, "USER comes after the last RUN (which needs root to install)"


def test_the_default_command_is_the_workers() -> None:
    (cmd,) = [json.loads(args) for word, args in instructions() if word == "CMD"]
    assert cmd == compose.load()["services"]["worker"]["command"]


def test_the_state_folders_match_the_compose_volumes() -> None:
    env = dict(re.findall(r"(MLMON_[A-Z_]+)=(\S+)", " ".join(a for w, a in instructions() if w == "ENV")))
    worker = compose.environment(compose.load()["services"]["worker"])
    for key in ("MLMON_HOME", "MLMON_REPORTS_DIR", "MLMON_CONFIG"):
        assert env[key] == worker[key], f"{key}: Dockerfile {env[key]} vs compose {worker[key]}"
    runs = " ".join(a for w, a in instructions() if w == "RUN")
    for folder in (env["MLMON_HOME"], env["MLMON_REPORTS_DIR"], "/app/reference_data"):
        assert folder in runs, f"{folder} is not created in the image (the named volume would be root-owned)"


def test_the_workdir_is_where_the_deployments_expect_the_project() -> None:
    """Prefect runs the flows by entrypoint (``flows/…py:…``), relative to the image's WORKDIR."""
    serve = pytest.importorskip("mlmon.serve", reason="mlmon serve not implemented yet")
    (workdir,) = [args for word, args in instructions() if word == "WORKDIR"]
    assert serve.PROJECT_DIR == workdir
    copied = {args.split()[-1].rstrip("/").removeprefix("./") for w, args in instructions() if w == "COPY"}
    for spec in serve.deployment_specs(ROOT / "deployments" / "models.yaml"):
        folder = spec.entrypoint.split("/")[0]
        assert folder in copied, f"{spec.entrypoint}: {folder}/ is not copied into the image"
