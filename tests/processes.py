"""Real processes for end-to-end tests: pgqd and `celery -A mikkoo_project worker -B`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from . import services

ROOT = Path(__file__).resolve().parent.parent


class Pgqd:
    """pgqd with its default ticker settings, for the given databases."""

    def __init__(self, directory: Path, databases: list[str]) -> None:
        config = directory / "pgqd.ini"
        config.write_text(
            "[pgqd]\n"
            "base_connstr = host=127.0.0.1 port=5432 user=postgres\n"
            f"initial_database = {databases[0]}\n"
            f"database_list = {', '.join(databases)}\n"
            f"logfile = {directory / 'pgqd.log'}\n"
            f"pidfile = {directory / 'pgqd.pid'}\n"
        )
        self.log = directory / "pgqd.log"
        self.process = subprocess.Popen(["pgqd", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Worker:
    """`celery -A mikkoo_project worker -B` on a Celery queue of the test's own, logging to a file.

    With ``beat=False`` it runs without ``-B``, as a deployment's second and later workers do.
    """

    def __init__(self, directory: Path, celery_queue: str, name: str = "w1", concurrency: int | None = 2,
                 loglevel: str = "INFO", beat: bool = True, **environment: str) -> None:
        self.log_path = directory / f"{name}.log"
        env = {
            **os.environ,
            "DATABASE_URL": services.django_database_url(),
            "CELERY_TASK_DEFAULT_QUEUE": celery_queue,
            "CELERY_BEAT_SCHEDULE_FILENAME": str(directory / f"{name}-beat"),
            **environment,
        }
        self._log = open(self.log_path, "w")  # closed in stop()
        pool = ["--concurrency", str(concurrency)] if concurrency else []  # None: Celery's default
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mikkoo_project", "worker", *(["-B"] if beat else []), *pool,
             "--hostname", f"{name}-{celery_queue}@%h", "--loglevel", loglevel],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() takes the pool and beat with it
        )

    def processes(self) -> list[psutil.Process]:
        """The worker's main process and its children (pool processes, embedded beat)."""
        try:
            main = psutil.Process(self.process.pid)
            return [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL to the worker and every process it started, as when a machine dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, timeout: float = 30) -> float:
        """Warm shutdown (SIGTERM, as Celery's own tooling sends it); returns how long it took."""
        started = time.monotonic()
        if self.process.poll() is None and not self._log.closed:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return time.monotonic() - started


def wait_for(condition, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll ``condition()`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
