"""Sentry: with SENTRY_DSN set, errors of the web app and of the worker reach it (a local endpoint here)."""
from __future__ import annotations

import gzip
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from relay.models import BrokerConnection, RelayedQueue

from . import services
from .processes import ROOT, Worker, wait_for


@pytest.fixture
def sentry():
    """An HTTP server on 127.0.0.1 that records the envelopes sentry-sdk posts; yields (dsn, envelopes)."""
    envelopes: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            envelopes.append(body.decode("utf-8", "replace"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://publickey@127.0.0.1:{server.server_address[1]}/1", envelopes
    server.shutdown()


def test_an_error_in_a_view_reaches_sentry(sentry):
    dsn, envelopes = sentry
    script = (
        "import django, sentry_sdk\n"
        "django.setup()\n"
        "from django.test import Client, override_settings\n"
        "with override_settings(ROOT_URLCONF='tests.sentry_urls', ALLOWED_HOSTS=['testserver']):\n"
        "    print(Client(raise_request_exception=False).get('/fail/').status_code)\n"
        "sentry_sdk.flush(10)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**services.os.environ, "DJANGO_SETTINGS_MODULE": "mikkoo_project.settings",
                              "SENTRY_DSN": dsn})
    assert run.stdout.strip() == "500", run.stderr
    assert any("boom from a view" in e and "RuntimeError" in e for e in envelopes)


def test_without_sentry_dsn_nothing_is_sent(sentry):
    _, envelopes = sentry
    run = services.manage("check")
    assert run.returncode == 0 and envelopes == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_error_in_the_worker_reaches_sentry(sentry, tmp_path, celery_queue):
    dsn, envelopes = sentry
    down = BrokerConnection.objects.create(name="down", hosts="127.0.0.1:1")
    RelayedQueue.objects.create(name="broken", queue_name="broken", connection=down,
                                source_url="postgres://relay:s3cret@127.0.0.1:1/app")
    worker = Worker(tmp_path, celery_queue, SENTRY_DSN=dsn)
    try:
        wait_for(lambda: any("relay failed" in e for e in envelopes), timeout=60, what="the worker's error")
    finally:
        worker.stop()
    [event] = [e for e in envelopes if "relay failed" in e][:1]
    assert "s3cret" not in event
