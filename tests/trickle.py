"""A steady trickle of single events to random queues, for tests and benchmarks of faults: what committed, and when."""
from __future__ import annotations

import random
import threading
import time

import psycopg2


class Trickle(threading.Thread):
    """Writes single events, each in its own transaction, to random queues at ``rate`` a second until stopped.

    ``by_queue`` maps each PgQ queue to its database. An event's body is
    ``<queue>/<n>``; ``committed`` says when each committed. An event whose
    commit failed with the server going away may or may not be in PgQ: it is
    ``uncertain``, allowed to arrive, not required to.
    """

    def __init__(self, by_queue: dict[str, str], exchange: str, rate: float = 20.0) -> None:
        super().__init__(daemon=True)
        self.by_queue, self.exchange, self.pause = by_queue, exchange, 1 / rate
        self.committed: dict[str, float] = {}
        self.uncertain: set[str] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        connections: dict[str, object] = {}
        names = list(self.by_queue)
        n = 0
        while not self.stop.is_set():
            started = time.monotonic()
            queue = random.choice(names)
            dsn = self.by_queue[queue]
            event = f"{queue}/{n}"
            n += 1
            try:
                conn = connections.get(dsn) or psycopg2.connect(dsn, connect_timeout=2)
                connections[dsn] = conn
                with conn.cursor() as cur:
                    cur.execute("SELECT pgq.insert_event(%s, 'trickle', %s, %s, 'text/plain', '', '')",
                                (queue, event, self.exchange))
                conn.commit()
                self.committed[event] = time.time()
            except psycopg2.Error:
                self.uncertain.add(event)
                connections.pop(dsn, None)
            self.stop.wait(max(0.0, self.pause - (time.monotonic() - started)))
