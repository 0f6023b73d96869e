"""The demo's admin-user step (scripts/create-admin.sh), then a login over HTTP to a real gunicorn."""
from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from . import services
from .processes import ROOT, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# Quotes, a dollar, a backslash, spaces and non-ASCII: nothing in the shell step may mangle it.
PASSWORD = "corr'ect \"horse\" $HOME \\ bättery"


def create_admin(password: str | None = None, user: str = "admin") -> subprocess.CompletedProcess:
    """Run the demo's user step alone, in a process of its own, against the test database."""
    env = {**os.environ, "DATABASE_URL": services.django_database_url(), "PYTHON": sys.executable,
           "ADMIN_USER": user}
    env.pop("ADMIN_PASSWORD", None)
    if password is not None:
        env["ADMIN_PASSWORD"] = password
    return subprocess.run(["bash", "scripts/create-admin.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def web(tmp_path):
    """The admin served by gunicorn on a free loopback port, on the test database: its base URL."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": services.django_database_url(), "ALLOWED_HOSTS": "127.0.0.1",
           "DEBUG": "false"}
    log = open(tmp_path / "gunicorn.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "mikkoo_project.wsgi", "--bind",
                                f"127.0.0.1:{port}", "--workers", "1"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)

    def listening() -> bool:
        assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, timeout=30, what="gunicorn to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def log_in(base: str, username: str, password: str) -> tuple[str, str]:
    """Post the admin's login form as a browser does (its CSRF cookie and token): the final URL and page."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(f"{base}/admin/login/?next=/admin/", timeout=10) as response:
        form = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": username, "password": password,
                                   "next": "/admin/"}).encode()
    request = urllib.request.Request(f"{base}/admin/login/?next=/admin/", data=body,
                                     headers={"Referer": f"{base}/admin/login/"})
    with opener.open(request, timeout=10) as response:
        return response.geturl(), response.read().decode()


def logged_in(url: str, page: str) -> bool:
    return url.endswith("/admin/") and "Site administration" in page and "Log out" in page


def test_the_demo_user_step_with_admin_password_lets_the_admin_log_in_over_http(web):
    created = create_admin(PASSWORD)

    assert created.returncode == 0, created.stderr
    assert created.stdout == "admin user 'admin' created with the given password\n"
    assert PASSWORD not in created.stdout + created.stderr
    assert logged_in(*log_in(web, "admin", PASSWORD))
    assert not logged_in(*log_in(web, "admin", "not the password"))

    # Run again with another ADMIN_PASSWORD: the existing user's password is reset to it.
    again = create_admin("a new one, 2nd")
    assert again.returncode == 0, again.stderr
    assert again.stdout == "admin user 'admin' exists: its password is set to the given one\n"
    assert logged_in(*log_in(web, "admin", "a new one, 2nd"))
    assert not logged_in(*log_in(web, "admin", PASSWORD))


def test_without_admin_password_a_generated_one_is_printed_and_kept_on_later_runs(client):
    created = create_admin(user="operator")

    assert created.returncode == 0, created.stderr
    match = re.fullmatch(r"admin user 'operator' created with the password (\S{12,})\n", created.stdout)
    assert match, created.stdout
    password = match.group(1)
    assert client.login(username="operator", password=password)

    again = create_admin(user="operator")
    assert again.returncode == 0, again.stderr
    assert "its password is unchanged" in again.stdout
    assert password not in again.stdout
    assert client.login(username="operator", password=password)


def test_a_user_who_lost_admin_rights_gets_them_back_with_the_password(django_user_model, client):
    django_user_model.objects.create_user("admin", password="old", is_staff=False, is_active=False)

    assert create_admin("fresh password").returncode == 0

    user = django_user_model.objects.get(username="admin")
    assert user.is_active and user.is_staff and user.is_superuser
    assert client.login(username="admin", password="fresh password")
