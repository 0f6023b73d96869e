"""Production settings come from the environment: with the values .env.example documents, check --deploy passes."""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


def compose_services(tmp_path) -> dict:
    """The services of docker-compose.yml as docker-compose reads them, with its required variables set."""
    empty_env = tmp_path / "empty.env"  # a developer's .env must not supply anything
    empty_env.touch()
    environment = {**os.environ, "SECRET_KEY": "compose-check", "ADMIN_PASSWORD": "compose-check"}
    process = subprocess.run(["docker-compose", "--env-file", str(empty_env), "config"], cwd=ROOT, env=environment,
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    return yaml.safe_load(process.stdout)["services"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_every_service_restarts_and_is_health_checked_and_beat_runs_once(tmp_path):
    services = compose_services(tmp_path)

    assert {name: service.get("restart") for name, service in services.items() if name != "setup"} == dict.fromkeys(
        set(services) - {"setup"}, "unless-stopped")
    # web has the image's own health check (the Dockerfile's HEALTHCHECK); setup is a job that exits.
    assert {name for name, service in services.items() if "healthcheck" not in service} == {"web"}
    assert services["setup"]["healthcheck"]["test"] == ["NONE"]
    commands = {name: service.get("command") or [] for name, service in services.items()}
    assert [name for name, command in commands.items() if "beat" in command] == ["beat"]
    assert not [name for name, command in commands.items() if "-B" in command]


def test_the_image_runs_as_a_user_and_checks_its_health():
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert re.search(r"^USER relay$", dockerfile, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*http://127\.0\.0\.1:8000/health/live", dockerfile, re.M)


def test_every_image_from_elsewhere_is_pinned_to_a_patch_release():
    sources = [(ROOT / "docker-compose.yml").read_text(), (ROOT / "Dockerfile").read_text(),
               (ROOT / "docker" / "postgres" / "Dockerfile").read_text()]
    images = dict(re.findall(r"(?:image:|FROM|_IMAGE=)\s*([a-z]+):(\S+)", "\n".join(sources)))

    # PostgreSQL numbers its patch releases major.minor.
    patch_release = {"postgres": r"\d+\.\d+-\w+", "python": r"\d+\.\d+\.\d+-[\w-]+", "rabbitmq": r"\d+\.\d+\.\d+-\w+"}
    assert set(images) == set(patch_release)
    assert all(re.fullmatch(patch_release[name], tag) for name, tag in images.items()), images


def test_health_probes_over_plain_http_are_not_redirected_to_https(settings, client):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/metrics").status_code == 301
    # The image's HEALTHCHECK asks http://127.0.0.1:8000/health/live: any path below /health/ is answered.
    assert client.get("/health/no-such-probe").status_code == 404
