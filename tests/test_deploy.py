"""Production settings come from the environment: with the values .env.example documents, check --deploy passes."""
from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.pure  # no service, no process: the fast tier (pytest -m "not slow")

ROOT = Path(__file__).resolve().parent.parent
SECURITY_SETTINGS = {"SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
                     "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "CSRF_TRUSTED_ORIGINS",
                     "SECURE_PROXY_SSL_HEADER"}


def documented_production_environment() -> dict[str, str]:
    """The commented ``NAME=value`` lines of the production section of .env.example."""
    text = (ROOT / ".env.example").read_text()
    section = re.search(r"^# --- production over HTTPS.*?$(.*?)^# --- end of production", text, re.M | re.S)
    assert section, ".env.example has no production section"
    return dict(re.findall(r"^# ([A-Z_]+)=(.*)$", section.group(1), re.M))


def check_deploy(tmp_path, environment: dict[str, str]) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "SECRET_KEY": secrets.token_urlsafe(50),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}", **environment}
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_documented_production_environment_passes_check_deploy(tmp_path):
    production = documented_production_environment()
    assert SECURITY_SETTINGS <= set(production), "a security setting is not documented"

    process = check_deploy(tmp_path, production)

    assert process.returncode == 0, process.stdout + process.stderr
    assert "no issues" in process.stdout


def test_without_them_check_deploy_names_what_is_missing(tmp_path):
    process = check_deploy(tmp_path, {})

    assert process.returncode != 0
    for warning in ("W004", "W008", "W012", "W016"):
        assert warning in process.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_the_compose_file_needs_its_secrets_and_publishes_on_loopback_only():
    process = subprocess.run(["bash", "scripts/check-compose.sh"], cwd=ROOT, capture_output=True, text=True,
                             timeout=120)

    assert process.returncode == 0, process.stdout + process.stderr
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in compose and ":-admin}" not in compose
