"""``manage.py relay_once <queue>``: relay what is ready for one queue, showing how it goes, and exit."""
from __future__ import annotations

import dataclasses
import json
import sys
from contextlib import nullcontext

from django.core.management.base import BaseCommand, CommandError

from ... import __version__
from ...core.errors import InvalidConfiguration, RelayError
from ...engine.results import RelayResult
from ...pgq.status import StatusReader
from ...runs.run_queue import get_queue, record_unexpected, relay_queue
from ..progress import BarDisplay, LineDisplay, NoDisplay, Progress

#: Exit status of an interrupted run (128 + SIGINT, as shells report it).
INTERRUPTED = 130


class Command(BaseCommand):
    help = ("Relay every batch ready for one queue to RabbitMQ (or split it into the target database's "
            "queues), print a one-line summary and exit. Exit status: 0 when it relayed, found nothing ready or "
            "found the queue busy; 1 on an error (named in one line); 2 on a usage error; 130 when interrupted.")

    def get_version(self) -> str:
        """``--version``: the relay's release (Django's commands print Django's)."""
        return __version__

    def add_arguments(self, parser):
        parser.add_argument("queue", help="Name of the relayed queue, as configured in the admin.")
        parser.add_argument("--max-batches", type=int, default=None,
                            help="Stop after this many batches (default: all that are ready).")
        parser.add_argument("--json", action="store_true", dest="as_json",
                            help="Print the summary as one JSON object on standard output, errors included.")
        parser.add_argument("--progress", choices=["auto", "bar", "lines", "none"], default="auto",
                            help="How to show progress on standard error: a bar, a line every few seconds, or "
                                 "nothing (default auto: a bar on a terminal, lines otherwise).")
        parser.add_argument("--progress-every", type=float, default=5.0, metavar="SECONDS",
                            help="Seconds between progress lines (default 5).")

    def handle(self, *args, queue, max_batches, as_json=False, progress="auto", progress_every=5.0, **options):
        configured = None
        tracker = None
        try:
            configured = get_queue(queue)
            tracker = self._progress(configured, progress, progress_every, estimate=max_batches is None)
            with self._quiet_logging(tracker):
                result = relay_queue(configured, max_batches=max_batches, observers=(tracker,))
        except InvalidConfiguration as exc:
            self._fail(queue, f"{queue}: invalid configuration: {exc}", as_json, tracker)
        except RelayError as exc:
            self._fail(queue, str(exc), as_json, tracker)
        except KeyboardInterrupt:
            self._fail(queue, f"{queue}: interrupted: the batch in hand was left unfinished and PgQ hands it out "
                              "again (its events already published arrive again, with the same message_id)",
                       as_json, tracker, returncode=INTERRUPTED)
        except Exception as exc:
            error = (record_unexpected(configured, exc) if configured is not None
                     else f"internal error: {type(exc).__name__}: {exc}")
            self._fail(queue, f"{queue}: {error}", as_json, tracker)
        tracker.close()
        if as_json:
            self.stdout.write(json.dumps(as_dict(result)))
        else:
            self.stdout.write(result.summary())

    def _progress(self, queue, mode: str, every: float, estimate: bool) -> Progress:
        stream = sys.stderr
        if mode == "auto":
            mode = "bar" if stream.isatty() else "lines"
        if mode == "none":
            return Progress(NoDisplay())
        if mode == "lines":
            return Progress(LineDisplay(queue.name, stream, every))
        # A person watching is worth one more short connection: the bar's end, and the time left.
        expected = expected_events(queue) if estimate else None
        return Progress(BarDisplay(queue.name, stream, expected), expected)

    @staticmethod
    def _quiet_logging(tracker: Progress):
        # Log lines (each batch writes one) are printed above the bar instead of through it.
        if isinstance(tracker.display, BarDisplay):
            from tqdm.contrib.logging import logging_redirect_tqdm

            return logging_redirect_tqdm()
        return nullcontext()

    def _fail(self, queue: str, error: str, as_json: bool, tracker: Progress | None, returncode: int = 1):
        if tracker is not None:
            tracker.close()
        if as_json:
            self.stdout.write(json.dumps({"queue": queue, "outcome": "error", "error": error}))
        raise CommandError(error, returncode=returncode) from None


def outcome(result: RelayResult) -> str:
    """In a word: relayed, nothing ready, or busy."""
    if result.busy:
        return "busy"
    return "relayed" if result.batches else "nothing ready"


def as_dict(result: RelayResult) -> dict:
    """The summary for scripts: the outcome, every count of the result (the splitter's too), the rate."""
    summary = {"outcome": outcome(result), **dataclasses.asdict(result)}
    summary.update(seconds=round(result.seconds, 3), events_per_second=round(result.events_per_second, 1), error=None)
    return summary


def expected_events(queue) -> int | None:
    """PgQ's estimate of the events ready for the queue's consumer, for the bar's end; None when unknown."""
    try:
        with StatusReader(queue.source_dsn()) as reader:
            state = reader.pgq_state(queue.queue_name, queue.consumer_name)
    except RelayError:
        return None  # the run itself says what is wrong
    return state.pending_events if state.registered and state.pending_events else None
