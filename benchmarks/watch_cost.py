"""What watching for new events costs an idle source database, by number of queues and of workers.

    python benchmarks/watch_cost.py                          # 1 and 500 queues, 1 and 4 workers
    python benchmarks/watch_cost.py --queues 1 500 --workers 1 4 --seconds 30

For each number of queues: a source database of its own with that many queues
imported with ``import_mikkoo``, pgqd ticking it; its load measured with pgqd
alone, then with each number of ``celery -A mikkoo_project worker`` processes
(the first with ``-B``, the others without, as a deployment runs one beat).
Statements are counted from the server's log (the database logs every
statement; ``BENCH_POSTGRES_LOG`` names the log file), transactions and new
sessions from ``pg_stat_database``. Prints the relay's share beside pgqd's.
Everything is removed at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402
from kombu import Connection  # noqa: E402

from benchmarks.common import (  # noqa: E402
    ADMIN_DSN,
    AMQP_URL,
    count_statements,
    execute,
    idle_cost,
    mikkoo_yaml,
    worker_environment,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queues", type=int, nargs="+", default=[1, 500])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long each load is measured")
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="mikkoo-watch-"))
    celery_queue = f"celery_{suffix}"
    worker_environment(workdir, celery_queue)
    from django.core.management import call_command

    from relay.models import RelayedQueue
    from tests.processes import Pgqd, Worker, wait_for

    call_command("migrate", verbosity=0)
    admin = psycopg2.connect(ADMIN_DSN)
    admin.autocommit = True
    rows = []
    try:
        for queues in args.queues:
            database = f"mikkoo_watch_{suffix}_{queues}"
            dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + database
            execute(ADMIN_DSN, f'CREATE DATABASE "{database}"')
            pgqd = None
            workers: list = []
            try:
                execute(dsn, "CREATE EXTENSION pgq")
                count_statements(admin, database)
                RelayedQueue.objects.all().delete()
                config = workdir / "mikkoo.yml"
                config.write_text(mikkoo_yaml([f"w{n:04d}_{suffix}" for n in range(queues)], [dsn]))
                call_command("import_mikkoo", str(config), stdout=open(os.devnull, "w"))
                pgqd = Pgqd(workdir, [database])
                time.sleep(5)  # pgqd's first ticks
                alone = idle_cost(admin, database, args.seconds)
                for count in args.workers:
                    workers = [Worker(workdir, celery_queue, name=f"w{queues}-{n}", beat=n == 0)
                               for n in range(count)]
                    wait_for(lambda ws=workers: any("wake-ups: watching" in w.log() for w in ws), timeout=60,
                             what="a worker to watch")
                    time.sleep(5)  # the workers' start: registrations checked, the first sweep, samples
                    both = idle_cost(admin, database, args.seconds)
                    rows.append((queues, count, both - alone, alone))
                    print(f"{queues} queues, {count} workers: the relay {both - alone}; pgqd alone {alone}",
                          flush=True)
                    for worker in workers:
                        worker.stop()
                    workers = []
            finally:
                for worker in workers:
                    worker.stop()
                if pgqd:
                    pgqd.stop()
                execute(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        admin.close()
        with Connection(AMQP_URL) as amqp:
            channel = amqp.channel()
            channel.queue_delete(celery_queue)
            channel.exchange_delete(celery_queue)  # Celery declares an exchange named after its queue
        shutil.rmtree(workdir, ignore_errors=True)

    print("\n| queues | workers | relay statements/s | relay transactions/s | pgqd statements/s "
          "| pgqd transactions/s |")
    print("|---|---|---|---|---|---|")
    for queues, count, relay, pgqd_load in rows:
        def shown(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.1f}"
        print(f"| {queues} | {count} | {shown(relay.statements)} | {relay.transactions:.1f} | "
              f"{shown(pgqd_load.statements)} | {pgqd_load.transactions:.1f} |")


if __name__ == "__main__":
    main()
