"""How long the admin's queue overview takes with 1,000 queues and an hour of samples each.

    python benchmarks/overview_response.py                      # 1,000 queues, 60 samples each, 20 requests a page
    python benchmarks/overview_response.py --queues 5000 --requests 10
    python benchmarks/overview_response.py --database-url postgres://postgres@127.0.0.1:5432/postgres

Makes a Django database of its own (SQLite in a temporary directory, or a new
database on the PostgreSQL server of ``--database-url``, dropped at the end),
the queues with their status (a few failing, backing off, unregistered and
disabled), and an hour of samples a minute apart for each, as the worker
records them. Then a superuser asks for the first page, a middle page and
the failing queues through Django's test client (the whole request: session,
permission, queries, template, SVG charts) and the time of each answer is
printed, with the number of queries a page cost.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queues", type=int, default=1000, help="configured queues (default 1,000)")
    parser.add_argument("--minutes", type=int, default=60, help="samples per queue, a minute apart (default 60)")
    parser.add_argument("--requests", type=int, default=20, help="requests per page asked (default 20)")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server to make the Django database on (default: SQLite)")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mikkoo-overview-"))
    made_database = None
    if options.database_url:
        import psycopg2

        made_database = f"bench_overview_{uuid.uuid4().hex[:8]}"
        admin = psycopg2.connect(options.database_url)
        admin.autocommit = True
        admin.cursor().execute(f'CREATE DATABASE "{made_database}"')
        admin.close()
        database_url = options.database_url.rsplit("/", 1)[0] + "/" + made_database
    else:
        database_url = f"sqlite:///{workdir / 'django.sqlite3'}"
    os.environ.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="mikkoo_project.settings",
                      ALLOWED_HOSTS="testserver", DEBUG="false")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    try:
        run(options)
    finally:
        if made_database:
            from django.db import connections

            connections.close_all()
            admin = psycopg2.connect(options.database_url)
            admin.autocommit = True
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{made_database}" WITH (FORCE)')
            admin.close()


def run(options: argparse.Namespace) -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from relay.models import BrokerConnection, QueueSample, QueueStatus, RelayedQueue

    started = time.perf_counter()
    now = timezone.now()
    broker = BrokerConnection.objects.create(name="rabbit", hosts="127.0.0.1")
    queues = RelayedQueue.objects.bulk_create(
        [RelayedQueue(name=f"queue-{n:05d}", queue_name=f"queue_{n}", connection=broker, enabled=n % 97 != 5,
                      source_url=f"postgres://relay:secret@db-{n % 10}.example.com/app")
         for n in range(options.queues)], batch_size=500)
    statuses = []
    for n, queue in enumerate(queues):
        status = QueueStatus(queue=queue, consumer_registered_at=None if n % 89 == 3 else now,
                             published=0, batches=n)
        if n % 53 == 7:
            status.last_error, status.last_error_at = "RabbitMQ amqp://relay@rabbit:5672/: cannot connect", now
            status.backoff_until = now + timedelta(seconds=30) if n % 2 else None
        statuses.append(status)
    QueueStatus.objects.bulk_create(statuses, batch_size=500)
    samples = []
    for n, queue in enumerate(queues):
        published = 0
        for minute in range(options.minutes, 0, -1):
            rate = 100 + 80 * math.sin(minute / 6 + n)
            published += int(rate * 60)
            samples.append(QueueSample(queue=queue, taken_at=now - timedelta(minutes=minute - 1), published=published,
                                       consumer_lag=1 + abs(4 * math.cos(minute / 9 + n)), pending_events=int(rate)))
        if len(samples) >= 20_000:
            QueueSample.objects.bulk_create(samples, batch_size=2000)
            samples = []
    QueueSample.objects.bulk_create(samples, batch_size=2000)
    print(f"{options.queues:,} queues, {QueueSample.objects.count():,} samples ({options.minutes} each), "
          f"{connection.vendor} database, made in {time.perf_counter() - started:.1f} s")

    user = User.objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    middle = max(1, math.ceil(options.queues / 50) // 2)
    for title, url in (("first page", "/admin/relay/queueoverview/"),
                       (f"page {middle}", f"/admin/relay/queueoverview/?page={middle}"),
                       ("failing queues", "/admin/relay/queueoverview/?state=failing")):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        cost = len(queries)  # now: the next request empties the log
        assert response.status_code == 200, response.status_code
        rows = response.content.decode().count('<tr id="queue-')
        times = []
        for _ in range(options.requests):
            begun = time.perf_counter()
            client.get(url)
            times.append(time.perf_counter() - begun)
        print(f"{title:15s} {rows:3d} rows, {cost:2d} queries, {len(response.content) / 1024:6.0f} KiB: "
              f"median {statistics.median(times) * 1000:6.1f} ms, max {max(times) * 1000:6.1f} ms "
              f"over {len(times)} requests")


if __name__ == "__main__":
    main()
