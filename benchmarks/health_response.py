"""How long /health/ takes to answer when three queues' sources do not answer at all.

    python benchmarks/health_response.py                # 3 unreachable queues, 12 requests over ~8 s
    python benchmarks/health_response.py --queues 10 --requests 30 --interval 0.25

Each unreachable source (and the RabbitMQ of each queue) is a loopback port
that accepts TCP connections and never answers, like a host behind a firewall
that drops packets: the worst case, where every connection waits for its whole
timeout (a refused port fails at once). A Django database of its own
(SQLite, temporary) holds the queues; the endpoint is asked through Django's
test client, as a load balancer would, and every answer's time is printed,
then the time the same checks take without the endpoint's deadline.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queues", type=int, default=3, help="unreachable queues (default 3)")
    parser.add_argument("--requests", type=int, default=12, help="requests to /health/ (default 12)")
    parser.add_argument("--interval", type=float, default=0.7, help="seconds between requests (default 0.7)")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mikkoo-health-"))
    os.environ.update(DATABASE_URL=f"sqlite:///{workdir / 'django.sqlite3'}", DJANGO_SETTINGS_MODULE=
                      "mikkoo_project.settings", ALLOWED_HOSTS="testserver", DEBUG="false")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    django.setup()
    call_command("migrate", verbosity=0)
    from relay.models import BrokerConnection, RelayedQueue
    from relay.ops import health
    from relay.ops.health import check_health

    listeners = [socket.create_server(("127.0.0.1", 0), backlog=128) for _ in range(options.queues * 2)]
    ports = [listener.getsockname()[1] for listener in listeners]
    for n in range(options.queues):
        broker = BrokerConnection.objects.create(name=f"silent-{n}", hosts=f"127.0.0.1:{ports[2 * n + 1]}")
        RelayedQueue.objects.create(name=f"unreachable-{n}", queue_name=f"q{n}", connection=broker,
                                    source_url=f"postgres://relay:secret@127.0.0.1:{ports[2 * n]}/app")
    print(f"{options.queues} queues whose source database and RabbitMQ accept TCP and never answer; "
          f"timeout {settings.RELAY_HEALTH_TIMEOUT_SECONDS:g} s per connection, deadline "
          f"{settings.RELAY_HEALTH_DEADLINE_SECONDS:g} s, cache {settings.RELAY_HEALTH_CACHE_SECONDS:g} s")

    client = Client()
    times = []
    began = time.perf_counter()
    for request in range(1, options.requests + 1):
        started = time.perf_counter()
        response = client.get("/health/")
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        print(f"request {request:3d} at {started - began:5.1f} s: "
              f"{elapsed * 1000:7.1f} ms, HTTP {response.status_code}, {response.content.decode()[:80]}")
        time.sleep(options.interval)
    print(f"/health/ answered in at most {max(times) * 1000:.0f} ms (median {statistics.median(times) * 1000:.0f} ms) "
          f"over {len(times)} requests")

    while health._running:  # the background checks still running would be waited on, not made anew
        time.sleep(0.1)
    started = time.perf_counter()
    check_health()
    print(f"the same checks without the endpoint's deadline (manage.py relay_health): "
          f"{time.perf_counter() - started:.2f} s (they run concurrently, each within its timeout)")
    for listener in listeners:
        listener.close()


if __name__ == "__main__":
    main()
