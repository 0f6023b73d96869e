"""The wheel, installed into a new virtual environment, runs the relay from any directory (real services).

pip builds the wheel from a copy of the files the package is made of, as the image does; the new
environment gets the runtime lock and the wheel, nothing of this checkout. From an empty directory,
django-admin migrates, imports a mikkoo file, installs the audit SQL and relays a queue.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from relay import __version__

from . import services

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
#: What the wheel is built from; relay/sql is a link into sql/.
PACKAGE_SOURCES = ("pyproject.toml", "README.md", "LICENSE", "relay", "mikkoo_project", "sql")


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    process = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert process.returncode == 0, f"{args}:\n{process.stdout}\n{process.stderr}"
    return process


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built as the image builds it."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in PACKAGE_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    # The locked build backend of this environment (requirements/dev.txt), not one fetched for the build.
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp / "dist"),
        str(source))
    [built] = (tmp / "dist").glob("mikkoo_relay-*.whl")
    return built


@pytest.fixture(scope="module")
def venv_bin(wheel, tmp_path_factory) -> Path:
    """The bin directory of a new virtual environment holding the runtime lock and the wheel."""
    venv = tmp_path_factory.mktemp("venv")
    # This environment's pip installs into the new one: no pip of its own to bootstrap.
    run(sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv))
    pip = (sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q")
    run(*pip, "--require-hashes", "-r", str(ROOT / "requirements" / "runtime.txt"))
    run(*pip, "--no-deps", "--no-index", str(wheel))
    return venv / "bin"


def test_the_wheel_holds_the_app_its_sql_and_templates_and_the_project_and_no_more(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    dist_info = f"mikkoo_relay-{__version__}.dist-info"

    assert wheel.name == f"mikkoo_relay-{__version__}-py3-none-any.whl"
    assert {f"relay/sql/{path.name}" for path in (ROOT / "sql").glob("*.sql")} < names
    assert {path.relative_to(ROOT).as_posix() for path in (ROOT / "relay" / "templates").rglob("*.html")} < names
    assert {"relay/migrations/0001_initial.py", "mikkoo_project/settings.py", f"{dist_info}/licenses/LICENSE"} < names
    assert {name.split("/")[0] for name in names} == {"relay", "mikkoo_project", dist_info}


def test_the_installed_wheel_migrates_imports_and_relays(venv_bin, source_dsn, exchange, bind_queue, amqp, tmp_path):
    queue = services.unique("pkg")
    target = bind_queue(exchange)
    (tmp_path / "mikkoo.yml").write_text(f"""\
Application:
  workers:
    {queue}:
      postgres_url: {source_dsn}
      retry_delay: 0
      rabbitmq: {{host: 127.0.0.1, port: 5672, vhost: /, username: guest, password: guest}}
""")
    # Nothing of this checkout: not on the path, not its .env; Django's database is a file in the directory.
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "DATABASE_URL", "VIRTUAL_ENV")}
    environment.update(PATH=f"{venv_bin}{os.pathsep}{environment['PATH']}",
                       DJANGO_SETTINGS_MODULE="mikkoo_project.settings", SECRET_KEY="package-test")

    def admin(*args: str) -> str:
        return run(str(venv_bin / "django-admin"), *args, cwd=tmp_path, env=environment).stdout

    located = run(str(venv_bin / "python"), "-c", "import relay; print(relay.__file__)", cwd=tmp_path,
                  env=environment).stdout
    assert Path(located).is_relative_to(venv_bin.parent), located
    assert admin("relay_once", "--version") == f"{__version__}\n"
    admin("migrate", "--no-input", "-v", "0")
    assert (tmp_path / "db.sqlite3").is_file()
    admin("import_mikkoo", "mikkoo.yml")
    assert "installed the mikkoo audit SQL API" in admin("install_sql", queue)
    services.insert_events(source_dsn, queue, [("pkg.created", str(n), exchange, "", "", "") for n in range(3)])
    services.tick(source_dsn, queue)

    assert admin("relay_once", queue, "--progress", "none").startswith(f"{queue}: 1 batches, 3 published")

    received = services.drain(amqp, target, expected=3)
    assert sorted(message.body for message in received) == [b"0", b"1", b"2"]
    assert {message.properties["app_id"] for message in received} == {f"mikkoo-relay/{__version__}"}
