"""The deploy's Ansible is lint-clean (production profile) and every playbook parses.

tests/run.sh installs ansible and ansible-lint into deploy/.venv (deploy/requirements-dev.txt).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = DEPLOY / ".venv" / "bin"
pytestmark = [pytest.mark.deploy, pytest.mark.slow]
PLAYBOOKS = sorted(p.name for p in DEPLOY.glob("*.yml"))


@pytest.fixture(scope="module")
def tools() -> Path:
    if not (BIN / "ansible-lint").exists():
        subprocess.run(["bash", str(DEPLOY / "deploy.sh")], check=True, timeout=900,
                       env={**os.environ, "DEPLOY_DEV": "1", "DEPLOY_INSTALL_ONLY": "1"})
    return BIN


def run(tools: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(DEPLOY / "ansible.cfg"),
           "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(tools / args[0]), *args[1:]], cwd=DEPLOY, env=env,
                          capture_output=True, text=True, timeout=600)


def test_playbooks_exist():
    assert {"site.yml", "teardown.yml", "backup.yml", "restore.yml"} <= set(PLAYBOOKS)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(tools, playbook):
    result = run(tools, "ansible-playbook", "-i", str(ROOT / "inventory.ini"), playbook, "--syntax-check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_production_profile(tools):
    result = run(tools, "ansible-lint", "--nocolor", *PLAYBOOKS)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


def test_every_role_documents_its_defaults():
    for role in sorted((DEPLOY / "roles").iterdir()):
        defaults = role / "defaults" / "main.yml"
        assert defaults.exists(), f"{role.name} has no defaults/main.yml"
        text = defaults.read_text()
        for line in text.splitlines():
            if line and not line.startswith((" ", "#", "-", "---")):
                name = line.split(":")[0]
                assert name.startswith(role.name + "_"), f"{role.name}: variable {name} is not prefixed {role.name}_"
        assert "#" in text, f"{role.name}: defaults/main.yml explains nothing"
