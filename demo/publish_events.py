"""The demo's producer: events written into the PgQ queue ``demo`` with relay.producer, in one transaction.

    .venv/bin/python demo/publish_events.py                 # three events into mikkoo_demo on this host
    .venv/bin/python demo/publish_events.py --count 1000 --database postgresql://postgres@db/mikkoo_demo

Each event goes to the exchange ``demo`` with the routing key ``demo.created``,
a JSON body ``{"n": …}`` and the AMQP property ``type`` ``example``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.producer import publish_many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/mikkoo_demo")
    args = parser.parse_args()

    connection = psycopg2.connect(args.database)
    try:
        with connection, connection.cursor() as cursor:  # commits on leaving the block
            ids = publish_many("demo", [{"routing_key": "demo.created", "body": {"n": n}, "exchange": "demo",
                                         "properties": {"type": "example"}} for n in range(1, args.count + 1)],
                               cursor=cursor)
    finally:
        connection.close()
    print(f"{len(ids)} events written to the PgQ queue demo (ids {ids[0]} to {ids[-1]})" if ids else "no events")


if __name__ == "__main__":
    main()
